/** Spawning host tools (runc, ip, nft, ...) and collecting their output. */
import { spawn, type SpawnOptions } from "node:child_process";
import { SystemError } from "./errors.js";

export interface RunResult { code: number; stdout: string; stderr: string; signal: NodeJS.Signals | null }

export interface RunOptions extends SpawnOptions {
  input?: string | Buffer;
  timeoutMs?: number;
}

export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const { input, timeoutMs, ...spawnOpts } = opts;
    const child = spawn(cmd, args, { stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"], ...spawnOpts });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => err.push(d));
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs) timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => { if (timer) clearTimeout(timer); reject(new SystemError(`${cmd}: ${e.message}`)); });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    if (input !== undefined) child.stdin?.end(input);
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
