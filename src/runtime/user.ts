/**
 * Docker's --user resolution ("", "name", "uid", "name:group", "uid:gid")
 * against the container's /etc/passwd and /etc/group, read with every path
 * resolved inside the rootfs so a hostile image cannot make us read host files.
 */
import { promises as fsp } from "node:fs";
import { secureJoin } from "../lib/securejoin.js";
import { BadParameterError } from "../lib/errors.js";

export interface ResolvedUser { uid: number; gid: number; additionalGids: number[]; home: string }

async function readEtc(rootfs: string, file: string): Promise<string[][]> {
  try {
    const text = await fsp.readFile(await secureJoin(rootfs, file), "utf8");
    return text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
  } catch {
    return [];
  }
}

export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const [u, g] = (user || "").split(":", 2);
  const passwd = await readEtc(rootfs, "/etc/passwd");
  let uid = 0, gid = 0, home = "/root", name = "root";
  if (u) {
    const entry = /^\d+$/.test(u) ? passwd.find((p) => p[2] === u) : passwd.find((p) => p[0] === u);
    if (entry) { uid = Number(entry[2]); gid = Number(entry[3]); home = entry[5] || "/"; name = entry[0]; }
    else if (/^\d+$/.test(u)) { uid = Number(u); gid = Number(u) === 0 ? 0 : 0; home = "/"; name = ""; }
    else throw new BadParameterError(`unable to find user ${u}: no matching entries in passwd file`);
  } else {
    const root = passwd.find((p) => p[2] === "0");
    if (root) home = root[5] || "/root";
  }
  const groups = await readEtc(rootfs, "/etc/group");
  if (g !== undefined && g !== "") {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const grp = groups.find((x) => x[0] === g);
      if (!grp) throw new BadParameterError(`unable to find group ${g}: no matching entries in group file`);
      gid = Number(grp[2]);
    }
  }
  const additionalGids = name ? groups.filter((x) => (x[3] ?? "").split(",").includes(name)).map((x) => Number(x[2])).filter((x) => x !== gid) : [];
  return { uid, gid, additionalGids, home };
}
