/**
 * `berth registry serve|gc`: the registry's own program (bin/berth-registry.cjs),
 * loaded by `berth registry` only, as compose is. It needs no berthd.
 *
 *   berth registry serve --addr HOST:PORT --root DIR [--config FILE] [--gc-interval 1h] [--gc-lease 10m]
 *   berth registry gc --root DIR [--config FILE] [--dry-run] [--gc-lease 10m]
 *     [--auth none|htpasswd|token --htpasswd FILE] [--tls-cert FILE --tls-key FILE] [--proxy NAME=URL ...]
 *
 * The YAML config file takes the flags' names as keys (addr, root, gc-interval,
 * gc-lease, upload-ttl, delete-enabled, allow-sparse-index, chunk-min-length, metrics-addr, tls-cert, tls-key,
 * proxy: a list of "NAME=URL" or {name, url, username, password}), and `auth:`,
 * a mapping: type, htpasswd, realm, service, issuer, token-expiry, token-key,
 * groups ({group: [users]}) and access (rules; see auth.ts); flags win.
 */
import { readFileSync } from "node:fs";
import { parseFlags, flagHelp, UsageError, type FlagSpec, type Flags } from "../lib/args.js";
import { parseGoDuration } from "../lib/duration.js";
import { RegistryStorage } from "./storage.js";
import { DEFAULT_AUTH, type AccessRule, type AuthConfig } from "./auth.js";
import type { Upstream } from "./proxy.js";

const COMMON: FlagSpec[] = [
  { long: "root", type: "string", desc: "Directory of the registry's storage (default \"/var/lib/berth-registry\")" },
  { long: "config", type: "string", desc: "YAML file with the same keys as these flags" },
  { long: "gc-lease", type: "string", desc: "How long an unreferenced, freshly pushed blob is kept (default \"10m\")" },
  { long: "upload-ttl", type: "string", desc: "Upload sessions idle for longer are collected (default \"24h\")" },
  { long: "help", type: "bool" },
];
const SERVE: FlagSpec[] = [
  { long: "addr", type: "string", desc: "Address to listen on, HOST:PORT (default \"0.0.0.0:5000\")" },
  { long: "gc-interval", type: "string", desc: "Collect garbage this often while serving (default \"0\": never)" },
  { long: "delete-enabled", type: "string", desc: "Allow DELETE of manifests and blobs (default \"true\")" },
  { long: "allow-sparse-index", type: "string", desc: "Accept indexes whose manifests are not in the repository (default \"false\")" },
  { long: "auth", type: "string", desc: "Authentication: none, htpasswd (basic) or token (bearer tokens from /token) (default \"none\")" },
  { long: "htpasswd", type: "string", desc: "htpasswd file of bcrypt hashes (htpasswd -B) for --auth htpasswd|token" },
  { long: "tls-cert", type: "string", desc: "Serve HTTPS with this certificate (PEM)" },
  { long: "tls-key", type: "string", desc: "The certificate's private key (PEM)" },
  { long: "proxy", type: "list", desc: "Pull-through cache of an upstream registry for repositories NAME/...: NAME=URL (repeatable)" },
  { long: "metrics-addr", type: "string", desc: "Serve /metrics on this address (HOST:PORT, plain HTTP, no auth) and not on --addr; without it /metrics is on --addr, behind auth (htpasswd users, basic) when auth is on" },
  { long: "chunk-min-length", type: "string", desc: "Advertise this minimum chunk size (bytes) to chunked uploads, in OCI-Chunk-Min-Length (default \"0\": none)" },
  ...COMMON,
];
const GC: FlagSpec[] = [{ long: "dry-run", type: "bool", desc: "Print what would be removed, remove nothing" }, ...COMMON];

const USAGE = `
Usage:  berth registry COMMAND

Run an OCI registry (the distribution spec v1.1, Docker Registry HTTP API v2)

Commands:
  serve       Serve the registry
  gc          Remove blobs and manifests no tag reaches

Run 'berth registry COMMAND --help' for more information on a command.
`;

export interface RegistryConfig {
  addr: string; root: string; metricsAddr?: string; chunkMinLength: number; gcIntervalMs: number; gcLeaseMs: number; uploadTtlMs: number; deleteEnabled: boolean; allowSparseIndex: boolean;
  auth: AuthConfig; tls?: { cert: string; key: string }; proxies: Upstream[];
}

const strList = (v: unknown, what: string): string[] => {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new UsageError(`${what} must be a list of strings`);
  return v as string[];
};

function authConfig(raw: unknown, flags: Flags, dur: (s: string, what: string) => number): AuthConfig {
  if (raw !== undefined && raw !== null && (typeof raw !== "object" || Array.isArray(raw))) throw new UsageError("auth must be a mapping");
  const a = (raw ?? {}) as Record<string, unknown>;
  const known = new Set(["type", "htpasswd", "realm", "service", "issuer", "token-expiry", "token-key", "groups", "access"]);
  for (const k of Object.keys(a)) if (!known.has(k)) throw new UsageError(`auth: unknown key ${JSON.stringify(k)}`);
  const str = (k: string): string | undefined => {
    const v = a[k];
    if (v === undefined || v === null || v === "") return undefined;
    if (typeof v !== "string") throw new UsageError(`auth.${k} must be a string`);
    return v;
  };
  const flag = (k: string): string | undefined => (typeof flags[k] === "string" && flags[k] !== "" ? (flags[k] as string) : undefined);
  const type = flag("auth") ?? str("type") ?? "none";
  if (type !== "none" && type !== "htpasswd" && type !== "token") throw new UsageError(`invalid auth type ${JSON.stringify(type)}: want none, htpasswd or token`);
  const htpasswd = flag("htpasswd") ?? str("htpasswd");
  if (type !== "none" && !htpasswd) throw new UsageError(`auth ${type} needs an htpasswd file (--htpasswd or auth.htpasswd)`);
  const groups: Record<string, string[]> = {};
  if (a.groups !== undefined && a.groups !== null) {
    if (typeof a.groups !== "object" || Array.isArray(a.groups)) throw new UsageError("auth.groups must be a mapping of group → users");
    for (const [g, m] of Object.entries(a.groups as Record<string, unknown>)) groups[g] = strList(m, `auth.groups.${g}`);
  }
  let access: AccessRule[] | undefined;
  if (a.access !== undefined && a.access !== null) {
    if (!Array.isArray(a.access)) throw new UsageError("auth.access must be a list of rules");
    access = a.access.map((r: unknown, i: number): AccessRule => {
      const w = `auth.access[${i}]`;
      if (!r || typeof r !== "object" || Array.isArray(r)) throw new UsageError(`${w} must be a mapping`);
      const o = r as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!["users", "groups", "anonymous", "repositories", "actions"].includes(k)) throw new UsageError(`${w}: unknown key ${JSON.stringify(k)}`);
      const actions = strList(o.actions, `${w}.actions`);
      for (const x of actions) if (!["pull", "push", "delete", "*"].includes(x)) throw new UsageError(`${w}: unknown action ${JSON.stringify(x)} (want pull, push, delete or *)`);
      const repositories = strList(o.repositories, `${w}.repositories`);
      if (!repositories.length) throw new UsageError(`${w} names no repositories`);
      if (o.anonymous !== undefined && typeof o.anonymous !== "boolean") throw new UsageError(`${w}.anonymous must be true or false`);
      return { users: strList(o.users, `${w}.users`), groups: strList(o.groups, `${w}.groups`), anonymous: o.anonymous === true, repositories, actions: actions as AccessRule["actions"] };
    });
  }
  return {
    ...DEFAULT_AUTH, type, htpasswd, realm: str("realm"), service: str("service") ?? DEFAULT_AUTH.service, issuer: str("issuer") ?? DEFAULT_AUTH.issuer,
    tokenExpirySec: Math.max(1, Math.round(dur(str("token-expiry") ?? "5m", "auth.token-expiry") / 1000)), tokenKey: str("token-key"), groups, access,
  };
}

function proxyConfig(file: unknown, flagged: string[]): Upstream[] {
  const parse = (s: string): Upstream => {
    const i = s.indexOf("=");
    if (i <= 0) throw new UsageError(`invalid proxy ${JSON.stringify(s)}: want NAME=URL`);
    return { name: s.slice(0, i), url: s.slice(i + 1) };
  };
  let list: Upstream[];
  if (flagged.length) list = flagged.map(parse);
  else if (file === undefined || file === null) list = [];
  else if (!Array.isArray(file)) throw new UsageError("proxy must be a list");
  else list = file.map((x: unknown, i: number): Upstream => {
    if (typeof x === "string") return parse(x);
    if (!x || typeof x !== "object") throw new UsageError(`proxy[${i}] must be NAME=URL or a mapping`);
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!["name", "url", "username", "password"].includes(k)) throw new UsageError(`proxy[${i}]: unknown key ${JSON.stringify(k)}`);
    if (typeof o.name !== "string" || typeof o.url !== "string") throw new UsageError(`proxy[${i}] needs a name and a url`);
    return { name: o.name, url: o.url, username: typeof o.username === "string" ? o.username : undefined, password: typeof o.password === "string" ? o.password : undefined };
  });
  const seen = new Set<string>();
  for (const u of list) {
    if (!/^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/.test(u.name)) throw new UsageError(`invalid proxy name ${JSON.stringify(u.name)}: one lowercase path component`);
    if (seen.has(u.name)) throw new UsageError(`proxy ${JSON.stringify(u.name)} is given twice`);
    seen.add(u.name);
    let url: URL;
    try { url = new URL(u.url); } catch { throw new UsageError(`invalid proxy URL ${JSON.stringify(u.url)}`); }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new UsageError(`invalid proxy URL ${JSON.stringify(u.url)}: want http:// or https://`);
    u.url = url.origin;
  }
  return list;
}

/** Flags over the YAML file over the defaults. */
export async function resolveConfig(flags: Flags): Promise<RegistryConfig> {
  let file: Record<string, unknown> = {};
  if (typeof flags.config === "string" && flags.config !== "") {
    const { parse } = await import("yaml");
    const v: unknown = parse(readFileSync(flags.config, "utf8"));
    if (v !== null && v !== undefined && (typeof v !== "object" || Array.isArray(v))) throw new UsageError(`${flags.config}: the config must be a mapping`);
    file = (v ?? {}) as Record<string, unknown>;
    const known = new Set(["addr", "root", "gc-interval", "gc-lease", "upload-ttl", "delete-enabled", "allow-sparse-index", "auth", "tls-cert", "tls-key", "proxy", "chunk-min-length", "metrics-addr"]);
    for (const k of Object.keys(file)) if (!known.has(k)) throw new UsageError(`${flags.config}: unknown key ${JSON.stringify(k)}`);
  }
  const pick = (k: string, def: string): string => {
    const f = flags[k];
    if (typeof f === "string" && f !== "") return f;
    const v = file[k];
    if (v !== undefined && v !== null && v !== "") return String(v);
    return def;
  };
  const dur = (k: string, def: string): number => {
    const s = pick(k, def);
    try { return parseGoDuration(s) / 1e6; } catch { throw new UsageError(`invalid duration for ${k}: ${JSON.stringify(s)}`); }
  };
  const bool = (k: string, def: boolean): boolean => {
    const s = pick(k, String(def));
    if (!/^(true|false|1|0)$/i.test(s)) throw new UsageError(`invalid boolean for ${k}: ${JSON.stringify(s)}`);
    return /^(true|1)$/i.test(s);
  };
  const cert = pick("tls-cert", ""), key = pick("tls-key", "");
  if ((cert === "") !== (key === "")) throw new UsageError("--tls-cert and --tls-key go together");
  const durOf = (s: string, what: string): number => {
    try { return parseGoDuration(s) / 1e6; } catch { throw new UsageError(`invalid duration for ${what}: ${JSON.stringify(s)}`); }
  };
  const chunkMin = pick("chunk-min-length", "0");
  if (!/^\d+$/.test(chunkMin)) throw new UsageError(`invalid chunk-min-length ${JSON.stringify(chunkMin)}: want a number of bytes`);
  return {
    addr: pick("addr", "0.0.0.0:5000"), root: pick("root", "/var/lib/berth-registry"), chunkMinLength: Number(chunkMin),
    ...(pick("metrics-addr", "") ? { metricsAddr: pick("metrics-addr", "") } : {}),
    gcIntervalMs: dur("gc-interval", "0"), gcLeaseMs: dur("gc-lease", "10m"), uploadTtlMs: dur("upload-ttl", "24h"),
    deleteEnabled: bool("delete-enabled", true), allowSparseIndex: bool("allow-sparse-index", false),
    auth: authConfig(file.auth, flags, durOf), ...(cert ? { tls: { cert, key } } : {}),
    proxies: proxyConfig(file.proxy, Array.isArray(flags.proxy) ? flags.proxy : []),
  };
}

function splitAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new UsageError(`invalid --addr ${JSON.stringify(addr)}: want HOST:PORT`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port: Number(m[3]) };
}

const log = (line: string): void => { process.stdout.write(line + "\n"); };

async function serve(cfg: RegistryConfig): Promise<number> {
  const { createRegistryServer } = await import("./server.js");
  const { collectGarbage } = await import("./gc.js");
  const { host, port } = splitAddr(cfg.addr);
  const storage = new RegistryStorage(cfg.root, { allowSparseIndex: cfg.allowSparseIndex });
  await storage.init();
  const { RegistryAuth } = await import("./auth.js");
  const auth = new RegistryAuth(cfg.auth, cfg.root, !!cfg.tls);
  await auth.init();
  const tls = cfg.tls ? { cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) } : undefined;
  let proxy;
  if (cfg.proxies.length) { const { ProxyCache } = await import("./proxy.js"); proxy = new ProxyCache(storage, cfg.proxies, log); }
  const reg = createRegistryServer({ storage, log, deleteEnabled: cfg.deleteEnabled, auth, tls, proxy, chunkMinLength: cfg.chunkMinLength, metricsHere: !cfg.metricsAddr });
  await new Promise<void>((resolve, reject) => { reg.server.once("error", reject); reg.server.listen(port, host, () => resolve()); });
  let metricsServer: import("node:http").Server | undefined;
  let metricsBound: string | undefined;
  if (cfg.metricsAddr) {
    // As distribution's debug server: its own listener, plain HTTP, for a scraper on a trusted network.
    const m = splitAddr(cfg.metricsAddr);
    const { createServer } = await import("node:http");
    metricsServer = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) { res.writeHead(404, { "Content-Type": "text/plain" }).end("404 page not found\n"); return; }
      reg.renderMetrics().then((text) => {
        res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
        res.end(req.method === "HEAD" ? undefined : text);
      }, (e: unknown) => { res.writeHead(500, { "Content-Type": "text/plain" }).end(`${(e as Error).message}\n`); });
    });
    const ms = metricsServer;
    await new Promise<void>((resolve, reject) => { ms.once("error", reject); ms.listen(m.port, m.host, () => resolve()); });
    const ma = ms.address();
    metricsBound = ma && typeof ma === "object" ? `${ma.family === "IPv6" ? `[${ma.address}]` : ma.address}:${ma.port}` : cfg.metricsAddr;
  }
  const a = reg.server.address();
  const bound = a && typeof a === "object" ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}` : cfg.addr;
  log(JSON.stringify({ time: new Date().toISOString(), msg: "listening", addr: bound, root: cfg.root, tls: !!cfg.tls, auth: cfg.auth.type, ...(metricsBound ? { metricsAddr: metricsBound } : {}), ...(cfg.proxies.length ? { proxies: cfg.proxies.map((p) => `${p.name}=${p.url}`) } : {}) }));
  let timer: NodeJS.Timeout | undefined;
  let gcRunning: Promise<unknown> | undefined;
  let stopping = false;
  if (cfg.gcIntervalMs > 0) {
    const tick = (): void => {
      gcRunning = collectGarbage(storage, { leaseMs: cfg.gcLeaseMs, uploadTtlMs: cfg.uploadTtlMs, log })
        .catch((e: unknown) => log(JSON.stringify({ time: new Date().toISOString(), gc: true, error: (e as Error).message })))
        .finally(() => { gcRunning = undefined; if (!stopping) timer = setTimeout(tick, cfg.gcIntervalMs); });
    };
    timer = setTimeout(tick, cfg.gcIntervalMs);
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string): void => {
      log(JSON.stringify({ time: new Date().toISOString(), msg: "shutting down", signal: sig }));
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      resolve();
    };
    const onTerm = (): void => stop("SIGTERM");
    const onInt = (): void => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
  stopping = true;
  if (timer) clearTimeout(timer);
  // In-flight requests finish; idle keep-alive connections close now.
  await Promise.all([reg.close(), gcRunning, metricsServer && new Promise<void>((r) => { metricsServer!.close(() => r()); metricsServer!.closeAllConnections(); })]);
  log(JSON.stringify({ time: new Date().toISOString(), msg: "stopped" }));
  return 0;
}

async function gc(cfg: RegistryConfig, dryRun: boolean): Promise<number> {
  const { collectGarbage } = await import("./gc.js");
  const storage = new RegistryStorage(cfg.root);
  await storage.init();
  const r = await collectGarbage(storage, { leaseMs: cfg.gcLeaseMs, uploadTtlMs: cfg.uploadTtlMs, dryRun });
  const verb = dryRun ? "would delete" : "deleted";
  for (const m of r.deletedManifests) process.stdout.write(`${verb} manifest ${m.repository}@${m.digest}\n`);
  for (const b of r.deletedBlobs) process.stdout.write(`${verb} blob ${b}\n`);
  process.stdout.write(`${r.markedBlobs} blobs marked, ${r.deletedBlobs.length} blobs ${verb} (${r.freedBytes} bytes), ${r.deletedManifests.length} manifests, ${r.deletedLinks} links, ${r.deletedUploads} uploads\n`);
  return 0;
}

/** Entry point: `args` are what follows `berth registry`. Returns the exit status. */
export async function registry(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") { process.stdout.write(USAGE); return 0; }
  const specs = sub === "serve" ? SERVE : sub === "gc" ? GC : undefined;
  if (!specs) { process.stderr.write(`berth: 'registry ${sub}' is not a berth command.\nSee 'berth registry --help'\n`); return 1; }
  try {
    const { flags, args: pos } = parseFlags(rest, specs);
    if (flags.help) {
      process.stdout.write(`\nUsage:  berth registry ${sub} [OPTIONS]\n\n${sub === "serve" ? "Serve the registry" : "Remove blobs and manifests no tag reaches"}\n\n${flagHelp(specs.filter((s) => s.long !== "help"))}\n`);
      return 0;
    }
    if (pos.length) throw new UsageError(`"berth registry ${sub}" accepts no arguments`);
    const cfg = await resolveConfig(flags);
    return sub === "serve" ? await serve(cfg) : await gc(cfg, !!flags["dry-run"]);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`berth: ${e.message}\nSee 'berth registry ${sub} --help'.\n`); return 125; }
    process.stderr.write(`berth registry ${sub}: ${(e as Error).message}\n`);
    return 1;
  }
}

// Run directly (`node bin/berth-registry.cjs serve ...`): the bundle is CommonJS, and then it is the main module.
if (typeof require !== "undefined" && require.main === module) {
  void registry(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
