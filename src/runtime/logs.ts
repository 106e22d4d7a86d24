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
  /** Reads what is there now; returns the complete entries. */
  const drain = async (): Promise<LogEntry[]> => {
    if (!fh) { await open(); if (!fh) return []; }
    const out: LogEntry[] = [];
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      let chunk = Buffer.concat([rest, buf.subarray(0, bytesRead)]);
      let nl: number;
      while ((nl = chunk.indexOf(10)) >= 0) {
        const e = parseLine(chunk.subarray(0, nl));
        if (e && keep(e)) out.push(e);
        chunk = chunk.subarray(nl + 1);
      }
      rest = Buffer.from(chunk);
    }
    return out;
  };
  try {
    let first = await drain();
    const tail = opts.tail ?? -1;
    if (tail >= 0) {
      // The last `tail` lines; a line is a run of partial entries ended by a full one.
      let lines = 0, i = first.length;
      while (i > 0) {
        const e = first[i - 1];
        if (e.data[e.data.length - 1] === 10) { if (lines === tail) break; lines++; }
        i--;
      }
      first = first.slice(i);
    }
    for (const e of first) yield e;
    if (!opts.follow) return;
    let idle = 0;
    while (!opts.signal?.aborted) {
      const more = await drain();
      for (const e of more) yield e;
      if (more.length) { idle = 0; continue; }
      if (opts.stopWhen?.()) {
        // One more read after the stop condition, so nothing written before the exit is lost.
        for (const e of await drain()) yield e;
        return;
      }
      idle++;
      await sleep(idle < 20 ? 25 : 100, opts.signal);
    }
  } finally {
    await fh?.close();
  }
}
