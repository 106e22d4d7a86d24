/**
 * berthd: owns one data root (guarded by a lock file), serves the Docker
 * Engine API on a unix socket (0660, root and the `berth` group). Stopping
 * the daemon leaves containers running under conmon; the next daemon re-adopts
 * them.
 */
import { promises as fsp, openSync, writeSync, closeSync, readFileSync, unlinkSync, readdirSync, readlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import net from "node:net";
import { Engine } from "../engine/engine.js";
import { createApiServer } from "./server.js";
import { errorMessage } from "../lib/errors.js";
import { ensureDir } from "../lib/fsutil.js";
import { run } from "../lib/proc.js";
import { removeCgroup } from "../runtime/cgroups.js";
import { registerRuntime, setRuntimeTimeout } from "../runtime/driver.js";
import { setLayerLimits, type LayerLimits } from "../store/layer-jobs.js";
import { ramInBytes } from "../lib/units.js";
import { setDaemonLogConfig } from "../engine/logging.js";
import type { IdentityMapping } from "../runtime/userns.js";
import { setCertsDirs } from "../distribution/tls.js";

interface DaemonArgs {
  /** --add-runtime name=path and daemon.json "runtimes": OCI runtimes by name. */
  runtimes: Record<string, string>;
  /** --runtime-timeout: the deadline of one runtime invocation (ms). */
  runtimeTimeoutMs?: number;
  /** --shutdown-timeout: how long a SIGTERM waits for the daemon's own work before it exits anyway (ms). */
  shutdownTimeoutMs?: number;
  usernsRemap?: string; defaultInit?: boolean; dataRoot: string; execRoot: string; hosts: string[]; runtime: string; group: string; dns: string[];
  teardownNetworks: boolean; insecure: string[]; certsDirs: string[]; configFile: string; layerLimits: Partial<LayerLimits>;
  /** --log-driver/--log-opt and daemon.json "log-driver"/"log-opts": containers' default log driver and options. */
  logDriver?: string; logOpts: Record<string, string>;
}

const USAGE = `Usage:  berthd [OPTIONS]

A Docker-compatible container engine

Options:
      --add-runtime name=path   Register an additional OCI compatible runtime
      --certs-dir list     Directories of per-registry TLS files, DIR/HOST[:PORT]/ with CAs (*.crt) and a client
                           certificate (*.cert, *.key) (default /etc/docker/certs.d, then /etc/berth/certs.d)
      --config-file string Daemon configuration file (default "/etc/berth/daemon.json")
      --data-root string   Root directory of persistent state (default "/var/lib/berth")
      --dns list           DNS servers the embedded DNS forwards to (default: the host's resolv.conf)
      --exec-root string   Root directory for execution state files (default "/run/berth")
  -G, --group string       Group for the unix socket (default "berth")
  -H, --host list          Daemon socket to listen on (default unix:///run/berth/berth.sock)
      --insecure-registry list  Registries reached over plain HTTP (host[:port] or CIDR)
      --log-driver string  Default driver for container logs (default "json-file")
      --log-opt map        Default log driver options for containers (default max-size=10m,max-file=5)
      --max-layer-ratio int     A compressed layer may unpack to this many times its size (default 200)
      --min-layer-size bytes    ...but always to this many bytes, whatever the ratio (default 1g)
      --min-free-space bytes    An unpack stops when the data root's filesystem has less free (default 512m)
      --runtime string     Default OCI runtime (default "runc"; also --default-runtime)
      --runtime-timeout duration  Deadline of one runtime call (state, kill, delete, pause...): past it the call
                           fails and only requests about that container see it (default 10s)
      --shutdown-timeout int  Seconds SIGTERM waits for the daemon's own cleanups before it exits (default 15)
      --teardown-networks  Remove this daemon's bridges and firewall table when it stops
      --userns-remap string     User/Group setting for user namespaces (default, user[:group], uid[:gid])
  -v, --version            Print version information and quit
`;

function parseArgs(argv: string[]): DaemonArgs {
  let runtimeSet = false;
  const a: DaemonArgs = { runtimes: {}, dataRoot: "/var/lib/berth", execRoot: "/run/berth", hosts: [], runtime: "runc", group: "berth", dns: [], teardownNetworks: false, insecure: [], certsDirs: [], configFile: "/etc/berth/daemon.json", layerLimits: {}, logOpts: {} };
  const flagOpts: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let val: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) { val = arg.slice(eq + 1); arg = arg.slice(0, eq); }
    const next = () => {
      if (val !== undefined) return val;
      const v = argv[++i];
      if (v === undefined) { process.stderr.write(`flag needs an argument: ${arg}\n${USAGE}`); process.exit(125); }
      return v;
    };
    switch (arg) {
      case "--data-root": a.dataRoot = resolve(next()); break;
      case "--exec-root": a.execRoot = resolve(next()); break;
      case "-H": case "--host": a.hosts.push(next()); break;
      case "--runtime": case "--default-runtime": a.runtime = next(); runtimeSet = true; break;
      case "--add-runtime": {
        const v = next();
        const i = v.indexOf("=");
        if (i <= 0 || i === v.length - 1) { process.stderr.write(`invalid value "${v}" for flag --add-runtime: expected name=path\n`); process.exit(125); }
        a.runtimes[v.slice(0, i)] = v.slice(i + 1);
        break;
      }
      case "--runtime-timeout": a.runtimeTimeoutMs = duration(arg, next()); break;
      case "--shutdown-timeout": a.shutdownTimeoutMs = size(arg, next(), false) * 1000; break;
      case "-G": case "--group": a.group = next(); break;
      case "--dns": a.dns.push(next()); break;
      case "--insecure-registry": a.insecure.push(next()); break;
      case "--certs-dir": a.certsDirs.push(resolve(next())); break;
      case "--config-file": a.configFile = resolve(next()); break;
      case "--teardown-networks": a.teardownNetworks = true; break;
      case "--log-driver": a.logDriver = next(); break;
      case "--log-opt": {
        const v = next(), eq = v.indexOf("=");
        if (eq <= 0) { process.stderr.write(`invalid value "${v}" for flag --log-opt: bad format, expected key=value\n`); process.exit(125); }
        flagOpts[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case "--userns-remap": a.usernsRemap = next(); break;
      case "--max-layer-ratio": a.layerLimits.maxRatio = size(arg, next(), false); break;
      case "--min-layer-size": a.layerLimits.minBytes = size(arg, next()); break;
      case "--min-free-space": a.layerLimits.reserveBytes = size(arg, next()); break;
      case "-h": case "--help": process.stdout.write(USAGE); process.exit(0); break;
      case "-v": case "--version": process.stdout.write("berthd version 0.1.0\n"); process.exit(0); break;
      default: process.stderr.write(`unknown flag: ${arg}\n${USAGE}`); process.exit(125);
    }
  }
  if (a.hosts.length === 0) a.hosts.push(`unix://${join(a.execRoot, "berth.sock")}`);
  const flagDriver = a.logDriver;
  readConfigFile(a, runtimeSet);
  // A flag wins over daemon.json for what it names.
  if (flagDriver) a.logDriver = flagDriver;
  Object.assign(a.logOpts, flagOpts);
  return a;
}

/** A Go duration ("10s", "500ms", "1m30s"); a bare number is seconds. */
function duration(name: string, v: unknown): number {
  if (typeof v === "number" && v > 0) return v * 1000;
  const s = String(v);
  if (/^\d+(\.\d+)?$/.test(s) && Number(s) > 0) return Number(s) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(s))) { ms += Number(m[1]) * unit[m[2]]; end = re.lastIndex; }
  if (!s || end !== s.length || ms <= 0) { process.stderr.write(`invalid duration "${s}" for ${name}\n`); process.exit(125); }
  return ms;
}

/** A size flag or daemon.json value: a number of bytes, or Docker's "512m", "1g" (a plain count with units=false). */
function size(name: string, v: unknown, units = true): number {
  const n = typeof v === "number" ? v : typeof v === "string" ? (units ? ramInBytes(v) : /^\d+$/.test(v) ? Number(v) : undefined) : undefined;
  if (n === undefined || !Number.isFinite(n) || n < 0) { process.stderr.write(`invalid value "${String(v)}" for ${name}\n`); process.exit(125); }
  return n;
}

/**
 * daemon.json, Docker's keys: "insecure-registries", "dns" (flags add to them), "init" (the default of --init),
 * "log-driver" and "log-opts" (containers' default log driver and options; berth caps json-file logs at max-size=10m,
 * max-file=5 unless they say otherwise, engine/logging.ts); berth's own: "max-layer-ratio",
 * "min-layer-size", "min-free-space" (flags win). A missing file is fine; a bad one is an error.
 */
function readConfigFile(a: DaemonArgs, runtimeSet: boolean): void {
  let text: string;
  try { text = readFileSync(a.configFile, "utf8"); } catch { return; }
  let cfg: Record<string, unknown>;
  try { cfg = JSON.parse(text) as Record<string, unknown>; } catch (e) {
    process.stderr.write(`unable to configure the daemon from ${a.configFile}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  const list = (k: string): string[] => {
    const v = cfg[k];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) { process.stderr.write(`${a.configFile}: "${k}" must be a list of strings\n`); process.exit(1); }
    return v as string[];
  };
  a.insecure.push(...list("insecure-registries"));
  if (cfg.init !== undefined) {
    if (typeof cfg.init !== "boolean") { process.stderr.write(`${a.configFile}: "init" must be true or false\n`); process.exit(1); }
    a.defaultInit = cfg.init;
  }
  a.dns.push(...list("dns"));
  if (cfg["log-driver"] !== undefined) {
    if (typeof cfg["log-driver"] !== "string") { process.stderr.write(`${a.configFile}: "log-driver" must be a string\n`); process.exit(1); }
    a.logDriver = cfg["log-driver"];
  }
  if (cfg["log-opts"] !== undefined) {
    const o = cfg["log-opts"];
    if (!o || typeof o !== "object" || Array.isArray(o) || Object.values(o).some((v) => typeof v !== "string")) {
      process.stderr.write(`${a.configFile}: "log-opts" must be an object of strings\n`);
      process.exit(1);
    }
    Object.assign(a.logOpts, o as Record<string, string>);
  }
  // Docker's "runtimes": {"name": {"path": "/usr/bin/x"}} and "default-runtime" (the flags win).
  if (cfg.runtimes !== undefined) {
    const rt = cfg.runtimes as Record<string, { path?: unknown }>;
    if (typeof rt !== "object" || rt === null || Array.isArray(rt)) { process.stderr.write(`${a.configFile}: "runtimes" must be an object\n`); process.exit(1); }
    for (const [name, v] of Object.entries(rt)) {
      if (typeof v?.path !== "string" || !v.path) { process.stderr.write(`${a.configFile}: runtime "${name}" needs a "path"\n`); process.exit(1); }
      if (!(name in a.runtimes)) a.runtimes[name] = v.path;
    }
  }
  if (cfg["default-runtime"] !== undefined && !runtimeSet) {
    if (typeof cfg["default-runtime"] !== "string") { process.stderr.write(`${a.configFile}: "default-runtime" must be a string\n`); process.exit(1); }
    a.runtime = cfg["default-runtime"];
  }
  if (cfg["userns-remap"] !== undefined) {
    // As dockerd: a directive given both ways is an error, not a silent choice.
    if (a.usernsRemap !== undefined) { process.stderr.write(`unable to configure the Docker daemon with file ${a.configFile}: the following directives are specified both as a flag and in the configuration file: userns-remap: (from flag: ${a.usernsRemap}, from file: ${String(cfg["userns-remap"])})\n`); process.exit(1); }
    if (typeof cfg["userns-remap"] !== "string") { process.stderr.write(`${a.configFile}: "userns-remap" must be a string\n`); process.exit(1); }
    a.usernsRemap = cfg["userns-remap"];
  }
  const limits: [string, keyof LayerLimits, boolean][] = [["max-layer-ratio", "maxRatio", false], ["min-layer-size", "minBytes", true], ["min-free-space", "reserveBytes", true]];
  for (const [key, field, units] of limits) if (cfg[key] !== undefined && a.layerLimits[field] === undefined) a.layerLimits[field] = size(`"${key}" in ${a.configFile}`, cfg[key], units);
}

function log(msg: string): void { process.stderr.write(`${new Date().toISOString()} berthd: ${msg}\n`); }

/** One daemon per data root: a lock file holding our pid; a stale one (dead pid) is taken over. */
async function lockDataRoot(dataRoot: string): Promise<() => void> {
  const path = join(dataRoot, "berthd.pid");
  // A daemon that is shutting down holds the lock for a moment: wait up to 5 s for it.
  const deadline = Date.now() + 5000;
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o644);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => { try { if (readFileSync(path, "utf8") === String(process.pid)) unlinkSync(path); } catch { /* gone */ } };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const pid = Number(readFileSync(path, "utf8"));
      let alive = false;
      try { if (pid > 0) { process.kill(pid, 0); alive = true; } } catch { alive = false; }
      if (alive && pid !== process.pid) {
        if (Date.now() < deadline && isStopping(pid)) { await new Promise((r) => setTimeout(r, 50)); continue; }
        throw new Error(`another berthd (pid ${pid}) is using data root ${dataRoot}`);
      }
      unlinkSync(path);
    }
  }
}

/** A daemon that is exiting has closed its API socket: it no longer listens. */
function isStopping(pid: number): boolean {
  try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("berthd") && !listening(pid); } catch { return false; }
}
function listening(pid: number): boolean {
  // Unix sockets the process listens on show in /proc/net/unix with state 01 (LISTEN); map by inode via /proc/<pid>/fd.
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    }
    return readFileSync("/proc/net/unix", "utf8").split("\n").some((l) => { const f = l.trim().split(/\s+/); return f[3] === "00010000" && inodes.has(f[6]); });
  } catch { return false; }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(path);
    s.once("connect", () => { s.destroy(); res(true); });
    s.once("error", () => res(false));
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  await ensureDir(args.dataRoot, 0o711);
  const unlock = await lockDataRoot(args.dataRoot);
  let engine: Engine;
  try {
    setLayerLimits(args.layerLimits);
    setDaemonLogConfig(args.logDriver, args.logOpts);
    for (const [name, path] of Object.entries(args.runtimes)) registerRuntime(name, path);
    if (args.runtimeTimeoutMs !== undefined) setRuntimeTimeout(args.runtimeTimeoutMs);
    // --userns-remap: everything under <data-root>/<uid>.<gid>, 0710 root:<remapped gid> as dockerd makes it.
    let dataRoot = args.dataRoot;
    let userns: IdentityMapping | undefined;
    if (args.usernsRemap) {
      const { setupRemappedRoot, remappedDataRoot, rootPair, checkRootAccess } = await import("../runtime/userns.js");
      userns = setupRemappedRoot(args.usernsRemap, log);
      if (userns) {
        dataRoot = remappedDataRoot(args.dataRoot, userns);
        await ensureDir(dataRoot, 0o710);
        await fsp.chown(dataRoot, 0, rootPair(userns).gid);
        await fsp.chmod(dataRoot, 0o710);
        checkRootAccess(dataRoot, userns);
      }
    }
    if (args.certsDirs.length) setCertsDirs(args.certsDirs);
    engine = await Engine.open({ dataRoot, userns, execRoot: args.execRoot, runtime: args.runtime, dns: args.dns, teardownNetworks: args.teardownNetworks, insecureRegistries: args.insecure, defaultInit: args.defaultInit });
  } catch (e) {
    unlock();
    throw e;
  }
  const server = createApiServer(engine);
  const sockets: string[] = [];
  for (const h of args.hosts) {
    if (h.startsWith("unix://") || h.startsWith("/")) {
      const path = h.replace(/^unix:\/\//, "");
      await ensureDir(dirname(path));
      if (await socketAnswers(path)) throw new Error(`${path} is in use by another daemon`);
      await fsp.rm(path, { force: true });
      await new Promise<void>((res, rej) => { server.once("error", rej); server.listen(path, () => { server.off("error", rej); res(); }); });
      await fsp.chmod(path, 0o660);
      const g = await run("getent", ["group", args.group]).catch(() => undefined);
      const gid = g && g.code === 0 ? Number(g.stdout.split(":")[2]) : undefined;
      if (gid !== undefined && Number.isFinite(gid)) await fsp.chown(path, 0, gid).catch(() => {});
      sockets.push(path);
      log(`API listening on ${path}`);
    } else {
      throw new Error(`${h}: only unix sockets are supported; TCP needs TLS client certificates, which berthd does not serve yet`);
    }
  }
  let stopping = false;
  const shutdown = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log(`${sig}: shutting down (containers keep running)`);
    server.close();
    server.closeAllConnections?.();
    for (const p of sockets) { try { unlinkSync(p); } catch { /* gone */ } }
    // Containers keep running, so nothing here needs a container's runtime to answer; a cleanup that
    // is stuck anyway (a runtime call, a umount) does not keep the daemon, or the next one, waiting.
    const grace = args.shutdownTimeoutMs ?? 15_000;
    let exited = false;
    const exit = () => { if (exited) return; exited = true; unlock(); process.exit(0); };
    setTimeout(() => { log(`shutdown did not finish within ${grace / 1000}s: exiting anyway`); exit(); }, grace).unref();
    void engine.close().catch((e) => log(`shutdown: ${errorMessage(e)}`)).finally(async () => {
      // The shared /berth parent cgroup goes when empty (rmdir refuses while any container still uses it).
      await removeCgroup("/berth").catch(() => {});
      exit();
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // SIGUSR2: the daemon's memory, in KiB, to its log (what bench/scale's RSS is made of; with --expose-gc,
  // after a full collection: bench/density reads it for the memory a container keeps in the daemon).
  process.on("SIGUSR2", () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    log(`memory (KiB${gc ? ", after a full GC" : ""}): ${Object.entries(process.memoryUsage()).map(([k, v]) => `${k} ${Math.round(v / 1024)}`).join(", ")}`);
  });
  process.on("uncaughtException", (e) => log(`uncaught: ${e.stack ?? errorMessage(e)}`));
  process.on("unhandledRejection", (e) => log(`unhandled rejection: ${e instanceof Error ? e.stack : String(e)}`));
}

main().catch((e) => {
  log(errorMessage(e));
  process.exit(1);
});
