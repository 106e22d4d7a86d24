/**
 * The engine side of `cp`: Docker's archive API on a container's filesystem.
 *
 * - stat (HEAD /containers/{id}/archive): what is at a path, the last
 *   component not followed (so a symlink is reported as one, with the path it
 *   leads to inside the container);
 * - archive (GET): a tar of that path, its top entry named after the path's
 *   last component ("." for "/dir/.", "/" for "/");
 * - extract (PUT): a tar unpacked into the directory at a path (followed).
 *
 * Every path is resolved inside the container's root as if it were "/"
 * (lib/securejoin.ts), then read through descriptors (lib/rootfs.ts) so a
 * container that swaps a directory for a symlink to the host while we read
 * cannot lead us out; extraction goes through the layer unpacker (which
 * resolves every entry inside the directory it unpacks into) with a running
 * container paused meanwhile. A stopped container's root is mounted for the
 * occasion and unmounted after the last user is done (holdRootfs, shared with
 * `export`).
 */
import { holdPaused } from "./pause-hold.js";
import { lstatSync, realpathSync, type BigIntStats } from "node:fs";
import { join, posix, relative } from "node:path";
import { Readable } from "node:stream";
import type { Store } from "../store/index.js";
import { runLayerJob } from "../store/layer-jobs.js";
import { BadParameterError, BerthError, NotFoundError, SystemError, errorMessage } from "../lib/errors.js";
import { secureJoinSync } from "../lib/securejoin.js";
import { O_DIR, openVerified, treeEntries } from "../lib/rootfs.js";
import { writeTar, type TarEntry } from "../lib/tar-writer.js";
import { unmapId, type IdMaps } from "../store/idmap.js";
import { closeSync } from "node:fs";
import type { ContainerService } from "./containers.js";
import type { EventBus } from "./events.js";
import type { ContainerRecord } from "./types.js";

/** A remapped daemon's (--userns-remap) files as the container sees their owners. */
function* containerIds(entries: Iterable<TarEntry>, maps: IdMaps | undefined): Generator<TarEntry> {
  for (const e of entries) yield maps ? { ...e, uid: unmapId(maps.uids, e.uid ?? 0), gid: unmapId(maps.gids, e.gid ?? 0) } : e;
}

/** Docker's container path stat (the X-Docker-Container-Path-Stat header, base64 JSON). */
export interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

// ---------------------------------------------------------------- rootfs holds

const holds = new Map<string, { n: number; mounted: Promise<void> }>();

/**
 * The container's root as a host path, mounted if it is not (a stopped
 * container); `release` unmounts it once no one else holds it and the
 * container is not running.
 */
export async function holdRootfs(store: Store, c: ContainerRecord, containerDir: string): Promise<{ rootfs: string; release: () => Promise<void> }> {
  const rootfs = join(containerDir, "rootfs");
  let h = holds.get(rootfs);
  if (!h) {
    h = { n: 0, mounted: c.State.Running ? Promise.resolve() : store.snapshots.mount(c.Berth.ChainId, containerDir, rootfs) };
    holds.set(rootfs, h);
  }
  h.n++;
  const held = h;
  try { await held.mounted; } catch (e) { if (--held.n === 0) holds.delete(rootfs); throw e; }
  let done = false;
  return {
    rootfs,
    release: async () => {
      if (done) return;
      done = true;
      if (--held.n > 0) return;
      holds.delete(rootfs);
      if (!c.State.Running) await store.snapshots.unmount(rootfs).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------- paths

/** Go's os.FileMode bits of an lstat (what Docker's stat JSON carries). */
export function goFileMode(mode: number): number {
  let m = mode & 0o777;
  const t = mode & 0o170000;
  if (t === 0o040000) m += 2 ** 31;
  else if (t === 0o120000) m += 2 ** 27;
  else if (t === 0o060000) m += 2 ** 26;
  else if (t === 0o020000) m += 2 ** 26 + 2 ** 21;
  else if (t === 0o010000) m += 2 ** 25;
  else if (t === 0o140000) m += 2 ** 24;
  if (mode & 0o4000) m += 2 ** 23;
  if (mode & 0o2000) m += 2 ** 22;
  if (mode & 0o1000) m += 2 ** 20;
  return m;
}

/** Go's RFC3339Nano (trailing zeros of the fraction trimmed). */
function rfc3339Nano(st: BigIntStats): string {
  const s = st.mtimeNs / 1_000_000_000n, ns = st.mtimeNs % 1_000_000_000n;
  const base = new Date(Number(s) * 1000).toISOString().slice(0, 19);
  const frac = ns ? "." + ns.toString().padStart(9, "0").replace(/0+$/, "") : "";
  return `${base}${frac}Z`;
}

/** Docker's clean absolute path, keeping a trailing "/" or "/." (they mean: the directory, followed). */
export function containerPath(path: string): string {
  let abs = posix.normalize("/" + path);
  if (abs.length > 1 && abs.endsWith("/")) abs = abs.slice(0, -1);
  if (abs === "/") return "/";
  if (path.endsWith("/.") || path === ".") return abs + "/.";
  if (path.endsWith("/")) return abs + "/";
  return abs;
}

/** Go's filepath.Base. */
function goBase(p: string): string {
  const t = p.replace(/\/+$/, "");
  if (!t) return "/";
  return t.slice(t.lastIndexOf("/") + 1);
}

interface Resolved { abs: string; name: string; host: string }

/**
 * A container path resolved inside root: every component but the last
 * followed (the last too when the path ends in "/" or "/."), as Docker's
 * ResolvePath.
 */
function resolveIn(root: string, path: string): Resolved {
  const abs = containerPath(path);
  const slash = abs.lastIndexOf("/");
  const dir = abs.slice(0, slash + 1), base = abs.slice(slash + 1);
  const rdir = secureJoinSync(root, dir);
  const host = base && base !== "." ? join(rdir, base) : rdir;
  return { abs, name: goBase(abs), host };
}

export class ArchiveService {
  constructor(private readonly store: Store, private readonly containers: ContainerService, private readonly events: EventBus, private readonly dataRoot: string) {}

  private async root<T>(ref: string, fn: (c: ContainerRecord, root: string, release: () => Promise<void>) => Promise<T>): Promise<T> {
    const c = this.containers.get(ref);
    const h = await holdRootfs(this.store, c, join(this.dataRoot, "containers", c.Id));
    try {
      return await fn(c, realpathSync(h.rootfs), h.release);
    } catch (e) {
      await h.release();
      throw e;
    }
  }

  private lstatOf(r: Resolved, path: string, ref: string): BigIntStats {
    let st: BigIntStats;
    try { st = lstatSync(r.host, { bigint: true }); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new NotFoundError(`Could not find the file ${path} in container ${ref}`);
      if (code === "ENOTDIR") throw new SystemError(`lstat ${r.abs}: not a directory`);
      throw new SystemError(`lstat ${r.abs}: ${errorMessage(e)}`);
    }
    if ((r.abs.endsWith("/") || r.abs.endsWith("/.")) && r.abs !== "/" && !st.isDirectory()) throw new SystemError(`lstat ${r.abs}: not a directory`);
    return st;
  }

  private statOf(root: string, r: Resolved, st: BigIntStats): PathStat {
    let linkTarget = "";
    if (st.isSymbolicLink()) {
      const full = secureJoinSync(root, r.abs);
      linkTarget = "/" + relative(root, full);
    }
    return { name: r.name, size: Number(st.size), mode: goFileMode(Number(st.mode)), mtime: rfc3339Nano(st), linkTarget };
  }

  /** HEAD /containers/{id}/archive. */
  async stat(ref: string, path: string): Promise<PathStat> {
    if (!path) throw new BadParameterError("bad parameter: path cannot be empty");
    return this.root(ref, async (_c, root, release) => {
      const r = resolveIn(root, path);
      const st = this.statOf(root, r, this.lstatOf(r, path, ref));
      await release();
      return st;
    });
  }

  /** GET /containers/{id}/archive: the stat and a tar stream of the path (the rootfs is held until the stream ends). */
  async archive(ref: string, path: string): Promise<{ stat: PathStat; tar: NodeJS.ReadableStream }> {
    if (!path) throw new BadParameterError("bad parameter: path cannot be empty");
    return this.root(ref, async (c, root, release) => {
      const r = resolveIn(root, path);
      const stat = this.statOf(root, r, this.lstatOf(r, path, ref));
      const tar = Readable.from(writeTar(containerIds(treeEntries(r.host, { name: r.name }), this.store.snapshots.maps)));
      let released = false;
      const done = () => { if (!released) { released = true; void release(); } };
      tar.once("end", done); tar.once("close", done); tar.once("error", done);
      this.events.publish("container", "archive-path", c.Id, { name: c.Name.slice(1), image: c.Config.Image });
      return { stat, tar };
    });
  }

  /** PUT /containers/{id}/archive: unpacks a tar (plain or compressed) into the directory at path. */
  async extract(ref: string, path: string, body: AsyncIterable<Uint8Array | string>, _opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {}): Promise<void> {
    if (!path) throw new BadParameterError("bad parameter: path cannot be empty");
    await this.root(ref, async (c, root, release) => {
      const abs = containerPath(path);
      const dir = secureJoinSync(root, abs);
      let st;
      try { st = lstatSync(dir); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(`Could not find the file ${path} in container ${ref}`);
        if ((e as NodeJS.ErrnoException).code === "ENOTDIR") throw new SystemError("extraction point is not a directory");
        throw e;
      }
      if (!st.isDirectory()) throw new SystemError("extraction point is not a directory");
      if (c.HostConfig.ReadonlyRootfs) throw new BerthError("container rootfs is marked read-only", 403);
      // The counted hold commit uses too: concurrent copies and commits share one pause.
      const unpause = await holdPaused(this.containers, c);
      try {
        // The directory is the one we resolved (nothing swapped it since): the unpacker resolves every entry inside it.
        closeSync(openVerified(dir, O_DIR));
        await runLayerJob({ dir, compression: "auto", idMaps: this.store.snapshots.maps }, body).catch((e: unknown) => {
          const msg = errorMessage(e).replace(/^invalid layer tar: /, "").replace(/^unexpected end of data$/, "unexpected EOF");
          throw new SystemError(`Error processing tar file(exit status 1): ${msg}`);
        });
      } finally {
        await unpause();
        await release();
      }
      this.events.publish("container", "extract-to-dir", c.Id, { name: c.Name.slice(1), image: c.Config.Image });
    });
  }
}
