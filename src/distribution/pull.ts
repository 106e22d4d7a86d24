/**
 * Pull: resolve a reference to a manifest (choosing the host's platform from
 * an index), fetch config and layers into the content store (each verified
 * against its digest while it streams in, up to three at a time), and unpack
 * the layers in order through the snapshotter (once per chain ID: layers the
 * store already has are not fetched again). Progress goes to a callback in
 * Docker's JSON-message shape.
 */
import { createHash } from "node:crypto";
import { createGunzip } from "node:zlib";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { chainIdOf } from "../store/snapshots.js";
import { parseReference, familiarString, type Reference } from "../oci/reference.js";
import { hostPlatform, MediaType, type Index, type Manifest, type ImageConfig, type Platform } from "../oci/image.js";
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import { RegistryClient, type Credentials } from "./registry.js";

export interface ProgressMessage { status: string; id?: string; progress?: string; progressDetail?: { current?: number; total?: number } }

export interface PullOptions { platform?: Platform; insecure?: string[]; creds?: Credentials; onProgress?: (m: ProgressMessage) => void }

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
  const ref: Reference = parseReference(refStr);
  const say = opts.onProgress ?? (() => {});
  const want = opts.platform ?? hostPlatform();
  const client = new RegistryClient(ref, { insecure: opts.insecure, creds: opts.creds });
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
    await store.content.ingest(await client.blob(manifest.config.digest), { digest: manifest.config.digest, size: manifest.config.size });
  }
  const config = await store.content.readJson<ImageConfig>(manifest.config.digest);
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) throw new BadParameterError("image config and manifest disagree on the number of layers");

  // Fetch what is missing, three at a time; unpack strictly in order.
  const short = (d: string) => d.slice(7, 19);
  const need: boolean[] = [];
  for (let i = 0; i < diffIds.length; i++) {
    const have = await store.snapshots.has(chainIdOf(diffIds.slice(0, i + 1)));
    need.push(!have);
    if (have) say({ status: "Already exists", id: short(manifest.layers[i].digest) });
  }
  const downloads: (Promise<void> | undefined)[] = [];
  let running = 0;
  const queue: (() => void)[] = [];
  const slot = () => new Promise<void>((r) => { if (running < 3) { running++; r(); } else queue.push(() => { running++; r(); }); });
  const release = () => { running--; queue.shift()?.(); };
  manifest.layers.forEach((l, i) => {
    if (!need[i]) return;
    downloads[i] = (async () => {
      if (await store.content.has(l.digest)) return;
      await slot();
      try {
        say({ status: "Pulling fs layer", id: short(l.digest) });
        if (l.mediaType === MediaType.OciLayerZstd || /zstd/.test(l.mediaType)) throw new BadParameterError(`layer ${l.digest}: zstd-compressed layers are not supported yet`);
        await store.content.ingest(await client.blob(l.digest), { digest: l.digest, size: l.size });
        say({ status: "Download complete", id: short(l.digest) });
      } finally { release(); }
    })();
    downloads[i]!.catch(() => {});
  });
  let parent: string | null = null;
  let size = 0;
  for (let i = 0; i < manifest.layers.length; i++) {
    const l = manifest.layers[i];
    const chain = chainIdOf(diffIds.slice(0, i + 1));
    if (need[i]) {
      await downloads[i];
      const raw = store.content.reader(l.digest);
      const gz = /gzip/.test(l.mediaType) || l.mediaType === MediaType.DockerLayerGzip;
      say({ status: "Extracting", id: short(l.digest) });
      await store.snapshots.applyLayer(parent, gz ? raw.pipe(createGunzip()) : raw, diffIds[i]);
      say({ status: "Pull complete", id: short(l.digest) });
    }
    size += (await store.snapshots.list()).find((s) => s.chainId === chain)?.size ?? 0;
    parent = chain;
  }
  await store.content.writeBytes(got.bytes, manifestDigest);
  const tagRef = ref.tag ? familiarString({ ...ref, digest: undefined }) : undefined;
  const rec = await store.images.add(manifestDigest, tagRef, size);
  await store.images.addRepoDigest(rec.id, `${ref.domain}/${ref.path}@${topDigest}`);
  say({ status: `Digest: ${topDigest}` });
  say({ status: `Status: Downloaded newer image for ${familiarString(ref)}` });
  return rec;
}
