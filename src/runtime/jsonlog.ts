/**
 * Docker's json-file log, on disk exactly as dockerd writes it
 * (daemon/logger/jsonfilelog + loggerutils/logfile.go):
 *
 *   <dir>/<id>-json.log      one object per line, in this key order:
 *     {"log":"hello\n","stream":"stdout","time":"2026-12-01T22:44:57.718978466Z"}
 *   "log" is the line with its newline (a partial line has none); strings
 *   are escaped as Docker's ffjson does (\n, \r, \" and \\ by name; other
 *   control bytes and < > & as \u00XX; U+2028/9 escaped); "time" is UTC,
 *   RFC3339Nano (trailing zeros of the fraction dropped, as Go prints it).
 *
 * Rotation (JsonLogWriter), as Docker: before each entry, when the file
 * already holds max-size bytes or more, `<file>.N-1` → `<file>.N` … down to
 * `.1`, the file → `<file>.1`, and a new file begins; so a file exceeds
 * max-size by at most one entry. max-file counts the current file. With
 * compress=true the rotated files are `<file>.N.gz` (the fresh `.1` is
 * compressed in the background; the next rotation waits for it), with
 * Docker's gzip header extra field {"lastTime": "<last entry's time>"}.
 * max-file=1 drops the old file.
 *
 * Reading (readJsonLog): the rotated files oldest first (`.N` or `.N.gz`),
 * then the current file; `tail` reads the current file backwards and the
 * older files only when it needs more; `follow` keeps reading the current
 * file and moves on when it is rotated (its inode changes), until
 * `stopWhen()` holds and everything is read, or the signal aborts.
 */
import { promises as fsp, createReadStream, createWriteStream, type Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import type { LogEntry, ReadLogOptions } from "./logs.js";

export interface JsonLogOptions {
  /** Bytes; -1: never rotate. */
  maxSize: number;
  /** Files kept, the current one included (>= 1). */
  maxFiles: number;
  compress: boolean;
  /** Raw JSON object written as each entry's "attrs" (Docker's labels/env/tag options). */
  attrs?: string;
}

// ---------------------------------------------------------------- encoding

const ESC: Record<string, string> = { "\\b": "\\u0008", "\\f": "\\u000c", "\\t": "\\u0009", "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029" };
const NEEDS_FIX = /[\b\f\t<>&\u2028\u2029]/;
const FIX = /\\(?:u[0-9a-fA-F]{4}|.)|[<>&\u2028\u2029]/g;

/** A JSON string literal of `s`, escaped as Docker's json-file writer escapes it. */
export function dockerJsonString(s: string): string {
  const j = JSON.stringify(s);
  if (!NEEDS_FIX.test(s)) return j;
  return j.replace(FIX, (m) => ESC[m] ?? m);
}

/** One line of the file (with its newline). `time` must already be Docker's form; `attrs` is the raw JSON of --log-opt labels/env/tag. */
export function encodeEntry(e: LogEntry, attrs?: string): string {
  const log = e.data.length ? `"log":${dockerJsonString(e.data.toString("utf8"))},` : "";
  return `{${log}"stream":"${e.stream}",${attrs ? `"attrs":${attrs},` : ""}"time":"${e.time}"}\n`;
}

/** Go's json.Marshal of a map[string]string: keys sorted, < > & and U+2028/9 escaped. */
export function goJsonMap(m: Record<string, string>): string {
  const esc = (v: string) => JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return `{${Object.keys(m).sort().map((k) => `${esc(k)}:${esc(m[k])}`).join(",")}}`;
}

/** A stamp as `logs --timestamps` prints it (Docker's RFC3339NanoFixed: always nine fraction digits). */
export function fixedNano(t: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(t);
  return m ? `${m[1]}.${(m[2] ?? "").padEnd(9, "0")}Z` : t;
}

/** Parses one line of a json-file log (its time as `logs` shows it); undefined for a torn or foreign line. */
export function decodeLine(line: Buffer | string): LogEntry | undefined {
  try {
    const o = JSON.parse(typeof line === "string" ? line : line.toString("utf8")) as { log?: string; stream?: string; time?: string };
    if (typeof o.time !== "string") return undefined;
    const stream = o.stream === "stderr" ? "stderr" : "stdout";
    return { time: fixedNano(o.time), stream, data: Buffer.from(o.log ?? "", "utf8") };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- writing

/** Writes json-file logs with Docker's rotation. One writer per file; calls are serialized by the caller (awaited in turn). */
export class JsonLogWriter {
  private fh: fsp.FileHandle | undefined;
  private size = 0;
  private lastTime = "";
  private compressing: Promise<void> = Promise.resolve();

  constructor(readonly path: string, readonly opts: JsonLogOptions) {}

  private async open(flags: string): Promise<fsp.FileHandle> {
    const fh = await fsp.open(this.path, flags, 0o640);
    this.size = flags === "a" ? (await fh.stat()).size : 0;
    return fh;
  }

  /** Appends entries, rotating between entries as Docker does; one writev per run of entries between rotations. */
  async write(entries: LogEntry[]): Promise<void> {
    if (!entries.length) return;
    this.fh ??= await this.open("a");
    let parts: Buffer[] = [];
    let pending = 0;
    const flush = async () => {
      if (!parts.length) return;
      await this.fh!.writev(parts);
      this.size += pending;
      parts = []; pending = 0;
    };
    for (const e of entries) {
      if (this.opts.maxSize > 0 && this.size + pending >= this.opts.maxSize) {
        await flush();
        await this.rotate();
      }
      const b = Buffer.from(encodeEntry(e, this.opts.attrs));
      parts.push(b);
      pending += b.length;
      this.lastTime = e.time;
    }
    await flush();
  }

  private async rotate(): Promise<void> {
    await this.compressing;
    await this.fh?.close();
    this.fh = undefined;
    const { maxFiles, compress } = this.opts;
    const gz = compress && maxFiles > 1;
    if (maxFiles < 2) {
      await fsp.rm(this.path, { force: true });
    } else {
      const ext = gz ? ".gz" : "";
      await fsp.rm(`${this.path}.${maxFiles - 1}${ext}`, { force: true });
      for (let i = maxFiles - 1; i > 1; i--) await fsp.rename(`${this.path}.${i - 1}${ext}`, `${this.path}.${i}${ext}`).catch(() => {});
      await fsp.rename(this.path, `${this.path}.1`).catch(() => {});
    }
    this.fh = await this.open("w");
    if (gz) {
      const src = `${this.path}.1`, last = this.lastTime;
      this.compressing = gzipFile(src, `${src}.gz`, last).then(() => fsp.rm(src, { force: true })).catch(() => fsp.rm(`${src}.gz`, { force: true }).catch(() => {}));
    }
  }

  /** Waits for a compression in flight and closes the file. */
  async close(): Promise<void> {
    await this.compressing;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }
}

/**
 * gzip of `src` into `dst` with Docker's header: FEXTRA holding
 * {"lastTime":...} (what Go's gzip.Writer writes for Header.Extra: the raw
 * bytes, no subfield framing), then deflate, CRC-32 and size.
 */
export async function gzipFile(src: string, dst: string, lastTime: string): Promise<void> {
  const extra = Buffer.from(JSON.stringify({ lastTime }));
  const header = Buffer.alloc(12);
  header.set([0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 255], 0);
  header.writeUInt16LE(extra.length, 10);
  let crc = 0, size = 0;
  const sum = new Transform({
    transform(chunk: Buffer, _enc, cb) { crc = zlib.crc32(chunk, crc); size += chunk.length; cb(null, chunk); },
  });
  const out = createWriteStream(dst, { mode: 0o640 });
  out.write(Buffer.concat([header, extra]));
  const trailer = new Transform({
    transform(chunk: Buffer, _enc, cb) { cb(null, chunk); },
    flush(cb) { const t = Buffer.alloc(8); t.writeUInt32LE(crc >>> 0, 0); t.writeUInt32LE(size >>> 0, 4); cb(null, t); },
  });
  await pipeline(createReadStream(src), sum, zlib.createDeflateRaw(), trailer, out);
}

/** The lastTime of a gzip file written by Docker (or us); undefined when it has none. */
async function gzLastTime(path: string): Promise<string | undefined> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(path, "r");
    const b = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    if (bytesRead < 12 || b[0] !== 0x1f || b[1] !== 0x8b || !(b[3] & 4)) return undefined;
    const len = b.readUInt16LE(10);
    const o = JSON.parse(b.subarray(12, Math.min(12 + len, bytesRead)).toString()) as { lastTime?: string };
    return o.lastTime;
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}

// ---------------------------------------------------------------- reading

/** Seconds since the epoch of an RFC3339Nano stamp. */
export function seconds(t: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return Date.parse(t) / 1000;
  return Date.parse(m[1] + m[3]) / 1000 + (m[2] ? Number(m[2]) : 0);
}

interface Rotated { n: number; path: string; gz: boolean }

/** The rotated files of `path`, oldest first; a plain `.N` wins over `.N.gz` (it is being compressed). */
export async function rotatedFiles(path: string): Promise<Rotated[]> {
  const base = basename(path), dir = dirname(path);
  const byN = new Map<number, Rotated>();
  for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(base + ".")) continue;
    const m = /^\.(\d+)(\.gz)?$/.exec(name.slice(base.length));
    if (!m) continue;
    const n = Number(m[1]), gz = !!m[2];
    const have = byN.get(n);
    if (!have || (have.gz && !gz)) byN.set(n, { n, path: join(dir, name), gz });
  }
  return [...byN.values()].sort((a, b) => b.n - a.n);
}

/** Every log file of `path` (rotated ones and the current), for removal and disk accounting. */
export async function allLogFiles(path: string): Promise<string[]> {
  const base = basename(path), dir = dirname(path);
  return (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => n === base || (n.startsWith(base + ".") && /^\.(\d+)(\.gz)?$/.test(n.slice(base.length)))).map((n) => join(dir, n));
}

/** Lines (without newline) of a whole file, plain or gzip, a block at a time. */
async function* fileLines(path: string, gz: boolean, end?: number): AsyncGenerator<Buffer[]> {
  const src = createReadStream(path, end === undefined ? {} : { end: end - 1 });
  const stream = gz ? src.pipe(zlib.createGunzip()) : src;
  let rest = Buffer.alloc(0);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
      const out: Buffer[] = [];
      let nl: number;
      while ((nl = buf.indexOf(10)) >= 0) { out.push(buf.subarray(0, nl)); buf = buf.subarray(nl + 1); }
      rest = Buffer.from(buf);
      if (out.length) yield out;
    }
  } finally {
    src.destroy();
  }
}

/** The offset where the last `n` lines of fh[0, end) begin (0 if it holds fewer). */
async function tailStart(fh: fsp.FileHandle, end: number, n: number): Promise<{ start: number; lines: number }> {
  const BLOCK = 64 * 1024;
  let pos = end, lines = 0;
  const b = Buffer.allocUnsafe(BLOCK);
  let first = true;
  while (pos > 0) {
    const len = Math.min(BLOCK, pos);
    const { bytesRead } = await fh.read(b, 0, len, pos - len);
    if (bytesRead !== len) return { start: 0, lines: 0 };
    let k = len - 1;
    if (first) { if (b[k] === 10) k--; first = false; }
    for (; k >= 0; k--) {
      if (b[k] === 10 && ++lines === n) return { start: pos - len + k + 1, lines };
    }
    pos -= len;
  }
  return { start: 0, lines: end > 0 ? lines + 1 : 0 };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((r) => {
    const done = () => { clearTimeout(t); signal?.removeEventListener("abort", done); r(); };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface ReadJsonLogOptions extends ReadLogOptions {
  /** Resolves when the writer may have written more (follow); polling is the fallback. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The entries of a json-file log and its rotated files; see the module header. */
export async function* readJsonLog(path: string, opts: ReadJsonLogOptions = {}): AsyncIterable<LogEntry> {
  const keep = (e: LogEntry) => {
    if (opts.since === undefined && opts.until === undefined) return true;
    const s = seconds(e.time);
    return (opts.since === undefined || s >= opts.since) && (opts.until === undefined || s <= opts.until);
  };
  const decode = (lines: Buffer[]): LogEntry[] => {
    const out: LogEntry[] = [];
    for (const l of lines) { const e = decodeLine(l); if (e && keep(e)) out.push(e); }
    return out;
  };
  let fh: fsp.FileHandle | undefined;
  let st: Stats | undefined;
  try { fh = await fsp.open(path, "r"); st = await fh.stat(); } catch { fh = undefined; }
  // Where following the current file begins: after its last whole line (a write may be under way).
  let pos = fh && st ? await lastLineEnd(fh, st.size) : 0;
  const curIno = st?.ino;
  const rotated: Rotated[] = [];
  for (const r of await rotatedFiles(path)) {
    if (!r.gz && curIno !== undefined) {
      const s = await fsp.stat(r.path).catch(() => undefined);
      if (s?.ino === curIno) continue; // rotated between our open and the listing
    }
    if (r.gz && opts.since !== undefined) {
      const last = await gzLastTime(r.path);
      if (last && seconds(last) < opts.since) continue;
    }
    rotated.push(r);
  }
  const tail = opts.tail ?? -1;
  try {
    if (tail > 0) {
      // Newest first, until `tail` lines are found; then yield oldest first.
      const chunks: Buffer[][] = [];
      let need = tail;
      if (fh && pos > 0) {
        const { start } = await tailStart(fh, pos, need);
        const cur = splitLines(await readRange(fh, start, pos)).slice(-need);
        chunks.unshift(cur);
        need -= cur.length;
      }
      for (let i = rotated.length - 1; i >= 0 && need > 0; i--) {
        let win: Buffer[] = [];
        for await (const b of fileLines(rotated[i].path, rotated[i].gz)) {
          win.push(...b);
          if (win.length > 2 * need + 1024) win = win.slice(-need);
        }
        win = win.slice(-need);
        chunks.unshift(win);
        need -= win.length;
      }
      for (const c of chunks) yield* decode(c);
    } else if (tail !== 0) {
      for (const r of rotated) for await (const b of fileLines(r.path, r.gz)) yield* decode(b);
      if (fh && pos > 0) {
        let at = 0;
        while (at < pos) {
          const n = Math.min(256 * 1024, pos - at);
          const buf = await readRange(fh, at, at + n);
          const cut = buf.lastIndexOf(10);
          if (cut < 0) { if (n < 256 * 1024) break; at += n; continue; }
          yield* decode(splitLines(buf.subarray(0, cut + 1)));
          at += cut + 1;
        }
      }
    }
    if (!opts.follow) return;
    let rest = Buffer.alloc(0);
    let idle = 0;
    const drain = async function* (): AsyncGenerator<LogEntry[]> {
      if (!fh) return;
      const end = (await fh.stat()).size;
      while (pos < end) {
        const buf = await readRange(fh, pos, Math.min(end, pos + 256 * 1024));
        if (!buf.length) break;
        pos += buf.length;
        const all = rest.length ? Buffer.concat([rest, buf]) : buf;
        const cut = all.lastIndexOf(10);
        rest = Buffer.from(all.subarray(cut + 1));
        if (cut >= 0) { const out = decode(splitLines(all.subarray(0, cut + 1))); if (out.length) yield out; }
      }
    };
    /** Moves to a new current file when the writer rotated; true when it did. */
    const switched = async (): Promise<boolean> => {
      const s = await fsp.stat(path).catch(() => undefined);
      if (!s || (fh && s.ino === (await fh.stat()).ino)) return false;
      if (fh) { for await (const b of drain()) yield_.push(...b); await fh.close(); }
      fh = await fsp.open(path, "r").catch(() => undefined);
      pos = 0; rest = Buffer.alloc(0);
      return true;
    };
    const yield_: LogEntry[] = [];
    while (!opts.signal?.aborted) {
      let got = false;
      for await (const batch of drain()) { got = true; yield* batch; if (opts.signal?.aborted) return; }
      if (await switched()) { got = true; yield* yield_.splice(0); continue; }
      if (got) { idle = 0; continue; }
      if (opts.stopWhen?.()) {
        for await (const batch of drain()) yield* batch;
        if (await switched()) { yield* yield_.splice(0); for await (const batch of drain()) yield* batch; }
        return;
      }
      idle++;
      const ms = idle < 20 ? 25 : 250;
      await (opts.wait ? opts.wait(ms, opts.signal) : sleep(ms, opts.signal));
    }
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** The offset just after the last newline of fh[0, end). */
async function lastLineEnd(fh: fsp.FileHandle, end: number): Promise<number> {
  let at = end;
  while (at > 0) {
    const from = Math.max(0, at - 4096);
    const b = await readRange(fh, from, at);
    const k = b.lastIndexOf(10);
    if (k >= 0) return from + k + 1;
    at = from;
  }
  return 0;
}

async function readRange(fh: fsp.FileHandle, from: number, to: number): Promise<Buffer> {
  const b = Buffer.allocUnsafe(Math.max(0, to - from));
  let off = 0;
  while (off < b.length) {
    const { bytesRead } = await fh.read(b, off, b.length - off, from + off);
    if (!bytesRead) break;
    off += bytesRead;
  }
  return b.subarray(0, off);
}

function splitLines(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0, nl: number;
  while ((nl = buf.indexOf(10, at)) >= 0) { out.push(buf.subarray(at, nl)); at = nl + 1; }
  if (at < buf.length) out.push(buf.subarray(at));
  return out;
}
