/**
 * A crash-atomic table of JSON records keyed by ID, for metadata that changes
 * one record at a time but is read whole at start (image records).
 *
 * On disk: a snapshot file `<name>.json` ({ "<key>": [records...] }, written
 * temp + fsync + rename) and an append-only journal `<name>.journal`: one JSON
 * line per change, `{"put":[records],"del":[ids]}`, written and fsync'd before
 * the change is acknowledged. A change that touches several records (a tag
 * moving from one image to another) is one line, so it lands whole or not at
 * all. Concurrent changes share one write + fsync (group commit).
 *
 * Contract:
 * - load() = the snapshot, then every journal line in order. A torn tail (a
 *   crash in the middle of an append: a partial line, or zeros the file
 *   system had allocated but not written) is dropped and truncated away, so the
 *   next append starts on a line of its own. An unreadable line followed by
 *   good ones is damage, not a crash artefact: it is skipped and reported.
 * - A cost per change of one line, whatever the table's size: the snapshot is
 *   rewritten (compaction) only when the journal outgrows it, so the whole
 *   table is written O(1) times per change, amortised.
 * - Compaction writes the snapshot, then empties the journal. A crash between
 *   the two replays the journal over a snapshot that already holds its
 *   changes: harmless, since lines carry whole records, not deltas.
 * - A snapshot written by an older berth (images.json without a journal) is
 *   read as it is.
 * The caller owns the records in memory and serialises nothing itself; it
 * calls change() after each in-memory mutation and awaits it.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { atomicWrite, fsyncDir } from "../lib/fsutil.js";

export interface JournalLoad<T> {
  records: T[];
  /** Lines or files that could not be read (reported by `system check`, mended by --repair). */
  damage: string[];
}

interface Line<T> { put?: T[]; del?: string[] }
interface Pending { text: string; resolve: () => void; reject: (e: Error) => void }

const MIN_COMPACT_BYTES = 1 << 20;

export class Journal<T> {
  private fh: fsp.FileHandle | undefined;
  private journalBytes = 0;
  private snapshotBytes = 0;
  private queue: Pending[] = [];
  private compactWaiters: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  /**
   * @param dir the directory of both files; @param name their base name; @param key the snapshot's
   * top-level field; @param idOf a record's key; @param all the caller's current records (for compaction).
   */
  constructor(private readonly dir: string, private readonly name: string, private readonly key: string,
    private readonly idOf: (r: T) => string, private readonly all: () => Iterable<T>) {}

  get snapshotPath(): string { return join(this.dir, `${this.name}.json`); }
  get journalPath(): string { return join(this.dir, `${this.name}.journal`); }

  async load(): Promise<JournalLoad<T>> {
    const damage: string[] = [];
    const byId = new Map<string, T>();
    let snap: Buffer | undefined;
    try { snap = await fsp.readFile(this.snapshotPath); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; }
    if (snap) {
      this.snapshotBytes = snap.length;
      try {
        const doc = JSON.parse(snap.toString("utf8")) as Record<string, T[]>;
        const list = doc[this.key];
        if (!Array.isArray(list)) throw new Error(`no "${this.key}" array`);
        for (const r of list) byId.set(this.idOf(r), r);
      } catch (e) {
        // Keep the bytes for a human; the next compaction would otherwise overwrite them.
        const aside = `${this.snapshotPath}.damaged-${Date.now()}`;
        await fsp.copyFile(this.snapshotPath, aside).catch(() => {});
        damage.push(`${this.name}.json: unreadable (${(e as Error).message}); kept as ${aside}`);
      }
    }
    let text = "";
    try { text = await fsp.readFile(this.journalPath, "utf8"); } catch (e) { if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e; }
    const parts = text.split("\n");
    // Lines: every part but the last is newline-terminated; the last one is a partial write (or "").
    let goodEnd = 0, offset = 0, lastGood = -1;
    const parsed: (Line<T> | undefined)[] = [];
    for (let i = 0; i < parts.length; i++) {
      const complete = i < parts.length - 1;
      let line: Line<T> | undefined;
      if (complete && parts[i].trim()) {
        try {
          const v = JSON.parse(parts[i]) as Line<T>;
          if (v && typeof v === "object" && (Array.isArray(v.put) || Array.isArray(v.del))) line = v;
        } catch { /* below */ }
      }
      parsed.push(line);
      offset += Buffer.byteLength(parts[i]) + (complete ? 1 : 0);
      if (line) { lastGood = i; goodEnd = offset; }
    }
    for (let i = 0; i < parsed.length; i++) {
      const line = parsed[i];
      if (!line) {
        if (i < lastGood && parts[i].trim()) damage.push(`${this.name}.journal: line ${i + 1} unreadable, skipped`);
        continue;
      }
      for (const r of line.put ?? []) byId.set(this.idOf(r), r);
      for (const id of line.del ?? []) byId.delete(id);
    }
    const size = Buffer.byteLength(text);
    if (goodEnd < size) {
      // The torn tail of an append cut short by a crash: never acknowledged, so dropped.
      await fsp.truncate(this.journalPath, goodEnd).catch(() => {});
    }
    this.journalBytes = goodEnd;
    return { records: [...byId.values()], damage };
  }

  private async open(): Promise<fsp.FileHandle> {
    if (!this.fh) {
      this.fh = await fsp.open(this.journalPath, "a", 0o600);
      await fsyncDir(this.dir);
    }
    return this.fh;
  }

  /** Records one change (several records at once are atomic); resolves once it is on disk. */
  change(put: T[], del: string[] = []): Promise<void> {
    if (!put.length && !del.length) return Promise.resolve();
    const line: Line<T> = {};
    if (put.length) line.put = put;
    if (del.length) line.del = del;
    const text = JSON.stringify(line) + "\n";
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ text, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing) return;
    // Lines queued after flush() saw an empty queue but before this ran are picked up by the restart.
    this.flushing = this.flush().finally(() => { this.flushing = undefined; if (this.queue.length || this.compactWaiters.length) this.kick(); });
  }

  /** The only writer of both files: batches of lines, and compactions, one at a time. */
  private async flush(): Promise<void> {
    while (this.queue.length || this.compactWaiters.length) {
      if (this.compactWaiters.length) {
        const waiters = this.compactWaiters.splice(0);
        try { await this.compactNow(); for (const w of waiters) w.resolve(); } catch (e) { for (const w of waiters) w.reject(e as Error); }
        continue;
      }
      const batch = this.queue.splice(0);
      try {
        if (this.closed) throw new Error("journal closed");
        const fh = await this.open();
        const buf = Buffer.from(batch.map((p) => p.text).join(""));
        await fh.write(buf);
        await fh.datasync();
        this.journalBytes += buf.length;
        for (const p of batch) p.resolve();
      } catch (e) {
        for (const p of batch) p.reject(e as Error);
        continue;
      }
      if (this.journalBytes > Math.max(MIN_COMPACT_BYTES, this.snapshotBytes)) {
        await this.compactNow().catch((e: Error) => process.stderr.write(`berthd: warning: compacting ${this.name}: ${e.message}\n`));
      }
    }
  }

  /** Rewrites the snapshot from the records in memory and empties the journal (also `system check --repair`). */
  compact(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.compactWaiters.push({ text: "", resolve, reject });
      this.kick();
    });
  }

  private async compactNow(): Promise<void> {
    const text = JSON.stringify({ [this.key]: [...this.all()] });
    await atomicWrite(this.snapshotPath, text);
    this.snapshotBytes = Buffer.byteLength(text);
    const fh = await this.open();
    await fh.truncate(0);
    await fh.sync();
    this.journalBytes = 0;
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }
}
