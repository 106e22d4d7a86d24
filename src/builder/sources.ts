/**
 * What COPY and ADD read, and how: the Dockerfile and its ignore file from the context, destinations
 * resolved inside an image, globs, content digests (the cache key's inputs: names, modes, bytes), local
 * archives unpacked and URLs downloaded, streamed, never whole in memory.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, openSync, readSync, closeSync, mkdirSync, chmodSync, utimesSync, createReadStream, createWriteStream, rmSync, readlinkSync, type Stats } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { spawn } from "node:child_process";
import { createGunzip } from "node:zlib";
import { join, posix } from "node:path";
import { DockerIgnore } from "../lib/dockerignore.js";
import { ignoreFileName } from "../lib/build-context.js";
import { TarUnpacker } from "../store/tar-unpack.js";
import { BadParameterError } from "../lib/errors.js";
import { lstatInRoot } from "../lib/securejoin.js";
import type { TarEntry } from "../lib/tar-writer.js";
import { BuildCancelledError } from "./errors.js";

/**
 * A destination path inside an image's filesystem, resolved as Docker resolves it (symlinks followed
 * inside the image): its path relative to the root, whether it is a directory, the directories on the
 * way (and itself) that exist, as tar entries carrying their current owner, mode and time, and the
 * components that are missing, parents first. `blocked`: a component on the way is not a directory.
 */
export function destPlan(rootfs: string, dest: string): { destRel: string; destIsDir: boolean; existing: TarEntry[]; missing: string[]; blocked: boolean } {
  const d = lstatInRoot(rootfs, dest);
  const parts = d.rel.split("/").filter(Boolean);
  const existing: TarEntry[] = [];
  const missing: string[] = [];
  let blocked = false;
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/");
    const s = missing.length ? undefined : lstatInRoot(rootfs, p, false).stat;
    if (!s) missing.push(p);
    else if (s.isDirectory()) existing.push({ name: p, type: "directory", mode: Number(s.mode) & 0o7777, uid: Number(s.uid), gid: Number(s.gid), mtime: new Date(Number(s.mtimeMs)) });
    else if (i < parts.length) blocked = true;
  }
  return { destRel: d.rel, destIsDir: !!d.stat?.isDirectory(), existing, missing, blocked };
}

/**
 * The Dockerfile, from inside the context only: a relative name that climbs out of it is refused as
 * Docker refuses it, an absolute one is taken from the context's root, and symlinks are followed inside
 * the context (a Dockerfile that links to a host file is "not found", as with Docker).
 */
export function readDockerfile(contextDir: string, name: string): string {
  const lexical = posix.normalize(name);
  if (!name.startsWith("/") && (lexical === ".." || lexical.startsWith("../"))) {
    throw new BadParameterError(`forbidden path outside the build context: ${name} ()`);
  }
  const f = lstatInRoot(contextDir, name);
  if (!f.stat?.isFile()) throw new BadParameterError(`Cannot locate specified Dockerfile: ${name}`);
  return readFileSync(f.path, "utf8");
}

/**
 * As dockerd once it has read the Dockerfile (remotecontext's removeDockerfile): the .dockerignore and the
 * Dockerfile leave the context when the .dockerignore excludes them, so `COPY . .` copies neither (the
 * docker CLI sends a Dockerfile from outside the context as `.dockerfile.<random>` and excludes it so).
 * The ignore file is the one the CLI used: `<Dockerfile>.dockerignore`, `.containerignore` or `.dockerignore`.
 */
export function dropIgnoredBuildFiles(contextDir: string, dockerfile: string): void {
  const name = ignoreFileName((rel) => !!lstatInRoot(contextDir, rel).stat?.isFile(), dockerfile);
  if (!name) return;
  const f = lstatInRoot(contextDir, name);
  const ignore = DockerIgnore.parse(readFileSync(f.path, "utf8"));
  for (const name of [...new Set([f.rel.replace(/^\//, ""), ".dockerignore", posix.normalize("/" + dockerfile).slice(1)])]) {
    if (!name || !ignore.isIgnored(name, false)) continue;
    const p = lstatInRoot(contextDir, name, false);
    if (p.stat && !p.stat.isDirectory()) rmSync(p.path, { force: true });
  }
}

export type ArchiveKind = "tar" | "gzip" | "bzip2" | "xz" | "zstd";

/**
 * A local archive ADD unpacks: tar, possibly gzip, bzip2, xz or zstd compressed (by its first bytes, as
 * Docker; zstd as BuildKit and dockerd 23 on, where 20.10's classic builder copied it as a file).
 */
export function archiveKind(path: string): ArchiveKind | undefined {
  const fd = openSync(path, "r");
  const b = Buffer.alloc(512);
  let n = 0;
  try { n = readSync(fd, b, 0, 512, 0); } finally { closeSync(fd); }
  if (n >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (n >= 3 && b.subarray(0, 3).toString("latin1") === "BZh") return "bzip2";
  if (n >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return "xz";
  if (n >= 4 && b.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return "zstd";
  if (n === 512 && b.subarray(257, 262).toString("latin1") === "ustar") return "tar";
  return undefined;
}

/**
 * Unpacks a local archive into `into`, streamed (never whole in memory): the file, through gunzip or an
 * `xz -dc`/`bzip2 -dc`/`zstd -dc` child reading it, into a TarUnpacker, which applies the layer rules
 * (names cleaned, links kept inside `into`), one chunk at a time.
 */
export async function unpackArchive(path: string, kind: ArchiveKind, into: string, signal?: AbortSignal): Promise<void> {
  mkdirSync(into, { recursive: true });
  const u = new TarUnpacker(into);
  const child = kind === "xz" || kind === "bzip2" || kind === "zstd" ? spawn(kind, ["-dcq", path], { stdio: ["ignore", "pipe", "pipe"], signal }) : undefined;
  let stderr = "";
  child?.stderr!.on("data", (d: Buffer) => { if (stderr.length < 4096) stderr += d; });
  const exited = child ? new Promise<number | null>((res) => { child.once("close", (code) => res(code)); child.once("error", () => res(-1)); }) : undefined;
  const src: AsyncIterable<Buffer> = child ? child.stdout! : kind === "gzip" ? createReadStream(path, { signal }).pipe(createGunzip()) : createReadStream(path, { signal });
  try {
    for await (const chunk of src) {
      if (signal?.aborted) throw new BuildCancelledError();
      u.write(chunk);
    }
    if (child && (await exited) !== 0) throw new BadParameterError(`ADD ${posix.basename(path)}: cannot decompress (${kind}): ${stderr.trim() || "failed"}`);
    u.end();
  } catch (e) {
    child?.kill("SIGKILL");
    u.abort();
    if (signal?.aborted) throw new BuildCancelledError();
    throw e;
  }
}

/**
 * Shell-style globbing of one pattern inside root (*, ?, [..] per path segment), as the classic builder's
 * walk of the context: it descends only into real directories (a symlink is matched by its own name,
 * never walked through), so a match is always a path inside root.
 */
export function glob(root: string, pattern: string): string[] {
  const segs = pattern.split("/");
  let found = [""];
  const isRealDir = (rel: string): boolean => { try { return lstatSync(join(root, rel)).isDirectory(); } catch { return false; } };
  const exists = (rel: string): boolean => { try { lstatSync(join(root, rel)); return true; } catch { return false; } };
  for (const seg of segs) {
    const re = new RegExp("^" + seg.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\[!/g, "[^").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]") + "$");
    const next: string[] = [];
    for (const dir of found) {
      if (dir && !isRealDir(dir)) continue;
      if (!/[*?[]/.test(seg)) { const p = dir ? `${dir}/${seg}` : seg; if (exists(p)) next.push(p); continue; }
      let names: string[] = [];
      try { names = readdirSync(join(root, dir)).sort(); } catch { /* not a dir */ }
      for (const n of names) if (re.test(n)) next.push(dir ? `${dir}/${n}` : n);
    }
    found = next;
  }
  return found;
}

/** What decides a COPY's cache: names, modes, sizes and contents of the files. */
export function contentHash(files: { src: string; rel: string; st: Stats }[]): string {
  const h = createHash("sha256");
  for (const f of files) {
    h.update(`${f.rel}\0${Number(f.st.mode)}\0`);
    if (f.st.isFile()) hashFile(h, f.src);
    else if (f.st.isSymbolicLink()) h.update(readlinkSync(f.src));
  }
  return h.digest("hex");
}

/** Feeds a file to a hash in chunks: a big COPY source is never whole in memory. */
function hashFile(h: ReturnType<typeof createHash>, path: string): void {
  const fd = openSync(path, "r");
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally { closeSync(fd); }
}

export const isUrl = (s: string): boolean => /^https?:\/\//i.test(s);

/**
 * Downloads a URL into dir (streamed to disk, hashed as it comes): the file is named as BuildKit names it
 * (Content-Disposition's filename, else the URL path's last segment, else "index"), mode 0600, its mtime
 * the Last-Modified header's when there is one. With `checksum` ("sha256:<hex>"...), a body with another
 * digest fails the step with BuildKit's words.
 */
export async function download(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<{ path: string; name: string }> {
  let res: Response;
  try { res = await fetch(url, { signal, redirect: "follow" }); } catch (e) {
    if (signal?.aborted) throw new BuildCancelledError();
    throw new BadParameterError(`failed to load cache key: ${(e as Error).message}: ${url}`);
  }
  if (res.status < 200 || res.status >= 400) {
    await res.body?.cancel().catch(() => {});
    throw new BadParameterError(`failed to load cache key: invalid response status ${res.status}`);
  }
  const cd = /filename="?([^";]+)"?/i.exec(res.headers.get("content-disposition") ?? "")?.[1];
  const fromPath = posix.basename(new URL(url).pathname);
  const name = posix.basename(cd ?? "") || (fromPath && fromPath !== "/" && fromPath !== "." ? fromPath : "index");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, name);
  const algo = checksum?.split(":")[0] ?? "sha256";
  const h = createHash(algo);
  const out = createWriteStream(path, { mode: 0o600 });
  try {
    const body = res.body ? Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>) : Readable.from([]);
    await pipeline(body, new Transform({ transform(chunk: Buffer, _e, cb) { h.update(chunk); cb(null, chunk); } }), out, { signal });
  } catch (e) {
    if (signal?.aborted) throw new BuildCancelledError();
    throw new BadParameterError(`failed to download ${url}: ${(e as Error).message}`);
  }
  const got = `${algo}:${h.digest("hex")}`;
  if (checksum && got !== checksum) throw new BadParameterError(`digest mismatch ${got}: ${checksum}`);
  chmodSync(path, 0o600);
  const lm = Date.parse(res.headers.get("last-modified") ?? "");
  if (!Number.isNaN(lm)) utimesSync(path, new Date(lm), new Date(lm));
  return { path, name };
}

/**
 * COPY/ADD --exclude: the patterns as .dockerignore lines (`*`, `?`, `[..]`, `**`, `!`), matched against a
 * path relative to the source it is under (a file source: its name). Undefined when there are none.
 */
export function excludeMatcher(patterns: readonly string[]): ((rel: string, isDir: boolean) => boolean) | undefined {
  if (!patterns.length) return undefined;
  const m = new DockerIgnore(patterns);
  return (rel, isDir) => m.isIgnored(rel, isDir);
}

/**
 * COPY --parents: the part of a source above its pivot, as BuildKit reads `a/./b/c`: what precedes the
 * last `/./` is left out of the destination (`a`), the rest kept (`b/c`). "" when the source has none.
 */
export function parentsPivot(src: string): string {
  const s = src.replace(/^(\.\/)+/, "");
  const i = s.lastIndexOf("/./");
  return i < 0 ? "" : posix.normalize("/" + s.slice(0, i)).slice(1);
}

/**
 * A context the daemon fetched itself (a git repository) has no client to apply its .dockerignore: it is
 * applied here, as dockerd's remote contexts and BuildKit do, with the rules `berth build` applies when it
 * sends a directory (lib/build-context.ts): ignored paths leave the context, the Dockerfile and the ignore
 * file stay (dropIgnoredBuildFiles then decides about them), a directory with re-included paths is walked.
 */
export function pruneIgnored(contextDir: string, dockerfile: string): void {
  const isFile = (rel: string) => !!lstatInRoot(contextDir, rel).stat?.isFile();
  const name = ignoreFileName(isFile, dockerfile);
  if (!name) return;
  const ignore = DockerIgnore.parse(readFileSync(lstatInRoot(contextDir, name).path, "utf8"));
  const keep = new Set([posix.normalize("/" + name).slice(1), posix.normalize("/" + dockerfile).slice(1)]);
  const walk = (rel: string): void => {
    for (const n of readdirSync(rel ? join(contextDir, rel) : contextDir)) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = join(contextDir, r);
      const dir = lstatSync(abs).isDirectory();
      const ignored = ignore.isIgnored(r, dir) && !keep.has(r);
      if (ignored && (!dir || ignore.canSkipDir(r))) rmSync(abs, { recursive: true, force: true });
      else if (dir) walk(r);
    }
  };
  walk("");
}
