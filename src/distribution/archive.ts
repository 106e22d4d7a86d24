/**
 * Image archives. `save` writes what Docker 25+ writes: an OCI image layout
 * (oci-layout, index.json, blobs/sha256/…) that is also a docker-archive
 * (manifest.json, repositories), so `docker load`, `podman load`, skopeo's
 * docker-archive: and oci-archive: all read it. `load` reads both kinds,
 * including older docker-archives whose layers are `<id>/layer.tar`.
 */
import { createReadStream, promises as fsp } from "node:fs";
import { join, normalize } from "node:path";
import { randomBytes } from "node:crypto";
import { createGunzip } from "node:zlib";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";
import * as tar from "tar-stream";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { familiarString, parseReference, familiarName } from "../oci/reference.js";
import { MediaType, hostPlatform, type Index, type Manifest, type ImageConfig, type Descriptor } from "../oci/image.js";
import { BadParameterError } from "../lib/errors.js";
import { cleanEntryName } from "../store/snapshots.js";

/** Streams a save archive of the given images (with the references they were asked by). */
export function saveImages(store: Store, images: { rec: ImageRecord; refs: string[] }[]): NodeJS.ReadableStream {
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
    for (const { rec, refs } of images) {
      const m = await store.images.manifest(rec);
      const mbytes = await store.content.readBytes(rec.manifestDigest);
      for (const d of [rec.manifestDigest, m.config.digest, ...m.layers.map((l) => l.digest)]) await blob(d);
      const tags = refs.map((r) => familiarString(parseReference(r)));
      for (const t of tags.length ? tags : [undefined]) {
        index.manifests.push({
          mediaType: m.mediaType ?? MediaType.OciManifest, digest: rec.manifestDigest, size: mbytes.length,
          annotations: t ? { "io.containerd.image.name": formatFull(t), "org.opencontainers.image.ref.name": t.split(":").pop()! } : undefined,
        });
      }
      manifestJson.push({ Config: `blobs/sha256/${m.config.digest.slice(7)}`, RepoTags: tags, Layers: m.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) });
      for (const t of tags) {
        const r = parseReference(t);
        (repositories[familiarName(r)] ??= {})[r.tag ?? "latest"] = m.layers.length ? m.layers[m.layers.length - 1].digest.slice(7) : "";
      }
    }
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

async function isGzipFile(path: string): Promise<boolean> {
  const fh = await fsp.open(path, "r");
  try { const b = Buffer.alloc(2); const { bytesRead } = await fh.read(b, 0, 2, 0); return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b; } finally { await fh.close(); }
}

/** Loads a docker-archive or an OCI layout archive; returns the references (or IDs) it loaded. */
export async function loadImages(store: Store, src: NodeJS.ReadableStream, tmpRoot: string): Promise<string[]> {
  const dir = join(tmpRoot, `load-${randomBytes(6).toString("hex")}`);
  await fsp.mkdir(dir, { recursive: true });
  try {
    // Spool the archive (its entries come in any order); only regular files, names kept inside dir.
    const extract = tar.extract();
    const consume = (async () => {
      for await (const entry of extract) {
        const name = cleanEntryName(entry.header.name);
        if (entry.header.type === "file" && name) {
          const p = join(dir, name);
          await fsp.mkdir(join(p, ".."), { recursive: true });
          await pipeline(entry as unknown as NodeJS.ReadableStream, createWriteStream(p));
        } else {
          entry.resume();
        }
      }
    })();
    await Promise.all([pipeline(src, extract), consume]);
    const file = (rel: string) => join(dir, normalize(rel).replace(/^(\.\.\/)+/, ""));
    const exists = (rel: string) => fsp.access(file(rel)).then(() => true, () => false);
    const loaded: string[] = [];
    if (await exists("manifest.json")) {
      const entries = JSON.parse(await fsp.readFile(file("manifest.json"), "utf8")) as { Config: string; RepoTags: string[] | null; Layers: string[] }[];
      for (const e of entries) {
        const cfgBytes = await fsp.readFile(file(e.Config));
        const cfg = await store.content.writeBytes(cfgBytes);
        const config = JSON.parse(cfgBytes.toString()) as ImageConfig;
        const layers: Descriptor[] = [];
        let parent: string | null = null;
        for (const [i, l] of e.Layers.entries()) {
          const gz = await isGzipFile(file(l));
          const blob = await store.content.ingest(createReadStream(file(l)));
          const stream = store.content.reader(blob.digest);
          const applied = await store.snapshots.applyLayer(parent, gz ? stream.pipe(createGunzip()) : stream, config.rootfs.diff_ids[i]);
          parent = applied.chainId;
          layers.push({ mediaType: gz ? MediaType.OciLayerGzip : MediaType.OciLayer, digest: blob.digest, size: blob.size });
        }
        const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size }, layers };
        const m = await store.content.writeBytes(JSON.stringify(manifest));
        const size = await chainSize(store, parent);
        let rec = await store.images.add(m.digest, undefined, size);
        for (const t of e.RepoTags ?? []) { rec = await store.images.add(m.digest, t, size); loaded.push(`Loaded image: ${familiarString(parseReference(t))}`); }
        if (!e.RepoTags?.length) loaded.push(`Loaded image ID: ${rec.id}`);
      }
      return loaded;
    }
    if (await exists("index.json")) {
      const index = JSON.parse(await fsp.readFile(file("index.json"), "utf8")) as Index;
      const blobPath = (d: string) => file(`blobs/${d.replace(":", "/")}`);
      const want = hostPlatform();
      const importBlob = async (d: Descriptor) => { if (!(await store.content.has(d.digest))) await store.content.ingest(createReadStream(blobPath(d.digest)), { digest: d.digest, size: d.size }); };
      for (const top of index.manifests) {
        let desc = top;
        await importBlob(desc);
        let parsed = JSON.parse((await store.content.readBytes(desc.digest)).toString()) as Manifest | Index;
        if ("manifests" in parsed) {
          const pick = parsed.manifests.find((x) => x.platform?.os === want.os && x.platform?.architecture === want.architecture) ?? parsed.manifests[0];
          desc = pick;
          await importBlob(desc);
          parsed = JSON.parse((await store.content.readBytes(desc.digest)).toString()) as Manifest;
        }
        const manifest = parsed as Manifest;
        await importBlob(manifest.config);
        const config = await store.content.readJson<ImageConfig>(manifest.config.digest);
        let parent: string | null = null;
        for (const [i, l] of manifest.layers.entries()) {
          await importBlob(l);
          const s = store.content.reader(l.digest);
          const gz = /gzip/.test(l.mediaType);
          parent = (await store.snapshots.applyLayer(parent, gz ? s.pipe(createGunzip()) : s, config.rootfs.diff_ids[i])).chainId;
        }
        const name = top.annotations?.["io.containerd.image.name"] ?? top.annotations?.["org.opencontainers.image.ref.name"];
        const ref = name && /[:/]/.test(name) ? name : undefined;
        const rec = await store.images.add(desc.digest, ref, await chainSize(store, parent));
        loaded.push(ref ? `Loaded image: ${familiarString(parseReference(ref))}` : `Loaded image ID: ${rec.id}`);
      }
      return loaded;
    }
    throw new BadParameterError("invalid archive: neither manifest.json (docker-archive) nor index.json (OCI layout) found");
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function chainSize(store: Store, top: string | null): Promise<number> {
  const snaps = await store.snapshots.list();
  const byId = new Map(snaps.map((s) => [s.chainId, s]));
  let size = 0;
  for (let id = top; id; id = byId.get(id)?.parent ?? null) size += byId.get(id)?.size ?? 0;
  return size;
}
