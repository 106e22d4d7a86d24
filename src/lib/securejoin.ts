/**
 * Resolves a path inside a root directory the way the kernel would if root
 * were "/": every symlink met on the way is followed relative to root, and
 * ".." never climbs above it. Used wherever a path comes from an image, a
 * layer or a build context (COPY sources and destinations, RUN --mount
 * sources, the Dockerfile, /etc/passwd of an image). A few readlink calls:
 * cheap enough to do synchronously (the layer worker needs it so), with an
 * async wrapper for callers that await.
 *
 * Contract: the result is root joined with a path whose existing components
 * are real directories or files (never symlinks), except the last one when
 * followLast is false. Symlinks are resolved one component at a time, so
 * chained links, absolute targets (taken from root), relative targets and
 * ".." inside targets all stay in root. A missing component ends nothing: the
 * rest of the path is joined lexically (with "..", popping what was joined),
 * so a dangling link leads to where its target would be inside root. More
 * than 255 links on one path (a loop) is an error, as in Docker's
 * FollowSymlinkInScope.
 *
 * The caller must own root: nothing else may swap a component for a symlink
 * between this call and the use of its result (a build's context, an image's
 * read-only snapshot, a layer being unpacked by its only writer).
 */
import { lstatSync, readlinkSync, type Stats } from "node:fs";
import { join, relative } from "node:path";
import { BadParameterError } from "./errors.js";

export function secureJoinSync(root: string, path: string, followLast = true): string {
  const parts = path.split("/").filter(Boolean);
  const out: string[] = [];
  let hops = 0;
  while (parts.length) {
    const p = parts.shift()!;
    if (p === ".") continue;
    if (p === "..") { out.pop(); continue; }
    if (!parts.length && !followLast) { out.push(p); break; }
    let target: string | undefined;
    try { target = readlinkSync(join(root, ...out, p)); } catch { target = undefined; }
    if (target === undefined) { out.push(p); continue; }
    if (++hops > 255) throw new BadParameterError(`too many levels of symbolic links: ${path}`);
    if (target.startsWith("/")) out.length = 0;
    parts.unshift(...target.split("/").filter(Boolean));
  }
  return join(root, ...out);
}

export async function secureJoin(root: string, path: string, opts: { followLast?: boolean } = {}): Promise<string> {
  return secureJoinSync(root, path, opts.followLast ?? true);
}

/** What is at a path inside root, resolved as secureJoinSync does: its host path, its path relative to root ("" for root itself), and its lstat (undefined when missing). */
export interface InRoot { path: string; rel: string; stat: Stats | undefined }

export function lstatInRoot(root: string, path: string, followLast = true): InRoot {
  const abs = secureJoinSync(root, path, followLast);
  let stat: Stats | undefined;
  try { stat = lstatSync(abs); } catch { stat = undefined; }
  return { path: abs, rel: relative(root, abs), stat };
}
