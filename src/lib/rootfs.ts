/**
 * Reading a tree that someone else controls (a container's root, a layer)
 * from the host without ever leaving it. Where a path comes from:
 * securejoin.ts resolves it inside the root as if the root were "/". What
 * this file adds is the reading, race-free even while the container runs:
 *
 * - `lstatWithin` stats a path whose every parent must be a real directory
 *   (no symlink followed anywhere): "does the lower layer have this path".
 * - `openVerified` opens an already-resolved path with O_NOFOLLOW and checks,
 *   through /proc/self/fd, that the kernel opened that very path: a parent
 *   swapped for a symlink in between (CVE-2018-15664) fails instead of
 *   reading the host.
 * - `treeEntries` walks a tree from such an opened directory as openat(2)
 *   would: every child is reached through its parent's descriptor
 *   (/proc/self/fd/N/name), never by a path string walked again, and every
 *   file is opened O_NOFOLLOW through it. Symlinks are entries, never
 *   followed. It yields tar entries (lib/tar-writer.ts) whose file sources are
 *   those descriptors: the writer reads each before asking for the next entry,
 *   which closes it.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, type Stats } from "node:fs";
import { join } from "node:path";
import { SystemError } from "./errors.js";
import type { TarEntry } from "./tar-writer.js";

const fdPath = (fd: number) => `/proc/self/fd/${fd}`;
export const O_DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** O_NONBLOCK: a FIFO swapped in for a file must not hang the daemon. */
export const O_FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/** The root's canonical path (what /proc/self/fd shows for paths under it). */
export function canonicalRoot(root: string): string { return realpathSync(root); }

/** lstat of root/rel with no symlink followed on the way; undefined when missing or a parent is not a real directory. */
export function lstatWithin(root: string, rel: string): Stats | undefined {
  const parts = rel.split("/").filter((p) => p && p !== ".");
  if (parts.includes("..")) return undefined;
  let p = root;
  let st = lstatSync(root, { throwIfNoEntry: false });
  for (const part of parts) {
    if (!st?.isDirectory()) return undefined;
    p = join(p, part);
    st = lstatSync(p, { throwIfNoEntry: false });
  }
  return st;
}

/** Opens `abs` (canonical, resolved inside its root) O_NOFOLLOW and checks the kernel opened that very path. */
export function openVerified(abs: string, flags: number): number {
  const fd = openSync(abs, flags);
  let real: string;
  try { real = readlinkSync(fdPath(fd)); } catch (e) { closeSync(fd); throw e; }
  if (real !== abs) { closeSync(fd); throw new SystemError(`${abs} changed while being opened (it now leads to ${real})`); }
  return fd;
}

export interface TreeOptions {
  /** The archive name of the top entry ("d", ".", "/"); children are `${name}/${child}`. */
  name: string;
}

function join2(name: string, child: string): string {
  if (name === "/") return `/${child}`;
  return `${name}/${child}`;
}

function devEntry(st: Stats): { devmajor: number; devminor: number } {
  return { devmajor: Math.floor(st.rdev / 256) & 0xfff, devminor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00) };
}

/**
 * Tar entries for the tree at `abs` (canonical, resolved inside its root; the
 * top itself may be a symlink, archived as one). Owners, modes and times as
 * lstat says; hard links inside the tree stay hard links; sockets are left out.
 */
export function* treeEntries(abs: string, opts: TreeOptions): Generator<TarEntry> {
  const inodes = new Map<string, string>();
  const top = lstatSync(abs);
  if (top.isDirectory()) {
    const fd = openVerified(abs, O_DIR);
    try { yield* dir(fd, opts.name, top, inodes); } finally { closeSync(fd); }
    return;
  }
  const slash = abs.lastIndexOf("/");
  const parent = openVerified(abs.slice(0, slash) || "/", O_DIR);
  try { yield* one(parent, abs.slice(slash + 1), opts.name, inodes); } finally { closeSync(parent); }
}

function head(name: string, st: Stats): Pick<TarEntry, "name" | "mode" | "uid" | "gid" | "mtime"> {
  return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
}

function* dir(fd: number, name: string, st: Stats, inodes: Map<string, string>): Generator<TarEntry> {
  yield { ...head(name, st), type: "directory" };
  let names: string[];
  try { names = readdirSync(fdPath(fd)).sort(); } catch { return; }
  for (const n of names) yield* one(fd, n, join2(name, n), inodes);
}

/** The child `n` of the directory open at `parentFd`. Anything that changes under us is skipped, never followed. */
function* one(parentFd: number, n: string, name: string, inodes: Map<string, string>): Generator<TarEntry> {
  const p = `${fdPath(parentFd)}/${n}`;
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return;
  if (st.isDirectory()) {
    let fd: number;
    try { fd = openSync(p, O_DIR); } catch { return; } // replaced by a symlink meanwhile: O_NOFOLLOW refused it
    try {
      const now = fstatSync(fd);
      if (now.ino !== st.ino || now.dev !== st.dev) return;
      yield* dir(fd, name, st, inodes);
    } finally { closeSync(fd); }
  } else if (st.isSymbolicLink()) {
    let target: string;
    try { target = readlinkSync(p); } catch { return; }
    yield { ...head(name, st), type: "symlink", linkname: target };
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1 && inodes.has(key)) { yield { ...head(name, st), type: "link", linkname: inodes.get(key)! }; return; }
    let fd: number;
    try { fd = openSync(p, O_FILE); } catch { return; }
    try {
      const now = fstatSync(fd);
      if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) return;
      if (st.nlink > 1) inodes.set(key, name);
      yield { ...head(name, st), type: "file", size: now.size, source: fdPath(fd) };
    } finally { closeSync(fd); }
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    yield { ...head(name, st), type: st.isBlockDevice() ? "block" : "char", ...devEntry(st) };
  } else if (st.isFIFO()) {
    yield { ...head(name, st), type: "fifo" };
  }
}
