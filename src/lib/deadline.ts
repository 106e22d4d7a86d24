/** What `deadline` resolves to when the time is up first. */
export const TIMED_OUT = Symbol("timed out");

/** p, or TIMED_OUT once ms have passed (p goes on; only the wait for it ends). The timer is always cleared. */
export async function deadline<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<typeof TIMED_OUT>((r) => { timer = setTimeout(() => r(TIMED_OUT), ms); })]);
  } finally { clearTimeout(timer); }
}
