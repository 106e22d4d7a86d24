/** Spawning host tools (runc, ip, nft, ...) and collecting their output. */
import { spawn, type SpawnOptions } from "node:child_process";
import { SystemError } from "./errors.js";

export interface RunResult { code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null }

export interface RunOptions extends SpawnOptions {
  input?: string | Buffer;
  /**
   * A deadline: past it the command (its whole process group when `detached`) is sent SIGKILL and
   * the call rejects with a ProcTimeoutError at once, without waiting for the process to go (one
   * stuck in the kernel, in D state, does not go). Its pipes are let go, so it keeps nothing alive.
   */
  timeoutMs?: number;
}

/** A command that did not finish by its deadline (RunOptions.timeoutMs). */
export class ProcTimeoutError extends SystemError {
  constructor(readonly cmd: string, readonly args: string[], readonly timeoutMs: number, readonly pid: number | undefined) {
    super(`${cmd} ${args.join(" ")}: did not finish within ${formatMs(timeoutMs)}`);
  }
}

function formatMs(ms: number): string { return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`; }

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { input, timeoutMs, ...spawnOpts } = opts;
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"], ...spawnOpts });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    if (timeoutMs && timeoutMs > 0) {
      timer = setTimeout(() => {
        settled = true;
        try {
          if (spawnOpts.detached && child.pid) process.kill(-child.pid, "SIGKILL");
          else child.kill("SIGKILL");
        } catch { /* gone meanwhile */ }
        for (const s of [child.stdin, child.stdout, child.stderr]) s?.destroy();
        child.unref();
        reject(new ProcTimeoutError(cmd, args, timeoutMs, child.pid));
      }, timeoutMs);
      timer.unref();
    }
    child.on("error", (e) => { if (timer) clearTimeout(timer); if (!settled) { settled = true; reject(new SystemError(`${cmd}: ${e.message}`)); } });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (settled) return;
      settled = true;
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    if (input !== undefined) { child.stdin?.on("error", () => {}); child.stdin?.end(input); }
  });
}

/** Runs a command and throws a SystemError with its stderr when it fails. */
export async function runOk(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new SystemError(`${cmd} ${args[0] ?? ""}: ${(r.stderr || r.stdout).trim() || `exit status ${r.code}`}`);
  }
  return r.stdout;
}
