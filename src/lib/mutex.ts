/**
 * Per-key async mutex. A container's slow runtime call holds only that
 * container's key; requests about other containers never wait on it.
 *
 * A caller may bound its wait (`waitMs`): past it the call fails with the
 * error `busy()` makes and never runs; the holder, and callers queued behind
 * the one that gave up, are not disturbed (they still run in order, once the
 * holder lets go). So a request about a container whose holder is stuck
 * answers with an error instead of hanging, and internal work (an exit to
 * record) can still wait as long as it takes.
 */
import { deadline, TIMED_OUT } from "./deadline.js";

export interface LockWait {
  /** How long to wait for the key before giving up (no bound when omitted or <= 0). */
  waitMs?: number;
  /** The error a caller that gave up fails with. */
  busy?: () => Error;
}

export class KeyedMutex {
  private tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>, wait: LockWait = {}): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    const done = () => { release(); if (this.tails.get(key) === tail) this.tails.delete(key); };
    if (wait.waitMs && wait.waitMs > 0) {
      if ((await deadline(prev, wait.waitMs)) === TIMED_OUT) {
        // Our turn, when it comes, passes at once: those queued behind us wait for the holder only.
        release();
        void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key); });
        throw wait.busy?.() ?? new Error(`${key}: busy`);
      }
    } else {
      await prev;
    }
    try {
      return await fn();
    } finally {
      done();
    }
  }

  /** Whether someone holds (or waits for) the key. */
  held(key: string): boolean { return this.tails.has(key); }
}
