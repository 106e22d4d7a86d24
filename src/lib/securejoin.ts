/**
 * Resolves a path inside a root directory the way the kernel would if root
 * were "/": every symlink met on the way is followed relative to root, and
 * ".." never climbs above it. Used wherever a path comes from an image or a
 * layer. A few readlink calls: cheap enough to do synchronously (the layer
 * worker needs it so), with an async wrapper for callers that await.
 */
import { readlinkSync } from "node:fs";
import { join } from "node:path";
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
