/**
 * Reader for the container log conmon writes (k8s-file / CRI format):
 *   2024-01-01T00:00:00.000000000+00:00 stdout F a full line
 *   2024-01-01T00:00:00.000000000+00:00 stderr P a partial line (no newline)
 * Entries come back with Docker's RFC3339Nano UTC timestamps. `follow`
 * keeps reading what is appended until `stopWhen()` holds and the file is
 * drained, or the signal aborts.
 */
import { promises as fsp } from "node:fs";

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
