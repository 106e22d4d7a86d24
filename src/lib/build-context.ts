/** A build context as a tar stream: the directory less what its .dockerignore excludes (the Dockerfile and .dockerignore always go). */
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { DockerIgnore } from "./dockerignore.js";
import { writeTar, type TarEntry } from "./tar-writer.js";

function* entries(dir: string, ignore: DockerIgnore, keep: Set<string>): Generator<TarEntry> {
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
      else if (st.isSymbolicLink()) yield { ...common, type: "symlink", linkname: readlinkSync(abs) };
      else if (st.isFile()) yield { ...common, type: "file", size: st.size, source: abs };
    }
  };
  yield* walk("");
}

export function contextTar(dir: string, dockerfile: string): Readable {
  let patterns = "";
  try { patterns = readFileSync(join(dir, ".dockerignore"), "utf8"); } catch { /* none */ }
  return Readable.from(writeTar(entries(dir, DockerIgnore.parse(patterns), new Set([dockerfile, ".dockerignore"]))));
}
