/**
 * `berth cp`: Docker's `docker cp`, both ways, over the archive API.
 *
 *   cp [-a] [-L] CONTAINER:SRC DEST|-     GET /containers/{id}/archive, unpacked here (GNU tar)
 *   cp [-a] [-L] SRC|- CONTAINER:DEST     a tar made here (lib/rootfs.ts walker), PUT into the container
 *
 * Where things land follows Docker's archive.PrepareArchiveCopy: into an
 * existing directory under the source's name ("SRC/." copies its contents);
 * over an existing file (a file only: "cannot copy directory"); as a new
 * name in an existing parent ("DEST/" for a file that is not there: "no such
 * directory"). Error texts and exit codes are the docker CLI's.
 */
import { lstatSync, realpathSync, statSync } from "node:fs";
import { dirname, posix, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command, Ctx } from "./command.js";
import { UsageError } from "../lib/args.js";
import { ApiError, type ContainerPathStat } from "../api/client.js";
import { treeEntries } from "../lib/rootfs.js";
import { writeTar } from "../lib/tar-writer.js";
import { humanSize } from "../lib/format.js";

/**
 * docker cp's progress: only on a terminal and without -q, "Successfully copied 2.05kB to DEST" at the end.
 * counted() passes a stream through, counting its bytes.
 */
interface Progress { bytes: number; show: boolean }
function counted(src: NodeJS.ReadableStream, p: Progress): NodeJS.ReadableStream {
  if (!p.show) return src;
  // Counted in transform(), not by a 'data' listener: that would start the flow before the consumer listens.
  const t = new Transform({ transform(d: Buffer, _e, done) { p.bytes += d.length; done(null, d); } });
  src.on("error", (e) => t.destroy(e));
  return src.pipe(t);
}

const GO_DIR = 2 ** 31, GO_SYMLINK = 2 ** 27;
const isDirMode = (m: number) => m >= GO_DIR;
const isLinkMode = (m: number) => Math.floor(m / GO_SYMLINK) % 2 === 1 && !isDirMode(m);

/** Docker's splitCpArg: "/abs" and "./x:y" are local; "c:path" is a container's. */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith("/")) return { container: "", path: arg };
  const i = arg.indexOf(":");
  if (i < 0 || arg.startsWith(".")) return { container: "", path: arg };
  return { container: arg.slice(0, i), path: arg.slice(i + 1) };
}

const endsWithSep = (p: string) => p.endsWith("/") || p.endsWith("/.") || p === ".";

/** An absolute local path, keeping a trailing "/" or "/." (Docker's resolveLocalPath). */
function localPath(p: string): string {
  const abs = resolve(p);
  if (abs === "/") return abs;
  if (p.endsWith("/.") || p === ".") return abs + "/.";
  if (p.endsWith("/")) return abs + "/";
  return abs;
}

/** Docker's SplitPathDirEntry: the parent and the last element of a path ("." for "dir/."). */
function splitDirEntry(p: string): { dir: string; base: string } {
  let clean = posix.normalize(p);
  if (clean.length > 1) clean = clean.replace(/\/+$/, "");
  if (p.endsWith("/.") || p === ".") clean = clean === "/" ? "/." : `${clean}/.`;
  return { dir: posix.dirname(clean), base: clean === "/" ? "/" : posix.basename(clean) };
}

/** The GNU tar --transform expression renaming the first path element `from` to `to`. */
function rebaseExpr(from: string, to: string): string {
  const esc = (s: string) => s.replace(/[\\.[\]*^$,&]/g, (c) => "\\" + c);
  // S: symlink targets are the container's, never renamed.
  return `s,^${esc(from)}\\(/\\|$\\),${to.replace(/[\\&,]/g, (c) => "\\" + c)}\\1,S`;
}

function notFound(container: string, path: string): Error {
  return new Error(`Error: No such container:path: ${container}:${path}`);
}

async function statOrNull(c: Ctx, container: string, path: string): Promise<ContainerPathStat | null> {
  try { return await c.api.statPath(container, path); } catch (e) {
    if (e instanceof ApiError) return null;
    throw e;
  }
}

/** Unpacks a tar stream into dir (GNU tar: owned by whoever runs berth, modes kept, optionally renaming the top entry). */
function untar(tar: NodeJS.ReadableStream, dir: string, rebase?: { from: string; to: string }): Promise<void> {
  const args = ["-x", "-f", "-", "-C", dir, "--no-same-owner", "-p"];
  if (rebase && rebase.from !== rebase.to) args.push(`--transform=${rebaseExpr(rebase.from, rebase.to)}`, "--show-transformed-names");
  return import("node:child_process").then(({ spawn }) => new Promise((res, rej) => {
    const p = spawn("tar", args, { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    p.on("error", rej);
    p.on("close", (code) => code === 0 ? res() : rej(new Error(err.trim().split("\n").filter((l) => !/^tar: Exiting with failure/.test(l)).join("\n") || `tar exited with ${code}`)));
    tar.on("error", (e) => { p.stdin.destroy(); rej(e); });
    tar.pipe(p.stdin);
    p.stdin.on("error", () => { /* tar went away: its exit says why */ });
  }));
}

async function fromContainer(c: Ctx, container: string, src: string, dst: string, follow: boolean, progress: Progress = { bytes: 0, show: false }): Promise<number> {
  let srcPath = src;
  let rebaseName: string | undefined;
  if (follow) {
    const st = await statOrNull(c, container, srcPath);
    if (st && isLinkMode(st.mode) && st.linkTarget) {
      rebaseName = splitDirEntry(srcPath).base;
      srcPath = st.linkTarget;
    }
  }
  if (dst === "-") {
    const { tar } = await c.api.getArchive(container, srcPath).catch((e) => { throw e instanceof ApiError && e.status === 404 ? notFound(container, srcPath) : e; });
    await pipeline(tar, process.stdout, { end: false });
    return 0;
  }
  const dstPath = localPath(dst);
  // validateOutputPath: the parent of the destination must exist.
  const parent = dirname(posix.normalize(dstPath.replace(/\/\.?$/, "")) || "/");
  try { statSync(parent); } catch { throw new Error(`invalid output path: directory "${parent}" does not exist`); }
  // CopyInfoDestinationPath: the destination, a symlink there followed.
  let dstInfo: { exists: boolean; isDir: boolean; path: string } = { exists: false, isDir: false, path: dstPath };
  try {
    const st = statSync(dstPath);
    dstInfo = { exists: true, isDir: st.isDirectory(), path: dstPath };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOTDIR") throw new Error(`stat ${dstPath}: not a directory`);
    if (code !== "ENOENT") throw e;
  }
  const { stat, tar: raw } = await c.api.getArchive(container, srcPath).catch((e) => { throw e instanceof ApiError && e.status === 404 ? notFound(container, srcPath) : e; });
  const tar = counted(raw, progress);
  const srcIsDir = isDirMode(stat.mode);
  const srcBase = stat.name;
  const name = rebaseName ?? srcBase;
  try {
    if (dstInfo.exists && dstInfo.isDir) {
      await untar(tar, dstPath.replace(/\/\.?$/, "") || "/", { from: srcBase, to: name });
    } else if (dstInfo.exists) {
      if (srcIsDir) throw new Error("cannot copy directory");
      const { dir, base } = splitDirEntry(dstPath);
      await untar(tar, dir, { from: srcBase, to: base });
    } else {
      if (!srcIsDir && endsWithSep(dstPath)) throw new Error("no such directory");
      const { dir, base } = splitDirEntry(dstPath);
      await untar(tar, dir, { from: srcBase, to: base });
    }
  } finally {
    tar.resume();
  }
  if (progress.show) c.err(`Successfully copied ${humanSize(progress.bytes)} to ${dst}\n`);
  return 0;
}

async function toContainer(c: Ctx, src: string, container: string, dst: string, follow: boolean, copyUIDGID: boolean, progress: Progress = { bytes: 0, show: false }): Promise<number> {
  // The destination in the container, a symlink there followed (as the docker CLI does).
  let dstPath = dst;
  let dstStat = await statOrNull(c, container, dstPath);
  if (dstStat && isLinkMode(dstStat.mode) && dstStat.linkTarget) {
    dstPath = dstStat.linkTarget;
    dstStat = await statOrNull(c, container, dstPath);
  }
  const put = async (dir: string, tar: NodeJS.ReadableStream) => {
    await c.api.putArchive(container, dir, tar, { noOverwriteDirNonDir: true, copyUIDGID }).catch((e) => { throw e instanceof ApiError && e.status === 404 ? notFound(container, dir) : e; });
  };
  if (src === "-") {
    if (!dstStat) throw notFound(container, dst);
    if (!isDirMode(dstStat.mode)) throw new Error(`destination "${container}:${dst}" must be a directory`);
    await put(dstPath, process.stdin);
    return 0;
  }
  const srcPath = localPath(src);
  let st;
  try { st = follow ? statSync(srcPath) : lstatSync(srcPath); } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`${follow ? "stat" : "lstat"} ${srcPath}: ${code === "ENOENT" ? "no such file or directory" : code === "ENOTDIR" ? "not a directory" : (e as Error).message}`);
  }
  const srcIsDir = st.isDirectory();
  // The tar's top entry: the source's name, "." for "SRC/." (its contents).
  const contents = srcPath.endsWith("/.");
  const trimmed = srcPath.replace(/\/\.?$/, "") || "/";
  const real = follow || contents || srcPath.endsWith("/") ? realpathSync(trimmed) : `${realpathSync(dirname(trimmed))}/${trimmed.slice(trimmed.lastIndexOf("/") + 1)}`.replace(/^\/\//, "/");
  const srcBase = contents ? "." : splitDirEntry(trimmed).base;
  let dir: string, name: string;
  if (dstStat && isDirMode(dstStat.mode)) {
    dir = dstPath; name = srcBase;
  } else if (dstStat) {
    if (srcIsDir) throw new Error("cannot copy directory");
    ({ dir, base: name } = splitDirEntry(dstPath));
  } else {
    if (!srcIsDir && endsWithSep(dstPath)) throw new Error("no such directory");
    ({ dir, base: name } = splitDirEntry(dstPath));
  }
  const tar = counted(Readable.from(writeTar(treeEntries(real, { name }))), progress);
  await put(dir, tar);
  if (progress.show) c.err(`Successfully copied ${humanSize(progress.bytes)} to ${container}:${dst}\n`);
  return 0;
}

export const cpCommand: Command = {
  name: "cp",
  usage: "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
  desc: "Copy files/folders between a container and the local filesystem",
  flags: [
    { long: "archive", short: "a", type: "bool", desc: "Archive mode (copy all uid/gid information)" },
    { long: "follow-link", short: "L", type: "bool", desc: "Always follow symbol link in SRC_PATH" },
    { long: "quiet", short: "q", type: "bool", desc: "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached" },
  ],
  run: async (c, f, a) => {
    if (a.length !== 2) throw new UsageError(`"cp" requires exactly 2 arguments.`);
    const src = splitCpArg(a[0]), dst = splitCpArg(a[1]);
    if (!src.container && !dst.container) throw new Error("must specify at least one container source");
    if (src.container && dst.container) throw new Error("copying between containers is not supported");
    // Progress is for a terminal (docker: "automatically suppressed if no terminal is attached"), and never with -q.
    const progress = { bytes: 0, show: !f.quiet && !!process.stderr.isTTY };
    if (src.container) return fromContainer(c, src.container, src.path, dst.path, !!f["follow-link"], dst.path === "-" ? undefined : progress);
    return toContainer(c, src.path, dst.container, dst.path, !!f["follow-link"], !!f.archive, src.path === "-" ? undefined : progress);
  },
};
