/**
 * Overlay snapshotter. Lifecycle (after containerd's snapshots.Snapshotter):
 *
 *   adoptDir(parent, dir) → the same from a directory that already holds the
 *       layer (a finished build step's upper directory), moved, not copied.
 *   applyLayer(parent, tar) → a committed, read-only snapshot keyed by the
 *       layer's chain ID, unpacked once: applying a layer whose chain ID
 *       exists drains the stream and returns the existing snapshot. The tar
 *       may come compressed (gzip, zstd); a pull also has the compressed
 *       stream written to the content store on the way (one read, two uses).
 *   mount(chainId, containerDir, target) → overlay of the chain's lower dirs
 *       with the container's own upper/ and work/ (the writable layer).
 *   unmount(target) → the container's rootfs goes away; upper/ stays until
 *       the container directory is removed.
 *   remove(chainId) → by the garbage collector, once nothing references it.
 *
 * Layout: <root>/<n>/fs holds snapshot n (short paths keep the overlay option
 * string, limited to a page, able to hold many layers); the index of chain
 * IDs to numbers is a journal (journal.ts: <root>/snapshots.json plus
 * <root>/snapshots.journal, one fsync'd line per new or removed snapshot, so
 * a store of thousands of layers costs one line per change; an older
 * <root>/index.json is read once and compacted into it). Unpacking goes to
 * <root>/tmp-* and is renamed into place, so a crash leaves no half-made
 * snapshot.
 *
 * Unpacking (decompression, the diff ID hash, tar extraction) runs in a
 * worker thread (layer-jobs.ts, layer-worker.ts) and is hostile-tar safe
 * (tar-unpack.ts): names are cleaned lexically, parents are resolved inside
 * the snapshot (symlinks never lead out), hardlinks must point inside the
 * layer, whiteouts become overlay whiteouts (0/0 char devices) and opaque
 * markers become trusted.overlay.opaque xattrs. The index is only ever
 * changed here, on the main thread.
 *
 * User-namespace remapping (setIdMaps, a daemon with --userns-remap): each
 * layer is unpacked shifted (the unpacker maps every entry's owner), so
 * every owner is the host id the container's user namespace maps it to (an
 * id outside the maps fails the unpack, as in Docker); a container's upper/
 * starts owned by the mapped root. A remapped daemon has a store of its own,
 * so shifted and unshifted layers never meet.
 */
import { createHash, randomBytes } from "node:crypto";
import { promises as fsp, readFileSync, lstatSync, lchownSync, chmodSync, utimesSync, type Stats } from "node:fs";
import { join } from "node:path";
import { readJsonIfExists } from "../lib/fsutil.js";
import { Journal } from "./journal.js";
import { mountFs, unmountFs } from "../lib/mounter.js";
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import type { ContentStore } from "./content.js";
import { runLayerJob, type Compression } from "./layer-jobs.js";
import { mapId, type IdMaps } from "./idmap.js";

export { cleanEntryName } from "./tar-unpack.js";
export type { Compression } from "./layer-jobs.js";

export function chainIdOf(diffIds: string[]): string {
  let chain = diffIds[0];
  for (let i = 1; i < diffIds.length; i++) chain = "sha256:" + createHash("sha256").update(`${chain} ${diffIds[i]}`).digest("hex");
  return chain;
}

export type { IdMapEntry, IdMaps } from "./idmap.js";
export { unmapId } from "./idmap.js";

interface SnapInfo { n: number; parent: string | null; size: number; diffId: string }
interface Index { next: number; snapshots: Record<string, SnapInfo> }
/** A journal record: one snapshot. */
type SnapRecord = SnapInfo & { chainId: string };

export class Snapshotter {
  private index: Index = { next: 1, snapshots: {} };
  private readonly journal: Journal<SnapRecord>;
  /** Lines of the index that could not be read at start (for `system check`). */
  damage: string[] = [];
  /** A remapped daemon's id maps: layers are unpacked shifted into them. */
  private idMaps: IdMaps | undefined;

  constructor(readonly root: string) {
    this.journal = new Journal<SnapRecord>(root, "snapshots", "snapshots", (r) => r.chainId,
      () => Object.entries(this.index.snapshots).map(([chainId, s]) => ({ chainId, ...s })));
  }

  async init(): Promise<void> {
    await fsp.mkdir(join(this.root, "empty"), { recursive: true });
    for (const n of await fsp.readdir(this.root)) if (n.startsWith("tmp-")) await fsp.rm(join(this.root, n), { recursive: true, force: true });
    const { records, damage } = await this.journal.load();
    this.damage = damage;
    this.index = { next: 1, snapshots: {} };
    for (const r of records) if (r && typeof r.chainId === "string" && Number.isInteger(r.n)) this.index.snapshots[r.chainId] = { n: r.n, parent: r.parent ?? null, size: r.size ?? 0, diffId: r.diffId };
    // An older berth wrote the whole index to index.json on every change.
    const old = await readJsonIfExists<Index>(join(this.root, "index.json")).catch(() => undefined);
    if (old?.snapshots) {
      for (const [chainId, info] of Object.entries(old.snapshots)) if (!this.index.snapshots[chainId]) this.index.snapshots[chainId] = info;
      await this.journal.compact();
      await fsp.rm(join(this.root, "index.json"), { force: true });
    }
    this.index.next = Math.max(old?.next ?? 1, ...Object.values(this.index.snapshots).map((x) => x.n + 1));
    // Directories not in the index are leftovers of a crash between rename and index write.
    const known = new Set(Object.values(this.index.snapshots).map((s) => String(s.n)));
    for (const n of await fsp.readdir(this.root)) if (/^\d+$/.test(n) && !known.has(n)) await fsp.rm(join(this.root, n), { recursive: true, force: true });
  }


  /**
   * With id maps, the unpacker gave every entry its host owner (before its
   * xattrs, which a later chown would clear: file capabilities); what it made
   * without an entry (the layer's root, parents it needed) is root's, 0:0,
   * which becomes the mapped root (a lower layer's owner, for a parent, comes after).
   */
  private async ownInvented(fs: string, invented: string[]): Promise<void> {
    const root = { uid: mapId(this.idMaps!.uids, 0, fs), gid: mapId(this.idMaps!.gids, 0, fs) };
    for (const p of [fs, ...invented.map((r) => join(fs, r))]) {
      const st = await fsp.lstat(p).catch(() => undefined);
      if (st && st.uid === 0 && st.gid === 0) await fsp.lchown(p, root.uid, root.gid);
    }
  }

  /** Sets the id maps layers are shifted into (before any layer is applied). */
  setIdMaps(maps: IdMaps | undefined): void { this.idMaps = maps?.uids.length ? maps : undefined; }
  /** The id maps layers are shifted into, if any (a layer read back from a container's upper dir is shifted back). */
  get maps(): IdMaps | undefined { return this.idMaps; }

  async has(chainId: string): Promise<boolean> { return chainId in this.index.snapshots; }

  private dir(chainId: string): string {
    const s = this.index.snapshots[chainId];
    if (!s) throw new NotFoundError(`snapshot ${chainId} does not exist`);
    return join(this.root, String(s.n), "fs");
  }

  /**
   * Unpacks a layer into a new snapshot (committed atomically: a temporary directory renamed into place,
   * then the index written) and returns it; the diff ID is verified when expected.
   * `compression`: how `src` is compressed (default none; "auto" sniffs, as Docker).
   * `blob`: `src` is also this blob of the content store, written and verified on the way (a pull reads
   *   the registry's stream once). `parentPending`: the parent is being unpacked concurrently (a pull
   *   unpacks all its layers at once: each goes to its own directory, only the chain ID depends on the parent);
   *   `parentReady` settles when it is committed. Directories the layer needs but carries no entry for take
   *   the owner, mode and times the lower layers give them (overlay would show the made one's root 0755
   *   over a lower /tmp's 1777), so they wait for the parent.
   */
  async applyLayer(parent: string | null, src: AsyncIterable<Uint8Array | string>, expectedDiffId?: string,
    opts: { parentPending?: boolean; parentReady?: Promise<unknown>; compression?: Compression; blob?: { content: ContentStore; digest: string; size: number } } = {}): Promise<{ chainId: string; diffId: string; size: number }> {
    if (parent && !opts.parentPending && !this.index.snapshots[parent]) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
    if (expectedDiffId && !opts.blob) {
      const chainId = parent ? chainIdOf([parent, expectedDiffId]) : expectedDiffId;
      const have = this.index.snapshots[chainId];
      if (have) {
        const it = src[Symbol.asyncIterator]();
        while (!(await it.next()).done) { /* drain */ }
        return { chainId, diffId: expectedDiffId, size: have.size };
      }
    }
    const tmp = join(this.root, `tmp-${randomBytes(6).toString("hex")}`);
    const fs = join(tmp, "fs");
    await fsp.mkdir(fs, { recursive: true, mode: 0o755 });
    try {
      const blob = opts.blob && { contentRoot: opts.blob.content.root, digest: opts.blob.digest, size: opts.blob.size };
      const { diffId, size, invented } = await runLayerJob({ dir: fs, compression: opts.compression ?? "none", blob, idMaps: this.idMaps }, src);
      if (expectedDiffId && expectedDiffId !== diffId) throw new BadParameterError(`layer diff ID mismatch: expected ${expectedDiffId}, got ${diffId}`);
      const chainId = parent ? chainIdOf([parent, diffId]) : diffId;
      const have = this.index.snapshots[chainId];
      if (have) return { chainId, diffId, size: have.size };
      if (this.idMaps) await this.ownInvented(fs, invented);
      if (parent && invented.length) {
        if (opts.parentReady) await opts.parentReady;
        if (!this.index.snapshots[parent]) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
        inheritDirs(fs, await this.lowerDirs(parent), invented);
      }
      return await this.commitTmp(tmp, chainId, parent, size, diffId);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Makes `dir` (a container's upper directory, already holding exactly the
   * layer whose diff ID is given: whiteouts as 0/0 character devices, opaque
   * directories marked, as an unpack leaves them) a committed snapshot on
   * `parent`, by moving it (as containerd commits an active snapshot: the
   * layer is not written a second time). Committed as applyLayer does: moved
   * under a temporary name, renamed into place, then the index line. Returns
   * undefined, leaving `dir` where it is, when it cannot be moved (another
   * filesystem): the caller unpacks the layer instead. A snapshot that exists
   * already is returned as it is (`dir` stays the caller's, unless the same
   * snapshot was committed while it was being moved: then it is removed).
   */
  async adoptDir(parent: string | null, dir: string, diffId: string, size: number): Promise<{ chainId: string; diffId: string; size: number } | undefined> {
    if (parent && !this.index.snapshots[parent]) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
    const chainId = parent ? chainIdOf([parent, diffId]) : diffId;
    const have = this.index.snapshots[chainId];
    if (have) return { chainId, diffId, size: have.size };
    const tmp = join(this.root, `tmp-${randomBytes(6).toString("hex")}`);
    await fsp.mkdir(tmp, { mode: 0o755 });
    try {
      try { await fsp.rename(dir, join(tmp, "fs")); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EXDEV") return undefined;
        throw e;
      }
      if (this.index.snapshots[chainId]) return { chainId, diffId, size: this.index.snapshots[chainId].size };
      return await this.commitTmp(tmp, chainId, parent, size, diffId);
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  /** The commit of a snapshot made under `tmp` (its fs/ complete): renamed into place, then its index line. */
  private async commitTmp(tmp: string, chainId: string, parent: string | null, size: number, diffId: string): Promise<{ chainId: string; diffId: string; size: number }> {
    const n = this.index.next++;
    await fsp.rename(tmp, join(this.root, String(n)));
    this.index.snapshots[chainId] = { n, parent, size, diffId };
    await this.journal.change([{ chainId, n, parent, size, diffId }]);
    return { chainId, diffId, size };
  }

  /** The owner a layer's root gets (root; a remapped daemon's mapped root). */
  rootOwner(at: string): { uid: number; gid: number } {
    return this.idMaps ? { uid: mapId(this.idMaps.uids, 0, at), gid: mapId(this.idMaps.gids, 0, at) } : { uid: 0, gid: 0 };
  }

  async lowerDirs(chainId: string): Promise<string[]> {
    const out: string[] = [];
    for (let id: string | null = chainId; id; id = this.index.snapshots[id]?.parent ?? null) out.push(this.dir(id));
    return out;
  }

  async mount(chainId: string | null, containerDir: string, target: string): Promise<void> {
    if (isMountPoint(target)) return;
    const lower = chainId ? await this.lowerDirs(chainId) : [join(this.root, "empty")];
    const upper = join(containerDir, "upper"), work = join(containerDir, "work");
    const made = await fsp.mkdir(upper, { recursive: true });
    await Promise.all([fsp.mkdir(work, { recursive: true }), fsp.mkdir(target, { recursive: true })]);
    // The merged root shows upper/'s owner: the mapped root's (the container's root may chown / later, so only when new).
    if (made && this.idMaps) await fsp.chown(upper, mapId(this.idMaps.uids, 0, upper), mapId(this.idMaps.gids, 0, upper));
    // Overlay needs two lower dirs for a one-layer image? No: one lower + upper is fine.
    await mountFs("overlay", "overlay", target, [`lowerdir=${lower.join(":")}`, `upperdir=${upper}`, `workdir=${work}`]);
  }

  /** Unmounts a container's rootfs (lazily when it is busy); nothing to do when it is not mounted. */
  async unmount(target: string): Promise<void> {
    await unmountFs(target).catch((e) => { if (isMountPoint(target)) throw e; });
  }

  async remove(chainId: string): Promise<void> {
    const s = this.index.snapshots[chainId];
    if (!s) return;
    delete this.index.snapshots[chainId];
    await this.journal.change([], [chainId]);
    await fsp.rm(join(this.root, String(s.n)), { recursive: true, force: true });
  }

  async close(): Promise<void> { await this.journal.close(); }

  /** Rewrites the index from memory (`system check --repair` after damage). */
  async rewrite(): Promise<void> {
    await this.journal.compact();
    this.damage = [];
  }

  async list(): Promise<{ chainId: string; parent: string | null; size: number }[]> {
    return Object.entries(this.index.snapshots).sort((a, b) => a[1].n - b[1].n).map(([chainId, s]) => ({ chainId, parent: s.parent, size: s.size }));
  }
}

export function isMountPoint(path: string): boolean {
  const info = readFileSync("/proc/self/mountinfo", "utf8");
  const esc = path.replace(/[ \t\n\\]/g, (c) => "\\" + c.charCodeAt(0).toString(8).padStart(3, "0"));
  return info.split("\n").some((l) => l.split(" ")[4] === esc);
}

/**
 * Gives each directory a layer made without an entry the owner, mode and
 * times of the same directory in the topmost lower layer that has it, as the
 * merged view showed them before this layer. Paths are looked up literally,
 * component by component without following links (a lower link or file on
 * the way hides what is below it, as in overlay).
 */
function inheritDirs(fs: string, lowers: string[], invented: string[]): void {
  for (const rel of invented) {
    const mine = join(fs, rel);
    if (!lstatSync(mine, { throwIfNoEntry: false })?.isDirectory()) continue;
    const parts = rel.split("/");
    for (const lower of lowers) {
      let cur = lower;
      let st: Stats | undefined;
      let hidden = false;
      for (const part of parts) {
        cur = join(cur, part);
        st = lstatSync(cur, { throwIfNoEntry: false });
        if (!st) break;
        if (!st.isDirectory()) { hidden = true; st = undefined; break; }
      }
      if (hidden) break;
      if (!st) continue;
      try { lchownSync(mine, st.uid, st.gid); } catch { /* as tar without privileges */ }
      chmodSync(mine, st.mode & 0o7777);
      utimesSync(mine, st.atime, st.mtime);
      break;
    }
  }
}
