/**
 * The runtime driver: the one interface behind which the OCI runtime (runc)
 * and conmon live, in the shape of Podman's libpod/oci.go. conmon is the only
 * thing that runs `runc create` and `runc exec`; it holds the container's
 * stdio, writes the log (k8s-file format), relays the attach socket and
 * writes the exit code into the exit dir, so containers outlive the daemon.
 *
 * conmon handshake (api-version 1): fds passed through the environment,
 *   _OCI_SYNCPIPE   conmon → us: {"data": pid} once the process exists (or
 *                   {"data": -1, "message": "..."}); for exec a second
 *                   {"data": exitCode} when it ends.
 *   _OCI_STARTPIPE  us → conmon (exec): one write to begin, one more after we
 *                   attached.
 *   _OCI_ATTACHPIPE conmon → us (exec): {"data": 0} when the attach socket is up.
 * The attach socket (SOCK_SEQPACKET) is <socketDir>/<id>/attach; Node cannot
 * open it, so bin/berth-attach (native/attach.c) relays it as a byte stream.
 * Resizes go to the `ctl` fifo in the bundle ("1 <h> <w>\n").
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp, watch, existsSync, accessSync, constants as fsc } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PassThrough, Writable, type Readable } from "node:stream";
import type { RuntimeSpec, SpecLinuxResources, SpecProcess } from "../oci/spec.js";
import { run, ProcTimeoutError, type RunResult } from "../lib/proc.js";
import { deadline, TIMED_OUT } from "../lib/deadline.js";
import { trace } from "../lib/trace.js";
import { helperRun, helperStartSynced, HelperTimeoutError } from "../lib/mounter.js";
import { BadParameterError, SystemError } from "../lib/errors.js";
import { AttachRelay } from "./attach-relay.js";

export interface ContainerPaths {
  bundle: string;
  logPath: string;
  exitDir: string;
  socketDir: string;
  pidFile: string;
  conmonPidFile: string;
}

export interface CreateOptions {
  id: string; spec: RuntimeSpec; paths: ContainerPaths; terminal: boolean; stdin: boolean; stdinOnce?: boolean;
  /** The log conmon writes (the spool berthd converts, engine/logging.ts): none, or its --log-size-max (bytes, 0: unbounded). */
  log?: { none?: boolean; sizeMax?: number };
  /** Called once conmon has been spawned (attachers started then do not hold up its spawn; they wait for its socket). */
  onSpawned?: () => void;
}

export interface AttachStreams {
  /** tty: raw terminal bytes; otherwise Docker stdcopy frames. */
  output: NodeJS.ReadableStream;
  /** The container's stdin; end() closes it (unless the container was created to leave it open). */
  input: NodeJS.WritableStream;
  close(): void;
  done: Promise<void>;
}

export interface ExecOptions { id: string; execId: string; process: SpecProcess; terminal: boolean; stdin: boolean; detach?: boolean; paths: { dir: string } }
export interface ExecHandle { pid: number; attach: AttachStreams | null; exitCode: Promise<number> }
export interface RuntimeState { status: "created" | "running" | "paused" | "stopped"; pid: number }

export interface RuntimeDriver {
  readonly name: string;
  create(opts: CreateOptions): Promise<{ pid: number; conmonPid: number }>;
  attach(id: string, paths: ContainerPaths, opts: { stdin: boolean; tty: boolean }): Promise<AttachStreams>;
  start(id: string): Promise<void>;
  kill(id: string, signal: string | number, all?: boolean): Promise<void>;
  delete(id: string, force?: boolean): Promise<void>;
  state(id: string): Promise<RuntimeState | null>;
  /** IDs the runtime holds state for (running or not). */
  known(): Promise<string[]>;
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  pids(id: string): Promise<number[]>;
  resize(id: string, paths: ContainerPaths, height: number, width: number): Promise<void>;
  exec(opts: ExecOptions): Promise<ExecHandle>;
  resizeExec(execDir: string, height: number, width: number): Promise<void>;
  exitCode(paths: ContainerPaths, id: string): Promise<number | undefined>;
  /** Changes a running container's cgroup limits (`runc update -r`). */
  update(id: string, resources: SpecLinuxResources): Promise<void>;
  watchExits(exitDir: string, cb: (id: string, exitCode: number) => void): () => void;
  /** What the driver holds open for the daemon (the attach relays' socket). */
  close?(): Promise<void>;
}

const RUNC = "/usr/sbin/runc";
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

let conmonAt: string | undefined;
/** conmon's path: the first on PATH (the helper runs programs by path), found once. */
function conmonPath(): string {
  if (conmonAt) return conmonAt;
  for (const dir of (process.env.PATH ?? DEFAULT_PATH).split(":")) {
    if (!dir.startsWith("/")) continue;
    const p = join(dir, "conmon");
    try { accessSync(p, fsc.X_OK); return (conmonAt = p); } catch { /* next */ }
  }
  return "conmon";
}

function errorText(e: unknown): string { return e instanceof Error ? e.message : String(e); }
const RUNTIMES: Record<string, string> = { runc: RUNC, crun: "/usr/bin/crun" };

/** A runtime by name (dockerd's `--add-runtime name=path`, daemon.json "runtimes"): containers and `--runtime` may name it. */
export function registerRuntime(name: string, path: string): void { RUNTIMES[name] = path; }

/** The runtimes berthd knows by name (runc and crun, and those registered). */
export function runtimeNames(): Record<string, string> { return { ...RUNTIMES }; }

/**
 * How long one runtime invocation (runc state/kill/delete/pause/resume/ps/update/start) may take.
 * A runtime that does not return by then (a container stuck in D state, a wedged runc) is given up
 * on: its process is killed and the call fails with a RuntimeTimeoutError, so it holds up only the
 * call about that container, never the daemon. 10 s is the deadline dockerd gives a kill to take
 * effect (daemon/kill.go); berthd's --runtime-timeout changes it.
 */
let runtimeTimeoutMs = 10_000;
export function setRuntimeTimeout(ms: number): void { if (Number.isFinite(ms) && ms > 0) runtimeTimeoutMs = ms; }
export function runtimeTimeout(): number { return runtimeTimeoutMs; }
/** `runc create` and `runc exec` (through conmon) do more (mounts, cgroups, hooks): four runtime deadlines, 40 s by default. */
function createTimeoutMs(): number { return runtimeTimeoutMs * 4; }

/** SIGKILL to conmon (and its process group: the runtime it ran) when the runtime does not answer it. */
function killGroup(pid: number | undefined): void {
  if (!pid || pid <= 1) return;
  for (const target of [-pid, pid]) { try { process.kill(target, "SIGKILL"); } catch { /* gone */ } }
}

/** A runtime invocation that did not return by its deadline. */
export class RuntimeTimeoutError extends SystemError {
  constructor(readonly op: string, readonly id: string, readonly timeoutMs: number) {
    super(`${op} ${id}: the OCI runtime did not return within ${timeoutMs % 1000 === 0 ? `${timeoutMs / 1000}s` : `${timeoutMs}ms`}`);
  }
}

/** How long an attach relay started by the helper may take to connect to conmon's socket and back to berthd. */
const RELAY_CONNECT_MS = 10_000;

let helperAt: string | undefined;
/** bin/berth-attach's path, found once (every attach starts it). */
function helperPath(): string {
  if (helperAt) return helperAt;
  if (process.env.BERTH_ATTACH_HELPER) return (helperAt = process.env.BERTH_ATTACH_HELPER);
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "berth-attach"), join(here, "../../bin/berth-attach"), join(here, "../bin/berth-attach")]) {
    if (existsSync(p)) return (helperAt = p);
  }
  return "berth-attach";
}

/** Reads newline-separated JSON messages {"data": n, "message"?: s} from one of conmon's pipes. */
class PipeReader {
  private buf = "";
  private queue: { data: number; message?: string }[] = [];
  private waiting: ((m: { data: number; message?: string } | null) => void)[] = [];
  private ended = false;
  constructor(stream: Readable) {
    stream.setEncoding("utf8");
    stream.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (!line) continue;
        try { this.push(JSON.parse(line) as { data: number; message?: string }); } catch { /* ignore noise */ }
      }
    });
    const end = () => { this.ended = true; for (const w of this.waiting.splice(0)) w(null); };
    stream.on("end", end);
    stream.on("close", end);
    stream.on("error", end);
  }
  private push(m: { data: number; message?: string }): void {
    const w = this.waiting.shift();
    if (w) w(m); else this.queue.push(m);
  }
  next(): Promise<{ data: number; message?: string } | null> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(null);
    return new Promise((r) => this.waiting.push(r));
  }
}

function cleanRuncError(msg: string): string {
  // runc prints logrus lines; keep the message text.
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(msg);
  const text = m ? m[1].replace(/\\"/g, '"') : msg.trim();
  return text.replace(/^runc (create|exec) failed: /, "");
}

export class ConmonRuntime implements RuntimeDriver {
  readonly name: string;
  private readonly bin: string;
  private readonly root: string;

  private readonly relay?: AttachRelay;

  constructor(name = "runc", opts: { runtimeRoot?: string; relaySocket?: string } = {}) {
    this.name = name;
    this.bin = RUNTIMES[name] ?? name;
    this.root = opts.runtimeRoot ?? "/run/berth/runc";
    if (opts.relaySocket) this.relay = new AttachRelay(opts.relaySocket);
  }

  /**
   * One runtime invocation under the runtime deadline, in a process group of its own (so a wrapper's
   * children go with it when the deadline passes). `id` names the container in a timeout's error.
   */
  private async runtime(args: string[], id: string, o: { what?: string; input?: string } = {}): Promise<RunResult> {
    const argv = ["--root", this.root, ...args];
    try {
      // Through the mount helper where it runs (no fork of berthd, whose spawn holds the event loop for milliseconds).
      const viaHelper = o.input === undefined && this.bin.startsWith("/") ? helperRun([this.bin, ...argv], { timeoutMs: runtimeTimeoutMs }) : undefined;
      if (viaHelper) return await viaHelper;
      return await run(this.bin, argv, { timeoutMs: runtimeTimeoutMs, detached: true, ...(o.input !== undefined ? { input: o.input } : {}) });
    } catch (e) {
      if (e instanceof ProcTimeoutError || e instanceof HelperTimeoutError) throw new RuntimeTimeoutError(o.what ?? `runtime ${args[0]}`, id, runtimeTimeoutMs);
      throw e;
    }
  }

  /** conmon's environment: its pipes' fds, and G_SLICE. */
  private conmonEnv(pipes: number): Record<string, string> {
    // G_SLICE=always-malloc: GLib (2.74 here) would otherwise keep slice magazines in every conmon,
    // 12 KiB more of its heap per container (bench/density; GLib 2.76 made malloc its default).
    const env: Record<string, string> = { PATH: process.env.PATH ?? DEFAULT_PATH, _OCI_SYNCPIPE: "3", G_SLICE: "always-malloc" };
    if (pipes >= 2) env._OCI_STARTPIPE = "4";
    if (pipes >= 3) env._OCI_ATTACHPIPE = "5";
    return env;
  }

  /** conmon runs in cwd (the bundle, or the exec's dir): it writes an "oom" file into its working directory too. */
  private async conmon(args: string[], pipes: number, cwd: string): Promise<ChildProcess> {
    const stdio: ("ignore" | "pipe")[] = ["ignore", "ignore", "pipe"];
    for (let i = 0; i < pipes; i++) stdio.push("pipe");
    const child = spawn(conmonPath(), args, { stdio, env: this.conmonEnv(pipes), detached: true, cwd });
    child.unref();
    await new Promise<void>((res, rej) => { child.once("spawn", res); child.once("error", (e) => rej(new SystemError(`conmon: ${e.message}`))); });
    return child;
  }

  private baseArgs(id: string, uuid: string, bundle: string, socketDir: string, exitDir: string, logPath: string, pidFile: string): string[] {
    return [
      "--api-version", "1", "-c", id, "-u", uuid, "-n", id, "-r", this.bin, "--runtime-arg", "--root", "--runtime-arg", this.root,
      "-b", bundle, "-p", pidFile, "-l", `k8s-file:${logPath}`, "--exit-dir", exitDir, "--socket-dir-path", socketDir,
      // conmon writes its "oom" (and "exit") files into the persist dir; without one they land in our cwd.
      "--persist-dir", bundle, "--log-level", "error",
    ];
  }

  async create(o: CreateOptions): Promise<{ pid: number; conmonPid: number }> {
    const p = o.paths;
    await Promise.all([fsp.mkdir(p.bundle, { recursive: true }), fsp.mkdir(p.exitDir, { recursive: true }), fsp.mkdir(p.socketDir, { recursive: true })]);
    await fsp.writeFile(join(p.bundle, "config.json"), JSON.stringify(o.spec));
    trace("create: config written");
    const args = this.baseArgs(o.id, o.id, p.bundle, p.socketDir, p.exitDir, p.logPath, p.pidFile);
    args.push("-P", p.conmonPidFile);
    if (o.log?.none) args[args.indexOf(`k8s-file:${p.logPath}`)] = "none:/dev/null";
    else if (o.log?.sizeMax) args.push("--log-size-max", String(o.log.sizeMax));
    if (o.terminal) args.push("-t");
    if (o.stdin) { args.push("-i"); if (!o.stdinOnce) args.push("--leave-stdin-open"); }
    const timedOut = async (pid: number | undefined): Promise<never> => {
      // conmon waits for a `runc create` that does not return: both go, and what runc made with them.
      killGroup(pid);
      killGroup(Number(await fsp.readFile(p.conmonPidFile, "utf8").catch(() => "0")) || undefined);
      await this.delete(o.id, true).catch(() => {});
      throw new RuntimeTimeoutError("OCI runtime create failed: container", o.id, createTimeoutMs());
    };
    let msg: { data: number; message?: string } | null;
    let stderr = "";
    // Through the mount helper where it runs: node's spawn of conmon would hold the event loop for milliseconds.
    const viaHelper = helperStartSynced([conmonPath(), ...args], { cwd: p.bundle, env: this.conmonEnv(1), timeoutMs: createTimeoutMs() });
    if (viaHelper) {
      o.onSpawned?.();
      let got: { pid: number; line: string; stderr: string };
      try { got = await viaHelper; } catch (e) {
        if (e instanceof HelperTimeoutError) return timedOut(e.pid);
        throw new SystemError(`conmon: ${errorText(e)}`);
      }
      stderr = got.stderr;
      try { msg = got.line ? JSON.parse(got.line) as { data: number; message?: string } : null; } catch { msg = null; }
    } else {
      const child = await this.conmon(args, 1, p.bundle);
      o.onSpawned?.();
      const sync = new PipeReader(child.stdio[3] as Readable);
      (child.stderr as Readable).on("data", (d) => { if (stderr.length < 8192) stderr += d; });
      const got = await deadline(sync.next(), createTimeoutMs());
      (child.stdio[3] as Readable).destroy();
      (child.stderr as Readable).destroy();
      if (got === TIMED_OUT) return timedOut(child.pid);
      msg = got;
    }
    trace("create: conmon answered");
    if (!msg || msg.data < 0) {
      await this.delete(o.id, true).catch(() => {});
      throw new SystemError(`OCI runtime create failed: ${cleanRuncError(msg?.message ?? stderr) || "conmon failed"}`);
    }
    const conmonPid = Number(await fsp.readFile(p.conmonPidFile, "utf8").catch(() => "0")) || 0;
    return { pid: msg.data, conmonPid };
  }

  private spawnAttach(socket: string, opts: { stdin: boolean; tty: boolean }): Promise<AttachStreams> {
    const args = [socket];
    if (opts.tty) args.push("--tty");
    if (opts.stdin) args.push("--stdin");
    return this.relayAttach(args).then((relayed) => relayed ?? this.spawnRelay(args, opts));
  }

  private spawnRelay(args: string[], opts: { stdin: boolean }): Promise<AttachStreams> {
    const child = spawn(helperPath(), args, { stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"] });
    const done = new Promise<void>((r) => child.once("close", () => r()));
    return new Promise((resolve, reject) => {
      let err = "";
      const onData = (d: Buffer) => {
        err += d.toString();
        if (err.includes("connected\n")) {
          child.stderr!.off("data", onData);
          child.stderr!.resume();
          const input = (child.stdin as Writable | null) ?? nullWritable();
          child.stdin?.on("error", () => {});
          resolve({ output: child.stdout!, input, close: () => child.kill("SIGTERM"), done });
        }
      };
      child.stderr!.on("data", onData);
      child.once("error", (e) => reject(new SystemError(`attach helper: ${e.message}`)));
      child.once("close", (code) => { if (!err.includes("connected\n")) reject(new SystemError(`attach failed: ${err.trim() || `exit ${code}`}`)); });
    });
  }

  /**
   * The relay started by the mount helper, connected back to berthd's relay socket (attach-relay.ts).
   * Undefined where there is no helper or relay socket (the caller spawns the relay itself).
   */
  private async relayAttach(args: string[]): Promise<AttachStreams | undefined> {
    const relay = this.relay;
    const bin = helperPath();
    if (!relay || !bin.startsWith("/")) return undefined;
    try { await relay.ready(); } catch (e) { trace(`attach relay socket: ${errorText(e)}`); return undefined; }
    const want = relay.expect();
    const started = helperStartSynced([bin, ...args, "--relay", relay.path, want.token], { timeoutMs: RELAY_CONNECT_MS });
    if (!started) { want.cancel(); return undefined; }
    let timer: NodeJS.Timeout | undefined, connected = false;
    const failed = started.then(
      // The relay connects back before it answers: a connection that has not arrived by then never will.
      (got) => got.line
        ? new Promise<never>((_, rej) => { if (connected) return; timer = setTimeout(() => rej(new SystemError("attach failed: the relay did not connect back")), RELAY_CONNECT_MS); timer.unref(); })
        : Promise.reject(new SystemError(`attach failed: ${got.stderr.trim() || "the relay ended"}`)),
      (e) => Promise.reject(new SystemError(`attach failed: ${e instanceof HelperTimeoutError ? "conmon's attach socket did not answer" : errorText(e)}`)),
    );
    return await Promise.race([want.connection.finally(() => { connected = true; clearTimeout(timer); }), failed]).then((s) => {
      const done = new Promise<void>((r) => s.once("close", () => r()));
      // The relay's end (conmon closed the attach socket) is answered with ours (the relay waits for it).
      s.once("end", () => s.end());
      // The output ends when the connection does, also when it ends in an error (a reset).
      const output = new PassThrough();
      s.on("data", (d: Buffer) => { if (!output.write(d)) s.pause(); });
      output.on("drain", () => s.resume());
      s.once("close", () => output.end());
      return { output, input: s, close: () => s.destroy(), done };
    }, (e) => { want.cancel(); throw e; });
  }

  async close(): Promise<void> { await this.relay?.close(); }

  attach(id: string, paths: ContainerPaths, opts: { stdin: boolean; tty: boolean }): Promise<AttachStreams> {
    return this.spawnAttach(join(paths.socketDir, id, "attach"), opts);
  }

  async start(id: string): Promise<void> {
    // What `runc start` does, without starting another Go binary: read the byte runc init writes into
    // exec.fifo (that lets it exec the process), then remove the fifo so the state reads "running".
    if (this.bin === RUNC) {
      const fifo = join(this.root, id, "exec.fifo");
      let fh: fsp.FileHandle | undefined;
      try {
        fh = await fsp.open(fifo, fsc.O_RDONLY);
        const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, null);
        await fh.close();
        fh = undefined;
        await fsp.unlink(fifo).catch(() => {});
        if (bytesRead === 1) return;
        throw new SystemError("OCI runtime start failed: the container's init process exited before it could start");
      } catch (e) {
        await fh?.close().catch(() => {});
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
    }
    const r = await this.runtime(["start", id], id);
    if (r.code !== 0) throw new SystemError(`OCI runtime start failed: ${cleanRuncError(r.stderr)}`);
  }

  async kill(id: string, signal: string | number, all = false): Promise<void> {
    const sig = typeof signal === "number" ? String(signal) : signal.toUpperCase().replace(/^SIG/, "");
    const r = await this.runtime(["kill", ...(all ? ["--all"] : []), id, sig], id, { what: "Cannot kill container" });
    if (r.code !== 0) {
      const msg = cleanRuncError(r.stderr);
      if (/invalid signal|unknown signal/i.test(msg)) throw new BadParameterError(`Invalid signal: ${signal}`);
      throw new SystemError(`cannot kill container ${id}: ${msg}`);
    }
  }

  async delete(id: string, force = false): Promise<void> {
    const r = await this.runtime(["delete", ...(force ? ["--force"] : []), id], id);
    if (r.code !== 0 && !/does not exist|not found/i.test(r.stderr)) throw new SystemError(`runc delete: ${cleanRuncError(r.stderr)}`);
  }

  async state(id: string): Promise<RuntimeState | null> {
    // A timeout throws (the container's state is unknown, which is not "gone").
    const r = await this.runtime(["state", id], id);
    if (r.code !== 0) return null;
    const s = JSON.parse(r.stdout) as { status: RuntimeState["status"]; pid: number };
    return { status: s.status, pid: s.pid };
  }

  async known(): Promise<string[]> {
    return fsp.readdir(this.root).catch(() => []);
  }

  async pause(id: string): Promise<void> {
    const r = await this.runtime(["pause", id], id, { what: "Cannot pause container" });
    if (r.code !== 0) throw new SystemError(`cannot pause container ${id}: ${cleanRuncError(r.stderr)}`);
  }

  async resume(id: string): Promise<void> {
    const r = await this.runtime(["resume", id], id, { what: "Cannot unpause container" });
    if (r.code !== 0) throw new SystemError(`cannot unpause container ${id}: ${cleanRuncError(r.stderr)}`);
  }

  async pids(id: string): Promise<number[]> {
    const r = await this.runtime(["ps", "--format", "json", id], id);
    if (r.code !== 0) throw new SystemError(`runc ps: ${cleanRuncError(r.stderr)}`);
    return (JSON.parse(r.stdout || "[]") as number[] | null) ?? [];
  }

  private async writeCtl(dir: string, height: number, width: number): Promise<void> {
    // Non-blocking: conmon holds the read side open; if it is gone, ENXIO and we ignore it.
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(join(dir, "ctl"), fsc.O_WRONLY | fsc.O_NONBLOCK);
      await fh.write(`1 ${Math.min(height, 1000)} ${Math.min(width, 1000)}\n`);
    } catch { /* not a terminal, or gone */ } finally { await fh?.close(); }
  }

  resize(_id: string, paths: ContainerPaths, height: number, width: number): Promise<void> {
    return this.writeCtl(paths.bundle, height, width);
  }

  resizeExec(execDir: string, height: number, width: number): Promise<void> {
    return this.writeCtl(execDir, height, width);
  }

  async exec(o: ExecOptions): Promise<ExecHandle> {
    const dir = o.paths.dir;
    const exitDir = join(dir, "exits");
    await Promise.all([fsp.mkdir(exitDir, { recursive: true }), fsp.mkdir(join(dir, "s"), { recursive: true })]);
    const specPath = join(dir, "process.json");
    await fsp.writeFile(specPath, JSON.stringify(o.process));
    const attach = !o.detach;
    const uuid = o.execId.slice(0, 32);
    const args = this.baseArgs(o.id, uuid, dir, join(dir, "s"), exitDir, join(dir, "log"), join(dir, "pid"));
    args.push("--exec", "--exec-process-spec", specPath);
    if (attach) args.push("--exec-attach");
    if (o.terminal) args.push("-t");
    if (o.stdin && attach) args.push("-i");
    const child = await this.conmon(args, attach ? 3 : 2, dir);
    const sync = new PipeReader(child.stdio[3] as Readable);
    let stderr = "";
    (child.stderr as Readable).on("data", (d) => { if (stderr.length < 8192) stderr += d; });
    const start = child.stdio[4] as Writable;
    let streams: AttachStreams | null = null;
    start.write("0");
    if (attach) {
      const readyOrNot = await deadline(new PipeReader((child.stdio as unknown as Readable[])[5]).next(), createTimeoutMs());
      if (readyOrNot === TIMED_OUT) { killGroup(child.pid); throw new RuntimeTimeoutError("OCI runtime exec failed: container", o.id, createTimeoutMs()); }
      const ready = readyOrNot;
      if (!ready || ready.data < 0) throw new SystemError(`exec failed: ${ready?.message ?? (stderr.trim() || "conmon did not set up the attach socket")}`);
      streams = await this.spawnAttach(join(dir, "attach"), { stdin: o.stdin, tty: o.terminal });
      start.write("0");
    }
    const firstOrNot = await deadline(sync.next(), createTimeoutMs());
    if (firstOrNot === TIMED_OUT) { streams?.close(); killGroup(child.pid); throw new RuntimeTimeoutError("OCI runtime exec failed: container", o.id, createTimeoutMs()); }
    const first = firstOrNot;
    if (!first || first.data < 0) {
      streams?.close();
      throw new SystemError(`OCI runtime exec failed: ${cleanRuncError(first?.message ?? (stderr.trim() || "conmon exited"))}`);
    }
    const exitCode = (async () => {
      const m = await sync.next();
      for (const s of [3, 4, 5]) (child.stdio[s] as Readable | Writable | undefined)?.destroy();
      (child.stderr as Readable).destroy();
      if (m) return m.data;
      const f = await fsp.readFile(join(exitDir, o.id), "utf8").catch(() => "");
      return f ? Number(f) : 255;
    })();
    return { pid: first.data, attach: streams, exitCode };
  }

  async update(id: string, resources: SpecLinuxResources): Promise<void> {
    const r = await this.runtime(["update", "-r", "-", id], id, { input: JSON.stringify(resources) });
    if (r.code !== 0) throw new SystemError(cleanRuncError(r.stderr) || `runc update exited ${r.code}`);
  }

  async exitCode(paths: ContainerPaths, id: string): Promise<number | undefined> {
    try {
      const t = (await fsp.readFile(join(paths.exitDir, id), "utf8")).trim();
      return t === "" ? undefined : Number(t);
    } catch {
      return undefined;
    }
  }

  watchExits(exitDir: string, cb: (id: string, exitCode: number) => void): () => void {
    const seen = new Map<string, number>();
    const check = async (name: string) => {
      // conmon writes the exit file with g_file_set_contents: a temp file "<id>.XXXXXX" renamed into place.
      // The temp file is not ours to read, let alone remove (that would lose the exit).
      if (!name || name.includes(".")) return;
      try {
        // Side by side: the exit reaches its waiters one round trip of the thread pool sooner.
        const [text, st] = await Promise.all([fsp.readFile(join(exitDir, name), "utf8"), fsp.stat(join(exitDir, name))]);
        const t = text.trim();
        if (t === "") return; // conmon writes then closes; a later event brings the content
        if (seen.get(name) === st.mtimeMs) return;
        seen.set(name, st.mtimeMs);
        cb(name, Number(t));
      } catch { seen.delete(name); }
    };
    const w = watch(exitDir, (_ev, name) => { if (name) void check(name.toString()); });
    void fsp.readdir(exitDir).then((names) => names.forEach((n) => void check(n))).catch(() => {});
    return () => w.close();
  }
}

function nullWritable(): NodeJS.WritableStream {
  return new Writable({ write(_c, _e, cb) { cb(); } });
}

export function createRuntime(name = "runc", opts: { runtimeRoot?: string; relaySocket?: string } = {}): RuntimeDriver {
  return new ConmonRuntime(name, opts);
}
