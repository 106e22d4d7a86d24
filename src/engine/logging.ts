/**
 * Container logs: which driver, with which options, and the pumps that keep
 * each container's log (runtime/logs.ts SpoolPump → runtime/jsonlog.ts).
 *
 * Drivers, as Docker names them:
 *  - json-file: Docker's on-disk format in `<container dir>/<id>-json.log`
 *    (inspect's LogPath), with max-size / max-file / compress as Docker;
 *  - local: Docker's defaults (max-size 20m, max-file 5, compress true) in
 *    `<container dir>/local-logs/container.log`. Docker's local driver
 *    writes an internal protobuf framing there; berth writes the json-file
 *    lines instead (the format is Docker-internal and no tool reads it, so
 *    ours is acceptable), and its LogPath is "" as in Docker;
 *  - none: nothing is kept (conmon writes no log), `logs` refuses (501).
 *
 * Defaults (Docker's mergeAndVerifyLogConfig): a container that names no
 * driver gets the daemon's ("log-driver" in daemon.json, json-file without);
 * a container of the daemon's driver gets each daemon "log-opts" key it does
 * not set, stored in its HostConfig.LogConfig.Config (so inspect shows
 * them, as dockerd does). Beyond Docker, whose json-file default is
 * unbounded (moby#8911): a json-file log without max-size is capped at
 * max-size=10m (and max-file=5 unless it sets max-file) when it starts.
 * That cap is berthd's own, not a daemon.json option, so it is not merged
 * into inspect (a container's inspect stays what a stock dockerd shows);
 * `info` shows the driver (LoggingDriver) and the options in force for it,
 * cap included (LogOpts, berth's field; `berth info`: "Logging Options").
 *
 * Validation as dockerd 20.10: option names at create (400, "unknown log
 * opt"), option values when the container starts (500, "failed to
 * initialize logging driver: ..." with Docker's words).
 */
import { join } from "node:path";
import { promises as fsp } from "node:fs";
import { BadParameterError, SystemError } from "../lib/errors.js";
import { ramInBytes } from "../lib/units.js";
import { JsonLogWriter, readJsonLog, allLogFiles, goJsonMap } from "../runtime/jsonlog.js";
import { SpoolPump, readLog, type LogEntry, type ReadLogOptions } from "../runtime/logs.js";

export interface LogConfig { Type: string; Config: Record<string, string> }

/** The options each driver accepts (json-file's as Docker's ValidateLogOpt; local's). */
export const LOG_DRIVERS: Record<string, string[] | null> = {
  "json-file": ["max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"],
  local: ["max-file", "max-size", "compress"],
  none: null,
};

/** berthd's cap for json-file logs when nothing else sets one. */
export const BERTH_LOG_CAP: Readonly<Record<string, string>> = Object.freeze({ "max-size": "10m", "max-file": "5" });

let daemonDefault: LogConfig = { Type: "json-file", Config: {} };

/** Checks option names for a driver (Docker's words); throws BadParameterError. */
export function checkLogOpts(type: string, config: Record<string, string> | undefined | null): void {
  if (!(type in LOG_DRIVERS)) throw new BadParameterError(`error looking up logging plugin ${type}: plugin "${type}" not found`);
  const allowed = LOG_DRIVERS[type];
  for (const k of Object.keys(config ?? {})) {
    if (allowed === null) return; // none: dockerd's API accepts (and ignores) options; its CLI refuses them
    if (!allowed.includes(k)) throw new BadParameterError(type === "json-file" ? `unknown log opt '${k}' for json-file log driver` : `unknown log opt '${k}' for log driver ${type}`);
  }
}

/**
 * The daemon's default (daemon.json "log-driver" and "log-opts"). Throws
 * an Error with dockerd's words for a bad driver or option.
 */
export function setDaemonLogConfig(type: string | undefined, opts: Record<string, string> | undefined): void {
  const t = type || "json-file";
  const config = { ...(opts ?? {}) };
  if (t !== "none") checkLogOpts(t, config);
  else if (Object.keys(config).length) throw new BadParameterError(`invalid logging opts for driver ${t}`);
  // Values as a start would check them, so a bad daemon.json fails at daemon start, not at every container start.
  settingsFor({ Type: t, Config: config }, "/", "x");
  daemonDefault = { Type: t, Config: config };
}

/** The daemon's default driver and the options a container of it gets: daemon.json's, and berth's cap for json-file (what info shows). */
export function daemonLogConfig(): LogConfig {
  const Config = { ...daemonDefault.Config };
  if (daemonDefault.Type === "json-file" && Config["max-size"] === undefined) {
    Config["max-size"] = BERTH_LOG_CAP["max-size"];
    if (Config["max-file"] === undefined) Config["max-file"] = BERTH_LOG_CAP["max-file"];
  }
  return { Type: daemonDefault.Type, Config };
}

/** A container's LogConfig with the daemon's defaults merged in (what create stores and inspect shows). */
export function mergeLogConfig(lc: { Type?: string; Config?: Record<string, string> | null } | undefined | null): LogConfig {
  const Type = lc?.Type || daemonDefault.Type;
  const Config: Record<string, string> = { ...(lc?.Config ?? {}) };
  if (Type === daemonDefault.Type) for (const [k, v] of Object.entries(daemonDefault.Config)) if (!(k in Config)) Config[k] = v;
  return { Type, Config };
}

export interface LogSettings {
  driver: "json-file" | "local" | "none";
  /** The converted log (null for none). */
  path: string | null;
  maxSize: number;
  maxFiles: number;
  compress: boolean;
  /** conmon's --log-size-max for the spool (0: none). */
  spoolMax: number;
  /** json-file's "attrs" of every entry (raw JSON), from labels/labels-regex/env/env-regex/tag. */
  attrs?: string;
}

/** What the labels/env/tag options read of a container. */
export interface LogContainer { Name: string; Image?: string; Config: { Labels?: Record<string, string> | null; Env?: string[] | null; Image?: string } }

/**
 * Docker's ExtraAttributes plus the tag (daemon/logger/loginfo.go, loggerutils.ParseLogTag): listed labels and env
 * vars the container has, those matching the regexes (labels-regex only counts when labels is set too, as in
 * dockerd), and tag's template ({{.ID}} {{.FullID}} {{.Name}} {{.ImageID}} {{.ImageFullID}} {{.ImageName}} {{.DaemonName}}).
 */
export function logAttrs(c: Record<string, string>, id: string, ctr: LogContainer): string | undefined {
  const extra: Record<string, string> = {};
  const labels = ctr.Config.Labels ?? {};
  if (c.labels) {
    for (const l of c.labels.split(",")) if (l in labels) extra[l] = labels[l];
    if (c["labels-regex"]) { const re = goRegex(c["labels-regex"]); for (const [k, v] of Object.entries(labels)) if (re?.test(k)) extra[k] = v; }
  }
  const env: Record<string, string> = {};
  for (const e of ctr.Config.Env ?? []) { const i = e.indexOf("="); if (i > 0) env[e.slice(0, i)] = e.slice(i + 1); }
  if (c.env) for (const l of c.env.split(",")) if (l in env) extra[l] = env[l];
  if (c["env-regex"]) { const re = goRegex(c["env-regex"]); for (const [k, v] of Object.entries(env)) if (re?.test(k)) extra[k] = v; }
  if (c.tag) {
    const image = (ctr.Image ?? "").replace(/^sha256:/, "");
    const f: Record<string, string> = {
      ID: id.slice(0, 12), FullID: id, Name: ctr.Name.replace(/^\//, ""), ImageID: image.slice(0, 12), ImageFullID: ctr.Image ?? "",
      ImageName: ctr.Config.Image ?? "", DaemonName: "docker",
    };
    extra.tag = c.tag.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (m, k: string) => f[k] ?? m);
  }
  return Object.keys(extra).length ? goJsonMap(extra) : undefined;
}

function goRegex(src: string): RegExp | undefined {
  try { return new RegExp(src); } catch { return undefined; }
}

/** docker/go-units FromHumanSize: decimal units (k = 1000), as json-file's max-size. */
function fromHumanSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m || m[1].split(".").length > 2) return undefined;
  const exp = m[2] ? "kmgtp".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(parseFloat(m[1]) * 1000 ** exp);
}

function atoi(v: string): number | undefined { return /^[+-]?\d+$/.test(v) ? Number(v) : undefined; }

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  return undefined;
}

const fail = (msg: string) => new SystemError(`failed to initialize logging driver: ${msg}`);

/** The start-time reading of a LogConfig, with dockerd's errors (500). `dir` is the container's directory. */
export function settingsFor(lc: LogConfig, dir: string, id: string, ctr?: LogContainer): LogSettings {
  const c = lc.Config ?? {};
  const type = lc.Type || "json-file";
  if (type === "none") return { driver: "none", path: null, maxSize: -1, maxFiles: 1, compress: false, spoolMax: 0 };
  if (type === "local") {
    let maxSize = 20 * 1024 * 1024, maxFiles = 5, compress = true;
    if (c["max-size"] !== undefined) {
      const n = ramInBytes(c["max-size"]);
      if (n === undefined || /^-/.test(c["max-size"])) throw fail(`invalid value for max-size: ${c["max-size"]}: invalid size: '${c["max-size"]}'`);
      if (n > 0) maxSize = n; // 0: Docker's default size (berth keeps every log bounded)
    }
    if (c["max-file"] !== undefined) {
      const n = atoi(c["max-file"]);
      if (n === undefined) throw fail(`invalid value for max-file: ${c["max-file"]}: strconv.Atoi: parsing ${JSON.stringify(c["max-file"])}: invalid syntax`);
      if (n < 0) throw fail("max file count cannot be less than 0");
      maxFiles = n;
    }
    if (c.compress !== undefined) {
      const b = parseBool(c.compress);
      if (b === undefined) throw fail(`error reading compress log option: strconv.ParseBool: parsing ${JSON.stringify(c.compress)}: invalid syntax`);
      compress = b;
    }
    if (compress && maxFiles <= 1) throw fail("compression cannot be enabled when max file count is 1");
    maxFiles = Math.max(1, maxFiles);
    return { driver: "local", path: join(dir, "local-logs", "container.log"), maxSize, maxFiles, compress, spoolMax: spoolCap(maxSize, maxFiles) };
  }
  if (type !== "json-file") throw fail(`error looking up logging plugin ${type}: plugin "${type}" not found`);
  let maxSize = -1, maxFiles = 1, compress = false;
  if (c["max-size"] !== undefined) {
    const n = fromHumanSize(c["max-size"]);
    if (n === undefined) throw fail(`invalid size: '${c["max-size"]}'`);
    if (n <= 0) throw fail("max-size must be a positive number");
    maxSize = n;
  }
  if (c["max-file"] !== undefined) {
    const n = atoi(c["max-file"]);
    if (n === undefined) throw fail(`strconv.Atoi: parsing ${JSON.stringify(c["max-file"])}: invalid syntax`);
    if (n < 1) throw fail("max-file cannot be less than 1");
    maxFiles = n;
  }
  if (c.compress !== undefined) {
    const b = parseBool(c.compress);
    if (b === undefined) throw fail(`strconv.ParseBool: parsing ${JSON.stringify(c.compress)}: invalid syntax`);
    if (b && (maxFiles === 1 || maxSize === -1)) throw fail("compress cannot be true when max-file is less than 2 or max-size is not set");
    compress = b;
  }
  if (maxSize === -1) {
    // berth's cap: never an unbounded log (containers created before the cap, or a daemon default of another driver).
    maxSize = fromHumanSize(BERTH_LOG_CAP["max-size"])!;
    if (c["max-file"] === undefined) maxFiles = Number(BERTH_LOG_CAP["max-file"]);
  }
  const attrs = ctr ? logAttrs(c, id, ctr) : undefined;
  return { driver: "json-file", path: join(dir, `${id}-json.log`), maxSize, maxFiles, compress, spoolMax: spoolCap(maxSize, maxFiles), ...(attrs ? { attrs } : {}) };
}

/** The spool's hard bound while berthd is away: what the log itself keeps, within 1-64 MiB. */
function spoolCap(maxSize: number, maxFiles: number): number {
  return Math.min(64 * 1024 * 1024, Math.max(1024 * 1024, maxSize * maxFiles));
}

/** The container files a log driver uses (for inspect's LogPath: json-file only, as Docker). */
export function logPathFor(lc: LogConfig, dir: string, id: string): string {
  return (lc.Type || "json-file") === "json-file" ? join(dir, `${id}-json.log`) : "";
}

interface Pump { pump: SpoolPump; writer: JsonLogWriter; waiters: Set<() => void>; settings: LogSettings }

export interface LogPaths { dir: string; spool: string; ctl: string }

/** One pump per container whose log is being converted (running ones, and briefly exited ones). */
export class LogManager {
  private pumps = new Map<string, Pump>();

  private make(id: string, s: LogSettings, p: LogPaths): Pump {
    const writer = new JsonLogWriter(s.path!, { maxSize: s.maxSize, maxFiles: s.maxFiles, compress: s.compress, attrs: s.attrs });
    const waiters = new Set<() => void>();
    let chain: Promise<void> = Promise.resolve();
    const pump = new SpoolPump({
      spool: p.spool, ctl: p.ctl,
      sink: (entries) => (chain = chain.then(() => writer.write(entries)).catch(() => {})),
      onWrite: () => { for (const w of [...waiters]) w(); },
    });
    const rec = { pump, writer, waiters, settings: s };
    this.pumps.set(id, rec);
    return rec;
  }

  /** Starts converting a running container's spool (at start, or when a restarted daemon adopts it). */
  async start(id: string, s: LogSettings, p: LogPaths): Promise<void> {
    await this.finish(id, false);
    if (s.driver === "none" || !s.path) return;
    await fsp.mkdir(join(s.path, ".."), { recursive: true });
    this.make(id, s, p).pump.start();
  }

  /** The container exited (or, exited=false, the daemon stops): convert what is left and let go. */
  async finish(id: string, exited = true): Promise<void> {
    const r = this.pumps.get(id);
    if (!r) return;
    this.pumps.delete(id);
    await r.pump.stop(exited);
    await r.writer.close();
    for (const w of [...r.waiters]) w();
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.pumps.keys()].map((id) => this.finish(id, false)));
  }

  /** Brings the converted log up to date with the spool (a running pump's flush, or a one-off conversion). */
  async flush(id: string, s: LogSettings, p: LogPaths): Promise<void> {
    if (s.driver === "none" || !s.path) return;
    const r = this.pumps.get(id);
    if (r) { await r.pump.flush(); return; }
    const st = await fsp.stat(p.spool).catch(() => undefined);
    if (!st || st.size === 0) return;
    const saved = await fsp.readFile(p.spool + ".pos", "utf8").catch(() => "");
    if (saved.trim() === `${st.ino} ${st.size}`) return;
    await fsp.mkdir(join(s.path, ".."), { recursive: true });
    const one = this.make(id, s, { ...p, ctl: "" });
    this.pumps.delete(id);
    await one.pump.stop();
    await one.writer.close();
  }

  /** The container's log entries (json-file or local). */
  async *read(id: string, s: LogSettings, p: LogPaths, opts: ReadLogOptions): AsyncIterable<LogEntry> {
    if (!s.path) return;
    await this.flush(id, s, p).catch(() => {});
    const wait = (ms: number, signal?: AbortSignal) => new Promise<void>((res) => {
      const r = this.pumps.get(id);
      const done = () => { clearTimeout(t); r?.waiters.delete(done); signal?.removeEventListener("abort", done); res(); };
      const t = setTimeout(done, ms);
      r?.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
    yield* readJsonLog(s.path, { ...opts, wait });
  }

  /** Bytes on disk of a container's log (converted files and spool). */
  static async diskUsage(s: LogSettings, p: LogPaths): Promise<number> {
    const files = s.path ? await allLogFiles(s.path) : [];
    let n = 0;
    for (const f of [...files, p.spool]) n += (await fsp.stat(f).catch(() => undefined))?.size ?? 0;
    return n;
  }
}

export { readLog };
