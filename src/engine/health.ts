/**
 * Health checks (HEALTHCHECK / --health-*), as Docker runs them: the test
 * runs as an exec in the container every Interval (default 30 s), gets
 * Timeout (30 s) to finish, and Retries (3) failures in a row make the
 * container "unhealthy"; one success makes it "healthy". Failures during
 * StartPeriod do not count. The last five results are kept in
 * State.Health.Log; a change of status is an event ("health_status: …").
 */
import type { ContainerRecord } from "./types.js";
import type { ExecService } from "./exec.js";

export interface HealthConfig { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number }
export interface HealthState { Status: "starting" | "healthy" | "unhealthy"; FailingStreak: number; Log: { Start: string; End: string; ExitCode: number; Output: string }[] }

export interface HealthDeps {
  /** Runs argv in the container; resolves with its exit code and output (at most 4 KiB kept). */
  exec(c: ContainerRecord, argv: string[], timeoutMs: number): Promise<{ code: number; output: string }>;
  changed(c: ContainerRecord, status: string): void;
  persist(c: ContainerRecord): Promise<void>;
}

const NS = 1e6; // ns per ms
const DEFAULTS = { interval: 30_000, timeout: 30_000, retries: 3 };

/** The argv a test runs, or undefined when there is no check (none configured, or NONE). */
export function healthArgv(h: HealthConfig | undefined | null): string[] | undefined {
  const t = h?.Test;
  if (!t?.length || t[0] === "NONE") return undefined;
  if (t[0] === "CMD") return t.slice(1).length ? t.slice(1) : undefined;
  if (t[0] === "CMD-SHELL") return ["/bin/sh", "-c", t.slice(1).join(" ")];
  return t;
}

/** Docker merges a container's health config over its image's field by field (0 or empty: inherit). */
export function mergeHealth(image: HealthConfig | undefined, given: HealthConfig | undefined): HealthConfig | undefined {
  if (!given) return image;
  if (!image) return given;
  return {
    Test: given.Test?.length ? given.Test : image.Test,
    Interval: given.Interval || image.Interval, Timeout: given.Timeout || image.Timeout,
    StartPeriod: given.StartPeriod || image.StartPeriod, Retries: given.Retries || image.Retries,
  };
}

/** Starts checking a running container; returns the function that stops it. */
export function startHealth(c: ContainerRecord, cfg: HealthConfig, deps: HealthDeps): () => void {
  const argv = healthArgv(cfg)!;
  const interval = cfg.Interval ? cfg.Interval / NS : DEFAULTS.interval;
  const timeout = cfg.Timeout ? cfg.Timeout / NS : DEFAULTS.timeout;
  const retries = cfg.Retries || DEFAULTS.retries;
  const startPeriod = cfg.StartPeriod ? cfg.StartPeriod / NS : 0;
  const started = Date.now();
  const state: HealthState = { Status: "starting", FailingStreak: 0, Log: [] };
  c.State.Health = state;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const probe = async (): Promise<void> => {
    if (stopped || !c.State.Running) return;
    const start = new Date();
    let code: number, output: string;
    try { ({ code, output } = await deps.exec(c, argv, timeout)); } catch (e) { code = -1; output = (e as Error).message; }
    if (stopped) return;
    state.Log = [...state.Log, { Start: start.toISOString(), End: new Date().toISOString(), ExitCode: code, Output: output }].slice(-5);
    const before = state.Status;
    if (code === 0) { state.Status = "healthy"; state.FailingStreak = 0; }
    else if (Date.now() - started >= startPeriod || state.Status !== "starting") {
      state.FailingStreak++;
      if (state.FailingStreak >= retries) state.Status = "unhealthy";
    }
    if (state.Status !== before) deps.changed(c, state.Status);
    await deps.persist(c).catch(() => {});
    schedule();
  };
  const schedule = () => { if (!stopped) { timer = setTimeout(() => { void probe(); }, interval); timer.unref(); } };
  schedule();
  return () => { stopped = true; if (timer) clearTimeout(timer); };
}

/** The health checks of running containers, one stop function each. */
export class HealthChecks {
  private stops = new Map<string, () => void>();

  /** Starts checking c if it has a check (stopping a previous one first). */
  watch(c: ContainerRecord, deps: HealthDeps): void {
    const cfg = c.Config.Healthcheck;
    if (!healthArgv(cfg)) return;
    this.stops.get(c.Id)?.();
    this.stops.set(c.Id, startHealth(c, cfg!, deps));
  }

  stop(id: string): void {
    this.stops.get(id)?.();
    this.stops.delete(id);
  }

  stopAll(): void { for (const stop of this.stops.values()) stop(); }
}

/** One health probe: an exec whose output (stdout and stderr, 4 KiB at most) and exit code are kept; past the timeout it counts as failed. */
export async function execProbe(execs: ExecService, c: ContainerRecord, argv: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  const { Id } = execs.create(c.Id, { AttachStdout: true, AttachStderr: true, Cmd: argv });
  try {
    const r = await execs.start(Id, { detach: false, tty: false });
    const chunks: Buffer[] = [];
    r.attach?.output.on("data", (d: Buffer) => chunks.push(d));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<number>((res) => { timer = setTimeout(() => res(-1), timeoutMs); });
    const code = await Promise.race([r.exitCode, timedOut]);
    if (timer) clearTimeout(timer);
    await Promise.race([r.attach?.done, new Promise((res) => setTimeout(res, 200))]);
    r.attach?.close();
    // stdcopy frames: an 8-byte header (stream, size) before each payload.
    const buf = Buffer.concat(chunks);
    const out: Buffer[] = [];
    for (let o = 0; o + 8 <= buf.length;) { const n = buf.readUInt32BE(o + 4); out.push(buf.subarray(o + 8, o + 8 + n)); o += 8 + n; }
    const output = code === -1 ? `Health check exceeded timeout (${timeoutMs / 1000}s)` : Buffer.concat(out).toString().slice(0, 4096);
    return { code, output };
  } finally {
    // Health probes are not the user's execs: they leave no trace in ExecIDs.
    execs.discard(c, Id);
  }
}
