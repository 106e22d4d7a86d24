/**
 * The log conmon writes (k8s-file / CRI format), and the pump that turns it
 * into the container's real log:
 *   2024-01-01T00:00:00.000000000+00:00 stdout F a full line
 *   2024-01-01T00:00:00.000000000+00:00 stderr P a partial line (no newline)
 *
 * Design. conmon can only write k8s-file (or journald/none/passthrough), and
 * it must keep writing while berthd is away, so its file is a *spool*: a
 * small staging file that berthd converts, continuously, into the log the
 * user asked for (json-file in Docker's format, see jsonlog.ts), as dockerd
 * itself writes every log byte. SpoolPump:
 *  - tails the spool: fs.watch wakes it (bursts are coalesced into one pass
 *    every ~20 ms; a slow timer is the fallback), each pass reads what was
 *    appended in 256 KiB blocks and hands whole entries to the sink in one
 *    batch (one writev per batch, not a syscall per line);
 *  - remembers how far it converted in `<spool>.pos` ("<inode> <offset>"),
 *    written after each batch, so a daemon restart neither repeats nor skips;
 *  - rotates the spool once it converted ROTATE_AT bytes: "2 0 0\n" on
 *    conmon's `ctl` fifo (REOPEN_LOGS_EVENT, what CRI-O sends for kubelet's
 *    log rotation); conmon fsyncs, opens `<spool>.tmp` and renames it over
 *    the spool. The pump keeps its handle on the old inode, reads it to the
 *    end once the path names a new inode, then moves on to the new file:
 *    nothing is lost and the spool stays small;
 *  - conmon's own `--log-size-max` (set by the driver) bounds the spool
 *    while berthd is away: conmon then renames a fresh file over it by
 *    itself. With berthd up the pump follows those renames the same way, and
 *    looks for one after every block it reads: a burst that outruns it by
 *    more than --log-size-max makes conmon rename twice, and the file in
 *    between is opened before the second rename unlinks it.
 * Memory per running container: this object, one FSWatcher, one open fd;
 * read buffers live only during a pass.
 *
 * readLog still reads a k8s-file log directly (logs of containers whose
 * driver keeps no converted log).
 */
import { promises as fsp, watch, constants as fsc, type FSWatcher } from "node:fs";

export interface LogEntry { time: string; stream: "stdout" | "stderr"; data: Buffer }

export interface ReadLogOptions {
  follow?: boolean;
  tail?: number;
  since?: number;
  until?: number;
  signal?: AbortSignal;
  stopWhen?: () => boolean;
}

function normTime(t: string): string {
  return t.endsWith("+00:00") ? t.slice(0, -6) + "Z" : t;
}

/** Seconds since the epoch of an RFC3339Nano stamp (ns precision lost beyond µs; fine for filters). */
function seconds(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return Date.parse(t) / 1000;
  return Date.parse(m[1] + m[3]) / 1000 + (m[2] ? Number(m[2]) : 0);
}

function parseLine(line: Buffer): LogEntry | undefined {
  const s1 = line.indexOf(32);
  const s2 = s1 < 0 ? -1 : line.indexOf(32, s1 + 1);
  const s3 = s2 < 0 ? -1 : line.indexOf(32, s2 + 1);
  if (s3 < 0) {
    // "time stream F" with an empty payload has no trailing space
    if (s2 < 0) return undefined;
  }
  const time = normTime(line.subarray(0, s1).toString());
  const stream = line.subarray(s1 + 1, s2).toString();
  const tag = line.subarray(s2 + 1, s3 < 0 ? line.length : s3).toString();
  const payload = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  if (stream !== "stdout" && stream !== "stderr") return undefined;
  const data = tag.startsWith("F") ? Buffer.concat([payload, Buffer.from("\n")]) : Buffer.from(payload);
  return { time, stream, data };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const t = setTimeout(r, ms);
    signal?.addEventListener("abort", () => { clearTimeout(t); r(); }, { once: true });
  });
}

/** A CRI log line "time stream TAG payload" whose tag is F (the end of a line). */
function isFull(line: Buffer): boolean {
  const s1 = line.indexOf(32), s2 = s1 < 0 ? -1 : line.indexOf(32, s1 + 1);
  return s2 >= 0 && line[s2 + 1] === 0x46;
}

/**
 * Where the entries of the last `tail` lines begin: reads the file backwards
 * in blocks from `end`, so `logs --tail N` of a long log reads about N lines,
 * not the whole file. 0 when the file holds no more than `tail` lines.
 */
async function tailOffset(fh: fsp.FileHandle, end: number, tail: number): Promise<number> {
  const BLOCK = 64 * 1024;
  let start = end, full = 0;
  let region = Buffer.alloc(0); // the file from `start` to `end`
  let nextNl = -1; // the leftmost newline of region looked at so far
  while (start > 0) {
    const n = Math.min(BLOCK, start);
    const b = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh.read(b, 0, n, start - n);
    if (bytesRead !== n) return 0; // the file shrank under us: read it from the start
    start -= n;
    region = region.length ? Buffer.concat([b, region]) : b;
    if (nextNl >= 0) nextNl += n;
    const from = (nextNl >= 0 ? nextNl : region.length) - 1;
    for (let k = from >= 0 ? region.lastIndexOf(10, from) : -1; k >= 0; k = k > 0 ? region.lastIndexOf(10, k - 1) : -1) {
      // The entry from k+1 to nextNl is whole; what follows the last newline is not an entry yet.
      if (nextNl >= 0 && isFull(region.subarray(k + 1, nextNl)) && ++full > tail) return start + nextNl + 1;
      nextNl = k;
    }
  }
  return 0;
}

/** The entries of the last `tail` lines (and a partial line after them). */
function lastLines(entries: LogEntry[], tail: number): LogEntry[] {
  let lines = 0, i = entries.length;
  while (i > 0) {
    const e = entries[i - 1];
    if (e.data[e.data.length - 1] === 10) { if (lines === tail) break; lines++; }
    i--;
  }
  return entries.slice(i);
}

/**
 * The log's entries. Reads are bounded: each pass reads at most what the file
 * held when it began, in 64 KiB blocks, yielding as it goes, so a writer that
 * never pauses (`while :; do echo; done`) cannot keep a reader from answering,
 * and memory stays flat however long the log is. `tail` starts near the end.
 */
export async function* readLog(path: string, opts: ReadLogOptions = {}): AsyncIterable<LogEntry> {
  let fh: fsp.FileHandle | undefined;
  const open = async () => { try { fh = await fsp.open(path, "r"); } catch { fh = undefined; } };
  await open();
  let pos = 0;
  let rest = Buffer.alloc(0);
  const buf = Buffer.alloc(64 * 1024);
  const keep = (e: LogEntry) => {
    if (opts.since === undefined && opts.until === undefined) return true;
    const s = seconds(e.time);
    return (opts.since === undefined || s >= opts.since) && (opts.until === undefined || s <= opts.until);
  };
  /** The complete entries between pos and the file's size now, a block at a time. */
  async function* drain(): AsyncGenerator<LogEntry[]> {
    if (!fh) { await open(); if (!fh) return; }
    const end = (await fh.stat()).size;
    while (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      let chunk = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const out: LogEntry[] = [];
      let nl: number;
      while ((nl = chunk.indexOf(10)) >= 0) {
        const e = parseLine(chunk.subarray(0, nl));
        if (e && keep(e)) out.push(e);
        chunk = chunk.subarray(nl + 1);
      }
      rest = Buffer.from(chunk);
      if (out.length) yield out;
    }
  }
  try {
    const tail = opts.tail ?? -1;
    if (tail === 0) {
      pos = fh ? (await fh.stat()).size : 0;
    } else if (tail > 0) {
      if (fh) pos = await tailOffset(fh, (await fh.stat()).size, tail);
      // The last `tail` lines (a line is a run of partial entries ended by a full one), kept as a window.
      let win: LogEntry[] = [];
      let lines = 0;
      for await (const batch of drain()) {
        for (const e of batch) {
          win.push(e);
          if (e.data[e.data.length - 1] === 10) lines++;
        }
        if (lines > tail && win.length > 4 * tail + 1024) { win = lastLines(win, tail); lines = tail; }
      }
      for (const e of lastLines(win, tail)) yield e;
    } else {
      for await (const batch of drain()) yield* batch;
    }
    if (!opts.follow) return;
    let idle = 0;
    while (!opts.signal?.aborted) {
      let got = false;
      for await (const batch of drain()) { got = true; yield* batch; if (opts.signal?.aborted) return; }
      if (got) { idle = 0; continue; }
      if (opts.stopWhen?.()) {
        // One more read after the stop condition, so nothing written before the exit is lost.
        for await (const batch of drain()) yield* batch;
        return;
      }
      idle++;
      await sleep(idle < 20 ? 25 : 100, opts.signal);
    }
  } finally {
    await fh?.close();
  }
}

// ---------------------------------------------------------------- spool pump

/** Converts conmon's timestamp (local offset) to Docker's UTC RFC3339Nano (fraction without trailing zeros). */
export function utcNano(t: string): string {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return t;
  let base = m[1];
  if (m[3] !== "Z" && m[3] !== "+00:00" && m[3] !== "-00:00") base = new Date(Date.parse(m[1] + m[3])).toISOString().slice(0, 19);
  const frac = (m[2] ?? "").replace(/0+$/, "");
  return `${base}${frac ? "." + frac : ""}Z`;
}

/** Docker's copier buffer: a line longer than this is logged in partial pieces. */
const MAX_ENTRY = 16 * 1024;

/**
 * Spool lines → entries: "F" ends a line (its newline restored), runs of "P"
 * pieces of one stream are joined to the line they end (up to 16 KiB, as
 * Docker's copier buffers), a run still open at the end stays partial.
 */
export function spoolEntries(lines: Buffer[]): LogEntry[] {
  const out: LogEntry[] = [];
  let open: { time: string; stream: "stdout" | "stderr"; parts: Buffer[]; len: number } | undefined;
  const close = (nl: boolean) => {
    if (!open) return;
    if (nl) open.parts.push(NL);
    out.push({ time: open.time, stream: open.stream, data: open.parts.length === 1 ? open.parts[0] : Buffer.concat(open.parts) });
    open = undefined;
  };
  // conmon stamps every line of one read with the same time: convert each distinct stamp once.
  let rawTime = "", time = "";
  for (const line of lines) {
    const s1 = line.indexOf(32), s2 = s1 < 0 ? -1 : line.indexOf(32, s1 + 1);
    if (s2 - s1 !== 7) continue;
    const c = line[s1 + 4]; // std(o)ut / std(e)rr
    const stream = c === 0x6f ? "stdout" : c === 0x65 ? "stderr" : undefined;
    if (!stream) continue;
    const full = line[s2 + 1] === 0x46;
    const payload = line.length > s2 + 3 ? Buffer.from(line.subarray(s2 + 3)) : Buffer.alloc(0);
    if (open && (open.stream !== stream || open.len + payload.length > MAX_ENTRY)) close(false);
    if (!open) {
      const raw = line.toString("latin1", 0, s1);
      if (raw !== rawTime) { rawTime = raw; time = utcNano(raw); }
      open = { time, stream, parts: [], len: 0 };
    }
    if (payload.length) { open.parts.push(payload); open.len += payload.length; }
    if (full) close(true);
  }
  close(false);
  return out;
}
const NL = Buffer.from("\n");

export interface SpoolPumpOptions {
  /** conmon's k8s-file. */
  spool: string;
  /** conmon's ctl fifo (rotation requests); null: never ask for one. */
  ctl: string | null;
  /** Receives each batch in order; the next batch waits for it. */
  sink: (entries: LogEntry[]) => Promise<void>;
  /** Converted bytes after which the spool is rotated (default 256 KiB). */
  rotateAt?: number;
  /** Called after every batch reaches the sink (wakes followers). */
  onWrite?: () => void;
}

/**
 * The slow fallback of every running pump, on one timer: each pass finds what fs.watch may have
 * missed. One wake-up every 2 s for the daemon, not one per container.
 */
const slowPumps = new Set<SpoolPump>();
let slowTimer: NodeJS.Timeout | undefined;
function slowJoin(p: SpoolPump): void {
  slowPumps.add(p);
  if (!slowTimer) { slowTimer = setInterval(() => { for (const x of slowPumps) x.poke(); }, 2000); slowTimer.unref(); }
}
function slowLeave(p: SpoolPump): void {
  slowPumps.delete(p);
  if (!slowPumps.size && slowTimer) { clearInterval(slowTimer); slowTimer = undefined; }
}

export class SpoolPump {
  private fh: fsp.FileHandle | undefined;
  private ino = 0;
  private pos = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private stopped = false;
  private rotateAsked = false;
  /** Files conmon renamed over the spool while an older one was still being read, opened at once, oldest first. */
  private newer: { fh: fsp.FileHandle; ino: number }[] = [];
  private readonly posPath: string;

  constructor(private readonly o: SpoolPumpOptions) {
    this.posPath = o.spool + ".pos";
  }

  /** Starts following the spool (a running container). */
  start(): void {
    this.stopped = false;
    this.watchSpool();
    slowJoin(this);
    this.kick(0);
  }

  /** The shared slow timer's visit. */
  poke(): void { this.kick(0); }

  private watchSpool(): void {
    this.watcher?.close();
    this.watcher = undefined;
    try {
      this.watcher = watch(this.o.spool, { persistent: false }, () => this.kick(20));
      this.watcher.on("error", () => { this.watcher?.close(); this.watcher = undefined; });
    } catch { /* not there yet: the slow timer finds it */ }
  }

  private kick(ms: number): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush().catch(() => {}); }, ms);
    this.timer.unref?.();
  }

  /** Converts everything the spool holds now; concurrent calls share one pass (and one more after it). */
  flush(): Promise<void> {
    if (this.running) { this.again = true; return this.running; }
    this.running = (async () => {
      try {
        do { this.again = false; await this.pass(); } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /**
   * Final conversion and release (the container exited, or the daemon stops).
   * `exited`: conmon is gone, so a spool converted to its end is emptied (a
   * restart's conmon appends to it from 0).
   */
  async stop(exited = false): Promise<void> {
    this.stopped = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    slowLeave(this);
    this.watcher?.close();
    this.watcher = undefined;
    await this.flush().catch(() => {});
    if (exited && this.fh) {
      const [mine, onDisk] = await Promise.all([this.fh.stat(), fsp.stat(this.o.spool).catch(() => undefined)]);
      if (onDisk?.ino === this.ino && this.pos >= mine.size) {
        await fsp.truncate(this.o.spool, 0).catch(() => {});
        this.pos = 0;
        await fsp.writeFile(this.posPath, `${this.ino} 0\n`).catch(() => {});
      }
    }
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    for (const n of this.newer.splice(0)) await n.fh.close().catch(() => {});
  }

  private async openSpool(): Promise<boolean> {
    let fh: fsp.FileHandle;
    try { fh = await fsp.open(this.o.spool, "r"); } catch { return false; }
    const st = await fh.stat();
    this.fh = fh;
    this.ino = st.ino;
    this.pos = 0;
    const saved = await fsp.readFile(this.posPath, "utf8").catch(() => "");
    const [ino, pos] = saved.trim().split(" ").map(Number);
    if (ino === st.ino && pos > 0 && pos <= st.size) this.pos = pos;
    return true;
  }

  /** Reads the open spool from pos to its end, whole lines only, into the sink. */
  private async drain(): Promise<void> {
    const fh = this.fh!;
    const end = (await fh.stat()).size;
    const BLOCK = 256 * 1024;
    let buf = Buffer.allocUnsafe(Math.min(BLOCK, Math.max(0, end - this.pos)));
    while (this.pos < end) {
      const want = Math.min(BLOCK, end - this.pos);
      if (buf.length < want) buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, this.pos);
      if (!bytesRead) break;
      const chunk = buf.subarray(0, bytesRead);
      const cut = chunk.lastIndexOf(10);
      if (cut < 0) {
        if (bytesRead < BLOCK) break; // a line still being written
        // A line longer than a block (conmon splits at 8 KiB, so not from conmon): take it as is.
      }
      const whole = cut < 0 ? chunk : chunk.subarray(0, cut + 1);
      const lines: Buffer[] = [];
      let at = 0, nl: number;
      while ((nl = whole.indexOf(10, at)) >= 0) { lines.push(whole.subarray(at, nl)); at = nl + 1; }
      if (at < whole.length) lines.push(whole.subarray(at));
      const entries = spoolEntries(lines);
      if (entries.length) await this.o.sink(entries);
      this.pos += whole.length;
      await fsp.writeFile(this.posPath, `${this.ino} ${this.pos}\n`).catch(() => {});
      if (entries.length) this.o.onWrite?.();
      if (cut < 0 && bytesRead < BLOCK) break;
      // A burst can outrun the pump by more than conmon's --log-size-max: catch each file conmon puts
      // in place while this one is read, before a second rename unlinks it unread.
      await this.catchRenames();
    }
  }

  /** Opens the file the spool's path names when it is newer than the last one held (no file is skipped). */
  private async catchRenames(): Promise<void> {
    const last = this.newer.length ? this.newer[this.newer.length - 1].ino : this.ino;
    const st = await fsp.stat(this.o.spool).catch(() => undefined);
    if (!st || st.ino === last) return;
    const fh = await fsp.open(this.o.spool, "r").catch(() => undefined);
    if (!fh) return;
    const ino = (await fh.stat()).ino;
    if (ino === last) { await fh.close().catch(() => {}); return; }
    this.newer.push({ fh, ino });
  }

  private async pass(): Promise<void> {
    if (!this.fh && !(await this.openSpool())) return;
    if (!this.watcher && !this.stopped) this.watchSpool();
    for (;;) {
      await this.drain();
      // Did conmon put a new file in place (our rotation request, or its --log-size-max)?
      await this.catchRenames();
      const next = this.newer.shift();
      if (next) {
        await this.drain(); // what conmon wrote to the old file before the rename
        await this.fh!.close().catch(() => {});
        this.fh = next.fh;
        this.ino = next.ino;
        this.pos = 0;
        this.rotateAsked = false;
        await fsp.writeFile(this.posPath, `${next.ino} 0\n`).catch(() => {});
        if (!this.stopped) this.watchSpool();
        continue;
      }
      break;
    }
    if (!this.stopped && !this.rotateAsked && this.o.ctl && this.pos >= (this.o.rotateAt ?? 256 * 1024)) {
      this.rotateAsked = await askReopen(this.o.ctl);
      if (this.rotateAsked) this.kick(20);
    }
  }
}

/** "Reopen the log files" on conmon's ctl fifo; false when nobody reads it (conmon is gone). */
async function askReopen(ctl: string): Promise<boolean> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(ctl, fsc.O_WRONLY | fsc.O_NONBLOCK);
    await fh.write("2 0 0\n");
    return true;
  } catch {
    return false;
  } finally {
    await fh?.close().catch(() => {});
  }
}
