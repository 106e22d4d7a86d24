/** COPY/ADD --chown: a user[:group] as the numbers the layer's entries get. */
import { readFileSync } from "node:fs";
import { BadParameterError } from "../../lib/errors.js";
import { lstatInRoot } from "../../lib/securejoin.js";
import type { BuildBackend } from "../types.js";

/** --chown user[:group]: numbers as they are, names from the image's /etc/passwd and /etc/group. */
export async function resolveOwner(backend: BuildBackend, image: string | null, spec: string | undefined): Promise<[number, number]> {
  if (!spec) return [0, 0];
  const [u, g] = spec.split(":");
  if (/^\d+$/.test(u) && (g === undefined || /^\d+$/.test(g))) return [Number(u), Number(g ?? u)];
  return backend.withRootfs(image, async (root) => {
    const look = (file: string, name: string, field: number) => lookup(root, file, name, field);
    const uid = look("passwd", u, 2);
    if (uid === undefined) throw new BadParameterError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}`);
    let gid: number | undefined = g !== undefined ? look("group", g, 2) : undefined;
    if (g !== undefined && gid === undefined) throw new BadParameterError(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}`);
    if (gid === undefined) gid = /^\d+$/.test(u) ? uid : look("passwd", u, 3) ?? uid;
    return [uid, gid];
  });
}

/** A name's number in the image's /etc/<file> (a number is itself). */
function lookup(root: string, file: string, name: string, field: number): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    // The image's own file: its /etc may be a symlink, followed inside the image, never on the host
    // (and only a regular file is read: a FIFO or a device there must not hang or flood the daemon).
    const f = lstatInRoot(root, `/etc/${file}`);
    if (!f.stat?.isFile()) return undefined;
    for (const line of readFileSync(f.path, "utf8").split("\n")) {
      const parts = line.split(":");
      if (parts[0] === name) return Number(parts[field]);
    }
  } catch { /* none */ }
  return undefined;
}
