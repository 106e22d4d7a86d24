/**
 * A container's changes: its overlay upper directory read back as an OCI
 * layer (for `commit`, and the builder) and as Docker's change list (`diff`).
 *
 * In the upper directory a deleted path is a 0/0 character device (overlay
 * whiteout) and a directory that replaced a lower one carries the
 * trusted.overlay.opaque xattr; in a layer they are `.wh.<name>` and
 * `.wh..wh..opq` entries. Hard links inside the upper directory stay hard
 * links; extended attributes (file capabilities...) are kept as PAX
 * SCHILY.xattr records. One `getfattr` reads every attribute at once.
 *
 * A container's tree may be full of symlinks to host paths: nothing here
 * follows one. "Is this path in a lower layer" is an lstat whose every parent
 * must be a real directory of that layer (lib/rootfs.ts lstatWithin), and a
 * file's bytes are read from a descriptor opened O_NOFOLLOW and checked to be
 * that very path in the upper directory (openVerified), so a container that
 * swaps a directory for a symlink while it is committed unpaused cannot make
 * the layer carry a host file.
 */
import { closeSync, fstatSync, lstatSync, promises as fsp, readdirSync, readSync, readlinkSync, realpathSync, type Stats } from "node:fs";
import { Readable } from "node:stream";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { writeTar, type TarEntry } from "../lib/tar-writer.js";
import { O_FILE, lstatWithin, openVerified } from "../lib/rootfs.js";
import { unmapId, type IdMaps } from "./idmap.js";

export interface Change { Path: string; Kind: 0 | 1 | 2 }

interface Walked { rel: string; abs: string; st: Stats }

/** Files berth bind-mounts over in every container: their stubs in the upper directory are not changes. */
const MOUNT_STUBS = new Set(["etc/hostname", "etc/hosts", "etc/resolv.conf"]);

/**
 * The upper directory's entries, parents first. A directory that is only
 * there as the parent of left-out stubs (and exists below) is left out too.
 */
function walk(root: string, lowers: string[], skipped?: string[]): Walked[] {
  const out: Walked[] = [];
  const go = (rel: string): boolean => {
    const abs = rel ? join(root, rel) : root;
    let names: string[];
    try { names = readdirSync(abs).sort(); } catch { return false; }
    let any = false;
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      if (MOUNT_STUBS.has(r)) { skipped?.push(join(root, r)); continue; }
      const a = join(root, r);
      const st = lstatSync(a);
      const at = out.length;
      out.push({ rel: r, abs: a, st });
      if (st.isDirectory() && !go(r) && names.length && readdirSync(a).every((x) => MOUNT_STUBS.has(`${r}/${x}`)) && readdirSync(a).length && lowers.some((l) => lstatWithin(l, r) !== undefined)) {
        out.splice(at, 1);
        skipped?.push(a);
        continue;
      }
      any = true;
    }
    return any;
  };
  go("");
  return out;
}

/** Files up to this size are read whole into the tar. */
const SMALL_FILE = 1 << 20;

/** `size` bytes from the start of fd; zeros where the file has shrunk since its lstat (the archive stays well-formed). */
function readWhole(fd: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let got = 0;
  while (got < size) {
    const n = readSync(fd, b, got, size - got, got);
    if (n === 0) break;
    got += n;
  }
  if (got < size) b.fill(0, got);
  return b;
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

/** Every extended attribute under root: absolute path → name → value bytes. Decoded from getfattr's dump. */
function readXattrs(root: string): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  const r = spawnSync("getfattr", ["-R", "-P", "--absolute-names", "-d", "-m", "-", "-e", "base64", root], { encoding: "utf8", maxBuffer: 64 << 20 });
  let file = "";
  for (const line of (r.stdout ?? "").split("\n")) {
    if (line.startsWith("# file: ")) {
      file = line.slice(8).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      file = Buffer.from(file, "latin1").toString("utf8");
      continue;
    }
    const eq = line.indexOf("=");
    if (!file || eq < 0) continue;
    const name = line.slice(0, eq), v = line.slice(eq + 1);
    const value = v.startsWith("0s") ? Buffer.from(v.slice(2), "base64") : Buffer.from(v.replace(/^"|"$/g, ""));
    if (!out.has(file)) out.set(file, new Map());
    out.get(file)!.set(name, value);
  }
  return out;
}

/** Docker's `diff`: A (1) paths new to the container, C (0) changed ones, D (2) deleted ones. */
export function changes(upper: string, lowers: string[]): Change[] {
  const inLower = (rel: string) => lowers.some((l) => lstatWithin(l, rel) !== undefined);
  const out: Change[] = [];
  for (const w of walk(upper, lowers)) {
    const Kind = isWhiteout(w.st) ? 2 : inLower(w.rel) ? 0 : 1;
    out.push({ Path: "/" + w.rel, Kind });
  }
  return out;
}

/** The upper directory as a layer tar (uncompressed), streamed; `maps`: a remapped daemon's, owners are shifted back to the container's ids. */
export function layerTar(upperDir: string, lowers: string[], maps?: IdMaps): NodeJS.ReadableStream {
  return upperLayer(upperDir, lowers, maps).tar;
}

/**
 * The upper directory as a layer, and what it takes to make that directory
 * itself the layer's snapshot (the builder's RUN: its container is gone
 * after the commit, so its upper directory is moved into the snapshotter
 * rather than the tar unpacked again, as containerd commits an active
 * snapshot): `leftOut`, once the tar has been read to its end, lists the
 * paths the tar does not carry (mount stubs, the directories that held only
 * them, sockets), deepest first; `size` is what the unpacker would count (the
 * bytes of regular files). pruneToLayer() removes them.
 */
export interface UpperLayer { tar: NodeJS.ReadableStream; leftOut: string[]; size: number; upper: string; times: Map<string, Stats> }

export function upperLayer(upperDir: string, lowers: string[], maps?: IdMaps): UpperLayer {
  const upper = realpathSync(upperDir);
  const xattrs = readXattrs(upper);
  const skipped: string[] = [];
  const entries = walk(upper, lowers, skipped);
  const res: UpperLayer = { tar: undefined as unknown as NodeJS.ReadableStream, leftOut: skipped, size: 0, upper, times: new Map() };
  for (const w of entries) if (w.st.isDirectory()) res.times.set(w.abs, w.st);
  function* gen(): Generator<TarEntry> {
    const inodes = new Map<string, string>();
    for (const w of entries) {
      const attrs = xattrs.get(w.abs);
      const slash = w.rel.lastIndexOf("/");
      const dir = slash < 0 ? "" : w.rel.slice(0, slash + 1);
      const base = w.rel.slice(slash + 1);
      const st = w.st;
      if (isWhiteout(st)) {
        yield { name: `${dir}.wh.${base}`, type: "file", mode: 0o600, mtime: st.mtime, source: Buffer.alloc(0) };
        continue;
      }
      // overlay's own attributes are not the image's.
      const keep = [...(attrs ?? [])].filter(([k]) => !k.startsWith("trusted."));
      const h = { name: w.rel, mode: st.mode & 0o7777, uid: maps ? unmapId(maps.uids, st.uid) : st.uid, gid: maps ? unmapId(maps.gids, st.gid) : st.gid, mtime: st.mtime, xattrs: keep.length ? keep : undefined };
      const key = `${st.dev}:${st.ino}`;
      if (st.isDirectory()) {
        yield { ...h, type: "directory" };
        if (attrs?.get("trusted.overlay.opaque")?.toString() === "y") yield { name: `${w.rel}/.wh..wh..opq`, type: "file", mode: 0o600, mtime: st.mtime, source: Buffer.alloc(0) };
      } else if (st.isSymbolicLink()) {
        yield { ...h, type: "symlink", linkname: readlinkSync(w.abs) };
      } else if (st.isFile() && st.nlink > 1 && inodes.has(key)) {
        yield { ...h, type: "link", linkname: inodes.get(key)!, xattrs: undefined };
      } else if (st.isFile()) {
        let fd: number;
        try { fd = openVerified(w.abs, O_FILE); } catch { res.leftOut.push(w.abs); continue; } // gone, or no longer that file: left out, never followed
        try {
          if (!fstatSync(fd).isFile()) { res.leftOut.push(w.abs); continue; }
          if (st.nlink > 1) inodes.set(key, w.rel);
          res.size += st.size;
          // A small file is read here, from the descriptor opened (no second open through /proc); a big one is streamed from it.
          yield { ...h, type: "file", size: st.size, source: st.size <= SMALL_FILE ? readWhole(fd, st.size) : `/proc/self/fd/${fd}` };
        } finally { closeSync(fd); }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) {
        const major = Math.floor(st.rdev / 256) & 0xfff, minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
        yield { ...h, type: st.isBlockDevice() ? "block" : "char", devmajor: major, devminor: minor };
      } else if (st.isFIFO()) {
        yield { ...h, type: "fifo" };
      } else res.leftOut.push(w.abs); // a socket: not in a layer
    }
  }
  res.tar = Readable.from(writeTar(gen()));
  return res;
}

/**
 * Makes the upper directory hold exactly what its tar carried (after the tar
 * was read to its end): the left-out paths go (a directory only when empty,
 * as walk left it out for holding nothing else), the directories they were
 * in keep the times the tar gave them, and the top is the layer root an
 * unpack makes (0755; `rootOwner`: the mapped root of a remapped daemon).
 * Nothing here follows a link: every removed path was lstat'ed inside the
 * upper directory, and rm/rmdir do not follow the last component.
 */
export async function pruneToLayer(l: UpperLayer, rootOwner = { uid: 0, gid: 0 }): Promise<void> {
  const touched = new Set<string>();
  for (const p of l.leftOut) {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) await fsp.rmdir(p);
    else await fsp.unlink(p);
    touched.add(dirname(p));
  }
  for (const d of touched) {
    const st = l.times.get(d);
    if (st) await fsp.utimes(d, st.atime, st.mtime).catch(() => {});
  }
  await fsp.lchown(l.upper, rootOwner.uid, rootOwner.gid).catch(() => {});
  await fsp.chmod(l.upper, 0o755);
}
