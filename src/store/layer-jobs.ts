/**
 * Layer jobs: the CPU-heavy half of applying a layer — decompressing it,
 * hashing the tar for its diff ID, extracting it, and (while pulling) hashing
 * and writing the compressed blob into the content store — runs in worker
 * threads (layer-worker.ts), one layer per worker, so a pull uses every core
 * and the daemon's event loop stays free to serve the API.
 *
 * Contract: runLayerJob feeds a job's bytes to a worker and resolves with the
 * layer's diff ID and size once the worker has unpacked everything into
 * `spec.dir` and, for `spec.blob`, committed the blob (verified against its
 * digest and size, as ContentStore.ingest). It never commits a snapshot: the
 * caller (Snapshotter.applyLayer, on the main thread) does. On failure nothing
 * is left in the content store; `spec.dir` is the caller's to remove.
 *
 * Bytes go to the worker in 1 MiB batches whose buffers are transferred (not
 * copied) and handed back for reuse; at most a few MiB are in flight per job
 * (backpressure on the source). Idle workers are kept a few seconds for the
 * next layer, unref'd so they never keep the process alive.
 *
 * Limits (a hostile layer must not fill the disk or pin a core for long):
 *   - a compressed layer (gzip or zstd) whose tar stream grows past
 *     max(minBytes, maxRatio × the compressed bytes read so far) — by default
 *     max(1 GiB, 200 × compressed) — is refused as a decompression bomb (400).
 *     Real layers rarely pass 20:1; a gzip of zeros is about 1000:1, zstd far
 *     more. The ratio is taken against the bytes read so far, not the blob's
 *     declared size, so the rule holds for streams of unknown length too (a
 *     layer must decompress past 1 GiB before the ratio matters at all).
 *   - an unpack that would leave less than reserveBytes (default 512 MiB)
 *     free on the filesystem it writes to (checked with statfs every 32 MiB)
 *     stops with "no space left on device" (500).
 *   Either way the job fails as any bad layer does: the blob is not committed,
 *   the caller removes the half-unpacked directory, and no snapshot is made.
 *   setLayerLimits() changes them for the process (berthd's configuration).
 *
 * Where the worker script is: beside the running bundle (bin/berthd →
 * bin/berth-layer-worker.mjs), or ../bin/ from dist/index.js; from the .ts
 * sources (tests under tsx) the worker loads layer-worker.ts through tsx.
 */
import { Worker } from "node:worker_threads";
import { existsSync } from "node:fs";
import { BadParameterError, BerthError, SystemError } from "../lib/errors.js";

/** How the bytes fed to a job are compressed; "auto" sniffs gzip or zstd magic, as Docker's DecompressStream. */
import type { IdMaps } from "./idmap.js";

export type Compression = "none" | "gzip" | "zstd" | "auto";

export interface JobSpec {
  /** An empty directory to unpack into. */
  dir: string;
  compression: Compression;
  /** Also write the (compressed) bytes into the content store at contentRoot as this blob. */
  blob?: { contentRoot: string; digest: string; size: number };
  /** Owners moved into these host ranges as entries are unpacked (a remapped daemon's cp). */
  idMaps?: IdMaps;
}

/** Bounds on one layer job (see the top of this file). */
export interface LayerLimits {
  /** Uncompressed bytes allowed per compressed byte read, above minBytes. */
  maxRatio: number;
  /** Uncompressed bytes always allowed, whatever the ratio. */
  minBytes: number;
  /** Free bytes the unpack must leave on the filesystem it writes to. */
  reserveBytes: number;
}

export const DEFAULT_LAYER_LIMITS: Readonly<LayerLimits> = { maxRatio: 200, minBytes: 1 << 30, reserveBytes: 512 << 20 };
let limits: LayerLimits = { ...DEFAULT_LAYER_LIMITS };

/** Sets the limits for every later job of this process (berthd: from its flags and daemon.json). */
export function setLayerLimits(l: Partial<LayerLimits>): void {
  const next = { ...limits, ...l };
  for (const [k, v] of Object.entries(next)) if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw new BadParameterError(`invalid layer limit ${k}: ${String(v)}`);
  limits = next;
}

export function layerLimits(): LayerLimits { return { ...limits }; }

export type ToWorker = { type: "start"; spec: JobSpec; limits: LayerLimits } | { type: "end" } | { type: "abort" };
export type FromWorker =
  | { type: "ack"; bytes: number; buf?: ArrayBuffer }
  | { type: "done"; diffId: string; size: number; invented: string[] }
  | { type: "error"; message: string; status: number };

const BATCH = 1 << 20;
/** Pause the source above this many bytes in flight to the worker; the worker acks each batch once done with it. */
const HIGH_WATER = 6 * BATCH;
const MAX_IDLE = 4;
/** An idle worker goes after this long (a worker thread holds ~16 MiB of RSS; starting one takes ~30 ms). */
const IDLE_MS = 5_000;

interface Slot { w: Worker; timer?: NodeJS.Timeout; onMessage?: (m: FromWorker) => void; onFail?: (e: Error) => void }

const idle: Slot[] = [];

function spawnWorker(): Worker {
  const here = import.meta.url;
  if (here.endsWith(".ts")) {
    // From sources: a worker cannot load .ts by itself (nor through an inherited --import); register tsx first.
    const api = import.meta.resolve("tsx/esm/api");
    const entry = new URL("./layer-worker.ts", here).href;
    return new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, { eval: true, execArgv: [] });
  }
  for (const rel of ["./berth-layer-worker.mjs", "../bin/berth-layer-worker.mjs"]) {
    const url = new URL(rel, here);
    if (existsSync(url)) return new Worker(url);
  }
  throw new SystemError(`berth-layer-worker.mjs not found beside ${here} (run make build)`);
}

function acquire(): Slot {
  const s = idle.pop();
  if (!s) return newSlot();
  clearTimeout(s.timer);
  s.w.ref();
  return s;
}

function newSlot(): Slot {
  const slot: Slot = { w: spawnWorker() };
  slot.w.on("message", (m: FromWorker) => slot.onMessage?.(m));
  slot.w.on("error", (e: Error) => slot.onFail?.(e));
  slot.w.on("exit", (code) => {
    const i = idle.indexOf(slot);
    if (i >= 0) idle.splice(i, 1);
    slot.onFail?.(new SystemError(`layer worker exited (code ${code})`));
  });
  return slot;
}

function release(s: Slot): void {
  s.onMessage = s.onFail = undefined;
  if (idle.length >= MAX_IDLE) { void s.w.terminate(); return; }
  s.w.unref();
  s.timer = setTimeout(() => {
    const i = idle.indexOf(s);
    if (i >= 0) idle.splice(i, 1);
    void s.w.terminate();
  }, IDLE_MS).unref();
  idle.push(s);
}

function discard(s: Slot): void {
  s.onMessage = s.onFail = undefined;
  void s.w.terminate();
}

/** Starts workers ahead of the layers that will need them (a pull knows how many it will fetch). */
export function prewarmLayerWorkers(n: number): void {
  for (let i = Math.min(n, MAX_IDLE) - idle.length; i > 0; i--) release(newSlot());
}

/** What a layer job made: the diff ID and unpacked size, and the parent directories it made without an entry (relative paths). */
export interface LayerJobResult { diffId: string; size: number; invented: string[] }

export async function runLayerJob(spec: JobSpec, src: AsyncIterable<Uint8Array | string>): Promise<LayerJobResult> {
  const s = acquire();
  let inflight = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const free: ArrayBuffer[] = [];
  let settle!: { resolve: (r: LayerJobResult) => void; reject: (e: Error) => void };
  const done = new Promise<LayerJobResult>((resolve, reject) => { settle = { resolve, reject }; });
  done.catch(() => {});
  const fail = (e: Error) => { failure ??= e; settle.reject(failure); wake?.(); };
  s.onMessage = (m) => {
    if (m.type === "ack") {
      inflight -= m.bytes;
      if (m.buf) free.push(m.buf);
      if (inflight <= HIGH_WATER / 2) wake?.();
    } else if (m.type === "done") settle.resolve({ diffId: m.diffId, size: m.size, invented: m.invented });
    else fail(m.status === 400 ? new BadParameterError(m.message) : new BerthError(m.message, m.status));
  };
  s.onFail = fail;
  const post = (m: ToWorker) => s.w.postMessage(m);
  post({ type: "start", spec, limits });
  try {
    let buf: Uint8Array | undefined;
    let n = 0;
    const flush = () => {
      if (!buf || !n) return;
      const out = buf.subarray(0, n);
      s.w.postMessage(out, [out.buffer as ArrayBuffer]);
      inflight += n;
      buf = undefined;
      n = 0;
    };
    for await (const chunk of src) {
      const c = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      for (let off = 0; off < c.length;) {
        buf ??= new Uint8Array(free.pop() ?? new ArrayBuffer(BATCH));
        const k = Math.min(c.length - off, BATCH - n);
        buf.set(k === c.length ? c : c.subarray(off, off + k), n);
        n += k;
        off += k;
        if (n === BATCH) flush();
      }
      if (inflight > HIGH_WATER && !failure) await new Promise<void>((r) => { wake = r; });
      wake = undefined;
      if (failure) break;
    }
    if (!failure) {
      flush();
      post({ type: "end" });
    }
  } catch (e) {
    // The source failed (a dropped connection, a read error): the worker drops the job and cleans up first.
    post({ type: "abort" });
    await done.catch(() => {});
    discard(s);
    throw e;
  }
  try {
    const r = await done;
    release(s);
    return r;
  } catch (e) {
    discard(s);
    throw e;
  }
}
