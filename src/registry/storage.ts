/**
 * The registry's storage on a filesystem root. Contract:
 *
 *   blobs/<alg>/<hex>                          content, addressed by digest, shared by all repositories (immutable)
 *   uploads/<uuid>/{state.json,data}           upload sessions: data grows by PATCH; its size is the offset
 *   repositories/<name>/_layers/<alg>/<hex>    link: the blob is visible in <name>
 *   repositories/<name>/_manifests/revisions/<alg>/<hex>   link: the manifest is in <name> (JSON {mediaType,size})
 *   repositories/<name>/_manifests/tags/<tag>  the digest the tag points at (written temp-then-rename)
 *   repositories/<name>/_referrers/<alg>/<subject hex>/<alg>-<hex>   the descriptor of a manifest whose subject is that digest
 *
 * - A blob becomes visible only after its bytes were hashed and matched the
 *   digest the client named; then the upload's data file is renamed into
 *   blobs/ (atomic). Two uploads of the same content both succeed and leave
 *   one blob (rename over an identical file, or the second is dropped).
 * - Uploads are streamed to disk and hashed as they arrive (never held in
 *   memory); the session lives on disk, so a client killed mid-PATCH resumes
 *   at the offset a GET of the session reports, and a restarted server still
 *   knows the session (it re-hashes the data file at commit).
 * - blobs/ is the engine store's content-addressed layout, through its ContentStore (store/content.ts):
 *   paths, reads, existence, listing and manifest writes (verified, fsync'd, renamed in from ingest/) are
 *   its code. Upload sessions are the registry's own (ContentStore's ingest is one stream, an upload is
 *   many requests, resumable across restarts); a verified upload's data file is renamed to the path the
 *   content store gives (a 1 GB layer is not copied a second time).
 * - Leases: every commit, mount, HEAD and manifest reference of a blob sets the
 *   blob file's mtime to now. The garbage collector (gc.ts) never removes a
 *   blob or link younger than its lease period, so a blob that a push has just
 *   uploaded or checked stays until the push's manifest references it.
 */
import { createHash, randomUUID, type Hash } from "node:crypto";
import { createReadStream, promises as fsp } from "node:fs";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { atomicWrite, exists, fsyncDir } from "../lib/fsutil.js";
import { ContentStore } from "../store/content.js";
import { KeyedMutex } from "../lib/mutex.js";
import { MediaType } from "../oci/image.js";
import { RegistryError, checkTag, isDigest, parseDigest, type ParsedDigest } from "./errors.js";

export const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export interface StoredDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ManifestRecord { digest: ParsedDigest; mediaType: string; size: number }

interface UploadState { name: string; startedAt: number }

const IMAGE_MANIFESTS = new Set<string>([MediaType.OciManifest, MediaType.DockerManifest]);
const INDEXES = new Set<string>([MediaType.OciIndex, MediaType.DockerManifestList]);
const FOREIGN_LAYERS = new Set<string>([
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

function rangeError(offset: number, message: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_INVALID", message, { offset }, 416);
}

export interface StorageOptions {
  /** Accept indexes whose child manifests are not in the repository (the spec lets a registry allow it). */
  allowSparseIndex?: boolean;
}

export class RegistryStorage {
  private readonly locks = new KeyedMutex();
  private readonly blobLocks = new KeyedMutex();
  /** Running hashes of the uploads this process has seen, by uuid; `hashed` is how many bytes went in. */
  private readonly hashes = new Map<string, { hash: Hash; hashed: number }>();

  /** The blobs: the engine store's content-addressed code, on this root. */
  readonly content: ContentStore;

  constructor(readonly root: string, readonly opts: StorageOptions = {}) { this.content = new ContentStore(root); }

  async init(): Promise<void> {
    // Not content.init(), which empties ingest/: `berth registry gc` opens the same root while it serves.
    for (const d of ["blobs/sha256", "blobs/sha512", "ingest", "uploads", "repositories"]) await fsp.mkdir(join(this.root, d), { recursive: true });
  }

  blobPath(d: ParsedDigest): string { return this.content.path(d.digest); }
  repoDir(name: string): string { return join(this.root, "repositories", name); }
  private layerLink(name: string, d: ParsedDigest): string { return join(this.repoDir(name), "_layers", d.alg, d.hex); }
  private revLink(name: string, d: ParsedDigest): string { return join(this.repoDir(name), "_manifests", "revisions", d.alg, d.hex); }
  private tagPath(name: string, tag: string): string { return join(this.repoDir(name), "_manifests", "tags", tag); }
  private refDir(name: string, subject: ParsedDigest): string { return join(this.repoDir(name), "_referrers", subject.alg, subject.hex); }
  private uploadDir(uuid: string): string { return join(this.root, "uploads", uuid); }

  async repoExists(name: string): Promise<boolean> {
    return (await exists(join(this.repoDir(name), "_manifests"))) || (await exists(join(this.repoDir(name), "_layers")));
  }

  /** Renews the lease of a blob (and of its link in `name`); false when the blob is not in the store. */
  async touch(d: ParsedDigest, name?: string): Promise<boolean> {
    return this.blobLocks.run(d.digest, () => this.touchLocked(d, name));
  }

  private async touchLocked(d: ParsedDigest, name?: string): Promise<boolean> {
    const now = new Date();
    try { await fsp.utimes(this.blobPath(d), now, now); } catch { return false; }
    if (name) await fsp.utimes(this.layerLink(name, d), now, now).catch(() => undefined);
    return true;
  }

  /**
   * Runs `fn` while no lease of `d` can be taken or checked: the garbage
   * collector sweeps a blob inside this, so a HEAD or commit that renewed the
   * lease before is seen, and one after finds the blob gone (and re-uploads).
   */
  withBlobLock<T>(d: ParsedDigest, fn: () => Promise<T>): Promise<T> { return this.blobLocks.run(d.digest, fn); }

  /** The size of a blob visible in repository `name` (pushed, mounted, or a manifest of it), or undefined. */
  async blobSize(name: string, d: ParsedDigest, lease = false): Promise<number | undefined> {
    if (!(await exists(this.layerLink(name, d))) && !(await exists(this.revLink(name, d)))) return undefined;
    const size = async (): Promise<number | undefined> => { try { return (await fsp.stat(this.blobPath(d))).size; } catch { return undefined; } };
    if (!lease) return size();
    return this.blobLocks.run(d.digest, async () => (await this.touchLocked(d, name)) ? size() : undefined);
  }

  async blobExists(d: ParsedDigest): Promise<boolean> { return this.content.has(d.digest); }

  openBlob(d: ParsedDigest, range?: { start: number; end: number }): Readable {
    return createReadStream(this.blobPath(d), range ? { start: range.start, end: range.end } : {});
  }

  async linkBlob(name: string, d: ParsedDigest): Promise<void> {
    const p = this.layerLink(name, d);
    await fsp.mkdir(dirname(p), { recursive: true });
    await fsp.writeFile(p, "");
  }

  /** Removes the blob from repository `name`; false when it was not there. */
  async unlinkBlob(name: string, d: ParsedDigest): Promise<boolean> {
    try { await fsp.unlink(this.layerLink(name, d)); return true; } catch { return false; }
  }

  /** Mounts a blob from another repository (or, with no `from`, from any: the spec's anonymous mount). */
  async mountBlob(name: string, d: ParsedDigest, from?: string): Promise<boolean> {
    if (from !== undefined && (await this.blobSize(from, d)) === undefined) return false;
    return this.blobLocks.run(d.digest, async () => {
      if (!(await this.touchLocked(d))) return false;
      await this.linkBlob(name, d);
      return true;
    });
  }

  // ---- uploads ----

  async startUpload(name: string): Promise<string> {
    const uuid = randomUUID();
    const dir = this.uploadDir(uuid);
    await fsp.mkdir(dir, { recursive: true });
    await fsp.writeFile(join(dir, "data"), "");
    await atomicWrite(join(dir, "state.json"), JSON.stringify({ name, startedAt: Date.now() } satisfies UploadState));
    this.hashes.set(uuid, { hash: createHash("sha256"), hashed: 0 });
    return uuid;
  }

  /** The session's offset (bytes received), or undefined when there is no such session in `name`. */
  async uploadOffset(name: string, uuid: string): Promise<number | undefined> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) return undefined;
    try {
      const st = JSON.parse(await fsp.readFile(join(this.uploadDir(uuid), "state.json"), "utf8")) as UploadState;
      if (st.name !== name) return undefined;
      return (await fsp.stat(join(this.uploadDir(uuid), "data"))).size;
    } catch { return undefined; }
  }

  private async mustOffset(name: string, uuid: string): Promise<number> {
    const off = await this.uploadOffset(name, uuid);
    if (off === undefined) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { uuid });
    return off;
  }

  /** Appends a chunk; `start` (from Content-Range) must equal the current offset, else 416. Returns the new offset. */
  async appendUpload(name: string, uuid: string, src: Readable, start?: number): Promise<number> {
    return this.locks.run(uuid, () => this.appendLocked(name, uuid, src, start));
  }

  private async appendLocked(name: string, uuid: string, src: Readable, start?: number): Promise<number> {
    const offset = await this.mustOffset(name, uuid);
    if (start !== undefined && start !== offset) {
      src.resume();
      throw rangeError(offset, `chunk starts at ${start}, the upload is at ${offset}`);
    }
    let entry = this.hashes.get(uuid);
    if (entry && entry.hashed !== offset) entry = undefined;
    if (!entry && offset === 0) entry = { hash: createHash("sha256"), hashed: 0 };
    if (entry) this.hashes.set(uuid, entry); else this.hashes.delete(uuid);
    const path = join(this.uploadDir(uuid), "data");
    const fh = await fsp.open(path, "a");
    let written = offset;
    try {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        await fh.write(chunk);
        written += chunk.length;
        if (entry) { entry.hash.update(chunk); entry.hashed += chunk.length; }
      }
    } catch (e) {
      // What reached the disk stays: the client resumes from the offset a GET reports.
      const size = (await fh.stat()).size;
      if (entry && entry.hashed !== size) this.hashes.delete(uuid);
      throw e;
    } finally {
      await fh.close();
    }
    return written;
  }

  /** Finishes an upload (optionally with a last chunk): verifies the digest, then makes the blob visible in `name`. */
  async commitUpload(name: string, uuid: string, d: ParsedDigest, src?: Readable, start?: number): Promise<number> {
    return this.locks.run(uuid, async () => {
      if (src) await this.appendLocked(name, uuid, src, start);
      else await this.mustOffset(name, uuid);
      const dir = this.uploadDir(uuid);
      const data = join(dir, "data");
      const size = (await fsp.stat(data)).size;
      const entry = this.hashes.get(uuid);
      let hex: string;
      if (entry && entry.hashed === size && d.alg === "sha256") hex = entry.hash.digest("hex");
      else hex = await hashFile(data, d.alg);
      this.hashes.delete(uuid);
      if (hex !== d.hex) {
        await fsp.rm(dir, { recursive: true, force: true });
        throw new RegistryError("DIGEST_INVALID", `digest mismatch: the content is ${d.alg}:${hex}`, { digest: d.digest });
      }
      await this.commitFile(data, d, name);
      await fsp.rm(dir, { recursive: true, force: true });
      return size;
    });
  }

  /** Moves a verified file into blobs/ (or drops it when the blob is already there). */
  private async commitFile(path: string, d: ParsedDigest, name: string): Promise<void> {
    const target = this.blobPath(d);
    const fh = await fsp.open(path, "r+");
    try { await fh.sync(); } finally { await fh.close(); }
    await this.blobLocks.run(d.digest, async () => {
      if (await this.touchLocked(d)) await fsp.rm(path, { force: true });
      else {
        await fsp.mkdir(dirname(target), { recursive: true });
        await fsp.rename(path, target);
        await fsyncDir(dirname(target));
      }
      await this.linkBlob(name, d);
    });
  }

  async cancelUpload(name: string, uuid: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      await this.mustOffset(name, uuid);
      await fsp.rm(this.uploadDir(uuid), { recursive: true, force: true });
      this.hashes.delete(uuid);
    });
  }

  /** Upload sessions on disk: uuid, when it started and when it last grew. */
  async listUploads(): Promise<{ uuid: string; startedAt: number; mtimeMs: number }[]> {
    const out = [];
    for (const uuid of await fsp.readdir(join(this.root, "uploads")).catch(() => [] as string[])) {
      try {
        const st = JSON.parse(await fsp.readFile(join(this.uploadDir(uuid), "state.json"), "utf8")) as UploadState;
        const m = (await fsp.stat(join(this.uploadDir(uuid), "data"))).mtimeMs;
        out.push({ uuid, startedAt: st.startedAt, mtimeMs: m });
      } catch {
        // Half-made (state.json not written yet) or half-removed: its directory's age speaks for it.
        const st = await fsp.stat(this.uploadDir(uuid)).catch(() => undefined);
        if (st) out.push({ uuid, startedAt: st.mtimeMs, mtimeMs: st.mtimeMs });
      }
    }
    return out;
  }

  async removeUpload(uuid: string): Promise<void> {
    await this.locks.run(uuid, () => fsp.rm(this.uploadDir(uuid), { recursive: true, force: true }));
  }

  // ---- manifests ----

  /**
   * Stores a manifest under a tag or its digest, after checking that what it references is in the repository
   * (`unchecked`: not, for a pull-through cache, which fetches the blobs when they are asked for).
   */
  async putManifest(name: string, ref: string, body: Buffer, contentType: string | undefined, opts: { unchecked?: boolean } = {}): Promise<{ digest: string; subject?: string }> {
    const byDigest = isDigest(ref) ? parseDigest(ref) : undefined;
    if (!byDigest) checkTag(ref);
    const alg = byDigest?.alg ?? "sha256";
    const hex = createHash(alg).update(body).digest("hex");
    const d = parseDigest(`${alg}:${hex}`);
    if (byDigest && byDigest.hex !== hex) throw new RegistryError("DIGEST_INVALID", `the manifest's digest is ${d.digest}, not ${ref}`, { digest: ref });
    let doc: Record<string, unknown>;
    try {
      const v: unknown = JSON.parse(body.toString("utf8"));
      if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      doc = v as Record<string, unknown>;
    } catch (e) {
      throw new RegistryError("MANIFEST_INVALID", `manifest invalid: ${(e as Error).message}`);
    }
    const ct = contentType?.split(";")[0].trim() || undefined;
    const declared = typeof doc.mediaType === "string" && doc.mediaType !== "" ? doc.mediaType : undefined;
    if (ct && declared && ct !== declared) throw new RegistryError("MANIFEST_INVALID", `the manifest's mediaType ${declared} differs from its Content-Type ${ct}`);
    const mediaType = declared ?? ct ?? (Array.isArray(doc.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
    const refs: ParsedDigest[] = [];
    const descriptor = (v: unknown, what: string): { mediaType: string; digest: ParsedDigest; urls?: unknown } => {
      const o = v as { mediaType?: unknown; digest?: unknown; size?: unknown; urls?: unknown } | null;
      if (!o || typeof o !== "object" || typeof o.digest !== "string" || typeof o.size !== "number") throw new RegistryError("MANIFEST_INVALID", `manifest invalid: ${what} is not a descriptor`);
      let pd: ParsedDigest;
      try { pd = parseDigest(o.digest); } catch { throw new RegistryError("MANIFEST_INVALID", `manifest invalid: ${what} has an invalid digest ${o.digest}`); }
      return { mediaType: typeof o.mediaType === "string" ? o.mediaType : "", digest: pd, urls: o.urls };
    };
    if (IMAGE_MANIFESTS.has(mediaType) || INDEXES.has(mediaType)) {
      if (doc.schemaVersion !== 2) throw new RegistryError("MANIFEST_INVALID", "manifest invalid: schemaVersion must be 2");
    }
    let subject: ParsedDigest | undefined;
    if (doc.subject !== undefined && doc.subject !== null) subject = descriptor(doc.subject, "subject").digest;
    let artifactType = typeof doc.artifactType === "string" && doc.artifactType !== "" ? doc.artifactType : undefined;
    if (IMAGE_MANIFESTS.has(mediaType)) {
      const config = descriptor(doc.config, "config");
      artifactType ??= config.mediaType || undefined;
      if (!Array.isArray(doc.layers)) throw new RegistryError("MANIFEST_INVALID", "manifest invalid: layers is not a list");
      const layers = doc.layers.map((l, i) => descriptor(l, `layers[${i}]`));
      for (const b of [config, ...layers]) {
        if (FOREIGN_LAYERS.has(b.mediaType) || (Array.isArray(b.urls) && b.urls.length > 0) || opts.unchecked) continue;
        if ((await this.blobSize(name, b.digest, true)) === undefined) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `blob unknown to registry: ${b.digest.digest}`, { digest: b.digest.digest });
        refs.push(b.digest);
      }
    } else if (INDEXES.has(mediaType)) {
      if (!Array.isArray(doc.manifests)) throw new RegistryError("MANIFEST_INVALID", "manifest invalid: manifests is not a list");
      for (const [i, m] of doc.manifests.entries()) {
        const c = descriptor(m, `manifests[${i}]`);
        if (opts.unchecked) continue;
        if (!(await exists(this.revLink(name, c.digest))) || !(await this.touch(c.digest))) {
          if (this.opts.allowSparseIndex) continue;
          throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `manifest unknown to registry: ${c.digest.digest}`, { digest: c.digest.digest });
        }
      }
    }
    // The manifest's bytes are a blob like any other; the revision link puts it in the repository.
    await this.blobLocks.run(d.digest, async () => {
      if (!(await this.touchLocked(d))) await this.content.writeBytes(body, d.digest);
      const rev = this.revLink(name, d);
      await fsp.mkdir(dirname(rev), { recursive: true });
      await fsp.writeFile(rev, JSON.stringify({ mediaType, size: body.length }));
      if (!byDigest) {
        await fsp.mkdir(dirname(this.tagPath(name, ref)), { recursive: true });
        await atomicWrite(this.tagPath(name, ref), d.digest);
      }
    });
    if (subject) {
      const desc: StoredDescriptor = { mediaType, digest: d.digest, size: body.length };
      if (artifactType) desc.artifactType = artifactType;
      if (doc.annotations && typeof doc.annotations === "object") desc.annotations = doc.annotations as Record<string, string>;
      const dir = this.refDir(name, subject);
      await fsp.mkdir(dir, { recursive: true });
      await atomicWrite(join(dir, `${d.alg}-${d.hex}`), JSON.stringify(desc));
    }
    return { digest: d.digest, subject: subject?.digest };
  }

  /** A tag or digest → the manifest's record in `name`, or undefined. */
  async resolveManifest(name: string, ref: string): Promise<ManifestRecord | undefined> {
    let d: ParsedDigest;
    if (isDigest(ref)) d = parseDigest(ref);
    else {
      checkTag(ref);
      let text: string;
      try { text = (await fsp.readFile(this.tagPath(name, ref), "utf8")).trim(); } catch { return undefined; }
      d = parseDigest(text);
    }
    try {
      const rec = JSON.parse(await fsp.readFile(this.revLink(name, d), "utf8")) as { mediaType: string; size: number };
      if (!(await exists(this.blobPath(d)))) return undefined;
      return { digest: d, mediaType: rec.mediaType, size: rec.size };
    } catch { return undefined; }
  }

  async readBlob(d: ParsedDigest): Promise<Buffer> { return this.content.readBytes(d.digest); }

  /** Deletes a tag (by tag) or a manifest with every tag that points at it (by digest). False when absent. */
  async deleteManifest(name: string, ref: string): Promise<boolean> {
    if (!isDigest(ref)) {
      checkTag(ref);
      try { await fsp.unlink(this.tagPath(name, ref)); return true; } catch { return false; }
    }
    const d = parseDigest(ref);
    const rec = await this.resolveManifest(name, ref);
    if (!rec) return false;
    for (const t of (await this.tags(name)) ?? []) {
      const p = this.tagPath(name, t);
      if ((await fsp.readFile(p, "utf8").catch(() => "")).trim() === d.digest) await fsp.unlink(p).catch(() => undefined);
    }
    try {
      const doc = JSON.parse((await this.readBlob(d)).toString("utf8")) as { subject?: { digest?: string } };
      if (doc.subject?.digest) await fsp.rm(join(this.refDir(name, parseDigest(doc.subject.digest)), `${d.alg}-${d.hex}`), { force: true });
    } catch { /* not JSON with a subject */ }
    await fsp.unlink(this.revLink(name, d)).catch(() => undefined);
    return true;
  }

  /** The repository's tags in lexical order, or undefined when there is no such repository. */
  async tags(name: string): Promise<string[] | undefined> {
    if (!(await this.repoExists(name))) return undefined;
    const list = await fsp.readdir(join(this.repoDir(name), "_manifests", "tags")).catch(() => [] as string[]);
    return list.filter((t) => !t.startsWith(".")).sort(lexical);
  }

  /** The tag → digest map of a repository (for GC). */
  async tagTargets(name: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const t of (await this.tags(name)) ?? []) {
      const v = (await fsp.readFile(this.tagPath(name, t), "utf8").catch(() => "")).trim();
      if (v) out.set(t, v);
    }
    return out;
  }

  /** Every repository name, in lexical order. */
  async repositories(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try { entries = await fsp.readdir(join(this.root, "repositories", rel), { withFileTypes: true }); } catch { return; }
      if (rel && entries.some((e) => e.isDirectory() && (e.name === "_manifests" || e.name === "_layers"))) out.push(rel);
      for (const e of entries) if (e.isDirectory() && !e.name.startsWith("_")) await walk(rel ? `${rel}/${e.name}` : e.name);
    };
    await walk("");
    return out.sort(lexical);
  }

  /** Descriptors of the manifests in `name` whose subject is `d`. */
  async referrers(name: string, d: ParsedDigest): Promise<StoredDescriptor[]> {
    const dir = this.refDir(name, d);
    const out: StoredDescriptor[] = [];
    for (const f of (await fsp.readdir(dir).catch(() => [] as string[])).sort()) {
      if (f.startsWith(".")) continue;
      try {
        const desc = JSON.parse(await fsp.readFile(join(dir, f), "utf8")) as StoredDescriptor;
        if (await exists(this.revLink(name, parseDigest(desc.digest)))) out.push(desc);
      } catch { /* half-removed */ }
    }
    return out;
  }

  /** Links in a repository: the blobs and manifests it holds, with their link mtimes (for GC). */
  async links(name: string, kind: "layers" | "revisions"): Promise<{ digest: ParsedDigest; path: string; mtimeMs: number }[]> {
    const base = kind === "layers" ? join(this.repoDir(name), "_layers") : join(this.repoDir(name), "_manifests", "revisions");
    const out = [];
    for (const alg of ["sha256", "sha512"]) {
      for (const hex of await fsp.readdir(join(base, alg)).catch(() => [] as string[])) {
        const path = join(base, alg, hex);
        try { out.push({ digest: parseDigest(`${alg}:${hex}`), path, mtimeMs: (await fsp.stat(path)).mtimeMs }); } catch { /* not a digest or gone */ }
      }
    }
    return out;
  }

  /** Every blob in the store with its size and mtime (the lease). */
  async allBlobs(): Promise<{ digest: ParsedDigest; size: number; mtimeMs: number }[]> {
    const out = [];
    for (const digest of await this.content.list().catch(() => [] as string[])) {
      try {
        const d = parseDigest(digest);
        const st = await fsp.stat(this.blobPath(d));
        out.push({ digest: d, size: st.size, mtimeMs: st.mtimeMs });
      } catch { /* gone */ }
    }
    return out;
  }
}

function lexical(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

async function hashFile(path: string, alg: string): Promise<string> {
  const h = createHash(alg);
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest("hex");
}
