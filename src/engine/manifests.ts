/**
 * Local image indexes: the result of a multi-platform build, and the manifest lists of `berth manifest
 * create/annotate/inspect/push/rm` (docker manifest's commands). As Podman does, a list is a local index
 * image (store/images.ts IndexRecord): its blob in the content store, its entries local images, its name a
 * tag shared with images. Changing a list (annotate) writes a new index blob and moves the tag to it.
 * The routes are berth's own (/berth/manifests/...): the Docker API has none (docker keeps its lists in
 * the client's ~/.docker/manifests).
 */
import type { Store } from "../store/index.js";
import type { IndexRecord } from "../store/images.js";
import { MediaType, type Descriptor, type Index, type Platform } from "../oci/image.js";
import { parseReference, formatReference, familiarString } from "../oci/reference.js";
import { BadParameterError, ConflictError, NotFoundError } from "../lib/errors.js";
import { RegistryClient, type Credentials } from "../distribution/registry.js";
import type { ProgressMessage } from "../distribution/pull.js";
import type { ImageService } from "./images.js";

interface Entry { id: string; platform: Platform }

/** The descriptor of a local image's manifest, with its config's platform. */
async function entryDescriptor(store: Store, e: Entry): Promise<Descriptor> {
  const rec = store.images.get(e.id);
  if (!rec) throw new NotFoundError(`No such image: ${e.id}`);
  const m = await store.images.manifest(rec);
  const size = (await store.content.size(rec.manifestDigest)) ?? 0;
  const p = e.platform;
  return { mediaType: m.mediaType ?? MediaType.OciManifest, digest: rec.manifestDigest, size, platform: { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) } } as Descriptor;
}

/** Writes an index of these manifests and points `tags` at it (inside a lease: blob, then record). */
async function writeIndex(store: Store, manifests: Descriptor[], tags: string[], mediaType: string = MediaType.OciIndex): Promise<IndexRecord> {
  return store.gc.lease(async () => {
    const index: Index = { schemaVersion: 2, mediaType, manifests };
    const blob = await store.content.writeBytes(JSON.stringify(index));
    let rec = await store.images.addIndex(blob.digest);
    for (const t of tags) rec = await store.images.addIndex(blob.digest, t);
    return rec;
  });
}

/** A multi-platform build's images as one OCI index, tagged with the build's tags. */
export async function multiPlatformIndex(store: Store, images: Entry[], tags: string[]): Promise<IndexRecord> {
  const manifests = await Promise.all(images.map((e) => entryDescriptor(store, e)));
  return writeIndex(store, manifests, tags);
}

/** An image's platform from its config. */
async function platformOf(store: Store, id: string): Promise<Platform> {
  const rec = store.images.get(id)!;
  const c = await store.images.config(rec);
  return { os: c.os || "linux", architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) };
}

export class ManifestService {
  constructor(private readonly store: Store, private readonly images: ImageService, private readonly insecure: string[] = []) {}

  /** The list's full name, as docker manifest normalizes it. */
  private full(name: string): string { return formatReference(parseReference(name)); }

  /** The local image an argument names (a pull when only the registry has it). An index is refused, as docker does. */
  private async image(name: string, creds?: Credentials): Promise<string> {
    if (this.store.images.resolveIndex(name) && !this.store.images.resolve(name)) throw new BadParameterError(`${name} is a manifest list`);
    let rec = this.store.images.resolve(name);
    if (!rec) rec = await this.images.pull(name, { creds });
    return rec.id;
  }

  /** `manifest create LIST IMAGE...` (--amend: add to an existing list). */
  async create(list: string, names: string[], opts: { amend?: boolean; creds?: Credentials } = {}): Promise<IndexRecord> {
    if (!names.length) throw new BadParameterError("manifest create needs at least one image");
    const full = this.full(list);
    const old = this.store.images.resolveIndex(full);
    if (old && !opts.amend) throw new ConflictError(`refusing to amend an existing manifest list with no --amend flag`);
    const manifests: Descriptor[] = old ? (JSON.parse((await this.store.content.readBytes(old.id)).toString()) as Index).manifests : [];
    for (const n of names) {
      const id = await this.image(n, opts.creds);
      const d = await entryDescriptor(this.store, { id, platform: await platformOf(this.store, id) });
      const i = manifests.findIndex((m) => m.digest === d.digest);
      if (i >= 0) manifests[i] = d; else manifests.push(d);
    }
    const docker = manifests.some((m) => m.mediaType === MediaType.DockerManifest);
    const rec = await writeIndex(this.store, manifests, [full], docker ? MediaType.DockerManifestList : MediaType.OciIndex);
    await this.dropOld(old, rec);
    return rec;
  }

  /** `manifest annotate LIST IMAGE --os --arch --variant --os-features`. */
  async annotate(list: string, name: string, p: { os?: string; arch?: string; variant?: string; osFeatures?: string[] }): Promise<IndexRecord> {
    const idx = this.local(list);
    const rec = this.store.images.resolve(name);
    const index = JSON.parse((await this.store.content.readBytes(idx.id)).toString()) as Index;
    const entry = index.manifests.find((m) => m.digest === rec?.manifestDigest || m.digest === parseReference(name).digest);
    if (!entry) throw new NotFoundError(`manifest for image ${name} does not exist in ${list}`);
    const cur = (entry.platform ?? { os: "", architecture: "" }) as Platform & { "os.features"?: string[] };
    const next: Platform & { "os.features"?: string[] } = { ...cur };
    if (p.os) next.os = p.os;
    if (p.arch) next.architecture = p.arch;
    if (p.variant) next.variant = p.variant;
    if (p.osFeatures?.length) next["os.features"] = p.osFeatures;
    entry.platform = next;
    const out = await writeIndex(this.store, index.manifests, [this.full(list)], index.mediaType ?? MediaType.OciIndex);
    await this.dropOld(idx, out);
    return out;
  }

  /** An index whose last tag moved to another goes (its entries stay as images until pruned). */
  private async dropOld(old: IndexRecord | undefined, now: IndexRecord): Promise<void> {
    if (old && old.id !== now.id && !this.store.images.getIndex(old.id)?.repoTags.length) await this.store.images.removeIndex(old.id);
  }

  private local(list: string): IndexRecord {
    const idx = this.store.images.resolveIndex(list);
    if (!idx) throw new NotFoundError(`No such manifest: ${formatReference(parseReference(list))}`);
    return idx;
  }

  /** `manifest inspect LIST|REF`: a local list's index, else what the registry has for the reference. */
  async inspect(name: string, creds?: Credentials): Promise<unknown> {
    const idx = this.store.images.resolveIndex(name);
    if (idx) return JSON.parse((await this.store.content.readBytes(idx.id)).toString());
    const ref = parseReference(name);
    const client = new RegistryClient(ref, { insecure: this.insecure, creds });
    let got;
    try { got = await client.manifest(ref.digest ?? ref.tag!); } catch (e) {
      if ((e as { status?: number }).status === 404) throw new NotFoundError(`no such manifest: ${familiarString(ref)}`);
      throw e;
    }
    return JSON.parse(got.bytes.toString());
  }

  /** `manifest push LIST [REF]`: the list (every entry, then the index) to REF, or to the list's own name. */
  async push(list: string, dest: string | undefined, opts: { purge?: boolean; creds?: Credentials; onProgress?: (m: ProgressMessage) => void; signal?: AbortSignal } = {}): Promise<string> {
    const idx = this.local(list);
    const target = this.full(dest || list);
    let tagged = false;
    if (!idx.repoTags.includes(target)) { await this.store.images.addIndex(idx.id, target); tagged = true; }
    try {
      return await this.images.push(target, { creds: opts.creds, onProgress: opts.onProgress, signal: opts.signal });
    } finally {
      if (tagged && dest) await this.store.images.untagIndex(target);
      if (opts.purge) await this.remove(list);
    }
  }

  /**
   * `image inspect` of a name that is an index (no image has it): the host entry's inspect (what `run`
   * uses) under the index's ID and names, with the index's descriptor and its entries, as dockerd's
   * containerd image store shows a multi-platform image (`Descriptor`, `Manifests`).
   */
  async inspectImage(name: string, inspect: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.store.images.resolve(name)) return inspect;
    const idx = this.store.images.resolveIndex(name);
    if (!idx) return inspect;
    const familiar = (r: string) => familiarString(parseReference(r));
    return {
      ...inspect, Id: idx.id, RepoTags: idx.repoTags.map(familiar), RepoDigests: idx.repoDigests.map(familiar),
      Descriptor: { mediaType: idx.mediaType, digest: idx.id, size: idx.size },
      Manifests: idx.manifests.map((m) => ({
        ID: m.digest, Descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.size, ...(m.platform ? { platform: m.platform } : {}) },
        Available: !!this.store.images.get(m.id), Kind: "image", ImageData: { Platform: m.platform ?? null, Containers: [] }, Size: { Content: this.store.images.get(m.id)?.size ?? 0 },
      })),
    };
  }

  /** `manifest rm LIST...`. */
  async remove(list: string): Promise<void> {
    const idx = this.local(list);
    await this.store.images.untagIndex(this.full(list));
    if (this.store.images.getIndex(idx.id) && !this.store.images.getIndex(idx.id)!.repoTags.length) await this.store.images.removeIndex(idx.id);
  }
}
