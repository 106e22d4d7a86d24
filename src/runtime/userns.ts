/**
 * User-namespace remapping, as dockerd's `--userns-remap` (moby's
 * daemon/daemon_unix.go parseRemappedRoot/setupRemappedRoot and its idtools):
 *
 *   - `default` uses (creating it when missing, with useradd and usermod)
 *     the system user and group `dockremap` and gives it a 65536-id range in
 *     /etc/subuid and /etc/subgid, after the highest range there (from
 *     100000); `<user>[:<group>]` or `<uid>[:<gid>]` name an existing user,
 *     which must have ranges in both files (Docker's errors otherwise);
 *     `root` (or uid 0) turns remapping off, as in Docker.
 *   - The ranges of a user (looked up by uid, then by name) become the
 *     container's id maps, container ids from 0 upward; container root is the
 *     first subordinate id. The daemon keeps everything (images, layers,
 *     containers, volumes) under `<data-root>/<uid>.<gid>/` of that root pair.
 *   - Containers get a user namespace with these maps (runtime/spec.ts)
 *     unless HostConfig.UsernsMode is "host"; Docker's refusals of
 *     --privileged, --net host and --pid host with a private user namespace
 *     are in usernsConflicts().
 *
 * How the rootfs is owned right: layers are unpacked already shifted,
 * Docker's own way: the unpacker moves each entry's owner into the host
 * range before it sets the entry's xattrs, so file capabilities survive
 * (store/snapshots.ts, store/tar-unpack.ts); `docker cp` in is shifted the
 * same way, and commit, build steps and `cp` out shift back (store/diff.ts,
 * engine/archive.ts). Idmapped mounts are not used: this machine's runc
 * (1.1.5) has no idmapped mounts (1.2+), util-linux 2.38's mount has no
 * X-mount.idmap (2.39+), and mount_setattr(MOUNT_ATTR_IDMAP) cannot be
 * called from Node without a native helper. The shift works on every kernel,
 * costs nothing at start (one chown per file at unpack), and a remapped
 * daemon has its own store, so an unshifted layer is never seen by it.
 *
 * `--userns host` on a remapped daemon: no user namespace and no maps in the
 * spec; the container runs on the same (shifted) layers, as Docker's does.
 * Its root has CAP_CHOWN/DAC_OVERRIDE/FOWNER, so it reads and writes them;
 * the image's files show their host owners (first subordinate id + original
 * id) there, and what it creates is owned by host root. No second, unshifted
 * copy of the layers is made.
 */
import { readFileSync, statSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { BadParameterError, BerthError } from "../lib/errors.js";
import type { IdMapEntry } from "../store/idmap.js";

export type { IdMapEntry } from "../store/idmap.js";

export interface IdentityMapping {
  /** The remap user and group, by name (dockerd's RemappedRoot "user:group"). */
  user: string;
  group: string;
  uids: IdMapEntry[];
  gids: IdMapEntry[];
}

interface SubRange { start: number; length: number }
interface PasswdEntry { name: string; id: number }

const DEFAULT_SPEC = "default";
const DEFAULT_USER = "dockremap";
const RANGE_LEN = 65536;
const RANGE_START = 100000;

/** The ranges of /etc/subuid or /etc/subgid text owned by any of `owners` (a name or a numeric id; "ALL": every line). */
export function parseSubIds(text: string, owners: string[]): SubRange[] {
  const out: SubRange[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [owner, start, length] = line.split(":");
    if (!(owners.includes("ALL") || owners.includes(owner))) continue;
    const s = Number(start), l = Number(length);
    if (!/^\d+$/.test(start ?? "") || !/^\d+$/.test(length ?? "") || l === 0) continue;
    out.push({ start: s, length: l });
  }
  return out;
}

/** Container ids from 0 upward over the ranges in order (idtools.createIDMap). */
export function createIdMap(ranges: SubRange[]): IdMapEntry[] {
  let next = 0;
  return [...ranges].sort((a, b) => a.start - b.start).map((r) => { const e = { containerID: next, hostID: r.start, size: r.length }; next += r.length; return e; });
}

/** A container id's host id, or dockerd's error when the maps have none. */
export function toHost(map: IdMapEntry[], id: number): number {
  if (!map.length) return id;
  for (const m of map) if (id >= m.containerID && id < m.containerID + m.size) return m.hostID + (id - m.containerID);
  throw new BerthError(`Container ID ${id} cannot be mapped to a host ID`, 500);
}

/** A host id's container id (the overflow id 65534 when unmapped, as the kernel shows it). */
export function toContainer(map: IdMapEntry[], id: number): number {
  if (!map.length) return id;
  for (const m of map) if (id >= m.hostID && id < m.hostID + m.size) return m.containerID + (id - m.hostID);
  return 65534;
}

/** The host uid and gid of container root. */
export function rootPair(m: IdentityMapping): { uid: number; gid: number } {
  return { uid: toHost(m.uids, 0), gid: toHost(m.gids, 0) };
}

/** `<data-root>/<uid>.<gid>`: a remapped daemon's own root (dockerd's setupDaemonRoot). */
export function remappedDataRoot(dataRoot: string, m: IdentityMapping): string {
  const r = rootPair(m);
  return join(dataRoot, `${r.uid}.${r.gid}`);
}

function getent(db: "passwd" | "group", key: string): PasswdEntry | undefined {
  const r = spawnSync("getent", [db, key], { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  const f = r.stdout.split("\n")[0].split(":");
  return f.length >= 3 ? { name: f[0], id: Number(f[2]) } : undefined;
}

function readText(path: string): string { try { return readFileSync(path, "utf8"); } catch { return ""; } }

/** The first free 65536-id start at or after 100000 (idtools.findNextRangeStart). */
export function nextRangeStart(ranges: SubRange[]): number {
  let start = RANGE_START;
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    const low = start, high = start + RANGE_LEN;
    if ((low >= r.start && low <= r.start + r.length) || (high <= r.start + r.length && high >= r.start)) start = r.start + r.length;
  }
  return start;
}

function exec(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw new Error(`Cannot add user; no ${cmd} binary found`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${(r.stderr || r.stdout).trim()}`);
}

/** Creates `name` as a system user and group with subordinate ranges (idtools.AddNamespaceRangesUser). */
function addNamespaceRangesUser(name: string, files: { subuid: string; subgid: string }): void {
  try {
    exec("useradd", ["-r", "-U", "-s", "/bin/false", name]);
  } catch (e) { throw new Error(`Error adding user "${name}": ${(e as Error).message}`); }
  const uid = getent("passwd", name)?.id;
  for (const [file, flag] of [[files.subuid, "-v"], [files.subgid, "-w"]] as const) {
    const text = readText(file);
    if (parseSubIds(text, [name, String(uid)]).length) continue;
    const start = nextRangeStart(parseSubIds(text, ["ALL"]));
    try { exec("usermod", [flag, `${start}-${start + RANGE_LEN - 1}`, name]); } catch (e) {
      throw new Error(`Couldn't create subordinate ID ranges: Unable to add sub${flag === "-v" ? "uid" : "gid"} range to user: "${name}"; ${(e as Error).message}`);
    }
  }
}

/**
 * `--userns-remap` → user and group names (moby's parseRemappedRoot): a
 * number is a uid (its gid the same number unless given), names must exist
 * in passwd/group; `default` is dockremap, created on first use.
 */
export function parseRemappedRoot(spec: string, files = { subuid: "/etc/subuid", subgid: "/etc/subgid" }): { user: string; group: string } {
  const parts = spec.split(":");
  if (parts.length > 2) throw new Error(`Invalid user/group specification in --userns-remap: "${spec}"`);
  let user: string, group = "";
  if (/^\d+$/.test(parts[0])) {
    const u = getent("passwd", parts[0]);
    if (!u) throw new Error(`Uid ${parts[0]} has no entry in /etc/passwd: user: unknown userid ${parts[0]}`);
    user = u.name;
    if (parts.length === 1) {
      const g = getent("group", parts[0]);
      if (!g) throw new Error(`Gid ${parts[0]} has no entry in /etc/group: group: unknown groupid ${parts[0]}`);
      group = g.name;
    }
  } else {
    const name = parts[0] === DEFAULT_SPEC ? DEFAULT_USER : parts[0];
    const u = getent("passwd", name);
    if (!u) {
      if (parts[0] !== DEFAULT_SPEC) throw new Error(`Error during uid lookup for "${name}": user: unknown user ${name}`);
      try { addNamespaceRangesUser(DEFAULT_USER, files); } catch (e) { throw new Error(`Error during "${DEFAULT_USER}" user creation: ${(e as Error).message}`); }
      return { user: DEFAULT_USER, group: DEFAULT_USER };
    }
    user = u.name;
    if (parts.length === 1) {
      const g = getent("group", name);
      if (!g) throw new Error(`Error during gid lookup for "${name}": group: unknown group ${name}`);
      group = g.name;
    }
  }
  if (parts.length === 2) {
    const g = getent("group", parts[1]);
    if (!g) {
      if (/^\d+$/.test(parts[1])) throw new Error(`Gid ${parts[1]} has no entry in /etc/passwd: group: unknown groupid ${parts[1]}`);
      throw new Error(`Error during groupname lookup for "${parts[1]}": group: unknown group ${parts[1]}`);
    }
    group = g.name;
  }
  return { user, group };
}

/** The id maps of a user and group from /etc/subuid and /etc/subgid (looked up by id, then by name). */
export function loadIdentityMapping(user: string, group: string, files = { subuid: "/etc/subuid", subgid: "/etc/subgid" }): IdentityMapping {
  const u = getent("passwd", user), g = getent("group", group);
  if (!u) throw new Error(`Can't create ID mappings: Could not get user for username ${user}`);
  let uidRanges = parseSubIds(readText(files.subuid), [String(u.id)]);
  if (!uidRanges.length) uidRanges = parseSubIds(readText(files.subuid), [u.name]);
  if (!uidRanges.length) throw new Error(`Can't create ID mappings: no subuid ranges found for user "${u.name}"`);
  // Docker looks the gid ranges up under the user too (idtools uses the user's name and uid for both files) and then the group.
  let gidRanges = parseSubIds(readText(files.subgid), [String(u.id)]);
  if (!gidRanges.length) gidRanges = parseSubIds(readText(files.subgid), [u.name]);
  if (!gidRanges.length && g) gidRanges = parseSubIds(readText(files.subgid), [String(g.id), g.name]);
  if (!gidRanges.length) throw new Error(`Can't create ID mappings: no subgid ranges found for group "${group}"`);
  return { user, group, uids: createIdMap(uidRanges), gids: createIdMap(gidRanges) };
}

/** The daemon's mapping for a `--userns-remap` value; undefined when not set or when it names root (remapping off, as dockerd warns). */
export function setupRemappedRoot(spec: string | undefined, warn: (m: string) => void = () => {}): IdentityMapping | undefined {
  if (!spec) return undefined;
  const { user, group } = parseRemappedRoot(spec);
  if (user === "root") { warn("User namespaces: root cannot be remapped with itself; user namespaces are OFF"); return undefined; }
  warn(`User namespaces: ID ranges will be mapped to subuid/subgid ranges of: ${user}`);
  return loadIdentityMapping(user, group);
}

/**
 * The remapped root must be able to walk down to its root (runc mounts the
 * rootfs from inside the user namespace): every directory above it needs
 * o+x, or u+x/g+x for its owner/group. dockerd's check and message.
 */
export function checkRootAccess(root: string, m: IdentityMapping): void {
  const { uid, gid } = rootPair(m);
  for (let dir = dirname(root); dir !== "/" && dir !== "."; dir = dirname(dir)) {
    let st;
    try { st = statSync(dir); } catch { continue; }
    const perm = st.mode & 0o777;
    if (perm & 0o001 || (st.uid === uid && perm & 0o100) || (st.gid === gid && perm & 0o010)) continue;
    throw new Error(`a subdirectory in your graphroot path (${root}) restricts access to the remapped root uid/gid; please fix by allowing 'o+x' permissions on existing directories`);
  }
}

/** UsernsMode "host" opts a container out; anything else (dockerd accepts any string) is a private user namespace. */
export function usernsHost(mode: unknown): boolean { return mode === "host"; }

/** dockerd's refusals for a container with a private user namespace on a remapped daemon (verifyPlatformContainerSettings). */
export function usernsConflicts(hc: { Privileged?: boolean; NetworkMode?: string; PidMode?: string; UsernsMode?: string }): void {
  if (usernsHost(hc.UsernsMode)) return;
  if (hc.Privileged) throw new BadParameterError("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode");
  if (hc.NetworkMode === "host") throw new BadParameterError("cannot share the host's network namespace when user namespaces are enabled");
  if (hc.PidMode === "host") throw new BadParameterError("cannot share the host PID namespace when user namespaces are enabled");
}
