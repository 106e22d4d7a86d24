/**
 * The Compose Specification loader: finds the compose file(s) (-f, COMPOSE_FILE, or compose.yaml and its
 * compose.override.yaml in the working directory or a parent), reads the env files (`.env`, --env-file,
 * COMPOSE_ENV_FILES) as compose-go's dotenv does, parses YAML with the merge tags `!reset`/`!override`,
 * interpolates, resolves `include` and `extends`, merges the files (merge.ts: 13-merge.md) and validates the
 * result of each merge against the Compose Specification's JSON Schema (schema/: bundled as an object, walked
 * by a small validator), drops the services of inactive profiles, then normalizes into a `Project` whose
 * services carry only canonical forms (lists of ports and mounts, maps of environment and labels...) and
 * checks its consistency.
 *
 * Pure: no daemon. Errors are `ComposeError`; schema errors name the path as compose-go does
 * ("validating /p/compose.yaml: services.web.ports.0 must be a number, string or mapping").
 *
 * Model fields beyond the container basics (for the orchestrator; compose-go's shapes):
 * - Service.profiles: string[] (the service's profiles; inactive services are not in Project.services);
 * - Service.scale?: number (`scale`, else `deploy.replicas`); Service.deploy?: the deploy mapping as written
 *   (deploy.replicas a number); only replicas is applied, other deploy keys are warned about;
 * - Service.secrets / Service.configs: { source, target?, uid?, gid?, mode? }[] (short form expanded);
 * - Service.develop?: { watch: { path (absolute), action, target?, ignore: string[], include: string[] }[] };
 * - Project.secrets / Project.configs: name → { name, file? (absolute), environment?, content?, external };
 * - Project.environment: the interpolation environment (OS env over the env files), for `environment` sources;
 * - Project.profiles: every profile named by a service; Project.activeProfiles: those enabled;
 * - Project.disabledServices: services left out by profiles (normalized too, for `up <service>`).
 * LoadOptions beyond files/projectName/cwd/env: projectDirectory (--project-directory), envFiles (--env-file),
 * profiles (--profile), stdin (what `-f -` reads), enableServices (services named on the command line run
 * whatever their profiles, with their dependencies, as compose-go's WithServicesEnabled).
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import * as YAML from "yaml";
import { interpolateTree, InterpolationError, TAG_PREFIX, type Env } from "./interpolate.js";
import { parseDotEnv, readEnvFiles, DotEnvError } from "./dotenv.js";
import { mergeYaml, finalize, mergeModels, listOrDict, isObj, RESET, Override, type Obj } from "./merge.js";
import { schemaError } from "./schema/validate.js";
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
  /** restart: true (only when set) restarts this service when the dependency is restarted or recreated. */
  depends_on: Record<string, { condition: string; required: boolean; restart?: boolean }>;
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
  /** The service's profiles (empty: always enabled). */
  profiles: string[];
  /** `scale`, else `deploy.replicas` (absent: 1). */
  scale?: number;
  /** The deploy mapping as written (replicas a number); berth applies replicas only. */
  deploy?: Record<string, unknown>;
  secrets: FileObjectRef[];
  configs: FileObjectRef[];
  develop?: { watch: WatchRule[] };
}

export interface FileObjectRef { source: string; target?: string; uid?: string; gid?: string; mode?: number }
export interface FileObjectDef { name: string; file?: string; environment?: string; content?: string; external: boolean; labels: Record<string, string> }
export interface WatchRule { path: string; action: "rebuild" | "sync" | "restart" | "sync+restart" | "sync+exec"; target?: string; ignore: string[]; include: string[]; exec?: Record<string, unknown> }

export interface NetworkConfig { name: string; driver: string; internal: boolean; external: boolean; labels: Record<string, string> }
export interface VolumeConfig { name: string; driver: string; external: boolean; labels: Record<string, string> }

export interface Project {
  name: string;
  workingDir: string;
  configFiles: string[];
  services: Record<string, Service>;
  networks: Record<string, NetworkConfig>;
  volumes: Record<string, VolumeConfig>;
  secrets?: Record<string, FileObjectDef>;
  configs?: Record<string, FileObjectDef>;
  /** The interpolation environment: the OS environment over the env files. */
  environment?: Env;
  /** Every profile a service names (sorted), and the active ones. */
  profiles?: string[];
  activeProfiles?: string[];
  /** Services of inactive profiles. */
  disabledServices?: Record<string, Service>;
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
  /** --project-directory (default: the first file's directory). */
  projectDirectory?: string;
  /** --env-file files (default: COMPOSE_ENV_FILES, else <project directory>/.env). */
  envFiles?: string[];
  /** --profile (default: COMPOSE_PROFILES). "*" enables every profile. */
  profiles?: string[];
  /** What `-f -` reads (default: standard input). */
  stdin?: string;
  /** Services named on the command line: enabled whatever their profiles, with their dependencies. */
  enableServices?: string[];
}

/** Service keys berth maps onto the container (or the orchestrator applies); other valid keys are accepted with a warning. */
const SUPPORTED = new Set(("build cap_add cap_drop command configs container_name depends_on deploy develop dns entrypoint env_file environment expose extends extra_hosts healthcheck hostname image init " +
  "label_file labels network_mode networks ports privileged profiles pull_policy read_only restart scale secrets security_opt stdin_open stop_grace_period stop_signal tmpfs tty user volumes working_dir").split(" "));

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
  if (isObj(v) || Array.isArray(v)) {
    if (Array.isArray(v) && v.some((x) => typeof x !== "string" && typeof x !== "number")) throw new ComposeError(`${where} must be a list of strings or a mapping`);
    return listOrDict(v, sep);
  }
  throw new ComposeError(`${where} must be a mapping or a list`);
}

function namesToMap(v: unknown, where: string): Record<string, unknown> {
  if (Array.isArray(v)) return Object.fromEntries(v.map((x) => { if (typeof x !== "string") throw new ComposeError(`${where} must be a list of strings or a mapping`); return [x, null]; }));
  if (isObj(v)) return { ...v };
  if (v === undefined || v === null) return {};
  throw new ComposeError(`${where} must be a mapping or a list`);
}

/** Merges raw (interpolated) compose documents; later ones override earlier ones (merge.ts), tags applied. */
export function mergeDocuments(docs: Obj[]): Obj {
  return finalize(mergeModels(docs)) as Obj;
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

/** env_file: a path, or a list of paths and { path, required, format } (required by default). */
function envFileEntries(v: unknown, where: string): { path: string; required: boolean; format?: string }[] {
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x, i) => {
    if (typeof x === "string") return { path: x, required: true };
    if (isObj(x) && typeof x.path === "string") {
      const required = x.required === undefined ? true : x.required === true || x.required === "true";
      return { path: x.path, required, ...(typeof x.format === "string" ? { format: x.format } : {}) };
    }
    throw new ComposeError(`${where}.env_file[${i}] must be a string or a mapping with a path`);
  });
}

function intOf(v: unknown, where: string): number {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 0) throw new ComposeError(`${where} must be a non-negative integer`);
  return n;
}

/** A service's secrets/configs: names or { source, target, uid, gid, mode } (mode as a number: 0440, or "0440" octal). */
function fileObjectRefs(v: unknown, where: string): FileObjectRef[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ComposeError(`${where} must be a list`);
  return v.map((x, i) => {
    if (typeof x === "string") return { source: x };
    if (!isObj(x) || typeof x.source !== "string") throw new ComposeError(`${where}[${i}] must be a name or a mapping with a source`);
    const r: FileObjectRef = { source: x.source };
    if (x.target !== undefined && x.target !== null) r.target = String(x.target);
    if (x.uid !== undefined && x.uid !== null) r.uid = String(x.uid);
    if (x.gid !== undefined && x.gid !== null) r.gid = String(x.gid);
    if (x.mode !== undefined && x.mode !== null) {
      const m = typeof x.mode === "number" ? x.mode : parseInt(String(x.mode), 8);
      if (!Number.isInteger(m)) throw new ComposeError(`${where}[${i}].mode must be a file mode`);
      r.mode = m;
    }
    return r;
  });
}

function normalizeService(name: string, raw: unknown, dir: string, env: Env, warnings: string[]): Service {
  const where = `services.${name}`;
  if (!isObj(raw)) throw new ComposeError(`${where} must be a mapping`);
  for (const k of Object.keys(raw)) {
    if (k.startsWith("x-")) continue;
    if (!SUPPORTED.has(k)) warnings.push(`${where}.${k} is not supported by berth and is ignored`);
  }
  const c = new Checker(where);
  const s: Service = {
    name,
    environment: {}, ports: [], volumes: [], networks: {}, depends_on: {}, labels: {}, tmpfs: [], expose: [], cap_add: [], cap_drop: [], security_opt: [], extra_hosts: [], dns: [],
    profiles: [], secrets: [], configs: [],
  };
  s.image = c.str(raw.image, "image");
  if (raw.build !== undefined) {
    const b = typeof raw.build === "string" ? { context: raw.build } : raw.build;
    if (!isObj(b)) throw new ComposeError(`${where}.build must be a string or a mapping`);
    for (const k of Object.keys(b)) if (!["context", "dockerfile", "args", "target"].includes(k) && !k.startsWith("x-")) warnings.push(`${where}.build.${k} is not supported by berth and is ignored`);
    const bc = new Checker(`${where}.build`);
    const ctxPath = bc.str(b.context, "context") ?? ".";
    // A remote context (git URL, https://…) is kept as written.
    s.build = { context: /^([a-z][a-z0-9+.-]*:\/\/|git@)/i.test(ctxPath) ? ctxPath : resolve(dir, ctxPath), dockerfile: bc.str(b.dockerfile, "dockerfile") ?? "Dockerfile", args: bc.strMap(b.args, "args", env) };
    const target = bc.str(b.target, "target");
    if (target) s.build.target = target;
  }
  if (!s.image && !s.build) throw new ComposeError(`service "${name}" has neither an image nor a build context specified: invalid compose project`);
  s.command = c.command(raw.command, "command");
  s.entrypoint = c.command(raw.entrypoint, "entrypoint");
  for (const f of envFileEntries(raw.env_file, where)) {
    const p = resolve(dir, f.path);
    if (!existsSync(p)) {
      if (!f.required) continue;
      throw new ComposeError(`env file ${p} not found: stat ${p}: no such file or directory`);
    }
    const text = readFileSync(p, "utf8");
    if (f.format === "raw") {
      for (const line of text.split(/\r?\n/)) {
        if (!line.trim() || line.trimStart().startsWith("#")) continue;
        const i = line.indexOf("=");
        if (i < 0) { if (env[line.trim()] !== undefined) s.environment[line.trim()] = env[line.trim()]!; } else s.environment[line.slice(0, i)] = line.slice(i + 1);
      }
      continue;
    }
    if (f.format !== undefined) throw new ComposeError(`unsupported env_file format ${f.format}`);
    try { Object.assign(s.environment, parseDotEnv(text, (k) => env[k])); } catch (e) {
      if (e instanceof DotEnvError) throw new ComposeError(`failed to read ${p}: ${e.message}`);
      throw e;
    }
  }
  Object.assign(s.environment, c.strMap(raw.environment, "environment", env));
  if (raw.ports !== undefined) {
    if (!Array.isArray(raw.ports)) throw new ComposeError(`${where}.ports must be a list`);
    raw.ports.forEach((p, i) => {
      const w = `${where}.ports[${i}]`;
      if (typeof p === "number") s.ports.push({ target: p, protocol: "tcp" });
      else if (typeof p === "string") s.ports.push(...parsePortShort(p, w));
      else if (isObj(p)) {
        for (const k of Object.keys(p)) if (!["target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"].includes(k) && !k.startsWith("x-")) throw new ComposeError(`${w} additional property ${k} is not allowed`);
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
        for (const k of Object.keys(v)) {
          if (["type", "source", "target", "read_only"].includes(k) || k.startsWith("x-")) continue;
          // A bind's host path is created when missing (as docker's -v does): create_host_path: true is what happens anyway.
          if (k === "bind" && isObj(v.bind) && Object.entries(v.bind).every(([bk, bv]) => bk === "create_host_path" && (bv === true || bv === "true"))) continue;
          warnings.push(`${w}.${k} is not supported by berth and is ignored`);
        }
        const vc = new Checker(w);
        const type = vc.str(v.type, "type");
        if (type !== "volume" && type !== "bind" && type !== "tmpfs") throw new ComposeError(`${w}: volume type ${type} is not supported by berth`);
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
    s.depends_on[d] = { condition, required: cfg?.required !== false && cfg?.required !== "false" };
    if (cfg && (cfg.restart === true || cfg.restart === "true")) s.depends_on[d].restart = true;
  }
  s.restart = c.str(raw.restart, "restart");
  if (s.restart && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(s.restart)) throw new ComposeError(`${where}.restart: invalid restart policy "${s.restart}"`);
  s.working_dir = c.str(raw.working_dir, "working_dir");
  s.user = c.str(raw.user, "user");
  // label_file: KEY=VALUE files (dotenv syntax) under the service's own labels.
  for (const f of c.strList(raw.label_file, "label_file")) {
    const p = resolve(dir, f);
    let text: string;
    try { text = readFileSync(p, "utf8"); } catch { throw new ComposeError(`failed to load label file ${p}: open ${p}: no such file or directory`); }
    try { Object.assign(s.labels, parseDotEnv(text, (k) => env[k])); } catch (e) {
      if (e instanceof DotEnvError) throw new ComposeError(`failed to read ${p}: ${e.message}`);
      throw e;
    }
  }
  Object.assign(s.labels, c.strMap(raw.labels, "labels"));
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
    if (h.start_interval !== undefined) warnings.push(`${where}.healthcheck.start_interval is not supported by berth and is ignored`);
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
  if (s.network_mode && nets !== undefined && nets !== null) throw new ComposeError(`service ${name} declares mutually exclusive \`network_mode\` and \`networks\`: invalid compose project`);
  s.profiles = c.strList(raw.profiles, "profiles");
  if (raw.scale !== undefined && raw.scale !== null) s.scale = intOf(raw.scale, `${where}.scale`);
  if (isObj(raw.deploy)) {
    const d: Obj = { ...raw.deploy };
    if (d.replicas !== undefined && d.replicas !== null) d.replicas = intOf(d.replicas, `${where}.deploy.replicas`);
    for (const k of Object.keys(d)) if (k !== "replicas" && !k.startsWith("x-")) warnings.push(`${where}.deploy.${k} is not supported by berth and is ignored`);
    s.deploy = d;
    if (s.scale === undefined && typeof d.replicas === "number") s.scale = d.replicas;
    else if (s.scale !== undefined && typeof d.replicas === "number" && d.replicas !== s.scale) throw new ComposeError(`services.${name}: can't set distinct values on 'scale' and 'deploy.replicas': invalid compose project`);
  }
  if (s.healthcheck && s.healthcheck.Test.length && !["CMD", "CMD-SHELL", "NONE"].includes(s.healthcheck.Test[0])) throw new ComposeError('healthcheck.test must start either by "CMD", "CMD-SHELL" or "NONE"');
  if ((s.scale ?? 1) > 1 && s.container_name) throw new ComposeError(`services.${name}: can't set container_name and ${raw.scale !== undefined ? "scale" : "deploy.replicas"} as container name must be unique: invalid compose project`);
  s.secrets = fileObjectRefs(raw.secrets, `${where}.secrets`);
  s.configs = fileObjectRefs(raw.configs, `${where}.configs`);
  if (isObj(raw.develop) && Array.isArray(raw.develop.watch)) {
    s.develop = {
      watch: raw.develop.watch.map((r: Obj, i: number) => {
        const wc = new Checker(`${where}.develop.watch[${i}]`);
        const rule: WatchRule = { path: resolve(dir, wc.str(r.path, "path") ?? "."), action: wc.str(r.action, "action") as WatchRule["action"], ignore: wc.strList(r.ignore, "ignore"), include: wc.strList(r.include, "include") };
        const target = wc.str(r.target, "target");
        if (target) rule.target = target;
        if (isObj(r.exec)) rule.exec = r.exec;
        if (rule.action !== "rebuild" && !target) throw new ComposeError(`services.${name}.develop.watch: target is required for non-rebuild actions: invalid compose project`);
        return rule;
      }),
    };
  }
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
      if (!services[d]) throw new ComposeError(`service "${n}" depends on undefined service "${d}": invalid compose project`);
      visit(d, [...chain, n]);
    }
    state.set(n, "done");
    out.push(n);
  };
  for (const n of Object.keys(services).sort()) visit(n, []);
  return out;
}

const TOP_KEYS = new Set(["version", "name", "services", "networks", "volumes", "configs", "secrets", "include", "models"]);

/** Compose's rule for a project name given explicitly (-p, COMPOSE_PROJECT_NAME, `name:`). */
export function checkProjectName(n: string): void {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(n)) throw new ComposeError(`invalid project name "${n}": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number`);
}

function fileObjectDefs(raw: unknown, kind: "secrets" | "configs", project: string, dir: string, warnings: string[]): Record<string, FileObjectDef> {
  const out: Record<string, FileObjectDef> = {};
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) throw new ComposeError(`${kind} must be a mapping`);
  for (const [n, cfg] of Object.entries(raw)) {
    const c = new Checker(`${kind}.${n}`);
    const d = isObj(cfg) ? cfg : {};
    const external = isObj(d.external) ? true : c.bool(d.external, "external") ?? false;
    const extName = isObj(d.external) ? c.str(d.external.name, "external.name") : undefined;
    const def: FileObjectDef = { name: c.str(d.name, "name") ?? extName ?? (external ? n : `${project}_${n}`), external, labels: c.strMap(d.labels, "labels") };
    const file = c.str(d.file, "file"), environment = c.str(d.environment, "environment"), content = c.str(d.content, "content");
    if (file !== undefined) def.file = resolve(dir, file);
    if (environment !== undefined) def.environment = environment;
    if (content !== undefined) def.content = content;
    // compose-go: a secret needs a file or an environment variable; a config may also hold its content.
    if (!external && kind === "secrets" && file === undefined && environment === undefined) throw new ComposeError(`secret ${JSON.stringify(n)} must declare either \`file\` or \`environment\`: invalid compose project`);
    if (!external && kind === "configs" && file === undefined && environment === undefined && content === undefined) throw new ComposeError(`config ${JSON.stringify(n)} must declare either \`file\`, \`environment\` or \`content\`: invalid compose project`);
    for (const k of Object.keys(d)) if (!["name", "file", "environment", "content", "external", "labels"].includes(k) && !k.startsWith("x-")) warnings.push(`${kind}.${n}.${k} is not supported by berth and is ignored`);
    out[n] = def;
  }
  return out;
}

/** Normalizes a merged raw model. `env` is the interpolation environment (process env over .env). */
export function normalizeProject(raw: Obj, o: { name: string; workingDir: string; configFiles: string[]; env: Env; profiles?: string[]; enableServices?: string[] }): Project {
  const warnings: string[] = [];
  for (const k of Object.keys(raw)) {
    if (k.startsWith("x-")) continue;
    if (!TOP_KEYS.has(k)) throw new ComposeError(`(root) additional properties '${k}' not allowed`);
    if (k === "version") warnings.push("the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion");
    else if (k === "models") warnings.push(`top-level ${k} is not supported by berth and is ignored`);
  }
  if (raw.services !== undefined && raw.services !== null && !isObj(raw.services)) throw new ComposeError("services must be a mapping");
  const active = new Set(o.profiles ?? []);
  const all = new Set<string>();
  const services: Record<string, Service> = {}, disabled: Record<string, Service> = {};
  const serviceWarnings = new Map<string, string>();
  for (const [n, s] of Object.entries((raw.services as Obj | undefined) ?? {})) {
    if (!/^[a-zA-Z0-9._-]+$/.test(n)) throw new ComposeError(`services: invalid service name "${n}"`);
    const svcWarnings: string[] = [];
    const svc = normalizeService(n, s, o.workingDir, o.env, svcWarnings);
    svc.profiles.forEach((p) => all.add(p));
    const on = !svc.profiles.length || active.has("*") || svc.profiles.some((p) => active.has(p));
    if (on) services[n] = svc; else disabled[n] = svc;
    svcWarnings.forEach((w) => serviceWarnings.set(w, n));
  }
  // Services named explicitly (`up debug`) run whatever their profiles, with what they depend on (compose-go's WithServicesEnabled).
  const enable = (n: string) => {
    const svc = disabled[n];
    if (!svc) return;
    services[n] = svc;
    delete disabled[n];
    for (const d of Object.keys(svc.depends_on)) enable(d);
  };
  for (const n of o.enableServices ?? []) enable(n);
  // A dependency that profiles left out: fine when not required, an error otherwise (as compose-go).
  for (const s of Object.values(services)) {
    for (const [d, dep] of Object.entries(s.depends_on)) {
      if (services[d] || !disabled[d]) continue;
      if (!dep.required) { delete s.depends_on[d]; continue; }
      throw new ComposeError(`service "${d}" was pulled in as a dependency of service "${s.name}" but is not enabled by the active profiles. You may fix this by adding a common profile to "${d}" and "${s.name}"`);
    }
  }
  const networks: Record<string, NetworkConfig> = {};
  const rawNets = raw.networks ?? {};
  if (!isObj(rawNets)) throw new ComposeError("networks must be a mapping");
  for (const [n, cfg] of Object.entries(rawNets)) {
    if (cfg !== null && !isObj(cfg)) throw new ComposeError(`networks.${n} must be a mapping`);
    const c = new Checker(`networks.${n}`);
    for (const k of Object.keys(cfg ?? {})) if (!["name", "driver", "internal", "external", "labels"].includes(k) && !k.startsWith("x-")) warnings.push(`networks.${n}.${k} is not supported by berth and is ignored`);
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
    for (const k of Object.keys(cfg ?? {})) if (!["name", "driver", "external", "labels"].includes(k) && !k.startsWith("x-")) warnings.push(`volumes.${n}.${k} is not supported by berth and is ignored`);
    const external = cfg ? (isObj(cfg.external) ? true : c.bool(cfg.external, "external") ?? false) : false;
    const extName = cfg && isObj(cfg.external) ? c.str(cfg.external.name, "external.name") : undefined;
    volumes[n] = {
      name: (cfg && c.str(cfg.name, "name")) ?? extName ?? (external ? n : `${o.name}_${n}`),
      driver: (cfg && c.str(cfg.driver, "driver")) ?? "local", external, labels: cfg ? c.strMap(cfg.labels, "labels") : {},
    };
  }
  const secrets = fileObjectDefs(raw.secrets, "secrets", o.name, o.workingDir, warnings);
  const configs = fileObjectDefs(raw.configs, "configs", o.name, o.workingDir, warnings);
  // Cross references (compose-go's consistency check).
  const usesDefault = Object.values(services).some((s) => !s.network_mode && (Object.keys(s.networks).length === 0 || "default" in s.networks));
  if (usesDefault && !networks.default) networks.default = { name: `${o.name}_default`, driver: "bridge", internal: false, external: false, labels: {} };
  for (const s of Object.values(services)) {
    if (!s.network_mode && !Object.keys(s.networks).length) s.networks = { default: { aliases: [] } };
    for (const n of Object.keys(s.networks)) if (!networks[n]) throw new ComposeError(`service "${s.name}" refers to undefined network ${n}: invalid compose project`);
    for (const m of s.volumes) if (m.type === "volume" && m.source && !volumes[m.source]) throw new ComposeError(`service "${s.name}" refers to undefined volume ${m.source}: invalid compose project`);
    for (const r of s.secrets) if (!secrets[r.source]) throw new ComposeError(`service "${s.name}" refers to undefined secret ${r.source}: invalid compose project`);
    for (const r of s.configs) if (!configs[r.source]) throw new ComposeError(`service "${s.name}" refers to undefined config ${r.source}: invalid compose project`);
  }
  dependencyOrder(services);
  // Each warning once; those of services left out by profiles are not said.
  for (const [w, n] of serviceWarnings) if (services[n]) warnings.push(w);
  const uniq = [...new Set(warnings)];
  return {
    name: o.name, workingDir: o.workingDir, configFiles: o.configFiles, services, networks, volumes, secrets, configs, environment: o.env,
    profiles: [...all].sort(), activeProfiles: [...active].sort(), disabledServices: disabled, warnings: uniq,
  };
}

// ---------- files ----------

const RESET_MARK = `${TAG_PREFIX}!reset`;
const OVERRIDE_KEY = `${TAG_PREFIX}!override`;

/** `0440` is an octal integer, as Go's yaml.v3 reads it (YAML 1.2's core schema would say 440): file modes are written so. */
const LEGACY_OCTAL: YAML.ScalarTag = { identify: (v) => typeof v === "number", default: true, tag: "tag:yaml.org,2002:int", test: /^0[0-7]+$/, resolve: (s) => parseInt(s, 8) };

/** Parses one YAML document; `!reset` and `!override` become merge.ts's markers (after interpolation: see markers()). */
function parseYaml(content: string, path: string): unknown[] {
  const docs = yamlLib().parseAllDocuments(content, { merge: true, uniqueKeys: true, customTags: (tags) => [LEGACY_OCTAL, ...tags] });
  if (!Array.isArray(docs)) return [];
  return docs.map((doc) => parseDoc(doc, path));
}

/** One document of a file (compose-go reads every `---` document of a file, merging each in turn). */
function parseDoc(doc: YAML.Document.Parsed, path: string): unknown {
  if (doc.errors.length) {
    // As compose-go (yaml.v3) says it: "failed to parse <file>: yaml: line N: <what>".
    const e = doc.errors[0];
    const what = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new ComposeError(`failed to parse ${path}: yaml: line ${e.linePos?.[0]?.line ?? "?"}: ${what}`);
  }
  YAML.visit(doc, {
    Node(_key, node) {
      if (!YAML.isNode(node) || !node.tag) return undefined;
      if (node.tag === "!reset") return new YAML.Scalar(RESET_MARK);
      if (node.tag === "!override") {
        node.tag = undefined;
        const m = new YAML.YAMLMap();
        m.add(new YAML.Pair(new YAML.Scalar(OVERRIDE_KEY), node));
        return m;
      }
      return undefined;
    },
  });
  return doc.toJS({ maxAliasCount: 10000 });
}

/** The sentinels parseYaml left → RESET / Override. */
function markers(v: unknown): unknown {
  if (v === RESET_MARK) return RESET;
  if (Array.isArray(v)) return v.map(markers);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === OVERRIDE_KEY) return new Override(markers((v as Obj)[OVERRIDE_KEY]));
    return Object.fromEntries(keys.map((k) => [k, markers((v as Obj)[k])]));
  }
  return v;
}

const isRelPath = (p: string) => !isAbsolute(p) && !/^[a-z][a-z0-9+.-]*:\/\//i.test(p) && !p.startsWith("~");

/** Makes a raw service's relative paths absolute against `dir` (for services from another file: extends, include). */
function rebaseService(svc: Obj, dir: string): Obj {
  const s: Obj = { ...svc };
  const abs = (p: unknown) => (typeof p === "string" && isRelPath(p) ? resolve(dir, p) : p);
  if (typeof s.build === "string") s.build = abs(s.build);
  else if (isObj(s.build)) s.build = { ...s.build, context: abs(s.build.context ?? ".") };
  if (s.env_file !== undefined && s.env_file !== null) s.env_file = (Array.isArray(s.env_file) ? s.env_file : [s.env_file]).map((f) => (isObj(f) ? { ...f, path: abs(f.path) } : abs(f)));
  if (Array.isArray(s.label_file)) s.label_file = s.label_file.map(abs);
  else if (typeof s.label_file === "string") s.label_file = abs(s.label_file);
  if (Array.isArray(s.volumes)) {
    s.volumes = s.volumes.map((v) => {
      if (typeof v === "string") {
        const parts = v.split(":");
        if (parts.length >= 2 && (parts[0].startsWith(".") || parts[0] === "")) { parts[0] = resolve(dir, parts[0]); return parts.join(":"); }
        return v;
      }
      if (isObj(v) && v.type === "bind" && typeof v.source === "string") return { ...v, source: abs(v.source) };
      return v;
    });
  }
  if (isObj(s.extends) && typeof s.extends.file === "string") s.extends = { ...s.extends, file: abs(s.extends.file) };
  if (isObj(s.develop) && Array.isArray(s.develop.watch)) s.develop = { ...s.develop, watch: s.develop.watch.map((w) => (isObj(w) ? { ...w, path: abs(w.path) } : w)) };
  return s;
}

function rebaseModel(m: Obj, dir: string): Obj {
  const out: Obj = { ...m };
  if (isObj(m.services)) out.services = Object.fromEntries(Object.entries(m.services).map(([n, s]) => [n, isObj(s) ? rebaseService(s, dir) : s]));
  for (const k of ["secrets", "configs"]) {
    if (isObj(m[k])) out[k] = Object.fromEntries(Object.entries(m[k] as Obj).map(([n, d]) => [n, isObj(d) && typeof d.file === "string" && isRelPath(d.file) ? { ...d, file: resolve(dir, d.file) } : d]));
  }
  return out;
}

interface LoadCtx {
  env: Env;
  /** Warnings of the loading itself (obsolete `version`), before the model's own. */
  warnings: string[];
  /** Files being loaded by include (cycle detection). */
  includeStack: string[];
  stdin?: string;
}

/**
 * Loads files in order as compose-go does: each one parsed, interpolated, its include and extends resolved,
 * merged over the files before it (merge tags applied, sequences made unique), and the result validated
 * against the schema ("validating <file>: …"). An empty result is an error.
 */
function loadFiles(files: { path: string; content?: string }[], ctx: LoadCtx): Obj {
  let dict: Obj = {};
  for (const f of files) for (const doc of loadFile(f.path, ctx, f.content)) {
    dict = finalize(mergeYaml(dict, doc, [])) as Obj;
    const err = schemaError(dict);
    if (err) throw new ComposeError(`validating ${f.path}: ${err}`);
    if ("version" in dict) {
      ctx.warnings.push(`${f.path}: the attribute \`version\` is obsolete, it will be ignored, please remove it to avoid potential confusion`);
      delete dict.version;
    }
  }
  if (!Object.keys(dict).length) throw new ComposeError("empty compose file");
  return dict;
}

/** Reads, parses and interpolates one file, then resolves the include and extends of each of its documents. */
function loadFile(path: string, ctx: LoadCtx, content?: string): Obj[] {
  let text = content;
  if (text === undefined) {
    if (path === "-") text = ctx.stdin ?? readFileSync(0, "utf8");
    else {
      try { text = readFileSync(path, "utf8"); } catch { throw new ComposeError(`open ${path}: no such file or directory`); }
    }
  }
  const name = path === "-" ? "-" : path;
  return parseYaml(text, name).filter((y) => y !== null && y !== undefined).map((y) => loadDoc(y, path, name, ctx));
}

function loadDoc(y: unknown, path: string, name: string, ctx: LoadCtx): Obj {
  if (!isObj(y)) throw new ComposeError(`${name}: top-level object must be a mapping`);
  try { y = interpolateTree(y, ctx.env); } catch (e) { if (e instanceof InterpolationError) throw new ComposeError(e.message); throw e; }
  const doc = markers(y) as Obj;
  const dir = path === "-" ? process.cwd() : dirname(path);
  if (doc.include !== undefined && doc.include !== null) applyInclude(doc, dir, name, ctx);
  if (doc.services !== undefined && doc.services !== null && !isObj(doc.services)) throw new ComposeError(`validating ${name}: services must be a mapping`);
  if (isObj(doc.services)) {
    const resolved: Obj = {};
    for (const n of Object.keys(doc.services)) resolved[n] = resolveExtends(doc, n, name, dir, ctx, []);
    doc.services = resolved;
  }
  return doc;
}

/** A service with its `extends` chain merged in (13-merge.md rules), relative paths of other files made absolute. */
function resolveExtends(doc: Obj, service: string, file: string, dir: string, ctx: LoadCtx, chain: string[]): Obj {
  const services = (doc.services ?? {}) as Obj;
  const svc = services[service];
  if (!isObj(svc)) return svc as Obj;
  const ext = svc.extends;
  if (ext === undefined || ext === null) return svc;
  if (typeof ext !== "string" && !(isObj(ext) && typeof ext.service === "string")) throw new ComposeError(`extends.${service}.service is required`);
  const ref = typeof ext === "string" ? { service: ext } : (ext as { service: string; file?: string });
  const here = `${service} in ${file}`;
  if (chain.includes(here)) {
    // compose-go's words: "Circular reference:\n  a in f\n  extends b in f\n  extends a in f".
    throw new ComposeError(["Circular reference:", `  ${chain[0]}`, ...[...chain.slice(1), here].map((x) => `  extends ${x}`)].join("\n"));
  }
  let base: Obj;
  if (ref.file) {
    const other = resolve(dir, ref.file);
    let odoc: Obj;
    const text = (() => { try { return readFileSync(other, "utf8"); } catch { throw new ComposeError(`cannot extend service "${service}" in ${file}: open ${other}: no such file or directory`); } })();
    const ys = parseYaml(text, other).filter((x) => x !== null && x !== undefined);
    if (ys.some((x) => !isObj(x))) throw new ComposeError(`${other}: top-level object must be a mapping`);
    let y: unknown = finalize(mergeModels(ys as Obj[]));
    try { y = interpolateTree(y, ctx.env); } catch (e) { if (e instanceof InterpolationError) throw new ComposeError(e.message); throw e; }
    odoc = markers(y) as Obj;
    if (!isObj(odoc.services) || !isObj(odoc.services[ref.service])) throw new ComposeError(`cannot extend service "${service}" in ${file}: service "${ref.service}" not found in ${other}`);
    base = rebaseService(resolveExtends(odoc, ref.service, other, dirname(other), ctx, [...chain, here]), dirname(other));
  } else {
    if (!isObj(services[ref.service])) throw new ComposeError(`cannot extend service "${service}" in ${file}: service "${ref.service}" not found`);
    base = resolveExtends(doc, ref.service, file, dir, ctx, [...chain, here]);
  }
  const { extends: _e, ...own } = svc;
  const { extends: _b, ...b } = base;
  return finalize(mergeYaml(b, own, ["services", service]), ["services", service]) as Obj;
}

/** Loads the `include`d projects and adds their resources to the document (a resource defined on both sides is an error). */
function applyInclude(doc: Obj, dir: string, file: string, ctx: LoadCtx): void {
  const entries = doc.include;
  delete doc.include;
  if (!Array.isArray(entries)) throw new ComposeError(`\`include\` must be a list, got ${JSON.stringify(entries)}`);
  for (const e of entries) {
    if (typeof e !== "string" && !isObj(e)) throw new ComposeError(`validating ${file}: include entries must be a string or a mapping`);
    const r = typeof e === "string" ? { path: [e] } : (e as { path?: string | string[]; project_directory?: string; env_file?: string | string[] });
    const paths = (Array.isArray(r.path) ? r.path : r.path ? [r.path] : []).map((p) => resolve(dir, p));
    if (!paths.length) throw new ComposeError(`${file}: include requires a path`);
    for (const p of paths) {
      const stack = [...ctx.includeStack, file];
      if (stack.includes(p)) throw new ComposeError(`include cycle detected:\n${stack[0]}\n include ${[...stack.slice(1), p].join("\n include ")}`);
    }
    const projectDir = r.project_directory ? resolve(dir, r.project_directory) : dirname(paths[0]);
    const envFiles = r.env_file ? (Array.isArray(r.env_file) ? r.env_file : [r.env_file]).map((f) => resolve(dir, f)) : [join(projectDir, ".env")].filter((f) => existsSync(f));
    let env: Env = ctx.env;
    if (envFiles.length) {
      const files = envFiles.map((f) => { try { return { path: f, text: readFileSync(f, "utf8") }; } catch { throw new ComposeError(`couldn't find env file: ${f}`); } });
      let fromFiles: Record<string, string>;
      try { fromFiles = readEnvFiles(files, (k) => ctx.env[k]); } catch (err) { if (err instanceof DotEnvError) throw new ComposeError(err.message); throw err; }
      // The include's env files give defaults: what the including project knows wins (compose-go's Mapping.Merge).
      env = { ...fromFiles, ...ctx.env };
    }
    const sub = { env, warnings: ctx.warnings, includeStack: [...ctx.includeStack, file], stdin: ctx.stdin };
    const model = rebaseModel(loadFiles(paths.map((p) => ({ path: p })), sub), projectDir);
    for (const kind of ["services", "networks", "volumes", "secrets", "configs"]) {
      const theirs = model[kind];
      if (!isObj(theirs)) continue;
      const ours = (isObj(doc[kind]) ? doc[kind] : {}) as Obj;
      for (const [n, v] of Object.entries(theirs)) {
        if (n in ours) {
          if (JSON.stringify(ours[n]) === JSON.stringify(v)) continue;
          throw new ComposeError(`${kind}.${n} conflicts with imported resource`);
        }
        ours[n] = v;
      }
      doc[kind] = ours;
    }
  }
}

const DEFAULT_OVERRIDES: Record<string, string[]> = {
  "compose.yaml": ["compose.override.yaml", "compose.override.yml"], "compose.yml": ["compose.override.yml", "compose.override.yaml"],
  "docker-compose.yml": ["docker-compose.override.yml", "docker-compose.override.yaml"], "docker-compose.yaml": ["docker-compose.override.yaml", "docker-compose.override.yml"],
};

/** compose.yaml (or another default name) in dir or the nearest parent, with its override file. */
function findDefaultFiles(dir: string): string[] | undefined {
  for (let d = dir; ; d = dirname(d)) {
    const found = DEFAULT_FILES.find((f) => existsSync(join(d, f)));
    if (found) {
      const ov = DEFAULT_OVERRIDES[found].map((f) => join(d, f)).find((p) => existsSync(p));
      return [join(d, found), ...(ov ? [ov] : [])];
    }
    if (dirname(d) === d) return undefined;
  }
}

const splitList = (s: string | undefined, sep: string) => (s ?? "").split(sep).map((x) => x.trim()).filter(Boolean);

/** Finds, reads, interpolates, merges and normalizes the project's compose files. */
export function loadProject(o: LoadOptions = {}): Project {
  const cwd = o.cwd ?? process.cwd();
  const penv: Env = o.env ?? process.env;
  const projectDir = o.projectDirectory ? resolve(cwd, o.projectDirectory) : undefined;
  // The env files: --env-file, else COMPOSE_ENV_FILES, else .env in the project directory (or the first -f file's, or cwd).
  const firstFile = o.documents?.[0]?.path ?? o.files?.find((f) => f !== "-");
  const envDir = projectDir ?? (firstFile ? dirname(resolve(cwd, firstFile)) : cwd);
  let envFiles: string[];
  let explicitEnv = true;
  if (o.envFiles?.length) envFiles = o.envFiles.map((f) => resolve(cwd, f));
  else if (penv.COMPOSE_ENV_FILES) envFiles = splitList(penv.COMPOSE_ENV_FILES, ",").map((f) => resolve(cwd, f));
  else { envFiles = [join(envDir, ".env")]; explicitEnv = false; }
  const texts: { path: string; text: string }[] = [];
  for (const f of envFiles) {
    if (!existsSync(f)) { if (explicitEnv) throw new ComposeError(`couldn't find env file: ${f}`); continue; }
    texts.push({ path: f, text: readFileSync(f, "utf8") });
  }
  let dotenv: Record<string, string>;
  try { dotenv = readEnvFiles(texts, (k) => penv[k]); } catch (e) { if (e instanceof DotEnvError) throw new ComposeError(e.message); throw e; }
  const env: Env = { ...dotenv };
  for (const [k, v] of Object.entries(penv)) if (v !== undefined) env[k] = v;
  // The files: -f, else COMPOSE_FILE, else the default names.
  let docs: { path: string; content?: string }[];
  if (o.documents) docs = o.documents;
  else {
    let files = o.files?.length ? o.files : splitList(env.COMPOSE_FILE, env.COMPOSE_PATH_SEPARATOR || ":");
    if (!files.length) {
      const found = findDefaultFiles(projectDir ?? cwd);
      if (!found) throw new ComposeError(`no configuration file provided: not found`);
      files = found;
    }
    docs = files.map((f) => ({ path: f === "-" ? "-" : resolve(cwd, f) }));
  }
  const first = docs[0].path;
  const workingDir = projectDir ?? (first === "-" ? cwd : dirname(isAbsolute(first) ? first : resolve(cwd, first)));
  const ctx: LoadCtx = { env, warnings: [], includeStack: [], stdin: o.stdin };
  const merged = loadFiles(docs.map((d) => ({ path: d.path === "-" ? "-" : resolve(cwd, d.path), content: d.content })), ctx);
  // The name: -p, COMPOSE_PROJECT_NAME, `name:`, else the working directory's name made valid.
  // -p and COMPOSE_PROJECT_NAME must be valid as given; `name:` and the directory's name are made valid (compose-go).
  const explicit = o.projectName || env.COMPOSE_PROJECT_NAME || undefined;
  let name: string;
  if (explicit !== undefined) { checkProjectName(explicit); name = explicit; }
  else name = normalizeProjectName(typeof merged.name === "string" && normalizeProjectName(merged.name) ? merged.name : basename(workingDir));
  if (!name) throw new ComposeError(`project name must not be empty`);
  const profiles = o.profiles?.length ? o.profiles : splitList(env.COMPOSE_PROFILES, ",");
  const project = normalizeProject(merged, { name, workingDir, configFiles: docs.map((d) => (d.path === "-" ? "-" : resolve(cwd, d.path))), env, profiles, enableServices: o.enableServices });
  project.warnings.unshift(...ctx.warnings);
  return project;
}

/** Nanoseconds as Go's time.Duration.String() writes them ("1m30s", "500ms", "0s"). */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const neg = ns < 0;
  let n = Math.abs(ns);
  const trim = (x: string) => x.replace(/\.?0+$/, "");
  let out: string;
  if (n < 1e3) out = `${n}ns`;
  else if (n < 1e6) out = `${trim((n / 1e3).toFixed(3))}µs`;
  else if (n < 1e9) out = `${trim((n / 1e6).toFixed(6))}ms`;
  else {
    const h = Math.floor(n / 3600e9); n -= h * 3600e9;
    const m = Math.floor(n / 60e9); n -= m * 60e9;
    const sec = `${trim((n / 1e9).toFixed(9))}s`;
    out = h ? `${h}h${m}m${sec}` : m ? `${m}m${sec}` : sec;
  }
  return neg ? `-${out}` : out;
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
    // As docker compose prints them: ports with their mode, mounts with their type's options, healthcheck durations as Go writes them.
    if (o.ports) o.ports = s.ports.map((x) => ({ mode: "ingress", ...(x.host_ip ? { host_ip: x.host_ip } : {}), target: x.target, ...(x.published ? { published: x.published } : {}), protocol: x.protocol }));
    if (o.volumes) {
      o.volumes = s.volumes.map((m) => ({
        type: m.type, ...(m.source ? { source: m.source } : {}), target: m.target, ...(m.read_only ? { read_only: true } : {}),
        ...(m.type === "bind" ? { bind: { create_host_path: true } } : m.type === "volume" ? { volume: {} } : {}),
      }));
    }
    if (s.healthcheck) {
      const h = s.healthcheck;
      o.healthcheck = h.Test[0] === "NONE" ? { disable: true } : {
        test: h.Test, ...(h.Interval !== undefined ? { interval: goDuration(h.Interval) } : {}), ...(h.Timeout !== undefined ? { timeout: goDuration(h.Timeout) } : {}),
        ...(h.StartPeriod !== undefined ? { start_period: goDuration(h.StartPeriod) } : {}), ...(h.Retries !== undefined ? { retries: h.Retries } : {}),
      };
    }
    services[n] = Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  }
  const model: Obj = { name: p.name, services };
  if (Object.keys(p.networks).length) model.networks = Object.fromEntries(Object.entries(p.networks).map(([k, v]) => [k, { name: v.name, ...(v.driver !== "bridge" ? { driver: v.driver } : {}), ...(v.internal ? { internal: true } : {}), ...(v.external ? { external: true } : {}) }]));
  if (Object.keys(p.volumes).length) model.volumes = Object.fromEntries(Object.entries(p.volumes).map(([k, v]) => [k, { name: v.name, ...(v.external ? { external: true } : {}) }]));
  for (const kind of ["secrets", "configs"] as const) {
    const defs = p[kind];
    if (defs && Object.keys(defs).length) {
      model[kind] = Object.fromEntries(Object.entries(defs).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, {
        name: v.name, ...(v.file !== undefined ? { file: v.file } : {}), ...(v.environment !== undefined ? { environment: v.environment } : {}),
        ...(v.content !== undefined ? { content: v.content } : {}), ...(v.external ? { external: true } : {}), ...(Object.keys(v.labels).length ? { labels: v.labels } : {}),
      }]));
    }
  }
  return model;
}

/** The profile names `docker compose config --profiles` prints (every profile a service names, enabled or not). */
export function projectProfiles(p: Project): string[] { return p.profiles ?? []; }
