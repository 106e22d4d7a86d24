/**
 * A build context as a tar stream: the directory less what its .dockerignore excludes (the Dockerfile and
 * .dockerignore always go). A Dockerfile from outside the directory (or from stdin) goes in as the docker
 * CLI puts it: under a random name `.dockerfile.<20 hex>` (mode 0600), which is also appended to the
 * .dockerignore sent (made, naming itself too, when there is none), so the daemon drops it from the context
 * once it has read it.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { DockerIgnore } from "./dockerignore.js";
import { writeTar, type TarEntry } from "./tar-writer.js";

/**
 * The Dockerfile a build uses when none is named: `Dockerfile`, or, when the context has none,
 * `Containerfile` (as Podman and Buildah). `isFile(rel)` says whether the context has that file.
 */
export function defaultDockerfileName(isFile: (rel: string) => boolean): string {
  return !isFile("Dockerfile") && isFile("Containerfile") ? "Containerfile" : "Dockerfile";
}

/**
 * The ignore file of a build, a path inside the context (undefined: none): `<Dockerfile>.dockerignore`
 * beside the Dockerfile (BuildKit's rule, and Podman's for `Containerfile.dockerignore`), else
 * `.containerignore` (Podman's name), else `.dockerignore` at the context's root.
 */
export function ignoreFileName(isFile: (rel: string) => boolean, dockerfile?: string): string | undefined {
  const df = dockerfile ? posix.normalize("/" + dockerfile).slice(1) : "";
  const candidates = [...(df ? [`${df}.dockerignore`] : []), ".containerignore", ".dockerignore"];
  return candidates.find((c) => isFile(c));
}

/** A file test for a context directory on this machine (symlinks followed, as the CLI's stat does). */
export function fileIn(dir: string): (rel: string) => boolean {
  return (rel) => { try { return statSync(join(dir, rel)).isFile(); } catch { return false; } };
}

function* entries(dir: string, ignore: DockerIgnore, keep: Set<string>, dockerignore?: Buffer): Generator<TarEntry> {
  const walk = function* (rel: string): Generator<TarEntry> {
    for (const n of readdirSync(rel ? join(dir, rel) : dir).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const abs = join(dir, r);
      const st = lstatSync(abs);
      const ignored = ignore.isIgnored(r, st.isDirectory()) && !keep.has(r);
      if (ignored && (!st.isDirectory() || ignore.canSkipDir(r))) continue;
      const common = { name: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
      if (st.isDirectory()) { if (!ignored) yield { ...common, type: "directory" }; yield* walk(r); }
      else if (ignored) continue;
      else if (r === ".dockerignore" && dockerignore && st.isFile()) yield { ...common, type: "file", size: dockerignore.length, source: dockerignore };
      else if (st.isSymbolicLink()) yield { ...common, type: "symlink", linkname: readlinkSync(abs) };
      else if (st.isFile()) yield { ...common, type: "file", size: st.size, source: abs };
    }
  };
  yield* walk("");
}

/** A Dockerfile that is not a file of the context: its text, sent under a name of its own. */
export interface OutsideDockerfile { content: Buffer }

/**
 * The context tar. `dockerfile`: the Dockerfile's path inside the context, or its content when it lives
 * outside it (then `name` is what to send as the `dockerfile` parameter).
 */
export function contextTar(dir: string, dockerfile: string | OutsideDockerfile): Readable & { dockerfileName: string } {
  let patterns = "";
  const ignoreFile = ignoreFileName(fileIn(dir), typeof dockerfile === "string" ? dockerfile : undefined);
  let hasIgnoreFile = false;
  if (ignoreFile) try { patterns = readFileSync(join(dir, ignoreFile), "utf8"); hasIgnoreFile = ignoreFile === ".dockerignore"; } catch { /* none */ }
  const ignore = DockerIgnore.parse(patterns);
  let out: Iterable<TarEntry>;
  let name: string;
  if (typeof dockerfile === "string") {
    name = dockerfile;
    out = entries(dir, ignore, new Set([dockerfile, ".dockerignore", ...(ignoreFile ? [ignoreFile] : [])]));
  } else {
    // node:crypto only here: loading it costs every berth command a few milliseconds at start.
    const { randomBytes } = createRequire(import.meta.url)("node:crypto") as typeof import("node:crypto");
    name = `.dockerfile.${randomBytes(10).toString("hex")}`;
    // As the docker CLI: a .dockerignore made for the purpose also names itself, so neither stays in the context.
    const ignoreText = Buffer.from(hasIgnoreFile ? `${patterns}\n${name}\n` : `${patterns ? `${patterns}\n` : ""}.dockerignore\n${name}\n`);
    const now = new Date();
    const content = dockerfile.content;
    // The patterns go as `.dockerignore` (whichever file they came from), the one the daemon reads; the
    // context's own ignore files stay behind then, so the daemon finds no other.
    const walkIgnore = hasIgnoreFile ? ignore : DockerIgnore.parse(`${patterns}\n.containerignore\n.dockerignore\n`);
    out = (function* () {
      yield* entries(dir, walkIgnore, new Set(hasIgnoreFile ? [".dockerignore"] : []), ignoreText);
      if (!hasIgnoreFile) yield { name: ".dockerignore", type: "file", mode: 0o644, uid: 0, gid: 0, mtime: now, size: ignoreText.length, source: ignoreText };
      yield { name, type: "file", mode: 0o600, uid: 0, gid: 0, mtime: now, size: content.length, source: content };
    })();
  }
  return Object.assign(Readable.from(writeTar(out)), { dockerfileName: name });
}
