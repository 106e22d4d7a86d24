/**
 * Image metadata: which images exist (by config digest, the image ID) and
 * which references point at them. Manifests and configs are blobs in the
 * content store; this table only indexes them.
 *
 * Persistence is a journal (journal.ts): <data-root>/images.json is the
 * snapshot (the file older berths rewrote whole, still read as it is) and
 * <data-root>/images.journal holds one fsync'd line per change since, so a
 * change costs what it touches, and a `kill -9` leaves each change whole or
 * absent. A tag that moves from one image to another is one line.
 *
 * A record caches what lists need (labels, the config and layer digests), so
 * listing 10 000 images reads no blob. Records written before the cache
 * existed are filled in from their blobs once, at load. A record whose blobs
 * cannot be read then (or whose manifest or config blob is not there) is kept but marked broken: lists skip it with a
 * warning, `system check` reports it and `--repair` drops it.
 *
 * Lookups are O(1): by ID, by full tag, by repo digest, by manifest digest;
 * only an ID prefix scans.
 */
import type { ContentStore } from "./content.js";
import type { ImageConfig, Index, Manifest, Platform } from "../oci/image.js";
import { parseReference, formatReference } from "../oci/reference.js";
import { NotFoundError, BadParameterError, SystemError } from "../lib/errors.js";
import { chainIdOf } from "./snapshots.js";
import { Journal } from "./journal.js";

export interface ImageRecord {
  id: string;
  manifestDigest: string;
  repoTags: string[];
  repoDigests: string[];
  created: string;
  size: number;
  chainId: string | null;
  diffIds: string[];
  /** Cached from the config (absent in records written by older berths until load fills them). */
  labels?: Record<string, string> | null;
  /** Cached from the manifest: the layer blobs, for the collector and `system check`. */
  layers?: string[];
  /**
   * The image this one was built or committed on (Docker's Parent): a build's intermediate images are
   * parents of the next step's, so lists hide them and `rmi` removes the untagged chain. Absent for pulled,
   * loaded and imported images.
   */
  parent?: string;
}

/**
 * A local image index (a multi-platform build's result, or a `manifest create` list): the index blob is in
 * the content store, each entry's manifest is an image record of its own (untagged, kept alive by the index).
 * Tags are shared with images: a tag names an image or an index, never both.
 */
export interface IndexRecord {
  /** The index blob's digest. */
  id: string;
  mediaType: string;
  size: number;
  repoTags: string[];
  repoDigests: string[];
  created: string;
  /** The entries: manifest digest, the image record (config digest) it is, its platform. */
  manifests: { digest: string; mediaType: string; size: number; id: string; platform?: Platform; annotations?: Record<string, string> }[];
}

export class ImageStore {
  private indexes = new Map<string, IndexRecord>();
  private indexByTag = new Map<string, string>();
  private indexJournal: Journal<IndexRecord>;

  private byId = new Map<string, ImageRecord>();
  private byTag = new Map<string, string>();
  private byRepoDigest = new Map<string, string>();
  private byManifest = new Map<string, Set<string>>();
  /** In memory only: records whose blobs could not be read, and why. */
  private broken = new Map<string, string>();
  private warned = new Set<string>();
  private journal: Journal<ImageRecord>;
  /** Damage found in the metadata files at load (`system check`). */
  damage: string[] = [];

  constructor(dataRoot: string, private readonly content: ContentStore) {
    this.journal = new Journal<ImageRecord>(dataRoot, "images", "images", (r) => r.id, () => this.byId.values());
    this.indexJournal = new Journal<IndexRecord>(dataRoot, "indexes", "indexes", (r) => r.id, () => this.indexes.values());
  }

  async load(): Promise<void> {
    const { records, damage } = await this.journal.load();
    const ix = await this.indexJournal.load();
    this.indexes.clear(); this.indexByTag.clear();
    for (const r of ix.records) {
      if (!r || typeof r.id !== "string" || !Array.isArray(r.manifests)) continue;
      r.repoTags ??= []; r.repoDigests ??= [];
      this.indexes.set(r.id, r);
      for (const t of r.repoTags) this.indexByTag.set(t, r.id);
    }
    damage.push(...ix.damage);
    this.damage = damage;
    for (const d of damage) process.stderr.write(`berthd: warning: image metadata: ${d}\n`);
    this.byId = new Map();
    this.byTag.clear(); this.byRepoDigest.clear(); this.byManifest.clear(); this.broken.clear();
    for (const r of records) {
      if (!r || typeof r.id !== "string" || typeof r.manifestDigest !== "string") continue;
      r.repoTags ??= []; r.repoDigests ??= []; r.diffIds ??= [];
      this.byId.set(r.id, r);
      this.indexAdd(r);
    }
    // Older records: fill the cache from the blobs, once, then write it down.
    const stale = [...this.byId.values()].filter((r) => !r.layers);
    if (stale.length) {
      let next = 0;
      const worker = async () => {
        while (next < stale.length) {
          const r = stale[next++];
          try { await this.fillCache(r); } catch (e) { this.markBroken(r, (e as Error).message); }
        }
      };
      await Promise.all(Array.from({ length: Math.min(16, stale.length) }, worker));
      await this.journal.compact();
    }
    // A record whose manifest or config blob is gone (damage from before, or by hand) is known broken from the
    // start: one directory listing, not a read per record.
    const present = new Set(await this.content.list());
    for (const r of this.byId.values()) {
      if (this.broken.has(r.id)) continue;
      if (!present.has(r.manifestDigest)) this.markBroken(r, `manifest ${r.manifestDigest} missing`);
      else if (!present.has(r.id)) this.markBroken(r, `config ${r.id} missing`);
    }
  }

  private async fillCache(r: ImageRecord): Promise<void> {
    const m = await this.readManifest(r.manifestDigest);
    const cfg = await this.readConfig(m.config.digest);
    r.labels = cfg.config?.Labels ?? null;
    r.layers = m.layers.map((l) => l.digest);
  }

  private markBroken(r: ImageRecord, why: string): void {
    this.broken.set(r.id, why);
    if (!this.warned.has(r.id)) {
      this.warned.add(r.id);
      process.stderr.write(`berthd: warning: image ${r.repoTags[0] ?? r.id}: ${why}; skipped by lists (berth system check --repair drops it)\n`);
    }
  }

  /** Why a record cannot be used (its blobs are missing or unreadable), or undefined. */
  brokenReason(id: string): string | undefined { return this.broken.get(id); }

  private indexAdd(r: ImageRecord): void {
    for (const t of r.repoTags) this.byTag.set(t, r.id);
    for (const d of r.repoDigests) this.byRepoDigest.set(d, r.id);
    let s = this.byManifest.get(r.manifestDigest);
    if (!s) this.byManifest.set(r.manifestDigest, (s = new Set()));
    s.add(r.id);
  }

  private indexDrop(r: ImageRecord): void {
    for (const t of r.repoTags) if (this.byTag.get(t) === r.id) this.byTag.delete(t);
    for (const d of r.repoDigests) if (this.byRepoDigest.get(d) === r.id) this.byRepoDigest.delete(d);
    const s = this.byManifest.get(r.manifestDigest);
    if (s) { s.delete(r.id); if (!s.size) this.byManifest.delete(r.manifestDigest); }
  }

  list(): ImageRecord[] { return [...this.byId.values()]; }
  get count(): number { return this.byId.size; }
  get(id: string): ImageRecord | undefined { return this.byId.get(id); }

  resolve(nameOrId: string): ImageRecord | undefined {
    if (!nameOrId) return undefined;
    if (/^sha256:[a-f0-9]{64}$/.test(nameOrId)) return this.byId.get(nameOrId);
    try {
      const ref = parseReference(nameOrId);
      const full = formatReference(ref);
      const hit = this.byTag.get(full) ?? this.byRepoDigest.get(full);
      if (hit) return this.byId.get(hit);
      if (ref.digest) {
        for (const id of this.byManifest.get(ref.digest) ?? []) {
          const r = this.byId.get(id);
          if (r?.repoTags.some((t) => t.startsWith(`${ref.domain}/${ref.path}:`))) return r;
        }
      }
    } catch { /* not a reference; maybe an ID prefix */ }
    const m = /^(?:sha256:)?([a-f0-9]{4,64})$/.exec(nameOrId);
    if (m) {
      let hit: ImageRecord | undefined;
      for (const [id, r] of this.byId) {
        if (!id.startsWith(m[1], 7)) continue;
        if (hit) return undefined;
        hit = r;
      }
      return hit;
    }
    return undefined;
  }

  private async readManifest(digest: string): Promise<Manifest> {
    const m = await this.readJsonBlob<Manifest>(digest, "manifest");
    if (!m?.config?.digest || !Array.isArray(m.layers)) throw new SystemError(`manifest ${digest} is not an image manifest`);
    return m;
  }

  private async readConfig(digest: string): Promise<ImageConfig> {
    return this.readJsonBlob<ImageConfig>(digest, "config");
  }

  private async readJsonBlob<T>(digest: string, what: string): Promise<T> {
    let bytes: Buffer;
    try { bytes = await this.content.readBytes(digest); } catch { throw new NotFoundError(`${what} ${digest} missing`); }
    try { return JSON.parse(bytes.toString("utf8")) as T; } catch { throw new SystemError(`${what} ${digest} unreadable`); }
  }

  async manifest(rec: ImageRecord): Promise<Manifest> {
    try { return await this.readManifest(rec.manifestDigest); } catch (e) { this.markBroken(rec, (e as Error).message); throw e; }
  }

  async config(rec: ImageRecord): Promise<ImageConfig> {
    const m = await this.manifest(rec);
    try { return await this.readConfig(m.config.digest); } catch (e) { this.markBroken(rec, (e as Error).message); throw e; }
  }

  /**
   * Records an image whose manifest and config are in the content store (both are read and checked
   * here: a record never points at blobs that are not there), optionally pointing `ref` at it.
   */
  async add(manifestDigest: string, ref?: string, size?: number, parent?: string): Promise<ImageRecord> {
    const manifest = await this.readManifest(manifestDigest);
    const config = await this.readConfig(manifest.config.digest);
    const id = manifest.config.digest;
    const diffIds = config.rootfs?.diff_ids ?? [];
    const old = this.byId.get(id);
    const rec: ImageRecord = old ? { ...old, repoTags: [...old.repoTags], repoDigests: [...old.repoDigests] } : {
      id, manifestDigest, repoTags: [], repoDigests: [], created: config.created ?? new Date(0).toISOString(),
      size: size ?? manifest.layers.reduce((a, l) => a + l.size, 0), chainId: diffIds.length ? chainIdOf(diffIds) : null, diffIds,
    };
    if (old && size !== undefined) rec.size = size;
    if (parent && parent !== id && !rec.parent) rec.parent = parent;
    rec.labels = config.config?.Labels ?? null;
    if (!old || old.manifestDigest === manifestDigest) rec.layers = manifest.layers.map((l) => l.digest);
    const touched = [rec];
    if (ref) touched.push(...this.pointOthers(rec, formatReference(parseReference(ref))));
    this.commit(touched);
    this.broken.delete(id);
    await this.journal.change(touched);
    if (ref) await this.untagIndex(ref);
    return rec;
  }

  /** Points `full` at rec; returns the other records that lose it (changed in place, still to commit). */
  private pointOthers(rec: ImageRecord, full: string): ImageRecord[] {
    const out: ImageRecord[] = [];
    const prev = this.byTag.get(full);
    if (prev && prev !== rec.id) {
      const other = this.byId.get(prev);
      if (other) out.push({ ...other, repoTags: other.repoTags.filter((t) => t !== full) });
    }
    if (!rec.repoTags.includes(full)) rec.repoTags.push(full);
    return out;
  }

  /** Replaces records in memory and in the indexes (new objects: readers holding the old ones see a consistent record). */
  private commit(recs: ImageRecord[]): void {
    for (const r of recs) {
      const old = this.byId.get(r.id);
      if (old) this.indexDrop(old);
      this.byId.set(r.id, r);
    }
    for (const r of recs) this.indexAdd(r);
  }

  async tag(id: string, ref: string): Promise<void> {
    const cur = this.byId.get(id);
    if (!cur) throw new NotFoundError(`No such image: ${id}`);
    const r = parseReference(ref);
    if (r.digest) throw new BadParameterError("refusing to create a tag with a digest reference");
    const rec = { ...cur, repoTags: [...cur.repoTags] };
    const touched = [rec, ...this.pointOthers(rec, formatReference(r))];
    this.commit(touched);
    await this.journal.change(touched);
    await this.untagIndex(ref);
  }

  async addRepoDigest(id: string, digestRef: string): Promise<void> {
    const cur = this.byId.get(id);
    if (!cur) throw new NotFoundError(`No such image: ${id}`);
    const repo = digestRef.split("@")[0];
    const rec = { ...cur, repoDigests: [...cur.repoDigests.filter((d) => d.split("@")[0] !== repo), digestRef] };
    this.commit([rec]);
    await this.journal.change([rec]);
  }

  async untag(ref: string): Promise<ImageRecord | undefined> {
    const full = formatReference(parseReference(ref));
    const id = this.byTag.get(full);
    const cur = id ? this.byId.get(id) : undefined;
    if (!cur) return undefined;
    const rec = { ...cur, repoTags: cur.repoTags.filter((t) => t !== full) };
    this.commit([rec]);
    await this.journal.change([rec]);
    return rec;
  }

  async remove(id: string): Promise<void> {
    const r = this.byId.get(id);
    if (!r) return;
    this.indexDrop(r);
    this.byId.delete(id);
    this.broken.delete(id);
    await this.journal.change([], [id]);
  }

  /** Rewrites the metadata files from memory (`system check --repair` after damage). */
  async rewrite(): Promise<void> {
    await this.journal.compact();
    this.damage = [];
  }

  async close(): Promise<void> { await this.journal.close(); await this.indexJournal.close(); }

  // ---- indexes ----

  listIndexes(): IndexRecord[] { return [...this.indexes.values()]; }
  getIndex(id: string): IndexRecord | undefined { return this.indexes.get(id); }

  /** An index by tag, digest reference (`name@sha256:<index>`) or its digest; undefined when the name is no index. */
  resolveIndex(nameOrId: string): IndexRecord | undefined {
    if (!nameOrId) return undefined;
    if (/^sha256:[a-f0-9]{64}$/.test(nameOrId)) return this.indexes.get(nameOrId);
    try {
      const ref = parseReference(nameOrId);
      const hit = this.indexByTag.get(formatReference(ref));
      if (hit) return this.indexes.get(hit);
      if (ref.digest) {
        const r = this.indexes.get(ref.digest);
        if (r && (r.repoTags.some((t) => t.startsWith(`${ref.domain}/${ref.path}:`)) || r.repoDigests.some((d) => d === `${ref.domain}/${ref.path}@${ref.digest}`))) return r;
      }
    } catch { /* not a reference */ }
    const m = /^(?:sha256:)?([a-f0-9]{12,64})$/.exec(nameOrId);
    if (m) { const hits = [...this.indexes.keys()].filter((id) => id.startsWith(m[1], 7)); if (hits.length === 1) return this.indexes.get(hits[0]); }
    return undefined;
  }

  /** The entry of an index that serves `want` (a variant matches when either side names none). */
  entryFor(idx: IndexRecord, want: Platform): IndexRecord["manifests"][number] | undefined {
    return idx.manifests.find((e) => e.platform?.os === want.os && e.platform.architecture === want.architecture && (!want.variant || !e.platform.variant || e.platform.variant === want.variant));
  }

  /** The image IDs that indexes hold (prune and lists leave them be). */
  indexedImages(): Set<string> {
    const s = new Set<string>();
    for (const r of this.indexes.values()) for (const m of r.manifests) s.add(m.id);
    return s;
  }

  /**
   * Records an index whose blob is in the content store and whose every entry is a local image (by its
   * manifest digest), optionally tagging it `ref` (the tag leaves any image or index that had it).
   */
  async addIndex(digest: string, ref?: string): Promise<IndexRecord> {
    const bytes = await this.content.readBytes(digest).catch(() => { throw new NotFoundError(`index ${digest} missing`); });
    let idx: Index;
    try { idx = JSON.parse(bytes.toString("utf8")) as Index; } catch { throw new SystemError(`index ${digest} unreadable`); }
    if (!Array.isArray(idx.manifests)) throw new BadParameterError(`${digest} is not an image index`);
    const manifests: IndexRecord["manifests"] = [];
    for (const m of idx.manifests) {
      const id = [...(this.byManifest.get(m.digest) ?? [])][0];
      if (!id) throw new NotFoundError(`manifest ${m.digest} of index ${digest} is not a local image`);
      manifests.push({ digest: m.digest, mediaType: m.mediaType, size: m.size, id, ...(m.platform ? { platform: m.platform } : {}), ...(m.annotations ? { annotations: m.annotations as Record<string, string> } : {}) });
    }
    const old = this.indexes.get(digest);
    const rec: IndexRecord = {
      id: digest, mediaType: idx.mediaType ?? "application/vnd.oci.image.index.v1+json", size: bytes.length,
      repoTags: [...(old?.repoTags ?? [])], repoDigests: [...(old?.repoDigests ?? [])], created: old?.created ?? new Date().toISOString(), manifests,
    };
    const touched = [rec];
    if (ref) {
      const full = formatReference(parseReference(ref));
      await this.untag(full);
      const prev = this.indexByTag.get(full);
      if (prev && prev !== digest) { const o = this.indexes.get(prev)!; touched.push({ ...o, repoTags: o.repoTags.filter((t) => t !== full) }); }
      if (!rec.repoTags.includes(full)) rec.repoTags.push(full);
    }
    this.commitIndexes(touched);
    await this.indexJournal.change(touched);
    return rec;
  }

  async addIndexRepoDigest(id: string, digestRef: string): Promise<void> {
    const cur = this.indexes.get(id);
    if (!cur) throw new NotFoundError(`No such index: ${id}`);
    const repo = digestRef.split("@")[0];
    const rec = { ...cur, repoDigests: [...cur.repoDigests.filter((d) => d.split("@")[0] !== repo), digestRef] };
    this.commitIndexes([rec]);
    await this.indexJournal.change([rec]);
  }

  /** Drops a tag from whichever index has it (an image took it); the index goes when it has no tag left. */
  async untagIndex(ref: string): Promise<IndexRecord | undefined> {
    const full = formatReference(parseReference(ref));
    const id = this.indexByTag.get(full);
    const cur = id ? this.indexes.get(id) : undefined;
    if (!cur) return undefined;
    const rec = { ...cur, repoTags: cur.repoTags.filter((t) => t !== full) };
    if (!rec.repoTags.length) { await this.removeIndex(rec.id); return rec; }
    this.commitIndexes([rec]);
    await this.indexJournal.change([rec]);
    return rec;
  }

  async removeIndex(id: string): Promise<void> {
    const r = this.indexes.get(id);
    if (!r) return;
    for (const t of r.repoTags) if (this.indexByTag.get(t) === id) this.indexByTag.delete(t);
    this.indexes.delete(id);
    await this.indexJournal.change([], [id]);
  }

  private commitIndexes(recs: IndexRecord[]): void {
    for (const r of recs) {
      const old = this.indexes.get(r.id);
      if (old) for (const t of old.repoTags) if (this.indexByTag.get(t) === r.id) this.indexByTag.delete(t);
      this.indexes.set(r.id, r);
      for (const t of r.repoTags) this.indexByTag.set(t, r.id);
    }
  }
}
