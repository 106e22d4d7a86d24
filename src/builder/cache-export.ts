/**
 * The build cache leaving the daemon and coming back, as BuildKit's cache exporters: `--cache-to
 * type=local,dest=DIR` / `--cache-from type=local,src=DIR` (an OCI image layout: every step's image, its
 * index.json entry annotated with the step digests it answers and its parent), and the inline cache
 * (`--cache-to type=inline`, `BUILDKIT_INLINE_CACHE=1`): the final image carries, in its `berth.cache.v0`
 * label, the exact config of each image of its chain and how many of its layers it has, so `--cache-from
 * <image>` on another machine rebuilds those images from the image's own layers, with the same IDs, and
 * finds the steps again.
 *
 * A step's digest never depends on the daemon (graph.ts: the parent step's digest, the instruction, the
 * inputs by content), and an image's ID is its config's digest: a record made by one daemon names the same
 * image on another. Imports go through `load` (distribution/archive.ts), which verifies every blob.
 */
import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import * as tar from "tar-stream";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { loadImages } from "../distribution/archive.js";
import { MediaType, type Descriptor, type Index, type Manifest } from "../oci/image.js";
import { BadParameterError } from "../lib/errors.js";

/** A cache record: the step digest and the image it made. */
export interface CacheRecord { k: string; id: string }

export const INLINE_LABEL = "berth.cache.v0";
const KEY = "berth.cache.keys";
const PARENT = "berth.cache.parent";

/** One image of the layout to write: its manifest bytes, its config's and layers' blobs, its annotations. */
interface Entry { manifest: Buffer; config: { digest: string; bytes?: Buffer }; layers: Descriptor[]; annotations: Record<string, string> }

/** Writes an OCI image layout (as a tar stream) of these entries; blobs from the store unless given. */
function layout(store: Store, entries: Entry[]): NodeJS.ReadableStream {
  const pack = tar.pack();
  const fill = async () => {
    const written = new Set<string>();
    const put = async (digest: string, bytes?: Buffer) => {
      if (written.has(digest)) return;
      written.add(digest);
      if (bytes) { pack.entry({ name: `blobs/sha256/${digest.slice(7)}`, mode: 0o444, mtime: new Date(0) }, bytes); return; }
      const size = await store.content.size(digest);
      if (size === undefined) throw new BadParameterError(`blob ${digest} is missing from the store`);
      await new Promise<void>((res, rej) => {
        const e = pack.entry({ name: `blobs/sha256/${digest.slice(7)}`, size, mode: 0o444, mtime: new Date(0) }, (err) => (err ? rej(err) : res()));
        (store.content.reader(digest) as NodeJS.ReadableStream).on("error", rej).pipe(e);
      });
    };
    pack.entry({ name: "blobs/", type: "directory", mode: 0o755, mtime: new Date(0) });
    pack.entry({ name: "blobs/sha256/", type: "directory", mode: 0o755, mtime: new Date(0) });
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    for (const e of entries) {
      const md = sha(e.manifest);
      for (const l of e.layers) await put(l.digest);
      await put(e.config.digest, e.config.bytes);
      await put(md, e.manifest);
      index.manifests.push({ mediaType: (JSON.parse(e.manifest.toString()) as Manifest).mediaType ?? MediaType.OciManifest, digest: md, size: e.manifest.length, annotations: e.annotations });
    }
    pack.entry({ name: "oci-layout", mtime: new Date(0) }, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    pack.entry({ name: "index.json", mtime: new Date(0) }, JSON.stringify(index, null, 1));
    pack.finalize();
  };
  fill().catch((e: Error) => pack.destroy(e));
  return pack as unknown as NodeJS.ReadableStream;
}

function sha(b: Buffer): string { return "sha256:" + createHash("sha256").update(b).digest("hex"); }

/** Keys by image: the records of this build, grouped by the image they name. */
function keysByImage(records: readonly CacheRecord[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const r of records) m.set(r.id, [...(m.get(r.id) ?? []), r.k]);
  return m;
}

/** `--cache-to type=local`: the images these records name (and the parents they need) as an OCI layout tar. */
export async function exportLocal(store: Store, records: readonly CacheRecord[]): Promise<NodeJS.ReadableStream> {
  const keys = keysByImage(records);
  const entries: Entry[] = [];
  const seen = new Set<string>();
  // Each record's image with its chain of parents (a step's image is only usable with the images under it).
  const add = async (rec: ImageRecord): Promise<void> => {
    if (seen.has(rec.id)) return;
    seen.add(rec.id);
    const parent = rec.parent ? store.images.get(rec.parent) : undefined;
    if (parent) await add(parent);
    const m = await store.images.manifest(rec);
    const annotations: Record<string, string> = { "berth.cache.image": rec.id };
    if (keys.has(rec.id)) annotations[KEY] = keys.get(rec.id)!.join(",");
    if (parent) annotations[PARENT] = parent.id;
    entries.push({ manifest: await store.content.readBytes(rec.manifestDigest), config: { digest: m.config.digest }, layers: m.layers, annotations });
  };
  for (const id of keys.keys()) { const rec = store.images.get(id); if (rec) await add(rec); }
  return layout(store, entries);
}

/** What an imported layout gives: the records whose images are now in the store, and the parents to set. */
export interface Imported { records: CacheRecord[]; parents: [child: string, parent: string][] }

/** Reads the records of a local cache's index.json (`--cache-from type=local`; the client reads it from its disk). */
export function recordsOfIndex(index: Index): { records: CacheRecord[]; parents: [string, string][]; images: string[] } {
  const records: CacheRecord[] = [], parents: [string, string][] = [], images: string[] = [];
  for (const m of index.manifests ?? []) {
    const a = m.annotations ?? {};
    const id = a["berth.cache.image"];
    if (!id) continue;
    images.push(id);
    for (const k of (a[KEY] ?? "").split(",").filter(Boolean)) records.push({ k, id });
    if (a[PARENT]) parents.push([id, a[PARENT]]);
  }
  return { records, parents, images };
}

/**
 * Loads a layout (a local cache, or one made from an inline cache) and records its steps: the images are
 * loaded (verified), their parents set (so they stay out of `images` as a build's intermediate images do),
 * and the records whose image is there go into the build cache by `record`.
 */
export async function importLayout(store: Store, src: NodeJS.ReadableStream, tmpRoot: string, index: { records: CacheRecord[]; parents: [string, string][] }, record: (r: CacheRecord) => void): Promise<number> {
  await store.gc.lease((lease) => loadImages(store, src, tmpRoot, lease));
  for (const [child, parent] of index.parents) {
    const c = store.images.get(child);
    if (c && store.images.get(parent)) await store.images.add(c.manifestDigest, undefined, c.size, parent);
  }
  let n = 0;
  for (const r of index.records) if (store.images.get(r.id)) { record(r); n++; }
  return n;
}

// ---------------------------------------------------------------- inline

/** One image of the chain, as the inline cache keeps it: its exact config, its layer count, the steps it answers. */
interface InlineImage { c: string; l: number; k: string[] }

/**
 * The inline cache of an image: its chain (the image, its parent, theirs, down to the base), each with its
 * config's bytes (gzip'd together, base64) and the steps that made it. Undefined when the chain has no step.
 */
export async function inlineValue(store: Store, id: string, records: readonly CacheRecord[]): Promise<string | undefined> {
  const keys = keysByImage(records);
  const chain: InlineImage[] = [];
  for (let rec = store.images.get(id); rec; rec = rec.parent ? store.images.get(rec.parent) : undefined) {
    const m = await store.images.manifest(rec);
    chain.unshift({ c: (await store.content.readBytes(m.config.digest)).toString("base64"), l: m.layers.length, k: keys.get(rec.id) ?? [] });
  }
  if (!chain.some((x) => x.k.length)) return undefined;
  return gzipSync(JSON.stringify(chain)).toString("base64");
}

/**
 * `--cache-from <image>`: the images of the chain its inline cache names, made again from its layers (same
 * configs, so the same IDs), loaded, and their steps recorded. 0 when the image carries no inline cache.
 */
export async function importInline(store: Store, rec: ImageRecord, tmpRoot: string, record: (r: CacheRecord) => void): Promise<number> {
  const cfg = await store.images.config(rec);
  const v = cfg.config?.Labels?.[INLINE_LABEL];
  if (!v) return 0;
  let chain: InlineImage[];
  try { chain = JSON.parse(gunzipSync(Buffer.from(v, "base64")).toString("utf8")) as InlineImage[]; } catch { return 0; }
  if (!Array.isArray(chain)) return 0;
  const m = await store.images.manifest(rec);
  const entries: Entry[] = [];
  const records: CacheRecord[] = [], parents: [string, string][] = [];
  let prev: string | undefined;
  for (const x of chain) {
    if (typeof x?.c !== "string" || typeof x.l !== "number" || x.l > m.layers.length) return 0;
    const bytes = Buffer.from(x.c, "base64");
    const id = sha(bytes);
    const layers = m.layers.slice(0, x.l);
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: id, size: bytes.length }, layers };
    entries.push({ manifest: Buffer.from(JSON.stringify(manifest)), config: { digest: id, bytes }, layers, annotations: {} });
    for (const k of x.k ?? []) records.push({ k, id });
    if (prev) parents.push([id, prev]);
    prev = id;
  }
  return importLayout(store, layout(store, entries), tmpRoot, { records, parents }, record);
}
