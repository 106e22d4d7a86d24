/**
 * Image metadata: which images exist (by config digest, the image ID) and
 * which references point at them. Everything lives in <data-root>/images.json,
 * rewritten atomically on each change. Manifests and configs are blobs in the
 * content store; this file only indexes them.
 */
import { join } from "node:path";
import type { ContentStore } from "./content.js";
import type { ImageConfig, Manifest } from "../oci/image.js";
import { parseReference, formatReference } from "../oci/reference.js";
import { atomicWrite, readJsonIfExists } from "../lib/fsutil.js";
import { NotFoundError, BadParameterError } from "../lib/errors.js";
import { chainIdOf } from "./snapshots.js";

export interface ImageRecord {
  id: string;
  manifestDigest: string;
  repoTags: string[];
  repoDigests: string[];
  created: string;
  size: number;
  chainId: string | null;
  diffIds: string[];
}

interface ImagesFile { images: ImageRecord[] }

export class ImageStore {
  private byId = new Map<string, ImageRecord>();
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly dataRoot: string, private readonly content: ContentStore) {}

  private get file(): string { return join(this.dataRoot, "images.json"); }

  async load(): Promise<void> {
    const f = await readJsonIfExists<ImagesFile>(this.file);
    this.byId = new Map((f?.images ?? []).map((r) => [r.id, r]));
  }

  private save(): Promise<void> {
    const text = JSON.stringify({ images: [...this.byId.values()] } satisfies ImagesFile, null, 1);
    this.writing = this.writing.then(() => atomicWrite(this.file, text));
    return this.writing;
  }

  list(): ImageRecord[] { return [...this.byId.values()]; }

  resolve(nameOrId: string): ImageRecord | undefined {
    if (!nameOrId) return undefined;
    if (/^sha256:[a-f0-9]{64}$/.test(nameOrId)) return this.byId.get(nameOrId);
    try {
      const ref = parseReference(nameOrId);
      const full = formatReference(ref);
      for (const r of this.byId.values()) {
        if (r.repoTags.includes(full) || r.repoDigests.includes(full)) return r;
        if (ref.digest && r.manifestDigest === ref.digest && r.repoTags.some((t) => t.startsWith(`${ref.domain}/${ref.path}:`))) return r;
      }
    } catch { /* not a reference; maybe an ID prefix */ }
    const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(nameOrId);
    if (m) {
      const hits = [...this.byId.values()].filter((r) => r.id.slice(7).startsWith(m[1]));
      if (hits.length === 1) return hits[0];
    }
    return undefined;
  }

  async manifest(rec: ImageRecord): Promise<Manifest> {
    return this.content.readJson<Manifest>(rec.manifestDigest);
  }

  async config(rec: ImageRecord): Promise<ImageConfig> {
    const m = await this.manifest(rec);
    return this.content.readJson<ImageConfig>(m.config.digest);
  }

  async add(manifestDigest: string, ref?: string, size?: number): Promise<ImageRecord> {
    const manifest = await this.content.readJson<Manifest>(manifestDigest);
    const config = await this.content.readJson<ImageConfig>(manifest.config.digest);
    const id = manifest.config.digest;
    const diffIds = config.rootfs?.diff_ids ?? [];
    let rec = this.byId.get(id);
    if (!rec) {
      rec = {
        id, manifestDigest, repoTags: [], repoDigests: [], created: config.created ?? new Date(0).toISOString(),
        size: size ?? manifest.layers.reduce((a, l) => a + l.size, 0), chainId: diffIds.length ? chainIdOf(diffIds) : null, diffIds,
      };
      this.byId.set(id, rec);
    } else if (size !== undefined) {
      rec.size = size;
    }
    if (ref) this.point(rec, formatReference(parseReference(ref)));
    await this.save();
    return rec;
  }

  private point(rec: ImageRecord, full: string): void {
    for (const other of this.byId.values()) {
      if (other !== rec) other.repoTags = other.repoTags.filter((t) => t !== full);
    }
    if (!rec.repoTags.includes(full)) rec.repoTags.push(full);
  }

  async tag(id: string, ref: string): Promise<void> {
    const rec = this.byId.get(id);
    if (!rec) throw new NotFoundError(`No such image: ${id}`);
    const r = parseReference(ref);
    if (r.digest) throw new BadParameterError("refusing to create a tag with a digest reference");
    this.point(rec, formatReference(r));
    await this.save();
  }

  async addRepoDigest(id: string, digestRef: string): Promise<void> {
    const rec = this.byId.get(id);
    if (!rec) throw new NotFoundError(`No such image: ${id}`);
    const repo = digestRef.split("@")[0];
    rec.repoDigests = [...rec.repoDigests.filter((d) => d.split("@")[0] !== repo), digestRef];
    await this.save();
  }

  async untag(ref: string): Promise<ImageRecord | undefined> {
    const full = formatReference(parseReference(ref));
    for (const r of this.byId.values()) {
      if (r.repoTags.includes(full)) {
        r.repoTags = r.repoTags.filter((t) => t !== full);
        await this.save();
        return r;
      }
    }
    return undefined;
  }

  async remove(id: string): Promise<void> {
    if (this.byId.delete(id)) await this.save();
  }
}
