/**
 * Image archives. `save` writes what Docker 25+ writes: an OCI image layout
 * (oci-layout, index.json, blobs/sha256/…) that is also a docker-archive
 * (manifest.json, repositories), so `docker load`, `podman load`, skopeo's
 * docker-archive: and oci-archive: all read it. `load` reads both kinds,
 * including older docker-archives whose layers are `<id>/layer.tar`.
 */
import { createReadStream, createWriteStream, promises as fsp, statfsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { createGunzip } from "node:zlib";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import type { Store } from "../store/index.js";
import type { ImageRecord, IndexRecord } from "../store/images.js";
import { familiarString, parseReference, familiarName } from "../oci/reference.js";
import { MediaType, hostPlatform, type Index, type Manifest, type ImageConfig, type Descriptor } from "../oci/image.js";
import { BadParameterError, BerthError, SystemError } from "../lib/errors.js";
import { chainIdOf, cleanEntryName } from "../store/snapshots.js";
import { layerLimits } from "../store/layer-jobs.js";
import { SOLE_LEASE, type Lease } from "../store/gc.js";

/** Streams a save archive of the given images (with the references they were asked by). */
/**
 * `index`: the image is a local index (a multi-platform build, a manifest list): its blob and every entry's
 * manifest, config and layers go in, index.json names the index (as docker's containerd store saves one),
 * and manifest.json lists the host's entry (else the first) for loaders that read only a docker-archive.
 */
/**
 * `annotations` (build --output's --annotation): the image's manifest is written anew with `manifest` merged
 * into its annotations, and `descriptor` goes on its descriptor in index.json; `indexAnnotations` on index.json.
 */
export type SaveEntry =
  | { rec: ImageRecord; refs: string[]; index?: undefined; annotations?: { manifest: Record<string, string>; descriptor: Record<string, string> } }
  | { rec?: undefined; refs: string[]; index: IndexRecord; annotations?: undefined };

export function saveImages(store: Store, images: SaveEntry[], opts: { indexAnnotations?: Record<string, string> } = {}): NodeJS.ReadableStream {
  const pack = tar.pack();
  const fill = async () => {
    const written = new Set<string>();
    const blob = async (digest: string) => {
      if (written.has(digest)) return;
      written.add(digest);
      const size = await store.content.size(digest);
      if (size === undefined) throw new BadParameterError(`blob ${digest} is missing from the store`);
      await new Promise<void>((res, rej) => {
        const e = pack.entry({ name: `blobs/sha256/${digest.slice(7)}`, size, mode: 0o444, mtime: new Date(0) }, (err) => (err ? rej(err) : res()));
        (store.content.reader(digest) as NodeJS.ReadableStream).on("error", rej).pipe(e);
      });
    };
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    const manifestJson: { Config: string; RepoTags: string[]; Layers: string[]; LayerSources?: Record<string, Descriptor> }[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    pack.entry({ name: "blobs/", type: "directory", mode: 0o755, mtime: new Date(0) });
    pack.entry({ name: "blobs/sha256/", type: "directory", mode: 0o755, mtime: new Date(0) });
    for (const { rec: given, refs, index: idx, annotations: ann } of images) {
      const pick = idx ? store.images.entryFor(idx, hostPlatform()) ?? idx.manifests[0] : undefined;
      const rec = given ?? store.images.get(pick!.id);
      if (!rec) throw new BadParameterError(`image ${pick!.id} of index ${idx!.id} is missing from the store`);
      const m = await store.images.manifest(rec);
      let mbytes = await store.content.readBytes(rec.manifestDigest);
      let mdigest = rec.manifestDigest;
      if (ann) {
        // The layers and config as they are: only the manifest's own bytes change (their annotations).
        const manifest: Manifest = { ...m, annotations: { ...(m.annotations ?? {}), ...ann.manifest } };
        if (!Object.keys(manifest.annotations!).length) delete manifest.annotations;
        mbytes = Buffer.from(JSON.stringify(manifest));
        mdigest = `sha256:${sha256hex(mbytes)}`;
        written.add(mdigest);
        pack.entry({ name: `blobs/sha256/${mdigest.slice(7)}`, mode: 0o444, mtime: new Date(0) }, mbytes);
      }
      for (const d of [mdigest, m.config.digest, ...m.layers.map((l) => l.digest)]) await blob(d);
      if (idx) {
        for (const e of idx.manifests) {
          const er = store.images.get(e.id);
          if (!er) throw new BadParameterError(`image ${e.id} of index ${idx.id} is missing from the store`);
          const em = await store.images.manifest(er);
          for (const d of [er.manifestDigest, em.config.digest, ...em.layers.map((l) => l.digest)]) await blob(d);
        }
        await blob(idx.id);
      }
      const top = idx ? { mediaType: idx.mediaType, digest: idx.id, size: idx.size } : { mediaType: m.mediaType ?? MediaType.OciManifest, digest: mdigest, size: mbytes.length };
      const tags = refs.map((r) => familiarString(parseReference(r)));
      for (const t of tags.length ? tags : [undefined]) {
        const a = { ...(ann?.descriptor ?? {}), ...(t ? { "io.containerd.image.name": formatFull(t), "org.opencontainers.image.ref.name": t.split(":").pop()! } : {}) };
        index.manifests.push({ ...top, annotations: Object.keys(a).length ? a : undefined });
      }
      manifestJson.push({ Config: `blobs/sha256/${m.config.digest.slice(7)}`, RepoTags: tags, Layers: m.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) });
      for (const t of tags) {
        const r = parseReference(t);
        (repositories[familiarName(r)] ??= {})[r.tag ?? "latest"] = m.layers.length ? m.layers[m.layers.length - 1].digest.slice(7) : "";
      }
    }
    if (opts.indexAnnotations && Object.keys(opts.indexAnnotations).length) index.annotations = opts.indexAnnotations;
    pack.entry({ name: "oci-layout", mtime: new Date(0) }, JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    pack.entry({ name: "index.json", mtime: new Date(0) }, JSON.stringify(index));
    pack.entry({ name: "manifest.json", mtime: new Date(0) }, JSON.stringify(manifestJson));
    pack.entry({ name: "repositories", mtime: new Date(0) }, JSON.stringify(repositories));
    pack.finalize();
  };
  fill().catch((e: Error) => pack.destroy(e));
  return pack as unknown as NodeJS.ReadableStream;
}

function formatFull(t: string): string {
  const r = parseReference(t);
  return `${r.domain}/${r.path}:${r.tag ?? "latest"}`;
}

/** manifest.json, index.json and image manifests larger than this are refused; configs may be larger (long histories). */
const MAX_JSON = 16 << 20;
const MAX_CONFIG = 64 << 20;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function bad(msg: string): never { throw new BadParameterError(`invalid archive: ${msg}`); }

/** The archive as spooled: each regular file under a spool name (never the archive's own), links by name. */
interface Spooled { files: Map<string, { path: string; size: number }>; links: Map<string, { target: string; hard: boolean }> }

/** Where a path named in the archive's JSON is, inside the archive: symlinks and hard links followed, never out of it. */
function locate(arc: Spooled, p: unknown, what: string): { name: string; path: string; size: number } {
  if (typeof p !== "string" || !p) bad(`${what}: not a path`);
  const show = JSON.stringify(p);
  if (p.startsWith("/")) bad(`${what}: ${show} is an absolute path (paths in an image archive are relative to its root)`);
  if (p.split("/").includes("..")) bad(`${what}: ${show} leads outside the archive`);
  const parts = p.split("/").filter((x) => x && x !== ".");
  const out: string[] = [];
  let hops = 0;
  while (parts.length) {
    const c = parts.shift()!;
    if (c === ".") continue;
    if (c === "..") { if (!out.length) bad(`${what}: ${show} leads outside the archive (through a symlink)`); out.pop(); continue; }
    out.push(c);
    const link = arc.links.get(out.join("/"));
    if (!link) continue;
    if (++hops > 64) bad(`${what}: ${show}: too many levels of symbolic links`);
    if (link.target.startsWith("/")) bad(`${what}: ${show} is (or is under) a symlink to ${JSON.stringify(link.target)}, outside the archive`);
    out.pop();
    if (link.hard) out.length = 0; // a hard link's name is relative to the archive's root
    parts.unshift(...link.target.split("/"));
  }
  const name = out.join("/");
  const f = arc.files.get(name);
  if (!f) bad(`${what}: ${show} is not a file in the archive`);
  return { name, ...f };
}

async function readSmall(f: { name: string; path: string; size: number }, max: number): Promise<Buffer> {
  if (f.size > max) bad(`${f.name} is ${f.size} bytes, more than the ${max >> 20} MiB allowed`);
  return fsp.readFile(f.path);
}

function parseJson<T>(b: Buffer, name: string): T {
  try { return JSON.parse(b.toString("utf8")) as T; } catch (e) { bad(`${name} is not valid JSON (${(e as Error).message})`); }
}

const sha256hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** Spools a (possibly gzip'd) image archive into dir: regular files only, each under a name of ours. Bounded as layers are. */
async function spool(src: NodeJS.ReadableStream, dir: string): Promise<Spooled> {
  const arc: Spooled = { files: new Map(), links: new Map() };
  const lim = layerLimits();
  let inBytes = 0, outBytes = 0, gz = false, nextCheck = 0, n = 0;
  const checkDisk = () => {
    if (inBytes + outBytes < nextCheck) return;
    nextCheck = inBytes + outBytes + (32 << 20);
    const st = statfsSync(dir);
    if (st.bavail * st.bsize < lim.reserveBytes) throw new SystemError(`no space left on device: loading the archive would leave less than ${lim.reserveBytes >> 20} MiB free on the data root`);
  };
  const counted = new Transform({
    transform(c: Buffer, _e, cb) {
      inBytes += c.length;
      try { checkDisk(); cb(null, c); } catch (e) { cb(e as Error); }
    },
  });
  const inflated = new Transform({
    transform(c: Buffer, _e, cb) {
      outBytes += c.length;
      const limit = Math.max(lim.minBytes, lim.maxRatio * inBytes);
      if (gz && outBytes > limit) { cb(new BadParameterError(`invalid archive: it decompresses to more than ${limit >> 20} MiB from ${inBytes >> 20} MiB of gzip (over ${lim.maxRatio}:1): a decompression bomb?`)); return; }
      try { checkDisk(); cb(null, c); } catch (e) { cb(e as Error); }
    },
  });
  const extract = tar.extract();
  const consume = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = cleanEntryName(h.name);
      if (name && h.type === "file") {
        const path = join(dir, `f${n++}`);
        await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(path, { flags: "wx" }));
        arc.files.set(name, { path, size: h.size ?? 0 });
        arc.links.delete(name);
      } else if (name && (h.type === "symlink" || h.type === "link") && h.linkname) {
        arc.links.set(name, { target: h.linkname, hard: h.type === "link" });
        arc.files.delete(name);
        entry.resume();
      } else {
        entry.resume();
      }
    }
  })();
  // A write that fails stops the archive's reading too (else the extractor would wait for it forever).
  consume.catch((e: Error) => extract.destroy(e));
  try {
    // The first bytes choose the pipeline: gzip'd archives (docker save | gzip) load too, as in Docker.
    const first = await firstChunk(src);
    gz = first.length >= 2 && first[0] === 0x1f && first[1] === 0x8b;
    const body = joinStreams(first, src);
    // Both settle before any error goes up: no spool file may still be being written when dir is removed.
    const [piped, consumed] = await Promise.allSettled([gz ? pipeline(body, counted, createGunzip(), inflated, extract) : pipeline(body, counted, inflated, extract), consume]);
    if (piped.status === "rejected") throw piped.reason;
    if (consumed.status === "rejected") throw consumed.reason;
  } catch (e) {
    if (e instanceof BerthError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOSPC") throw new SystemError("no space left on device");
    if (code && /^Z_/.test(code)) bad(`not a valid gzip stream (${(e as Error).message})`);
    if (code && /^E[A-Z]+$/.test(code)) throw new SystemError(`loading the archive: ${code}`);
    bad(`not a tar archive, or a corrupt one (${(e as Error).message})`);
  }
  return arc;
}

/** The first chunk of a stream (empty at its end), leaving the rest to be read. */
function firstChunk(src: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const r = src as unknown as Readable;
    const done = (b: Buffer) => { r.off("readable", onReadable); r.off("end", onEnd); r.off("error", onError); resolve(b); };
    const onReadable = () => { const c = r.read() as Buffer | null; if (c !== null) done(Buffer.isBuffer(c) ? c : Buffer.from(c)); };
    const onEnd = () => done(Buffer.alloc(0));
    const onError = (e: Error) => { r.off("readable", onReadable); r.off("end", onEnd); reject(e); };
    r.on("readable", onReadable);
    r.once("end", onEnd);
    r.once("error", onError);
  });
}

/** first, then the rest of src. */
function joinStreams(first: Buffer, src: NodeJS.ReadableStream): Readable {
  return Readable.from((async function* () {
    if (first.length) yield first;
    for await (const c of src as AsyncIterable<Buffer>) yield c;
  })());
}

function magic(b: Buffer): "gzip" | "zstd" | "none" {
  if (b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
  return "none";
}

async function head4(path: string): Promise<Buffer> {
  const fh = await fsp.open(path, "r");
  try { const b = Buffer.alloc(4); const { bytesRead } = await fh.read(b, 0, 4, 0); return b.subarray(0, bytesRead); } finally { await fh.close(); }
}

function checkDiffIds(config: ImageConfig, layers: number, name: string): string[] {
  const diffIds = (config as { rootfs?: { diff_ids?: unknown } }).rootfs?.diff_ids ?? [];
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== "string" || !DIGEST.test(d))) bad(`${name}: rootfs.diff_ids is not a list of sha256 digests`);
  // Docker's words (image/tarexport/load.go).
  if (diffIds.length !== layers) throw new BadParameterError(`invalid manifest, layers length mismatch: expected ${layers}, got ${diffIds.length}`);
  return diffIds as string[];
}

function checkDescriptor(d: unknown, what: string): Descriptor {
  const x = d as Descriptor | null;
  if (!x || typeof x !== "object" || typeof x.digest !== "string" || !DIGEST.test(x.digest)) bad(`${what}: not a descriptor with a sha256 digest`);
  if (typeof x.size !== "number" || !Number.isSafeInteger(x.size) || x.size < 0) bad(`${what}: descriptor ${x.digest} has no valid size`);
  return x;
}

/** One image to make: its config bytes, its layers (archive file, expected digest if the format names it), its references. */
interface Planned { config: Buffer; configDigest?: string; layers: { file: { name: string; path: string; size: number }; digest?: string; size?: number }[]; diffIds: string[]; refs: string[]; blobs: { bytes: Buffer; digest: string }[]; manifestDigest?: string; inIndex?: boolean }

/** An OCI layout's index entry whose every manifest the archive holds: loaded as a local index, tagged `refs`. */
interface PlannedIndex { digest: string; bytes: Buffer; refs: string[] }

function planDockerArchive(arc: Spooled, manifestBytes: Buffer): Promise<Planned[]> {
  const entries = parseJson<unknown>(manifestBytes, "manifest.json");
  if (!Array.isArray(entries)) bad("manifest.json is not a list of images");
  return Promise.all(entries.map(async (raw, i) => {
    const e = raw as { Config?: unknown; RepoTags?: unknown; Layers?: unknown } | null;
    const what = `manifest.json[${i}]`;
    if (!e || typeof e !== "object") bad(`${what} is not an object`);
    if (e.RepoTags != null && (!Array.isArray(e.RepoTags) || e.RepoTags.some((t) => typeof t !== "string"))) bad(`${what}.RepoTags is not a list of references`);
    if (!Array.isArray(e.Layers)) bad(`${what}.Layers is not a list of paths`);
    const refs = ((e.RepoTags ?? []) as string[]).map((t) => {
      try { return familiarString(parseReference(t)); } catch { bad(`${what}.RepoTags: ${JSON.stringify(t)} is not a valid reference`); }
    });
    const cfgFile = locate(arc, e.Config, `${what}.Config`);
    const config = await readSmall(cfgFile, MAX_CONFIG);
    const named = /(?:^|\/)(?:sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(cfgFile.name)?.[1];
    if (named && sha256hex(config) !== named) bad(`${cfgFile.name}: its content does not match its digest (sha256:${sha256hex(config)})`);
    const diffIds = checkDiffIds(parseJson<ImageConfig>(config, cfgFile.name), e.Layers.length, cfgFile.name);
    const layers = (e.Layers as unknown[]).map((l, j) => {
      const file = locate(arc, l, `${what}.Layers[${j}]`);
      const hex = /(?:^|\/)sha256\/([a-f0-9]{64})$/.exec(file.name)?.[1];
      return { file, digest: hex ? `sha256:${hex}` : undefined, size: hex ? file.size : undefined };
    });
    return { config, layers, diffIds, refs, blobs: [] };
  }));
}

async function planOci(arc: Spooled, indexBytes: Buffer, indexes: PlannedIndex[] = []): Promise<Planned[]> {
  const index = parseJson<Index>(indexBytes, "index.json");
  if (!index || typeof index !== "object" || !Array.isArray(index.manifests)) bad("index.json has no manifests list");
  const want = hostPlatform();
  const blob = async (d: Descriptor, what: string, max: number) => {
    const f = locate(arc, `blobs/sha256/${d.digest.slice(7)}`, what);
    const b = await readSmall(f, max);
    if (b.length !== d.size) bad(`${f.name}: ${b.length} bytes, its descriptor says ${d.size}`);
    if (`sha256:${sha256hex(b)}` !== d.digest) bad(`${f.name}: its content does not match its digest`);
    return b;
  };
  const out: Planned[] = [];
  const planned = new Set<string>();
  const refsOf = (top: Descriptor, i: number): string[] => {
    const name = top.annotations?.["io.containerd.image.name"] ?? top.annotations?.["org.opencontainers.image.ref.name"];
    if (!name || !/[:/]/.test(name)) return [];
    try { return [familiarString(parseReference(name))]; } catch { return bad(`index.json manifests[${i}]: ${JSON.stringify(name)} is not a valid reference`); }
  };
  for (const [i, rawTop] of index.manifests.entries()) {
    const top = checkDescriptor(rawTop, `index.json manifests[${i}]`);
    const blobs: { bytes: Buffer; digest: string }[] = [];
    let desc = top;
    let bytes = await blob(desc, `index.json manifests[${i}]`, MAX_JSON);
    let parsed = parseJson<Manifest | Index>(bytes, `blobs/sha256/${desc.digest.slice(7)}`);
    if (parsed && typeof parsed === "object" && "manifests" in parsed) {
      if (!Array.isArray(parsed.manifests) || !parsed.manifests.length) bad(`blobs/sha256/${desc.digest.slice(7)}: an index without manifests`);
      const entries = parsed.manifests.map((x, j) => checkDescriptor(x, `blobs/sha256/${top.digest.slice(7)} manifests[${j}]`));
      // Every entry there (berth's and docker's save of a multi-platform image): each is loaded, and the index
      // with them under the entry's name. A sparse one (some platforms left out): its host entry, as before.
      if (entries.every((e) => arc.files.has(`blobs/sha256/${e.digest.slice(7)}`))) {
        const refs = refsOf(top, i);
        const known = indexes.find((x) => x.digest === top.digest);
        if (known) { known.refs.push(...refs); continue; }
        indexes.push({ digest: top.digest, bytes, refs });
        for (const [j, e] of entries.entries()) {
          if (planned.has(e.digest)) continue;
          planned.add(e.digest);
          out.push({ ...(await planManifest(arc, blob, e, await blob(e, `blobs/sha256/${top.digest.slice(7)} manifests[${j}]`, MAX_JSON), [], [])), inIndex: true });
        }
        continue;
      }
      blobs.push({ bytes, digest: desc.digest });
      const pick = parsed.manifests.find((x) => x?.platform?.os === want.os && x?.platform?.architecture === want.architecture) ?? parsed.manifests[0];
      desc = checkDescriptor(pick, `blobs/sha256/${top.digest.slice(7)} manifests`);
      bytes = await blob(desc, `blobs/sha256/${top.digest.slice(7)}`, MAX_JSON);
    }
    out.push(await planManifest(arc, blob, desc, bytes, blobs, refsOf(top, i)));
  }
  return out;
}

/** One image manifest of an OCI layout, checked, with its config and layer files. */
async function planManifest(arc: Spooled, blob: (d: Descriptor, what: string, max: number) => Promise<Buffer>, desc: Descriptor, bytes: Buffer, blobs: { bytes: Buffer; digest: string }[], refs: string[]): Promise<Planned> {
  const parsed = parseJson<Manifest>(bytes, `blobs/sha256/${desc.digest.slice(7)}`);
  const manifest = parsed as Manifest;
  const mname = `blobs/sha256/${desc.digest.slice(7)}`;
  if (!manifest || typeof manifest !== "object" || !Array.isArray(manifest.layers)) bad(`${mname} is not an image manifest`);
  blobs.push({ bytes, digest: desc.digest });
  const cfgDesc = checkDescriptor(manifest.config, `${mname} config`);
  const config = await blob(cfgDesc, `${mname} config`, MAX_CONFIG);
  const diffIds = checkDiffIds(parseJson<ImageConfig>(config, `blobs/sha256/${cfgDesc.digest.slice(7)}`), manifest.layers.length, `blobs/sha256/${cfgDesc.digest.slice(7)}`);
  const layers = manifest.layers.map((l, j) => {
    const d = checkDescriptor(l, `${mname} layers[${j}]`);
    const file = locate(arc, `blobs/sha256/${d.digest.slice(7)}`, `${mname} layers[${j}]`);
    if (file.size !== d.size) bad(`${file.name}: ${file.size} bytes, its descriptor says ${d.size}`);
    return { file, digest: d.digest, size: d.size };
  });
  return { config, configDigest: cfgDesc.digest, layers, diffIds, refs, blobs, manifestDigest: desc.digest };
}

/**
 * Loads a docker-archive or an OCI layout archive (either may be gzip'd); returns the references (or IDs) it loaded.
 *
 * Contract: the archive is validated before anything goes into the store (manifest.json or index.json of
 * the right shape, every path relative and inside the archive — symlinks and hard links in it followed,
 * never out —, the files named present, digests matching where the format names them, as many diff IDs
 * as layers); a bad archive is a BadParameterError (400) naming the path inside the archive, never a host
 * path. Images are recorded only once every layer of every image has been applied; on any failure the
 * blobs and snapshots this load added are removed, so a failed load leaves nothing behind (the spool
 * directory under tmpRoot included). Spooling and layers are bounded as layer-jobs.ts states.
 */
export async function loadImages(store: Store, src: NodeJS.ReadableStream, tmpRoot: string, lease: Lease = SOLE_LEASE): Promise<string[]> {
  const dir = join(tmpRoot, `load-${randomBytes(6).toString("hex")}`);
  await fsp.mkdir(dir, { recursive: true });
  const newBlobs: string[] = [];
  const newSnaps: string[] = [];
  const addBlob = async (bytes: Buffer, digest?: string) => {
    const d = digest ?? `sha256:${sha256hex(bytes)}`;
    if (!(await store.content.has(d))) { await store.content.writeBytes(bytes, d); newBlobs.push(d); }
    return { digest: d, size: bytes.length };
  };
  try {
    const arc = await spool(src, dir);
    let plan: Planned[];
    const indexes: PlannedIndex[] = [];
    // An archive that is both (berth's, docker's) is read as its index.json when that names an index: the
    // manifest.json beside it lists only one platform's image.
    const ociIndex = arc.files.has("index.json") ? await readSmall(locate(arc, "index.json", "index.json"), MAX_JSON) : undefined;
    const namesIndex = !!ociIndex && (parseJson<Index>(ociIndex, "index.json")?.manifests ?? []).some?.((m) => m?.mediaType === MediaType.OciIndex || m?.mediaType === MediaType.DockerManifestList);
    if (arc.files.has("manifest.json") && !namesIndex) plan = await planDockerArchive(arc, await readSmall(locate(arc, "manifest.json", "manifest.json"), MAX_JSON));
    else if (ociIndex) plan = await planOci(arc, ociIndex, indexes);
    else bad("neither manifest.json (docker-archive) nor index.json (OCI layout) found");
    const records: { manifestDigest: string; refs: string[]; size: number; inIndex?: boolean }[] = [];
    for (const img of plan) {
      for (const b of img.blobs) await addBlob(b.bytes, b.digest);
      const cfg = await addBlob(img.config, img.configDigest);
      const layers: Descriptor[] = [];
      let parent: string | null = null;
      for (const [i, l] of img.layers.entries()) {
        const kind = magic(await head4(l.file.path));
        let blob: { digest: string; size: number };
        if (l.digest && (await store.content.has(l.digest))) blob = { digest: l.digest, size: l.file.size };
        else {
          blob = await store.content.ingest(createReadStream(l.file.path), { digest: l.digest, size: l.size }).catch((e: Error) => bad(`${l.file.name}: ${e.message}`));
          if (!newBlobs.includes(blob.digest)) newBlobs.push(blob.digest);
        }
        const chain = chainIdOf(img.diffIds.slice(0, i + 1));
        if (!(await store.snapshots.has(chain))) {
          try {
            await store.snapshots.applyLayer(parent, store.content.reader(blob.digest), img.diffIds[i], { compression: "auto" });
          } catch (e) {
            if (e instanceof BerthError) throw new BerthError(`${l.file.name}: ${e.message}`, e.status);
            throw e;
          }
          newSnaps.push(chain);
        }
        parent = chain;
        layers.push({ mediaType: kind === "gzip" ? MediaType.OciLayerGzip : kind === "zstd" ? MediaType.OciLayerZstd : MediaType.OciLayer, digest: blob.digest, size: blob.size });
      }
      let manifestDigest = img.manifestDigest;
      if (!manifestDigest) {
        const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size }, layers };
        manifestDigest = (await addBlob(Buffer.from(JSON.stringify(manifest)))).digest;
      }
      records.push({ manifestDigest, refs: img.refs, size: await chainSize(store, parent), inIndex: img.inIndex });
    }
    // Everything is in: now, and only now, the images.
    const loaded: string[] = [];
    for (const r of records) {
      let rec = await store.images.add(r.manifestDigest, undefined, r.size);
      for (const t of r.refs) { rec = await store.images.add(r.manifestDigest, t, r.size); loaded.push(`Loaded image: ${t}`); }
      if (!r.refs.length && !r.inIndex) loaded.push(`Loaded image ID: ${rec.id}`);
    }
    for (const x of indexes) {
      await addBlob(x.bytes, x.digest);
      const rec = await store.images.addIndex(x.digest);
      for (const t of x.refs) { await store.images.addIndex(x.digest, t); loaded.push(`Loaded image: ${t}`); }
      if (!x.refs.length) loaded.push(`Loaded image ID: ${rec.id}`);
    }
    return loaded;
  } catch (e) {
    // Another writer may share (and have committed) what this one wrote: then the collection takes the rest (store/gc.ts).
    if (!lease.alone()) lease.leftovers();
    else {
      for (const c of newSnaps.reverse()) await store.snapshots.remove(c).catch(() => {});
      for (const d of newBlobs) await store.content.delete(d).catch(() => {});
    }
    throw scrub(e, [dir, tmpRoot, dirname(tmpRoot), store.content.root, store.snapshots.root]);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** The error with every host path in `roots` cut out of its message (a BerthError keeps its status; anything else is a 500). */
function scrub(e: unknown, roots: string[]): BerthError {
  let msg = e instanceof Error ? e.message : String(e);
  for (const r of [...roots].sort((a, b) => b.length - a.length)) msg = msg.split(r + "/").join("").split(r).join("");
  return e instanceof BerthError ? (msg === e.message ? e : new BerthError(msg, e.status)) : new SystemError(msg);
}

async function chainSize(store: Store, top: string | null): Promise<number> {
  const snaps = await store.snapshots.list();
  const byId = new Map(snaps.map((s) => [s.chainId, s]));
  let size = 0;
  for (let id = top; id; id = byId.get(id)?.parent ?? null) size += byId.get(id)?.size ?? 0;
  return size;
}
