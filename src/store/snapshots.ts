/**
 * Overlay snapshotter. Lifecycle (after containerd's snapshots.Snapshotter):
 *
 *   applyLayer(parent, tar) → a committed, read-only snapshot keyed by the
 *       layer's chain ID, unpacked once: applying a layer whose chain ID
 *       exists drains the stream and returns the existing snapshot.
 *   mount(chainId, containerDir, target) → overlay of the chain's lower dirs
 *       with the container's own upper/ and work/ (the writable layer).
 *   unmount(target) → the container's rootfs goes away; upper/ stays until
 *       the container directory is removed.
 *   remove(chainId) → by the garbage collector, once nothing references it.
 *
 * Layout: <root>/<n>/fs holds snapshot n (short paths keep the overlay option
 * string, limited to a page, able to hold many layers); <root>/index.json maps
 * chain IDs to numbers, written atomically. Unpacking goes to <root>/tmp-*
 * and is renamed into place, so a crash leaves no half-made snapshot.
 *
 * Unpacking is hostile-tar safe: names are cleaned lexically, parents are
 * resolved inside the snapshot (symlinks never lead out), hardlinks must
 * point inside the layer, whiteouts become overlay whiteouts (0/0 char
 * devices) and opaque markers become trusted.overlay.opaque xattrs.
 * A layer is unpacked into its own directory: a path under a symlink that
 * only a lower layer has is created as a real directory here.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, promises as fsp, readFileSync } from "node:fs";
import { dirname, join, basename } from "node:path";
import { Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { atomicWrite, readJsonIfExists } from "../lib/fsutil.js";
import { secureJoin } from "../lib/securejoin.js";
import { runOk, run } from "../lib/proc.js";
import { BadParameterError, NotFoundError } from "../lib/errors.js";

export function chainIdOf(diffIds: string[]): string {
  let chain = diffIds[0];
  for (let i = 1; i < diffIds.length; i++) chain = "sha256:" + createHash("sha256").update(`${chain} ${diffIds[i]}`).digest("hex");
  return chain;
}

interface SnapInfo { n: number; parent: string | null; size: number; diffId: string }
interface Index { next: number; snapshots: Record<string, SnapInfo> }

/** Lexically cleans a tar entry name to a relative path inside the layer; undefined for the root itself. */
export function cleanEntryName(name: string): string | undefined {
  const out: string[] = [];
  for (const p of name.split("/")) {
    if (!p || p === ".") continue;
    if (p === "..") { out.pop(); continue; }
    out.push(p);
  }
  return out.length ? out.join("/") : undefined;
}

export class Snapshotter {
  private index: Index = { next: 1, snapshots: {} };
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await fsp.mkdir(join(this.root, "empty"), { recursive: true });
    for (const n of await fsp.readdir(this.root)) if (n.startsWith("tmp-")) await fsp.rm(join(this.root, n), { recursive: true, force: true });
    this.index = (await readJsonIfExists<Index>(join(this.root, "index.json"))) ?? { next: 1, snapshots: {} };
    // Directories not in the index are leftovers of a crash between rename and index write.
    const known = new Set(Object.values(this.index.snapshots).map((s) => String(s.n)));
    for (const n of await fsp.readdir(this.root)) if (/^\d+$/.test(n) && !known.has(n)) await fsp.rm(join(this.root, n), { recursive: true, force: true });
  }

  private save(): Promise<void> {
    const snapshot = JSON.stringify(this.index);
    this.writing = this.writing.then(() => atomicWrite(join(this.root, "index.json"), snapshot));
    return this.writing;
  }

  async has(chainId: string): Promise<boolean> { return chainId in this.index.snapshots; }

  private dir(chainId: string): string {
    const s = this.index.snapshots[chainId];
    if (!s) throw new NotFoundError(`snapshot ${chainId} does not exist`);
    return join(this.root, String(s.n), "fs");
  }

  /**
   * `parentPending`: the parent is being unpacked concurrently (a pull unpacks all its layers at once:
   * each goes to its own directory, only the chain ID depends on the parent).
   */
  async applyLayer(parent: string | null, src: NodeJS.ReadableStream, expectedDiffId?: string, opts: { parentPending?: boolean } = {}): Promise<{ chainId: string; diffId: string; size: number }> {
    if (parent && !opts.parentPending && !this.index.snapshots[parent]) throw new NotFoundError(`parent snapshot ${parent} does not exist`);
    if (expectedDiffId) {
      const chainId = parent ? chainIdOf([parent, expectedDiffId]) : expectedDiffId;
      const have = this.index.snapshots[chainId];
      if (have) {
        await pipeline(src, new Writable({ write(_c, _e, cb) { cb(); } }));
        return { chainId, diffId: expectedDiffId, size: have.size };
      }
    }
    const tmp = join(this.root, `tmp-${randomBytes(6).toString("hex")}`);
    const fs = join(tmp, "fs");
    await fsp.mkdir(fs, { recursive: true, mode: 0o755 });
    try {
      const hash = createHash("sha256");
      const tap = new Transform({ transform(chunk: Buffer, _e, cb) { hash.update(chunk); cb(null, chunk); } });
      const extract = tar.extract();
      let size = 0;
      const dirTimes: [string, Date][] = [];
      const consume = (async () => {
        for await (const entry of extract) {
          size += await this.unpackEntry(fs, entry.header, entry as unknown as NodeJS.ReadableStream, dirTimes);
        }
      })();
      await Promise.all([pipeline(src, tap, extract), consume]);
      for (const [p, t] of dirTimes.reverse()) await fsp.utimes(p, t, t).catch(() => {});
      const diffId = "sha256:" + hash.digest("hex");
      if (expectedDiffId && expectedDiffId !== diffId) throw new BadParameterError(`layer diff ID mismatch: expected ${expectedDiffId}, got ${diffId}`);
      const chainId = parent ? chainIdOf([parent, diffId]) : diffId;
      const have = this.index.snapshots[chainId];
      if (have) return { chainId, diffId, size: have.size };
      const n = this.index.next++;
      await fsp.rename(tmp, join(this.root, String(n)));
      this.index.snapshots[chainId] = { n, parent, size, diffId };
      await this.save();
      return { chainId, diffId, size };
    } finally {
      await fsp.rm(tmp, { recursive: true, force: true });
    }
  }

  /** Writes one tar entry under fs; returns the bytes it adds. */
  private async unpackEntry(fs: string, h: tar.Header, body: NodeJS.ReadableStream, dirTimes: [string, Date][]): Promise<number> {
    const drain = () => pipeline(body, new Writable({ write(_c, _e, cb) { cb(); } }));
    const name = cleanEntryName(h.name);
    if (!name) {
      if (h.type === "directory") { await fsp.chmod(fs, (h.mode ?? 0o755) & 0o7777).catch(() => {}); }
      await drain();
      return 0;
    }
    const parentRel = dirname(name) === "." ? "" : dirname(name);
    const base = basename(name);
    const parent = await secureJoin(fs, parentRel);
    if (!parent.startsWith(fs)) { await drain(); return 0; }
    await fsp.mkdir(parent, { recursive: true, mode: 0o755 });
    const target = join(parent, base);
    // Whiteouts
    if (base === ".wh..wh..opq") {
      await drain();
      await runOk("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", parent]);
      return 0;
    }
    if (base.startsWith(".wh.")) {
      await drain();
      const hidden = join(parent, base.slice(4));
      await fsp.rm(hidden, { recursive: true, force: true });
      await runOk("mknod", ["-m", "0", hidden, "c", "0", "0"]);
      return 0;
    }
    // Replace whatever is there (but merge into an existing directory).
    const existing = await fsp.lstat(target).catch(() => undefined);
    if (existing && !(existing.isDirectory() && h.type === "directory")) await fsp.rm(target, { recursive: true, force: true });
    const mode = (h.mode ?? 0o644) & 0o7777;
    let added = 0;
    switch (h.type) {
      case "directory":
        await fsp.mkdir(target, { recursive: true });
        await drain();
        break;
      case "file": case "contiguous-file":
        await pipeline(body, createWriteStream(target, { mode: 0o600 }));
        added = h.size ?? 0;
        break;
      case "symlink":
        await drain();
        await fsp.symlink(h.linkname ?? "", target);
        break;
      case "link": {
        await drain();
        const linkName = cleanEntryName(h.linkname ?? "");
        if (!linkName) throw new BadParameterError(`invalid hardlink ${h.name} → ${h.linkname}`);
        const src = await secureJoin(fs, linkName, { followLast: false });
        if (!src.startsWith(fs + "/")) throw new BadParameterError(`hardlink ${h.name} points outside the layer`);
        await fsp.link(src, target);
        return 0;
      }
      case "character-device": case "block-device": case "fifo":
        await drain();
        await runOk("mknod", ["-m", mode.toString(8), target, h.type === "fifo" ? "p" : h.type === "block-device" ? "b" : "c",
          ...(h.type === "fifo" ? [] : [String(h.devmajor ?? 0), String(h.devminor ?? 0)])]);
        break;
      default:
        await drain();
        return 0;
    }
    await fsp.lchown(target, h.uid ?? 0, h.gid ?? 0).catch(() => {});
    if (h.type !== "symlink") await fsp.chmod(target, mode);
    const mtime = h.mtime ?? new Date(0);
    if (h.type === "directory") dirTimes.push([target, mtime]);
    else await fsp.lutimes(target, mtime, mtime).catch(() => {});
    return added;
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
    await Promise.all([fsp.mkdir(upper, { recursive: true }), fsp.mkdir(work, { recursive: true }), fsp.mkdir(target, { recursive: true })]);
    // Overlay needs two lower dirs for a one-layer image? No: one lower + upper is fine.
    await runOk("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower.join(":")},upperdir=${upper},workdir=${work}`, target]);
  }

  async unmount(target: string): Promise<void> {
    if (!isMountPoint(target)) return;
    const r = await run("umount", [target]);
    if (r.code !== 0 && isMountPoint(target)) await run("umount", ["-l", target]);
  }

  async remove(chainId: string): Promise<void> {
    const s = this.index.snapshots[chainId];
    if (!s) return;
    delete this.index.snapshots[chainId];
    await this.save();
    await fsp.rm(join(this.root, String(s.n)), { recursive: true, force: true });
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
