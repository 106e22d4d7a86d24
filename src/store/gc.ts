/**
 * Garbage collection, exclusive with writers (containerd's leases, as a
 * reader-writer lock where the collector is the exclusive side).
 *
 * Contract:
 * - Every operation that writes blobs or snapshots and then commits a record
 *   referencing them (pull, build step, commit, load, import, container
 *   create) runs inside lease(). What it wrote is unreferenced until its
 *   record lands; the lease is what keeps the collector off it meanwhile.
 * - The collector (mark from the records, sweep the rest) runs only while no
 *   lease is held; while it runs, new leases wait for it to finish.
 * - request() asks for a collection: it runs at once when no lease is held
 *   (and request() resolves when it is done), otherwise it is deferred to the
 *   moment the last lease ends and request() resolves at once, so `rmi`
 *   never waits on a long pull. Requests made while a collection runs give
 *   one more pass after it.
 * - exclusive() runs a function as the collector does (`system check
 *   --repair`), waiting for the leases held to end.
 * - A writer that fails may remove what it wrote itself only while its
 *   lease is `alone()`: no other lease was held at any moment of it. Else
 *   another writer may have written the same blob or snapshot (content
 *   addressing dedupes them) and even committed a record using it, so the
 *   failed writer leaves it to the collection it asks for (`leftovers()`),
 *   which runs when the last lease ends and knows what records use.
 */
export interface Lease {
  /** No other lease was held at any time during this one (so far). */
  alone(): boolean;
  /** Asks for a collection, to take what a failed writer leaves when it is not alone. */
  leftovers(): void;
}

/** For a store used without a guard (tests, tools): always alone. */
export const SOLE_LEASE: Lease = { alone: () => true, leftovers: () => {} };

export class GcGuard {
  private active = 0;
  private running: Promise<void> | undefined;
  private pending = false;
  private collector: (() => Promise<void>) | undefined;
  private drained: (() => void)[] = [];
  private started = 0;

  /** The mark-and-sweep to run (the engine's: it knows containers as well as images). */
  setCollector(fn: () => Promise<void>): void { this.collector = fn; }

  get leases(): number { return this.active; }

  async lease<T>(fn: (lease: Lease) => Promise<T>): Promise<T> {
    while (this.running) await this.running.catch(() => {});
    const shared = this.active > 0;
    const mine = ++this.started;
    this.active++;
    const lease: Lease = { alone: () => !shared && this.started === mine, leftovers: () => { this.pending = true; } };
    try {
      return await fn(lease);
    } finally {
      this.active--;
      if (this.active === 0) {
        for (const d of this.drained.splice(0)) d();
        if (this.pending) void this.kick();
      }
    }
  }

  request(): Promise<void> {
    this.pending = true;
    if (this.active === 0 && !this.running) return this.kick();
    return Promise.resolve();
  }

  private kick(): Promise<void> {
    if (this.running) return this.running;
    this.pending = false;
    const fn = this.collector;
    this.running = (async () => {
      try { if (fn) await fn(); } catch (e) { process.stderr.write(`berthd: warning: garbage collection: ${(e as Error).message}\n`); }
    })().finally(() => {
      this.running = undefined;
      if (this.pending && this.active === 0) void this.kick();
    });
    return this.running;
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      while (this.running) await this.running.catch(() => {});
      if (this.active === 0) break;
      await new Promise<void>((r) => this.drained.push(r));
    }
    let release!: () => void;
    this.running = new Promise<void>((r) => { release = r; });
    try {
      return await fn();
    } finally {
      this.running = undefined;
      release();
      if (this.pending && this.active === 0) void this.kick();
    }
  }
}
