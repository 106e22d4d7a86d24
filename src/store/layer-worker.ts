/**
 * The layer worker (a worker_threads entry; see layer-jobs.ts for the
 * protocol and contract). One job at a time: the bytes of a layer arrive in
 * batches; each batch is, in order,
 *   1. for a pull, hashed and appended to a file in the content store's
 *      ingest/ (committed under blobs/ only once digest and size match),
 *   2. decompressed (gzip through zlib, zstd through fzstd, or none),
 *   3. hashed for the diff ID and extracted by a TarUnpacker,
 * and then acknowledged (its buffer handed back for reuse). Everything here
 * may block: this thread does nothing else.
 *
 * Limits (layer-jobs.ts states them): the tar stream a compressed layer
 * inflates to is counted against max(minBytes, maxRatio × compressed bytes
 * read so far), and the free space of the target filesystem is checked every
 * 32 MiB against reserveBytes; past either the job fails (a gzip decoder is
 * torn down at once, not left to inflate the rest of its batch). Error
 * messages never carry a host path: the unpack directory and the content
 * store's root are cut out of them.
 */
import { parentPort } from "node:worker_threads";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, fsyncSync, openSync, renameSync, rmSync, statfsSync, write, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { createGunzip } from "node:zlib";
import { Decompress } from "fzstd";
import { ContentStore } from "./content.js";
import { TarUnpacker } from "./tar-unpack.js";
import { BadParameterError, SystemError } from "../lib/errors.js";
import type { Compression, FromWorker, JobSpec, LayerLimits, ToWorker } from "./layer-jobs.js";

interface Decoder {
  write(c: Uint8Array): void | Promise<void>;
  end(): void | Promise<void>;
  /** Keeps references to input bytes after write() returns (so batches cannot be handed back). */
  readonly retains: boolean;
}

function gunzip(out: (b: Uint8Array) => void): Decoder {
  const z = createGunzip({ chunkSize: 1 << 20 });
  let err: unknown;
  let settle: ((e?: unknown) => void) | undefined;
  // An error thrown by `out` is kept and reported by the write it happened in; the stream is not torn down mid-write.
  // A limit crossed mid-batch stops the decoder there: the rest of the batch is not inflated for nothing.
  z.on("data", (d: Buffer) => { if (err === undefined) { try { out(d); } catch (e) { err = e; settle?.(e); z.destroy(); } } });
  z.on("error", (e) => { err ??= e; settle?.(e); });
  const wait = (start: (cb: (e?: unknown) => void) => void) => new Promise<void>((resolve, reject) => {
    if (err !== undefined) { reject(err); return; }
    settle = (e) => { settle = undefined; if (err !== undefined || e) reject(err ?? e); else resolve(); };
    start((e) => settle?.(e));
  });
  return {
    retains: false,
    write: (c) => wait((cb) => z.write(c, (e) => cb(e ?? undefined))),
    end: () => wait((cb) => { z.once("end", () => cb()); z.end(); }),
  };
}

function unzstd(out: (b: Uint8Array) => void): Decoder {
  const d = new Decompress((chunk) => { if (chunk.length) out(chunk); });
  return {
    retains: true,
    write: (c) => { d.push(c); },
    end: () => { d.push(new Uint8Array(0), true); },
  };
}

function sniff(b: Uint8Array): Exclude<Compression, "auto"> {
  if (b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
  if ((b[0] & 0xf0) === 0x50 && b[1] === 0x2a && b[2] === 0x4d && b[3] === 0x18) return "zstd"; // a skippable frame first
  return "none";
}

const ALIGN = 4096;
const STAGE = 4 << 20;
let stages: Uint8Array[] | undefined;
/** Two page-aligned 4 MiB buffers (WebAssembly memory is page-aligned, as O_DIRECT needs), reused by every job of this worker. */
function stagingBuffers(): Uint8Array[] {
  stages ??= [0, 1].map(() => new Uint8Array(new WebAssembly.Memory({ initial: STAGE >> 16, maximum: STAGE >> 16 }).buffer));
  return stages;
}

function pwrite(fd: number, b: Uint8Array, off: number, len: number, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number) => {
      if (done === len) { resolve(); return; }
      write(fd, b, off + done, len - done, pos + done, (e, n) => (e ? reject(e) : step(done + n)));
    };
    step(0);
  });
}

/**
 * A blob streaming into the content store: same contract as ContentStore.ingest (hashed on the way,
 * fsync'd, verified, renamed into blobs/), written with O_DIRECT where the filesystem allows it. A
 * compressed layer is cold data (read again only by push and save): it goes to disk without filling
 * the page cache, so the memory goes to the unpacked files and pages are not allocated twice. Full
 * 4 MiB stages are written in the background while the next fills; the unaligned tail goes through
 * an ordinary descriptor.
 */
class BlobWriter {
  private readonly hash = createHash("sha256");
  private readonly tmp: string;
  private fd: number;
  private direct = -1;
  private written = 0;
  /** File position where the current stage starts. */
  private pos = 0;
  private fill = 0;
  private stage = 0;
  private pending: Promise<void> = Promise.resolve();
  private error: unknown;

  constructor(private readonly content: ContentStore, private readonly digest: string, private readonly size: number) {
    this.tmp = join(content.root, "ingest", randomBytes(8).toString("hex"));
    this.fd = openSync(this.tmp, "w", 0o644);
    if (size >= STAGE) {
      try { this.direct = openSync(this.tmp, constants.O_WRONLY | constants.O_DIRECT); } catch { this.direct = -1; }
    }
  }

  async write(c: Uint8Array): Promise<void> {
    this.written += c.length;
    if (this.written > this.size) throw new BadParameterError(`size mismatch for ${this.digest}: expected ${this.size}, got more`);
    this.hash.update(c);
    if (this.direct < 0) {
      for (let o = 0; o < c.length;) o += writeSync(this.fd, c, o, c.length - o, this.pos + o);
      this.pos += c.length;
      return;
    }
    const bufs = stagingBuffers();
    for (let off = 0; off < c.length;) {
      const k = Math.min(c.length - off, STAGE - this.fill);
      bufs[this.stage].set(k === c.length ? c : c.subarray(off, off + k), this.fill);
      this.fill += k;
      off += k;
      if (this.fill === STAGE) {
        await this.pending; // the other stage is free again
        if (this.error !== undefined) throw this.error;
        this.pending = this.flush(bufs[this.stage], STAGE, this.pos);
        this.pos += STAGE;
        this.fill = 0;
        this.stage ^= 1;
      }
    }
  }

  /** Writes len bytes (a multiple of ALIGN) of a stage at pos, directly; buffered if the filesystem refuses. */
  private flush(b: Uint8Array, len: number, pos: number): Promise<void> {
    return pwrite(this.direct, b, 0, len, pos).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "EINVAL") { this.error ??= e; return; }
      for (let o = 0; o < len;) o += writeSync(this.fd, b, o, len - o, pos + o);
    });
  }

  async commit(): Promise<void> {
    await this.pending;
    if (this.error !== undefined) throw this.error;
    if (this.direct >= 0) {
      const b = stagingBuffers()[this.stage], aligned = this.fill - (this.fill % ALIGN);
      if (aligned) await this.flush(b, aligned, this.pos);
      if (this.error !== undefined) throw this.error;
      for (let o = aligned; o < this.fill;) o += writeSync(this.fd, b, o, this.fill - o, this.pos + o);
      closeSync(this.direct);
      this.direct = -1;
    }
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
    const digest = "sha256:" + this.hash.digest("hex");
    if (digest !== this.digest) throw new BadParameterError(`digest mismatch: expected ${this.digest}, got ${digest}`);
    if (this.written !== this.size) throw new BadParameterError(`size mismatch for ${digest}: expected ${this.size}, got ${this.written}`);
    const final = this.content.path(digest);
    renameSync(this.tmp, final);
    try {
      const d = openSync(dirname(final), "r");
      try { fsyncSync(d); } finally { closeSync(d); }
    } catch { /* directory fsync is best effort */ }
  }

  async abort(): Promise<void> {
    await this.pending; // no write may be in flight on a descriptor being closed
    for (const fd of [this.fd, this.direct]) if (fd >= 0) { try { closeSync(fd); } catch { /* gone */ } }
    this.fd = this.direct = -1;
    rmSync(this.tmp, { force: true });
  }
}

const mib = (n: number) => n >= 1 << 30 && n % (1 << 30) === 0 ? `${n / (1 << 30)} GiB` : `${Math.round(n / (1 << 20))} MiB`;
/** Free space is checked every this many bytes read or unpacked. */
const DISK_CHECK = 32 << 20;

class Job {
  private readonly diff = createHash("sha256");
  /** Bytes read (compressed, as they come) and the tar bytes they inflated to. */
  private inBytes = 0;
  private outBytes = 0;
  private nextDiskCheck = 0;
  private compressed = false;
  private readonly unpacker: TarUnpacker;
  private readonly blob: BlobWriter | undefined;
  private decoder: Decoder | undefined;
  private head: Uint8Array[] = [];
  private readonly queue: (Uint8Array | "end")[] = [];
  private running = false;
  private aborted = false;
  private finished = false;

  constructor(private readonly spec: JobSpec, private readonly limits: LayerLimits, private readonly post: (m: FromWorker, transfer?: ArrayBuffer[]) => void) {
    this.unpacker = new TarUnpacker(spec.dir, spec.idMaps);
    this.blob = spec.blob ? new BlobWriter(new ContentStore(spec.blob.contentRoot), spec.blob.digest, spec.blob.size) : undefined;
    if (spec.compression !== "auto") this.decoder = this.makeDecoder(spec.compression);
  }

  push(item: Uint8Array | "end"): void {
    this.queue.push(item);
    if (!this.running) void this.drain();
  }

  abort(): void {
    this.aborted = true;
    if (!this.running) void this.drain();
  }

  private makeDecoder(c: Exclude<Compression, "auto">): Decoder {
    this.compressed = c !== "none";
    const out = (b: Uint8Array) => {
      this.outBytes += b.length;
      if (this.compressed) {
        const { maxRatio, minBytes } = this.limits;
        const limit = Math.max(minBytes, maxRatio * this.inBytes);
        if (this.outBytes > limit) {
          throw new BadParameterError(`layer refused: it decompresses to more than ${mib(limit)} from ${mib(this.inBytes)} of ${c} (over ${maxRatio}:1 past ${mib(minBytes)}): a decompression bomb?`);
        }
      }
      this.checkDisk();
      this.diff.update(b);
      this.unpacker.write(b);
    };
    return c === "gzip" ? gunzip(out) : c === "zstd" ? unzstd(out) : { retains: false, write: out, end: () => {} };
  }

  private async drain(): Promise<void> {
    if (this.finished) return;
    this.running = true;
    try {
      for (;;) {
        if (this.aborted) throw new Error("layer unpack aborted");
        const item = this.queue.shift();
        if (item === undefined) break;
        if (item === "end") { await this.finish(); return; }
        const retained = await this.process(item);
        this.post({ type: "ack", bytes: item.length, buf: retained ? undefined : item.buffer as ArrayBuffer }, retained ? [] : [item.buffer as ArrayBuffer]);
      }
    } catch (e) {
      this.finished = true;
      this.unpacker.abort();
      await this.blob?.abort().catch(() => {});
      const status = typeof (e as { status?: unknown }).status === "number" ? (e as { status: number }).status : 500;
      this.post({ type: "error", message: this.scrub(e instanceof Error ? e.message : String(e)), status });
    } finally {
      this.running = false;
    }
  }

  /** Every DISK_CHECK bytes: the filesystem being written must keep reserveBytes free. */
  private checkDisk(): void {
    if (this.inBytes + this.outBytes < this.nextDiskCheck) return;
    this.nextDiskCheck = this.inBytes + this.outBytes + DISK_CHECK;
    let free: number;
    try { const st = statfsSync(this.spec.dir); free = st.bavail * st.bsize; } catch { return; }
    if (free < this.limits.reserveBytes) throw new SystemError(`no space left on device: unpacking the layer would leave less than ${mib(this.limits.reserveBytes)} free on the data root`);
  }

  /** A message without host paths: the unpack directory and the content store's root cut out. */
  private scrub(m: string): string {
    let out = m.split(this.spec.dir).join("");
    if (this.spec.blob) out = out.split(this.spec.blob.contentRoot).join("<content store>");
    return out;
  }

  /** One batch through the pipeline; true if a decoder may still reference it. */
  private async process(c: Uint8Array): Promise<boolean> {
    this.inBytes += c.length;
    this.checkDisk();
    await this.blob?.write(c);
    if (!this.decoder) {
      // "auto": decide on the first four bytes.
      this.head.push(c);
      const have = this.head.reduce((a, b) => a + b.length, 0);
      if (have < 4) return true;
      const first = this.head.length === 1 ? c : Buffer.concat(this.head);
      this.head = [];
      this.decoder = this.makeDecoder(sniff(first));
      await this.decoder.write(first);
      return first === c && this.decoder.retains; // a concatenated head is a copy
    }
    await this.decoder.write(c);
    return this.decoder.retains;
  }

  private async finish(): Promise<void> {
    if (!this.decoder) {
      const first = Buffer.concat(this.head);
      this.decoder = this.makeDecoder(sniff(first));
      if (first.length) await this.decoder.write(first);
    }
    await this.decoder.end();
    this.unpacker.end();
    await this.blob?.commit();
    this.finished = true;
    this.post({ type: "done", diffId: "sha256:" + this.diff.digest("hex"), size: this.unpacker.size, invented: [...this.unpacker.invented] });
  }
}

const port = parentPort;
if (!port) throw new Error("layer-worker.ts runs as a worker thread");
let job: Job | undefined;
port.on("message", (m: ToWorker | Uint8Array) => {
  if (m instanceof Uint8Array) { job?.push(m); return; }
  if (m.type === "start") job = new Job(m.spec, m.limits, (msg, transfer) => port.postMessage(msg, transfer));
  else if (m.type === "end") job?.push("end");
  else job?.abort();
});
