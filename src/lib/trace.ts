/** BERTH_TRACE=1: timestamps of the hot path's steps on stderr, for finding where latency goes. */
const on = !!process.env.BERTH_TRACE;
const t0 = performance.now();
export function trace(what: string): void {
  if (on) process.stderr.write(`[trace ${(performance.now() - t0).toFixed(1)}ms] ${what}\n`);
}
