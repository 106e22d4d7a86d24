/**
 * The Compose Specification loader: finds the compose file(s), reads `.env`,
 * interpolates, merges several files (later overrides earlier), validates
 * and normalizes into a `Project` whose services carry only canonical forms
 * (lists of ports and mounts, maps of environment and labels...).
 *
 * Pure: no daemon. Errors are `ComposeError` with the path of the bad value
 * ("services.web.ports[0]").
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import * as YAML from "yaml";
import { interpolateTree, parseDotEnv, InterpolationError, type Env } from "./interpolate.js";
import { parseGoDuration } from "../lib/duration.js";

export class ComposeError extends Error {}

/** The YAML library (bundled into the compose plugin, bin/berth-compose.cjs, never into bin/berth.cjs). */
export function yamlLib(): typeof YAML { return YAML; }

export const DEFAULT_FILES = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

export interface PortConfig { target: number; published?: string; host_ip?: string; protocol: string }
export interface MountConfig { type: "volume" | "bind" | "tmpfs"; source?: string; target: string; read_only: boolean }
export interface BuildConfig { context: string; dockerfile: string; args: Record<string, string>; target?: string }
export interface ServiceNetwork { aliases: string[]; ipv4_address?: string }

export interface Service {
  name: string;
  image?: string;
  build?: BuildConfig;
  command?: string[];
  entrypoint?: string[];
  environment: Record<string, string>;
  ports: PortConfig[];
  volumes: MountConfig[];
  networks: Record<string, ServiceNetwork>;
  depends_on: Record<string, { condition: string; required: boolean }>;
  restart?: string;
  working_dir?: string;
  user?: string;
  labels: Record<string, string>;
  hostname?: string;
  container_name?: string;
  tmpfs: string[];
  read_only?: boolean;
  init?: boolean;
  stop_signal?: string;
  /** Docker's HealthConfig (durations in ns), from the service's healthcheck. */
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  stop_grace_period?: string;
  expose: string[];
  privileged?: boolean;
  cap_add: string[];
  security_opt: string[];
  cap_drop: string[];
  extra_hosts: string[];
  dns: string[];
  tty?: boolean;
  stdin_open?: boolean;
  network_mode?: string;
  pull_policy?: string;
}

export interface NetworkConfig { name: string; driver: string; internal: boolean; external: boolean; labels: Record<string, string> }
export interface VolumeConfig { name: string; driver: string; external: boolean; labels: Record<string, string> }

export interface Project {
  name: string;
  workingDir: string;
  configFiles: string[];
  services: Record<string, Service>;
  networks: Record<string, NetworkConfig>;
  volumes: Record<string, VolumeConfig>;
  /** Things the loader accepted but berth ignores (printed as warnings). */
  warnings: string[];
}

export interface LoadOptions {
  /** -f files, in order; empty: the default file names in cwd. */
  files?: string[];
  projectName?: string;
  cwd?: string;
  /** The process environment (takes precedence over .env). */
  env?: Env;
  /** Already-parsed documents instead of files (tests). */
  documents?: { path: string; content: string }[];
}

/** Keys the Compose Specification allows in a service. */
const SERVICE_KEYS = new Set(("annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command configs container_name cpu_count cpu_percent " +
  "cpu_period cpu_quota cpu_rt_period cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy develop device_cgroup_rules devices dns dns_opt " +
  "dns_search domainname driver_opts entrypoint env_file environment expose extends external_links extra_hosts gpus group_add healthcheck hostname image init ipc " +
  "isolation labels label_file links logging mac_address mem_limit mem_reservation mem_swappiness memswap_limit models network_mode networks oom_kill_disable " +
  "oom_score_adj pid pids_limit platform ports post_start pre_stop privileged profiles provider pull_policy read_only restart runtime scale secrets security_opt " +
  "shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs tty ulimits use_api_socket user userns_mode uts volumes volumes_from working_dir").split(" "));

/** Service keys berth maps onto the container; other valid keys are accepted with a warning. */
const SUPPORTED = new Set(("build cap_add cap_drop command container_name depends_on dns entrypoint env_file environment expose extra_hosts healthcheck hostname image init " +
  "labels network_mode networks ports privileged pull_policy read_only restart security_opt stdin_open stop_grace_period stop_signal tmpfs tty user volumes working_dir").split(" "));

const TOP_KEYS = new Set(["version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

/** Docker Compose's project name normalization: lowercase, only [a-z0-9_-], starting with a letter or digit. */
export function normalizeProjectName(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9_-]/g, "").replace(/^[_-]+/, "");
}

/** Splits a command string into words as a POSIX shell would (quotes and backslashes; no expansion). */
export function shellSplit(s: string): string[] {
  const out: string[] = [];
  let cur = "", inWord = false, q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = undefined;
      else if (c === "\\" && q === '"' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') { q = c; inWord = true; }
    else if (c === "\\" && i + 1 < s.length) { cur += s[++i]; inWord = true; }
    else if (/\s/.test(c)) { if (inWord) out.push(cur); cur = ""; inWord = false; }
    else { cur += c; inWord = true; }
  }
  if (q) throw new ComposeError(`unterminated quote in "${s}"`);
  if (inWord) out.push(cur);
  return out;
}

// ---------- merge (raw documents) ----------

/** list-or-map ("K=V" list, or map) → map; used for environment, labels, build args. */
function toMap(v: unknown, where: string, sep = "="): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (isObj(v)) return { ...v };
  if (Array.isArray(v)) {
    const out: Record<string, unknown> = {};
    for (const x of v) {
      if (typeof x !== "string") throw new ComposeError(`${where} must be a list of strings or a mapping`);
      const i = x.indexOf(sep);
      out[i < 0 ? x : x.slice(0, i)] = i < 0 ? null : x.slice(i + 1);
    }
    return out;
  }
  throw new ComposeError(`${where} must be a mapping or a list`);
}

function namesToMap(v: unknown, where: string): Record<string, unknown> {
  if (Array.isArray(v)) return Object.fromEntries(v.map((x) => { if (typeof x !== "string") throw new ComposeError(`${where} must be a list of strings or a mapping`); return [x, null]; }));
  if (isObj(v)) return { ...v };
  if (v === undefined || v === null) return {};
  throw new ComposeError(`${where} must be a mapping or a list`);
}

function mergeService(a: Obj, b: Obj, where: string): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const old = out[k];
    if (old === undefined) { out[k] = v; continue; }
    switch (k) {
      case "environment": case "labels": case "annotations": case "sysctls":
        out[k] = { ...toMap(old, `${where}.${k}`), ...toMap(v, `${where}.${k}`) }; break;
      case "depends_on": case "networks":
        out[k] = { ...namesToMap(old, `${where}.${k}`), ...namesToMap(v, `${where}.${k}`) }; break;
      case "build": {
        const ao = typeof old === "string" ? { context: old } : old, bo = typeof v === "string" ? { context: v } : v;
        if (isObj(ao) && isObj(bo)) {
          out[k] = { ...ao, ...bo, ...(ao.args || bo.args ? { args: { ...toMap(ao.args, `${where}.build.args`), ...toMap(bo.args, `${where}.build.args`) } } : {}) };
        } else out[k] = v;
        break;
      }
      case "ports": case "expose": case "dns": case "cap_add": case "cap_drop": case "security_opt": case "extra_hosts": case "tmpfs": case "env_file": {
        const al = Array.isArray(old) ? old : [old], bl = Array.isArray(v) ? v : [v];
        const seen = new Set(al.map((x) => JSON.stringify(x)));
        out[k] = [...al, ...bl.filter((x) => !seen.has(JSON.stringify(x)))];
        break;
      }
      case "volumes": {
        // Merged by target path: a later mount of the same path replaces the earlier one.
        if (!Array.isArray(old) || !Array.isArray(v)) { out[k] = v; break; }
        const target = (x: unknown) => (typeof x === "string" ? parseVolumeShort(x, where).target : isObj(x) ? String(x.target) : "");
        const targets = new Set(v.map(target));
        out[k] = [...old.filter((x) => !targets.has(target(x))), ...v];
        break;
      }
      default:
        out[k] = isObj(old) && isObj(v) ? deepMerge(old, v) : v;
    }
  }
  return out;
}

function deepMerge(a: Obj, b: Obj): Obj {
  const out: Obj = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isObj(out[k]) && isObj(v) ? deepMerge(out[k] as Obj, v) : v;
  return out;
}

/** Merges raw (interpolated) compose documents; later ones override earlier ones. */
export function mergeDocuments(docs: Obj[]): Obj {
  const out: Obj = {};
  for (const d of docs) {
    for (const [k, v] of Object.entries(d)) {
      if (k === "services" && isObj(v)) {
        const svcs = { ...((out.services as Obj) ?? {}) };
        for (const [name, s] of Object.entries(v)) {
          const prev = svcs[name];
          svcs[name] = isObj(prev) && isObj(s) ? mergeService(prev, s, `services.${name}`) : s;
        }
        out.services = svcs;
      } else out[k] = isObj(out[k]) && isObj(v) ? deepMerge(out[k] as Obj, v) : v;
    }
  }
  return out;
}

// ---------- normalize ----------

class Checker {
  constructor(readonly where: string) {}
  str(v: unknown, key: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number") return String(v);
    throw new ComposeError(`${this.where}.${key} must be a string`);
  }
  bool(v: unknown, key: string): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "boolean") return v;
    if (v === "true" || v === "false") return v === "true";
    throw new ComposeError(`${this.where}.${key} must be a boolean`);
  }
  strList(v: unknown, key: string): string[] {
    if (v === undefined || v === null) return [];
    if (typeof v === "string") return [v];
    if (!Array.isArray(v)) throw new ComposeError(`${this.where}.${key} must be a list`);
    return v.map((x, i) => {
      if (typeof x === "string" || typeof x === "number") return String(x);
      throw new ComposeError(`${this.where}.${key}[${i}] must be a string`);
    });
  }
  command(v: unknown, key: string): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v === "string") return shellSplit(v);
    if (Array.isArray(v)) return this.strList(v, key);
    throw new ComposeError(`${this.where}.${key} must be a string or a list`);
  }
  strMap(v: unknown, key: string, env?: Env): Record<string, string> {
    const m = toMap(v, `${this.where}.${key}`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(m)) {
      if (x === null || x === undefined) { if (env?.[k] !== undefined) out[k] = env[k]!; else if (!env) out[k] = ""; continue; }
      if (typeof x === "object") throw new ComposeError(`${this.where}.${key}.${k} must be a string, number or boolean`);
      out[k] = String(x);
    }
    return out;
  }
}

/** "[host_ip:][published:]target[/protocol]" */
export function parsePortShort(spec: string, where: string): PortConfig[] {
  const slash = spec.lastIndexOf("/");
  const protocol = slash >= 0 ? spec.slice(slash + 1) : "tcp";
  const rest = slash >= 0 ? spec.slice(0, slash) : spec;
  let host_ip: string | undefined, published: string | undefined, target: string;
  const v6 = /^\[([0-9a-fA-F:.]+)\]:([\d-]*):([\d-]+)$/.exec(rest);
  if (v6) [, host_ip, published, target] = v6;
  else {
    const parts = rest.split(":");
    if (parts.length > 3) throw new ComposeError(`${where}: invalid port "${spec}"`);
    target = parts.pop()!;
    published = parts.pop();
    host_ip = parts.pop();
  }
  if (!["tcp", "udp", "sctp"].includes(protocol)) throw new ComposeError(`${where}: invalid protocol "${protocol}" in "${spec}"`);
  const tm = /^(\d+)(?:-(\d+))?$/.exec(target);
  if (!tm) throw new ComposeError(`${where}: invalid port "${spec}"`);
  if (published !== undefined && published !== "" && !/^\d+(-\d+)?$/.test(published)) throw new ComposeError(`${where}: invalid published port in "${spec}"`);
  const t0 = Number(tm[1]), t1 = tm[2] ? Number(tm[2]) : t0;
  const out: PortConfig[] = [];
  const pm = published ? /^(\d+)(?:-(\d+))?$/.exec(published)! : undefined;
  for (let p = t0; p <= t1; p++) {
    let pub: string | undefined = published || undefined;
    if (pm && t1 > t0) pub = pm[2] ? String(Number(pm[1]) + (p - t0)) : published;
    out.push({ target: p, ...(pub ? { published: pub } : {}), ...(host_ip ? { host_ip } : {}), protocol });
  }
  return out;
}

/** "[source:]target[:mode]" */
export function parseVolumeShort(spec: string, where: string): MountConfig {
  const parts = spec.split(":");
  let source: string | undefined, target: string, mode = "";
  if (parts.length === 1) target = parts[0];
  else if (parts.length === 2) {
    if (parts[1].startsWith("/")) [source, target] = parts;
    else [target, mode] = parts;
  } else if (parts.length === 3) [source, target, mode] = parts;
  else throw new ComposeError(`${where}: invalid volume specification "${spec}"`);
  if (!target) throw new ComposeError(`${where}: invalid volume specification "${spec}"`);
  const opts = mode.split(",").filter(Boolean);
  for (const o of opts) if (!/^(ro|rw|z|Z|nocopy|shared|rshared|slave|rslave|private|rprivate|cached|delegated|consistent)$/.test(o)) throw new ComposeError(`${where}: invalid mode "${o}" in volume "${spec}"`);
  const read_only = opts.includes("ro");
  if (source === undefined) return { type: "volume", target, read_only };
  const isPath = source.startsWith(".") || source.startsWith("/") || source.startsWith("~");
  return { type: isPath ? "bind" : "volume", source, target, read_only };
}

function normalizeService(name: string, raw: unknown, dir: string, env: Env, warnings: string[]): Service {
  const where = `services.${name}`;
  if (!isObj(raw)) throw new ComposeError(`${where} must be a mapping`);
  for (const k of Object.keys(raw)) {
    if (k.startsWith("x-")) continue;
    if (!SERVICE_KEYS.has(k)) throw new ComposeError(`${where} additional property ${k} is not allowed`);
    if (!SUPPORTED.has(k)) warnings.push(`${where}.${k} is not supported by berth and is ignored`);
  }
  const c = new Checker(where);
  const s: Service = {
    name,
    environment: {}, ports: [], volumes: [], networks: {}, depends_on: {}, labels: {}, tmpfs: [], expose: [], cap_add: [], cap_drop: [], security_opt: [], extra_hosts: [], dns: [],
  };
  s.image = c.str(raw.image, "image");
  if (raw.build !== undefined) {
    const b = typeof raw.build === "string" ? { context: raw.build } : raw.build;
    if (!isObj(b)) throw new ComposeError(`${where}.build must be a string or a mapping`);
    for (const k of Object.keys(b)) if (!["context", "dockerfile", "args", "target", "labels", "cache_from", "network", "no_cache", "pull", "tags", "platforms", "dockerfile_inline", "shm_size", "extra_hosts", "ssh", "secrets"].includes(k) && !k.startsWith("x-")) throw new ComposeError(`${where}.build additional property ${k} is not allowed`);
    const bc = new Checker(`${where}.build`);
    s.build = { context: resolve(dir, bc.str(b.context, "context") ?? "."), dockerfile: bc.str(b.dockerfile, "dockerfile") ?? "Dockerfile", args: bc.strMap(b.args, "args", env) };
    const target = bc.str(b.target, "target");
    if (target) s.build.target = target;
  }
  if (!s.image && !s.build) throw new ComposeError(`service "${name}" has neither an image nor a build context specified`);
  s.command = c.command(raw.command, "command");
  s.entrypoint = c.command(raw.entrypoint, "entrypoint");
  for (const f of c.strList(raw.env_file, "env_file")) {
    const p = resolve(dir, f);
    let text: string;
    try { text = readFileSync(p, "utf8"); } catch { throw new ComposeError(`${where}.env_file: ${p} not found`); }
    Object.assign(s.environment, parseDotEnv(text));
  }
  Object.assign(s.environment, c.strMap(raw.environment, "environment", env));
  if (raw.ports !== undefined) {
    if (!Array.isArray(raw.ports)) throw new ComposeError(`${where}.ports must be a list`);
    raw.ports.forEach((p, i) => {
      const w = `${where}.ports[${i}]`;
      if (typeof p === "number") s.ports.push({ target: p, protocol: "tcp" });
      else if (typeof p === "string") s.ports.push(...parsePortShort(p, w));
      else if (isObj(p)) {
        for (const k of Object.keys(p)) if (!["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"].includes(k)) throw new ComposeError(`${w} additional property ${k} is not allowed`);
        const target = Number(p.target);
        if (!Number.isInteger(target) || target < 1 || target > 65535) throw new ComposeError(`${w}.target must be a port number`);
        const pc = new Checker(w);
        const published = pc.str(p.published, "published"), host_ip = pc.str(p.host_ip, "host_ip");
        s.ports.push({ target, ...(published ? { published } : {}), ...(host_ip ? { host_ip } : {}), protocol: pc.str(p.protocol, "protocol") ?? "tcp" });
      } else throw new ComposeError(`${w} must be a string, number or mapping`);
    });
  }
  if (raw.volumes !== undefined) {
    if (!Array.isArray(raw.volumes)) throw new ComposeError(`${where}.volumes must be a list`);
    raw.volumes.forEach((v, i) => {
      const w = `${where}.volumes[${i}]`;
      let m: MountConfig;
      if (typeof v === "string") m = parseVolumeShort(v, w);
      else if (isObj(v)) {
        for (const k of Object.keys(v)) if (!["type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"].includes(k)) throw new ComposeError(`${w} additional property ${k} is not allowed`);
        const vc = new Checker(w);
        const type = vc.str(v.type, "type");
        if (type !== "volume" && type !== "bind" && type !== "tmpfs") throw new ComposeError(`${w}.type must be one of volume, bind, tmpfs`);
        const target = vc.str(v.target, "target");
        if (!target) throw new ComposeError(`${w}.target is required`);
        const source = vc.str(v.source, "source");
        m = { type, target, read_only: vc.bool(v.read_only, "read_only") ?? false, ...(source ? { source } : {}) };
        if (type === "bind" && !source) throw new ComposeError(`${w}.source is required for a bind mount`);
      } else throw new ComposeError(`${w} must be a string or a mapping`);
      if (m.type === "bind") m.source = resolve(dir, m.source!.replace(/^~(?=\/|$)/, env.HOME ?? "~"));
      s.volumes.push(m);
    });
  }
  const nets = raw.networks;
  if (nets !== undefined) {
    for (const [n, cfg] of Object.entries(namesToMap(nets, `${where}.networks`))) {
      if (cfg !== null && !isObj(cfg)) throw new ComposeError(`${where}.networks.${n} must be a mapping`);
      const nc = new Checker(`${where}.networks.${n}`);
      const ip = cfg ? nc.str(cfg.ipv4_address, "ipv4_address") : undefined;
      s.networks[n] = { aliases: cfg ? nc.strList(cfg.aliases, "aliases") : [], ...(ip ? { ipv4_address: ip } : {}) };
    }
  }
  for (const [d, cfg] of Object.entries(namesToMap(raw.depends_on, `${where}.depends_on`))) {
    if (cfg !== null && !isObj(cfg)) throw new ComposeError(`${where}.depends_on.${d} must be a mapping`);
    const condition = (cfg && new Checker(`${where}.depends_on.${d}`).str(cfg.condition, "condition")) || "service_started";
    if (!["service_started", "service_healthy", "service_completed_successfully"].includes(condition)) throw new ComposeError(`${where}.depends_on.${d}.condition must be one of service_started, service_healthy, service_completed_successfully`);
    s.depends_on[d] = { condition, required: cfg?.required !== false };
  }
  s.restart = c.str(raw.restart, "restart");
  if (s.restart && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(s.restart)) throw new ComposeError(`${where}.restart: invalid restart policy "${s.restart}"`);
  s.working_dir = c.str(raw.working_dir, "working_dir");
  s.user = c.str(raw.user, "user");
  s.labels = c.strMap(raw.labels, "labels");
  s.hostname = c.str(raw.hostname, "hostname");
  s.container_name = c.str(raw.container_name, "container_name");
  s.tmpfs = c.strList(raw.tmpfs, "tmpfs");
  s.read_only = c.bool(raw.read_only, "read_only");
  s.init = c.bool(raw.init, "init");
  s.stop_signal = c.str(raw.stop_signal, "stop_signal");
  if (raw.healthcheck !== undefined) {
    const h = raw.healthcheck as Obj;
    if (typeof h !== "object" || h === null || Array.isArray(h)) throw new ComposeError(`services.${name}.healthcheck must be a mapping`);
    const dur = (k: string): number | undefined => {
      if (h[k] === undefined) return undefined;
      try { return parseGoDuration(String(h[k])); } catch (e) { throw new ComposeError(`services.${name}.healthcheck.${k}: ${(e as Error).message}`); }
    };
    const test = h.disable === true ? ["NONE"] : typeof h.test === "string" ? ["CMD-SHELL", h.test] : Array.isArray(h.test) ? h.test.map(String) : [];
    s.healthcheck = { Test: test, Interval: dur("interval"), Timeout: dur("timeout"), StartPeriod: dur("start_period"), Retries: h.retries === undefined ? undefined : Number(h.retries) };
  }
  s.stop_grace_period = c.str(raw.stop_grace_period, "stop_grace_period");
  s.expose = c.strList(raw.expose, "expose");
  s.privileged = c.bool(raw.privileged, "privileged");
  s.cap_add = c.strList(raw.cap_add, "cap_add");
  s.security_opt = c.strList(raw.security_opt, "security_opt");
  s.cap_drop = c.strList(raw.cap_drop, "cap_drop");
  s.extra_hosts = Array.isArray(raw.extra_hosts) || raw.extra_hosts === undefined ? c.strList(raw.extra_hosts, "extra_hosts") : Object.entries(c.strMap(raw.extra_hosts, "extra_hosts")).map(([h, ip]) => `${h}:${ip}`);
  s.dns = c.strList(raw.dns, "dns");
  s.tty = c.bool(raw.tty, "tty");
  s.stdin_open = c.bool(raw.stdin_open, "stdin_open");
  s.network_mode = c.str(raw.network_mode, "network_mode");
  s.pull_policy = c.str(raw.pull_policy, "pull_policy");
  if (s.network_mode && nets !== undefined) throw new ComposeError(`${where}: network_mode and networks cannot be combined`);
  // Drop undefined optionals so `config` prints only what is set.
  for (const k of Object.keys(s) as (keyof Service)[]) if (s[k] === undefined) delete s[k];
  return s;
}

/** Order services so each comes after what it depends on; throws on cycles and unknown dependencies. */
export function dependencyOrder(services: Record<string, Service>): string[] {
  const out: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (n: string, chain: string[]) => {
    if (state.get(n) === "done") return;
    if (state.get(n) === "visiting") throw new ComposeError(`dependency cycle detected: ${[...chain, n].join(" -> ")}`);
    state.set(n, "visiting");
    for (const d of Object.keys(services[n].depends_on)) {
      if (!services[d]) throw new ComposeError(`service "${n}" depends on undefined service "${d}"`);
      visit(d, [...chain, n]);
    }
    state.set(n, "done");
    out.push(n);
  };
  for (const n of Object.keys(services).sort()) visit(n, []);
  return out;
}

/** Normalizes a merged raw model. `env` is the interpolation environment (process env over .env). */
export function normalizeProject(raw: Obj, o: { name: string; workingDir: string; configFiles: string[]; env: Env }): Project {
  const warnings: string[] = [];
  for (const k of Object.keys(raw)) {
    if (k.startsWith("x-")) continue;
    if (!TOP_KEYS.has(k)) throw new ComposeError(`additional property ${k} is not allowed`);
    if (k === "version") warnings.push("the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion");
    else if (k !== "name" && k !== "services" && k !== "networks" && k !== "volumes") warnings.push(`top-level ${k} is not supported by berth and is ignored`);
  }
  if (raw.services !== undefined && !isObj(raw.services)) throw new ComposeError("services must be a mapping");
  const services: Record<string, Service> = {};
  for (const [n, s] of Object.entries((raw.services as Obj | undefined) ?? {})) {
    if (!/^[a-zA-Z0-9._-]+$/.test(n)) throw new ComposeError(`services: invalid service name "${n}"`);
    services[n] = normalizeService(n, s, o.workingDir, o.env, warnings);
  }
  const networks: Record<string, NetworkConfig> = {};
  const rawNets = raw.networks ?? {};
  if (!isObj(rawNets)) throw new ComposeError("networks must be a mapping");
  for (const [n, cfg] of Object.entries(rawNets)) {
    if (cfg !== null && !isObj(cfg)) throw new ComposeError(`networks.${n} must be a mapping`);
    const c = new Checker(`networks.${n}`);
    for (const k of Object.keys(cfg ?? {})) if (!["name", "driver", "driver_opts", "internal", "external", "labels", "attachable", "ipam", "enable_ipv6"].includes(k) && !k.startsWith("x-")) throw new ComposeError(`networks.${n} additional property ${k} is not allowed`);
    const external = cfg ? (isObj(cfg.external) ? true : c.bool(cfg.external, "external") ?? false) : false;
    const extName = cfg && isObj(cfg.external) ? c.str(cfg.external.name, "external.name") : undefined;
    networks[n] = {
      name: (cfg && c.str(cfg.name, "name")) ?? extName ?? (external ? n : `${o.name}_${n}`),
      driver: (cfg && c.str(cfg.driver, "driver")) ?? "bridge", internal: (cfg && c.bool(cfg.internal, "internal")) ?? false, external,
      labels: cfg ? c.strMap(cfg.labels, "labels") : {},
    };
  }
  const volumes: Record<string, VolumeConfig> = {};
  const rawVols = raw.volumes ?? {};
  if (!isObj(rawVols)) throw new ComposeError("volumes must be a mapping");
  for (const [n, cfg] of Object.entries(rawVols)) {
    if (cfg !== null && !isObj(cfg)) throw new ComposeError(`volumes.${n} must be a mapping`);
    const c = new Checker(`volumes.${n}`);
    for (const k of Object.keys(cfg ?? {})) if (!["name", "driver", "driver_opts", "external", "labels"].includes(k) && !k.startsWith("x-")) throw new ComposeError(`volumes.${n} additional property ${k} is not allowed`);
    const external = cfg ? (isObj(cfg.external) ? true : c.bool(cfg.external, "external") ?? false) : false;
    volumes[n] = {
      name: (cfg && c.str(cfg.name, "name")) ?? (external ? n : `${o.name}_${n}`),
      driver: (cfg && c.str(cfg.driver, "driver")) ?? "local", external, labels: cfg ? c.strMap(cfg.labels, "labels") : {},
    };
  }
  // Cross references.
  const usesDefault = Object.values(services).some((s) => !s.network_mode && (Object.keys(s.networks).length === 0 || "default" in s.networks));
  if (usesDefault && !networks.default) networks.default = { name: `${o.name}_default`, driver: "bridge", internal: false, external: false, labels: {} };
  for (const s of Object.values(services)) {
    if (!s.network_mode && !Object.keys(s.networks).length) s.networks = { default: { aliases: [] } };
    for (const n of Object.keys(s.networks)) if (!networks[n]) throw new ComposeError(`service "${s.name}" refers to undefined network ${n}: invalid compose project`);
    for (const m of s.volumes) if (m.type === "volume" && m.source && !volumes[m.source]) throw new ComposeError(`service "${s.name}" refers to undefined volume ${m.source}: invalid compose project`);
  }
  dependencyOrder(services);
  return { name: o.name, workingDir: o.workingDir, configFiles: o.configFiles, services, networks, volumes, warnings };
}

/** Finds, reads, interpolates, merges and normalizes the project's compose files. */
export function loadProject(o: LoadOptions = {}): Project {
  const cwd = o.cwd ?? process.cwd();
  const penv: Env = o.env ?? process.env;
  let docs: { path: string; content: string }[];
  if (o.documents) docs = o.documents;
  else {
    let files = (o.files ?? []).map((f) => resolve(cwd, f));
    if (!files.length) {
      const found = DEFAULT_FILES.map((f) => join(cwd, f)).find((p) => existsSync(p));
      if (!found) throw new ComposeError(`no configuration file provided: not found`);
      files = [found];
    }
    docs = files.map((p) => {
      try { return { path: p, content: readFileSync(p, "utf8") }; } catch { throw new ComposeError(`open ${p}: no such file or directory`); }
    });
  }
  const workingDir = dirname(isAbsolute(docs[0].path) ? docs[0].path : resolve(cwd, docs[0].path));
  let dotenv: Record<string, string> = {};
  const envPath = join(workingDir, ".env");
  if (existsSync(envPath)) dotenv = parseDotEnv(readFileSync(envPath, "utf8"));
  const env: Env = { ...dotenv, ...penv };
  const parsed: Obj[] = docs.map((d) => {
    let y: unknown;
    try { y = yamlLib().parse(d.content, { merge: true }); } catch (e) { throw new ComposeError(`${d.path}: ${(e as Error).message}`); }
    if (y === null || y === undefined) y = {};
    if (!isObj(y)) throw new ComposeError(`${d.path}: top-level object must be a mapping`);
    try { return interpolateTree(y, env) as Obj; } catch (e) { if (e instanceof InterpolationError) throw new ComposeError(e.message); throw e; }
  });
  const merged = mergeDocuments(parsed);
  const explicit = o.projectName ?? penv.COMPOSE_PROJECT_NAME ?? (typeof merged.name === "string" ? merged.name : undefined);
  const name = normalizeProjectName(explicit ?? basename(workingDir));
  if (!name) throw new ComposeError(`project name must not be empty`);
  if (explicit !== undefined && explicit !== name && o.projectName !== undefined) {
    throw new ComposeError(`invalid project name "${explicit}": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number`);
  }
  return normalizeProject(merged, { name, workingDir, configFiles: docs.map((d) => resolve(cwd, d.path)), env });
}

/** The model as `docker compose config` prints it (plain data, ready for YAML). */
export function projectModel(p: Project): Obj {
  const services: Obj = {};
  for (const [n, s] of Object.entries(p.services).sort(([a], [b]) => a.localeCompare(b))) {
    const { name: _n, ...rest } = s;
    const o: Obj = {};
    for (const [k, v] of Object.entries(rest)) {
      if (Array.isArray(v) && !v.length) continue;
      if (isObj(v) && !Object.keys(v).length) continue;
      o[k] = v;
    }
    if (s.networks) o.networks = Object.fromEntries(Object.entries(s.networks).map(([k, v]) => [k, v.aliases.length || v.ipv4_address ? v : null]));
    services[n] = o;
  }
  const model: Obj = { name: p.name, services };
  if (Object.keys(p.networks).length) model.networks = Object.fromEntries(Object.entries(p.networks).map(([k, v]) => [k, { name: v.name, ...(v.driver !== "bridge" ? { driver: v.driver } : {}), ...(v.internal ? { internal: true } : {}), ...(v.external ? { external: true } : {}) }]));
  if (Object.keys(p.volumes).length) model.volumes = Object.fromEntries(Object.entries(p.volumes).map(([k, v]) => [k, { name: v.name, ...(v.external ? { external: true } : {}) }]));
  return model;
}
