/**
 * mount(2) and umount2(2) without forking the daemon for each one.
 *
 * Spawning `mount` from berthd costs a fork of a process of tens of MB and an
 * exec of a setuid binary, and node's spawn() holds the event loop until the
 * child has exec'd: 2-4 ms a call on a quiet machine, far more on a loaded one,
 * and a `run --rm` mounts and unmounts its rootfs. berthd instead keeps one
 * small helper (native/mounter.c, bin/berth-mounter) that makes the system
 * calls in a child of its own per request (so one that blocks holds up only
 * itself). Where the helper is missing, or a path cannot go on its line
 * protocol, the `mount` and `umount` commands do the work as before.
 *
 * For the same reason the helper also starts programs for berthd: the runtime's
 * calls (runc delete, kill, state, …: helperRun) and conmon's start, answered at
 * its sync line (helperStartSynced). A fork of the small helper costs a fraction
 * of a millisecond and never holds berthd's event loop.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, promises as fsp } from "node:fs";
import { constants as osConstants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runOk, run, ProcTimeoutError } from "./proc.js";
import { deadline, TIMED_OUT } from "./deadline.js";

/** mount(2) flags for the option words mount(8) turns into flags; every other word goes in the data string. */
const FLAGS: Record<string, number> = {
  ro: 1, rw: 0, nosuid: 2, suid: 0, nodev: 4, dev: 0, noexec: 8, exec: 0, sync: 16, async: 0, remount: 32,
  mand: 64, dirsync: 128, noatime: 1024, nodiratime: 2048, bind: 4096, rbind: 4096 | 16384,
  relatime: 1 << 21, strictatime: 1 << 24, private: 1 << 18, rprivate: (1 << 18) | 16384, defaults: 0,
};
const MNT_DETACH = 2;
const EBUSY = 16, EINVAL = 22;

export class MountError extends Error {
  constructor(message: string, readonly errno: number) { super(message); }
}

interface Pending { resolve: (msg: string) => void; reject: (e: Error) => void; what: string }

let helper: ChildProcess | undefined;
let helperMissing = false;
let seq = 0;
const pending = new Map<number, Pending>();

function helperPath(): string | undefined {
  if (process.env.BERTH_MOUNTER_HELPER) return process.env.BERTH_MOUNTER_HELPER;
  let here: string;
  try { here = dirname(fileURLToPath(import.meta.url)); } catch { return undefined; }
  for (const p of [join(here, "berth-mounter"), join(here, "../../bin/berth-mounter"), join(here, "../bin/berth-mounter")]) {
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** The handles keep the process alive only while a call is waiting (an embedding program may exit when idle). */
function setRef(on: boolean): void {
  if (!helper) return;
  const f = on ? "ref" : "unref";
  helper[f]();
  (helper.stdin as unknown as { [k: string]: (() => void) | undefined } | null)?.[f]?.();
  (helper.stdout as unknown as { [k: string]: (() => void) | undefined } | null)?.[f]?.();
}

function failAll(e: Error): void {
  for (const p of pending.values()) p.reject(e);
  pending.clear();
}

function start(): ChildProcess | undefined {
  if (helper) return helper;
  if (helperMissing) return undefined;
  const path = helperPath();
  if (!path) { helperMissing = true; return undefined; }
  const child = spawn(path, [], { stdio: ["pipe", "pipe", "ignore"] });
  helper = child;
  let buf = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const [id, errno, msg] = buf.slice(0, nl).split("\t");
      buf = buf.slice(nl + 1);
      const p = pending.get(Number(id));
      if (!p) continue;
      pending.delete(Number(id));
      const code = Number(errno);
      if (code === 0) p.resolve(msg ?? ""); else p.reject(new MountError(`${p.what}: ${msg || `errno ${code}`}`, code));
    }
    if (!pending.size) setRef(false);
  });
  const gone = (why: string) => {
    if (helper !== child) return;
    helper = undefined;
    failAll(new Error(`mount helper ${why}`));
  };
  child.on("error", (e) => { if ((e as NodeJS.ErrnoException).code === "ENOENT") helperMissing = true; gone(e.message); });
  child.on("exit", (code, sig) => gone(`exited (${sig ?? code})`));
  child.stdin!.on("error", () => { /* reported by exit */ });
  setRef(false);
  return child;
}

function call(fields: string[], what: string): Promise<string> | undefined {
  if (fields.some((f) => /[\t\n\0]/.test(f))) return undefined;
  const child = start();
  if (!child) return undefined;
  const id = ++seq;
  return new Promise<string>((resolve, reject) => {
    pending.set(id, { resolve, reject, what });
    setRef(true);
    child.stdin!.write([String(id), ...fields].join("\t") + "\n");
  });
}

const ETIMEDOUT = 110;

/** A program the helper ran did not finish (w) or write its line (s) within its time: its process group was killed. */
export class HelperTimeoutError extends Error {
  constructor(readonly pid: number, readonly timeoutMs: number) { super(`did not finish within ${timeoutMs}ms`); }
}

/** env: the program's whole environment; without one it gets the helper's, which is the daemon's. */
interface ProgramOptions { cwd?: string; env?: Record<string, string>; timeoutMs?: number }

function programFields(mode: "w" | "s", argv: string[], o: ProgramOptions): string[] | undefined {
  const env = o.env ? Object.entries(o.env).map(([k, v]) => `${k}=${v}`) : undefined;
  if (!argv[0]?.startsWith("/") || [...argv, ...(env ?? [])].some((a) => a.includes("\x1e"))) return undefined;
  return ["P", mode, String(Math.max(0, Math.ceil(o.timeoutMs ?? 0))), o.cwd ?? "", env ? env.join("\x1e") : "-", argv.join("\x1e")];
}

function unescapeField(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c === "s" ? "\x1f" : c));
}

/** A MountError of a P request as what spawn() would have thrown. */
function programError(e: unknown, timeoutMs: number | undefined): Error {
  if (e instanceof MountError && e.errno === ETIMEDOUT) return new HelperTimeoutError(Number(/\d+$/.exec(e.message)?.[0] ?? 0), timeoutMs ?? 0);
  return e instanceof MountError ? new Error(`spawn ${e.message}`) : (e as Error); // "spawn /path: No such file or directory"
}

/**
 * argv[0] (an absolute path) run by the helper, in a session of its own with stdin /dev/null: its
 * exit code or signal and what it printed. No fork of the daemon: node's spawn() copies the page
 * tables of a process of tens of MB and holds the event loop until the child has exec'd (3-5 ms a
 * call in berthd). Undefined when the helper is not there or an argument cannot go on its line
 * protocol (the caller spawns the program itself). Past timeoutMs its process group is killed and
 * the promise rejects with a HelperTimeoutError.
 */
export function helperRun(argv: string[], o: ProgramOptions = {}): Promise<{ code: number; signal: NodeJS.Signals | null; stdout: string; stderr: string }> | undefined {
  const fields = programFields("w", argv, o);
  const p = fields && call(fields, argv[0]);
  if (!p) return undefined;
  return p.then((msg) => {
    const [code, sig, stdout = "", stderr = ""] = msg.split("\x1f");
    const signal = Number(sig) ? (Object.entries(osConstants.signals).find(([, n]) => n === Number(sig))?.[0] as NodeJS.Signals | undefined) ?? null : null;
    return { code: signal ? -1 : Number(code), signal, stdout: unescapeField(stdout), stderr: unescapeField(stderr) };
  }, (e) => { throw programError(e, o.timeoutMs); });
}

/**
 * argv[0] started by the helper with fd 3 a pipe (conmon's _OCI_SYNCPIPE), answered at the first
 * line it writes there (empty when the pipe ended without one): the pid the helper started, that
 * line, and what it wrote on stderr. The program goes on running (conmon daemonizes). Undefined as
 * for helperRun; past timeoutMs, a HelperTimeoutError (the helper kills the process group it started;
 * what that program made in a session of its own is the caller's to end).
 */
export function helperStartSynced(argv: string[], o: ProgramOptions = {}): Promise<{ pid: number; line: string; stderr: string }> | undefined {
  const fields = programFields("s", argv, o);
  const p = fields && call(fields, argv[0]);
  if (!p) return undefined;
  return p.then((msg) => {
    const [pid, line = "", stderr = ""] = msg.split("\x1f");
    return { pid: Number(pid), line: unescapeField(line), stderr: unescapeField(stderr) };
  }, (e) => { throw programError(e, o.timeoutMs); });
}

/** Splits mount(8)-style options into mount(2) flags and the filesystem's data string. */
export function mountOptions(options: string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    if (o === "") continue;
    if (o in FLAGS) flags |= FLAGS[o]; else data.push(o);
  }
  return { flags, data: data.join(",") };
}

/** mount -t TYPE SOURCE TARGET -o OPTIONS. */
export async function mountFs(type: string, source: string, target: string, options: string[]): Promise<void> {
  const { flags, data } = mountOptions(options);
  const p = call(["M", source, target, type, String(flags), data], `mount ${type} on ${target}`);
  if (p) {
    try { await p; return; } catch (e) { if (e instanceof MountError) throw e; /* the helper died: the command below */ }
  }
  await runOk("mount", ["-t", type, ...(options.length ? ["-o", options.join(",")] : []), source, target]);
}

/** A umount that does not return (a filesystem stuck under it) is given up on after this long: then a lazy one, then an error. */
const UMOUNT_DEADLINE_MS = 10_000;

/** umount TARGET; when it is busy, stuck (or `lazy`), a lazy unmount (umount -l). Resolves false when it was not mounted. */
export async function unmountFs(target: string, opts: { lazy?: boolean } = {}): Promise<boolean> {
  const p = call(["U", target, String(opts.lazy ? MNT_DETACH : 0)], `umount ${target}`);
  if (p) {
    try {
      if ((await deadline(p, UMOUNT_DEADLINE_MS)) === TIMED_OUT) {
        if (!opts.lazy) return unmountFs(target, { lazy: true });
        throw new Error(`umount ${target}: did not return within ${UMOUNT_DEADLINE_MS / 1000}s`);
      }
      return true;
    } catch (e) {
      if (e instanceof MountError) {
        if (e.errno === EINVAL) return false; // not a mount point
        if (e.errno === EBUSY && !opts.lazy) return unmountFs(target, { lazy: true });
        throw e;
      }
    }
  }
  let r;
  try { r = await run("umount", [...(opts.lazy ? ["-l"] : []), target], { timeoutMs: UMOUNT_DEADLINE_MS }); } catch (e) {
    if (e instanceof ProcTimeoutError && !opts.lazy) return unmountFs(target, { lazy: true });
    throw e;
  }
  if (r.code === 0) return true;
  if (/not mounted|no mount point/i.test(r.stderr)) return false;
  if (!opts.lazy) return unmountFs(target, { lazy: true });
  throw new Error(`umount ${target}: ${r.stderr.trim()}`);
}

/**
 * A new network namespace kept by a bind mount on `path` (made here, an empty file), as
 * `ip netns add` keeps one: it lives until removeNetns, whatever runs in it. Through the helper,
 * else `unshare --net=PATH true`.
 */
export async function makeNetns(path: string): Promise<void> {
  await fsp.writeFile(path, "", { flag: "a" });
  const p = call(["N", path], `netns ${path}`);
  if (p) {
    try { await p; return; } catch (e) { if (e instanceof MountError) throw e; /* the helper died: the command below */ }
  }
  await runOk("unshare", [`--net=${path}`, "true"]);
}

/** Unmounts a namespace made by makeNetns and removes its file (nothing to do when there is none). */
export async function removeNetns(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await unmountFs(path, { lazy: true }).catch(() => {});
  await fsp.rm(path, { force: true });
}

/**
 * `ip -batch -` for each step in turn (in the network namespace at step.netns, a /proc/<pid>/ns/net
 * path; none: the daemon's own), stopping at the first that fails, through the helper: one request
 * instead of a spawn of the daemon per step (and of nsenter). Undefined when the helper is not there
 * (the caller spawns ip itself); rejects with what ip said.
 */
export function ipBatches(steps: { netns?: string; lines: string[] }[]): Promise<void> | undefined {
  if (!steps.length || steps.length > 2) return undefined;
  const fields = ["I"];
  for (const s of steps) {
    if (s.lines.some((l) => l.includes("\x1e"))) return undefined;
    fields.push(s.netns ?? "", s.lines.join("\x1e"));
  }
  return call(fields, "ip")?.then(() => undefined);
}

/** Stops the helper (tests; the daemon's exit closes its stdin anyway). */
export function stopMounter(): void {
  const h = helper;
  helper = undefined;
  if (h) { h.stdin?.end(); h.kill(); }
  failAll(new Error("mount helper stopped"));
}
