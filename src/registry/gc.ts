/**
 * Online garbage collection: mark and sweep while the registry serves.
 *
 * Mark: in every repository, the manifests a tag points at, everything they
 * reference (config, layers, child manifests of an index, recursively), and
 * the referrers of every reachable manifest (signatures, SBOMs). Also marked:
 * every link and blob whose lease is live, that is whose mtime is younger than
 * the lease period. Commits, mounts, HEADs and manifest validation renew the
 * lease (storage.ts), so a blob a push has just uploaded or checked survives
 * until the push's manifest (which then marks it) lands.
 *
 * Sweep: unmarked, expired manifest revisions and layer links of each
 * repository, then unmarked, expired blobs, then upload sessions idle for
 * longer than the upload TTL. A blob is swept under the storage's per-blob
 * lock, re-checking its lease inside it (and once more after moving it aside,
 * for a collector running in another process than the server), so a lease
 * renewed at any moment before the sweep keeps the blob.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parseDigest, type ParsedDigest } from "./errors.js";
import type { RegistryStorage } from "./storage.js";

export interface GcOptions {
  /** Report what would be removed; remove nothing. */
  dryRun?: boolean;
  /** How long a freshly pushed, mounted or checked blob (and a fresh link) is kept unreferenced. */
  leaseMs: number;
  /** Upload sessions idle for longer than this are removed (default 24 h). */
  uploadTtlMs?: number;
  log?: (line: string) => void;
}

export interface GcResult {
  markedBlobs: number;
  deletedBlobs: string[];
  freedBytes: number;
  deletedManifests: { repository: string; digest: string }[];
  deletedLinks: number;
  deletedUploads: number;
  dryRun: boolean;
}

interface Doc { config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] }

export async function collectGarbage(storage: RegistryStorage, opts: GcOptions): Promise<GcResult> {
  const now = Date.now();
  const expired = (mtimeMs: number): boolean => now - mtimeMs > opts.leaseMs;
  const marked = new Set<string>();
  const repoMarked = new Map<string, Set<string>>();
  const result: GcResult = { markedBlobs: 0, deletedBlobs: [], freedBytes: 0, deletedManifests: [], deletedLinks: 0, deletedUploads: 0, dryRun: !!opts.dryRun };

  // A collector killed between moving a blob aside and removing it: put the blob back, this run decides again.
  const trash = join(storage.root, "trash");
  await fsp.mkdir(trash, { recursive: true });
  for (const f of await fsp.readdir(trash)) {
    const m = /^(sha256|sha512)-([a-f0-9]+)-[a-f0-9]+$/.exec(f);
    if (!m) continue;
    try { await storage.withBlobLock(parseDigest(`${m[1]}:${m[2]}`), async () => fsp.rename(join(trash, f), storage.blobPath(parseDigest(`${m[1]}:${m[2]}`)))); } catch { /* not a digest */ }
  }

  const repos = await storage.repositories();
  for (const repo of repos) {
    const mine = new Set<string>();
    repoMarked.set(repo, mine);
    const seen = new Set<string>();
    const visit = async (digest: string): Promise<void> => {
      if (seen.has(digest)) return;
      seen.add(digest);
      let d: ParsedDigest;
      try { d = parseDigest(digest); } catch { return; }
      marked.add(d.digest);
      mine.add(d.digest);
      let doc: Doc;
      try { doc = JSON.parse((await storage.readBlob(d)).toString("utf8")) as Doc; } catch { return; }
      for (const b of [doc.config, ...(Array.isArray(doc.layers) ? doc.layers : [])]) {
        if (b && typeof b.digest === "string") { marked.add(b.digest); mine.add(b.digest); }
      }
      for (const m of Array.isArray(doc.manifests) ? doc.manifests : []) if (m && typeof m.digest === "string") await visit(m.digest);
      for (const r of await storage.referrers(repo, d)) await visit(r.digest);
    };
    for (const target of (await storage.tagTargets(repo)).values()) await visit(target);
    // Live leases are roots too: a manifest pushed by digest a moment ago (an index's child, a referrer on its way).
    for (const rev of await storage.links(repo, "revisions")) if (!expired(rev.mtimeMs)) await visit(rev.digest.digest);
    for (const l of await storage.links(repo, "layers")) if (!expired(l.mtimeMs)) { marked.add(l.digest.digest); mine.add(l.digest.digest); }
  }
  result.markedBlobs = marked.size;

  // Sweep links: manifests and blobs a repository no longer reaches.
  for (const repo of repos) {
    const mine = repoMarked.get(repo)!;
    for (const rev of await storage.links(repo, "revisions")) {
      if (mine.has(rev.digest.digest)) continue;
      const gone = await storage.withBlobLock(rev.digest, async () => {
        const st = await fsp.stat(rev.path).catch(() => undefined);
        if (!st || !expired(st.mtimeMs)) return false;
        if (!opts.dryRun) await storage.deleteManifest(repo, rev.digest.digest);
        return true;
      });
      if (gone) result.deletedManifests.push({ repository: repo, digest: rev.digest.digest });
    }
    for (const l of await storage.links(repo, "layers")) {
      if (mine.has(l.digest.digest)) continue;
      const gone = await storage.withBlobLock(l.digest, async () => {
        const st = await fsp.stat(l.path).catch(() => undefined);
        if (!st || !expired(st.mtimeMs)) return false;
        if (!opts.dryRun) await fsp.rm(l.path, { force: true });
        return true;
      });
      if (gone) result.deletedLinks++;
    }
  }

  // Sweep blobs.
  for (const b of await storage.allBlobs()) {
    if (marked.has(b.digest.digest) || !expired(b.mtimeMs)) continue;
    const freed = await storage.withBlobLock(b.digest, async () => {
      const path = storage.blobPath(b.digest);
      const st = await fsp.stat(path).catch(() => undefined);
      if (!st || !expired(st.mtimeMs)) return undefined;
      if (opts.dryRun) return st.size;
      // Move aside, then look again: a server in another process may have renewed the lease in between.
      const aside = join(trash, `${b.digest.alg}-${b.digest.hex}-${randomBytes(4).toString("hex")}`);
      try { await fsp.rename(path, aside); } catch { return undefined; } // another collector took it
      const again = await fsp.stat(aside).catch(() => undefined);
      if (!again) return undefined; // another collector put it back
      if (!expired(again.mtimeMs)) { await fsp.rename(aside, path).catch(() => fsp.rm(aside, { force: true })); return undefined; }
      await fsp.rm(aside, { force: true });
      return st.size;
    });
    if (freed !== undefined) { result.deletedBlobs.push(b.digest.digest); result.freedBytes += freed; }
  }

  // Sweep abandoned uploads.
  const ttl = opts.uploadTtlMs ?? 24 * 3600_000;
  for (const u of await storage.listUploads()) {
    if (now - u.mtimeMs <= ttl || now - u.startedAt <= ttl) continue;
    if (!opts.dryRun) await storage.removeUpload(u.uuid);
    result.deletedUploads++;
  }
  // A manifest write the content store left in ingest/ when the process died (live ones take milliseconds).
  for (const f of await fsp.readdir(join(storage.root, "ingest")).catch(() => [] as string[])) {
    const st = await fsp.stat(join(storage.root, "ingest", f)).catch(() => undefined);
    if (st && now - st.mtimeMs > ttl && !opts.dryRun) await fsp.rm(join(storage.root, "ingest", f), { force: true });
  }
  opts.log?.(JSON.stringify({ time: new Date().toISOString(), gc: true, dryRun: result.dryRun, marked: result.markedBlobs, deletedBlobs: result.deletedBlobs.length, freedBytes: result.freedBytes, deletedManifests: result.deletedManifests.length, deletedLinks: result.deletedLinks, deletedUploads: result.deletedUploads, ms: Date.now() - now }));
  return result;
}
