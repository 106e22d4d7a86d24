/**
 * Pull: resolve a reference to a manifest (choosing the host's platform from
 * an index), fetch config and layers into the content store (each verified
 * against its digest while it streams in, up to three at a time), and unpack
 * the layers in order through the snapshotter (once per chain ID: layers the
 * store already has are not fetched again). Progress goes to a callback in
 * Docker's JSON-message shape.
 *
 * A layer's bytes are read once from the registry and handed, in batches, to
 * a layer worker thread (store/layer-jobs.ts) that writes and verifies the
 * blob, decompresses it (gzip or zstd, sniffed as Docker does), hashes the
 * tar for the diff ID and extracts it; the snapshot is committed here, on the
 * main thread, only once the blob digest and the diff ID both check out.
 *
 * Cancellation (opts.signal: the API fires it when the client goes away, as
 * dockerd cancels a pull with its request's context): every registry request
 * and body still streaming stops, each layer job drops its half-written blob
 * (content/ingest) and its half-unpacked directory (snapshots/tmp-*), layers
 * still queued never start, and no image is recorded; the pull rejects with
 * TransferCancelledError once all of that is done. A layer that fails stops
 * the others the same way. Two pulls of the same image share nothing but
 * committed blobs and snapshots, so one client going away leaves another's
 * pull running.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { chainIdOf } from "../store/snapshots.js";
import { prewarmLayerWorkers } from "../store/layer-jobs.js";
import { parseReference, familiarString, type Reference } from "../oci/reference.js";
import { hostPlatform, MediaType, type Index, type Manifest, type ImageConfig, type Platform } from "../oci/image.js";
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import { RegistryClient, TransferCancelledError, cancellable, untilAborted, type Credentials } from "./registry.js";

export interface ProgressMessage { status: string; id?: string; progress?: string; progressDetail?: { current?: number; total?: number } }

export interface PullOptions { platform?: Platform; insecure?: string[]; creds?: Credentials; onProgress?: (m: ProgressMessage) => void; signal?: AbortSignal }

/** Docker's progress text: [=====>     ]  10.5MB/31.2MB */
function bar(current: number, total: number): string {
  const width = 50, n = total ? Math.min(width, Math.floor((current / total) * width)) : 0;
  const mb = (x: number) => `${(x / 1e6).toFixed(x < 1e7 ? 2 : 1)}MB`;
  return `[${"=".repeat(Math.max(0, n - 1))}${n ? ">" : ""}${" ".repeat(width - n)}] ${mb(current)}/${mb(total)}`;
}

const sha256 = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) throw new BadParameterError(`invalid platform: ${s}`);
  return { os, architecture, variant };
}

function matches(p: Platform | undefined, want: Platform): boolean {
  if (!p) return false;
  if (p.os !== want.os || p.architecture !== want.architecture) return false;
  return !want.variant || !p.variant || p.variant === want.variant;
}

export async function pullImage(store: Store, refStr: string, opts: PullOptions = {}): Promise<ImageRecord> {
  // One controller for the whole pull: fired by the caller's signal (the client went away) or by a layer that failed.
  return cancellable(opts.signal, (ac) => pullWith(store, refStr, opts, ac));
}

async function pullWith(store: Store, refStr: string, opts: PullOptions, ac: AbortController): Promise<ImageRecord> {
  const signal = ac.signal;
  const ref: Reference = parseReference(refStr);
  const say = opts.onProgress ?? (() => {});
  const want = opts.platform ?? hostPlatform();
  const client = new RegistryClient(ref, { insecure: opts.insecure, creds: opts.creds, signal });
  let got = await client.manifest(ref.digest ?? ref.tag!);
  say({ status: `Pulling from ${ref.path}`, id: ref.tag ?? ref.digest });
  const topDigest = sha256(got.bytes);
  if (ref.digest && ref.digest !== topDigest) throw new BadParameterError(`manifest digest mismatch: expected ${ref.digest}, got ${topDigest}`);
  let parsed = JSON.parse(got.bytes.toString()) as Manifest | Index;
  const mt = got.mediaType || parsed.mediaType || "";
  if (mt === MediaType.OciIndex || mt === MediaType.DockerManifestList || "manifests" in parsed) {
    const idx = parsed as Index;
    await store.content.writeBytes(got.bytes, topDigest);
    const pick = idx.manifests.find((m) => matches(m.platform, want));
    if (!pick) throw new NotFoundError(`no matching manifest for ${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ""} in the manifest list entries`);
    got = await client.manifest(pick.digest);
    if (sha256(got.bytes) !== pick.digest) throw new BadParameterError(`manifest digest mismatch for ${pick.digest}`);
    parsed = JSON.parse(got.bytes.toString()) as Manifest;
  }
  const manifest = parsed as Manifest;
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new BadParameterError(`unsupported manifest type ${mt || "(none)"}`);
  const manifestDigest = sha256(got.bytes);

  if (!(await store.content.has(manifest.config.digest))) {
    const body = await client.blob(manifest.config.digest);
    try {
      await store.content.ingest(body, { digest: manifest.config.digest, size: manifest.config.size });
    } finally { (body as Readable).destroy(); }
  }
  const config = await store.content.readJson<ImageConfig>(manifest.config.digest);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw new BadParameterError("image config and manifest disagree on the number of layers");

  // Each missing layer streams once from the registry into a layer worker, which writes the blob (verifying
  // its digest) and unpacks it (verifying the diff ID). Layers go three at a time; each unpacks into its own
  // directory, so none waits for its parent.
  // The reference already names this image: dockerd says so and lists no layers.
  const tagRef = ref.tag ? familiarString({ ...ref, digest: undefined }) : undefined;
  const prior = store.images.resolve(tagRef ?? `${ref.domain}/${ref.path}@${topDigest}`);
  const upToDate = prior?.id === manifest.config.digest;
  const short = (d: string) => d.slice(7, 19);
  let running = 0;
  const queue: (() => void)[] = [];
  const slot = () => new Promise<void>((r) => { if (running < 3) { running++; r(); } else queue.push(() => { running++; r(); }); });
  const release = () => { running--; queue.shift()?.(); };
  const chains = diffIds.map((_, i) => chainIdOf(diffIds.slice(0, i + 1)));
  const missing = (await Promise.all(chains.map((c) => store.snapshots.has(c)))).filter((has) => !has).length;
  if (missing) prewarmLayerWorkers(Math.min(3, missing));
  const fetchLayer = async (i: number, parentReady: Promise<unknown> | undefined) => {
    const l = manifest.layers[i];
    if (await store.snapshots.has(chains[i])) { if (!upToDate) say({ status: "Already exists", id: short(l.digest) }); return; }
    await slot();
    try {
      if (signal.aborted) throw new TransferCancelledError(); // queued behind layers that were cancelled
      const parent = i ? chains[i - 1] : null;
      const opts = { parentPending: true, parentReady, compression: "auto" as const };
      if (await store.content.has(l.digest)) {
        const file = store.content.reader(l.digest);
        try {
          await store.snapshots.applyLayer(parent, untilAborted(file as AsyncIterable<Buffer>, signal), diffIds[i], opts);
        } finally { (file as Readable).destroy(); }
      } else {
        say({ status: "Pulling fs layer", id: short(l.digest) });
        const body = await client.blob(l.digest);
        let current = 0, last = 0;
        const counted = async function* () {
          for await (const d of body as AsyncIterable<Buffer>) {
            current += d.length;
            const now = Date.now();
            if (now - last >= 100) {
              last = now;
              say({ status: "Downloading", id: short(l.digest), progressDetail: { current, total: l.size }, progress: bar(current, l.size) });
            }
            yield d;
          }
        };
        try {
          await store.snapshots.applyLayer(parent, untilAborted(counted(), signal), diffIds[i], { ...opts, blob: { content: store.content, digest: l.digest, size: l.size } });
        } finally {
          (body as Readable).destroy(); // a layer that failed early leaves no download running
        }
      }
      say({ status: "Pull complete", id: short(l.digest) });
    } finally { release(); }
  };
  // The first layer to fail stops the others; the pull answers once every layer job has finished or cleaned up.
  let failed: { e: unknown } | undefined;
  // Each layer's job gets its parent's: a layer that lacks a parent directory's entry takes its attributes from below.
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < manifest.layers.length; i++) jobs.push(fetchLayer(i, jobs[i - 1]));
  await Promise.all(jobs.map((j) => j.catch((e: unknown) => { failed ??= { e }; ac.abort(); })));
  if (failed) throw failed.e;
  if (signal.aborted) throw new TransferCancelledError();
  const snaps = new Map((await store.snapshots.list()).map((x) => [x.chainId, x.size]));
  const size = chains.reduce((a, c) => a + (snaps.get(c) ?? 0), 0);
  await store.content.writeBytes(got.bytes, manifestDigest);
  const rec = await store.images.add(manifestDigest, tagRef, size);
  await store.images.addRepoDigest(rec.id, `${ref.domain}/${ref.path}@${topDigest}`);
  say({ status: `Digest: ${topDigest}` });
  say({ status: upToDate ? `Status: Image is up to date for ${familiarString(ref)}` : `Status: Downloaded newer image for ${familiarString(ref)}` });
  return rec;
}
