/**
 * Container mounts as Docker resolves them: -v binds and named volumes
 * (HostConfig.Binds), --mount (HostConfig.Mounts), --tmpfs (HostConfig.Tmpfs),
 * and anonymous volumes (-v /path, the image's VOLUME). Resolution happens at
 * create (volumes are created then); at start the mounts become OCI spec
 * mounts, and a new volume is first filled with what the image has at its
 * path.
 */
import { promises as fsp } from "node:fs";
import { isAbsolute, normalize } from "node:path";
import type { VolumeStore } from "../store/volumes.js";
import { ANON_LABEL } from "../store/volumes.js";
import { BadParameterError } from "../lib/errors.js";
import { secureJoin } from "../lib/securejoin.js";
import { runOk } from "../lib/proc.js";
import type { SpecMount } from "../oci/spec.js";

export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs";
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
  /** berth: tmpfs options, and nocopy for volumes. */
  TmpfsOptions?: string;
  NoCopy?: boolean;
  /** berth: a -v bind whose missing host directory is made at start (Docker's -v; --mount refuses a missing source). */
  CreateHostPath?: boolean;
}

export interface MountRequest {
  Binds?: string[] | null;
  Mounts?: { Type?: string; Source?: string; Target?: string; ReadOnly?: boolean; TmpfsOptions?: { SizeBytes?: number; Mode?: number }; VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string> } }[] | null;
  Tmpfs?: Record<string, string> | null;
}

/** Mount points as Docker's inspect and list show them (berth's own bookkeeping fields left out). */
export function publicMounts(mounts: MountPoint[]): Omit<MountPoint, "TmpfsOptions" | "NoCopy" | "CreateHostPath">[] {
  return mounts.map(({ TmpfsOptions: _t, NoCopy: _n, CreateHostPath: _c, ...m }) => m);
}

function dest(p: string | undefined): string {
  if (!p || !isAbsolute(p)) throw new BadParameterError(`invalid mount config: mount path must be absolute: ${p ?? ""}`);
  return normalize(p).replace(/\/$/, "") || "/";
}

/**
 * Resolves every mount of a new container, creating named and anonymous
 * volumes as needed. Every mount is checked before any volume is made; if a
 * volume cannot be made, the ones this call made are removed again, so a
 * rejected create leaves nothing. The names of volumes this call made are
 * pushed on `created` (the caller removes them if its own later steps fail:
 * releaseVolumes). A -v host directory that does not exist is made at start,
 * as Docker does, never here.
 */
export async function resolveMounts(req: MountRequest, anonymous: string[], volumes: VolumeStore, created: string[] = []): Promise<MountPoint[]> {
  const out: MountPoint[] = [];
  const pending: { m: MountPoint; name: string | undefined; labels: Record<string, string> }[] = [];
  const add = (m: MountPoint) => {
    if (out.some((x) => x.Destination === m.Destination)) throw new BadParameterError(`Duplicate mount point: ${m.Destination}`);
    out.push(m);
  };
  const volume = (name: string | undefined, d: string, rw: boolean, mode: string, nocopy = false, labels: Record<string, string> = {}) => {
    const m: MountPoint = { Type: "volume", Name: name || undefined, Source: "", Destination: d, Driver: "local", Mode: mode, RW: rw, Propagation: "", NoCopy: nocopy };
    add(m);
    pending.push({ m, name: name || undefined, labels: name ? labels : { ...labels, [ANON_LABEL]: "" } });
  };
  for (const b of req.Binds ?? []) {
    const parts = b.split(":");
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new BadParameterError(`invalid volume specification: '${b}'`);
    const [src, d0, opts = ""] = parts;
    const d = dest(d0);
    const flags = opts.split(",").filter(Boolean);
    for (const f of flags) if (!["ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate", "consistent", "cached", "delegated"].includes(f)) throw new BadParameterError(`invalid mode: ${f}`);
    const rw = !flags.includes("ro");
    if (isAbsolute(src)) {
      // As Docker's -v: a missing host directory is created (at start: specMounts).
      add({ Type: "bind", Source: normalize(src), Destination: d, Mode: opts, RW: rw, Propagation: "rprivate", CreateHostPath: true });
    } else {
      volume(src, d, rw, opts, flags.includes("nocopy"));
    }
  }
  for (const m of req.Mounts ?? []) {
    const d = dest(m.Target);
    const rw = !m.ReadOnly;
    switch (m.Type) {
      case "bind": {
        if (!m.Source || !isAbsolute(m.Source)) throw new BadParameterError(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ""}' mount path must be absolute`);
        try { await fsp.stat(m.Source); } catch { throw new BadParameterError(`invalid mount config for type "bind": bind source path does not exist: ${m.Source}`); }
        add({ Type: "bind", Source: normalize(m.Source), Destination: d, Mode: "", RW: rw, Propagation: "rprivate" });
        break;
      }
      case "volume": case undefined:
        volume(m.Source, d, rw, "", !!m.VolumeOptions?.NoCopy, m.VolumeOptions?.Labels ?? {});
        break;
      case "tmpfs": {
        const o: string[] = [];
        if (m.TmpfsOptions?.SizeBytes) o.push(`size=${m.TmpfsOptions.SizeBytes}`);
        if (m.TmpfsOptions?.Mode) o.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
        add({ Type: "tmpfs", Source: "", Destination: d, Mode: "", RW: rw, Propagation: "", TmpfsOptions: o.join(",") });
        break;
      }
      default: throw new BadParameterError(`invalid mount config: mount type unknown: "${m.Type}"`);
    }
  }
  for (const [p, opts] of Object.entries(req.Tmpfs ?? {})) {
    add({ Type: "tmpfs", Source: "", Destination: dest(p), Mode: "", RW: !opts.split(",").includes("ro"), Propagation: "", TmpfsOptions: opts });
  }
  for (const p of anonymous) {
    const d = dest(p);
    if (out.some((x) => x.Destination === d)) continue;
    volume(undefined, d, true, "");
  }
  // Everything is checked: now the volumes, undone if one of them fails.
  const mine: string[] = [];
  try {
    for (const { m, name, labels } of pending) {
      const existed = name !== undefined && volumes.get(name) !== undefined;
      const v = await volumes.create(name, labels);
      if (!existed) mine.push(v.Name);
      m.Name = v.Name;
      m.Source = v.Mountpoint;
    }
  } catch (e) {
    await releaseVolumes(mine, volumes);
    throw e;
  }
  created.push(...mine);
  return out;
}

/** Removes volumes a failed create made (best effort: a volume already gone is fine). */
export async function releaseVolumes(names: string[], volumes: VolumeStore): Promise<void> {
  for (const n of names) if (volumes.get(n)) await volumes.remove(n).catch(() => {});
}

/** OCI mounts for the container's mount points; fills new volumes from the image first. */
export async function specMounts(mounts: MountPoint[], rootfs: string, volumes: VolumeStore): Promise<SpecMount[]> {
  const out: SpecMount[] = [];
  for (const m of mounts) {
    if (m.Type === "tmpfs") {
      const opts = (m.TmpfsOptions ?? "").split(",").filter(Boolean);
      const base = ["nosuid", "nodev", "noexec"].filter((o) => !opts.some((x) => x === o.replace(/^no/, "") || x === o));
      if (!opts.some((o) => o.startsWith("size="))) base.push("size=65536k");
      out.push({ destination: m.Destination, type: "tmpfs", source: "tmpfs", options: [...base, ...opts.filter((o) => o !== "ro" && o !== "rw"), m.RW ? "rw" : "ro"] });
      continue;
    }
    // As Docker's -v: a missing source is made as a directory; an existing one (a file too) is bound as it is.
    if (m.Type === "bind" && m.CreateHostPath) {
      const st = await fsp.stat(m.Source).catch((e: NodeJS.ErrnoException) => { if (e.code === "ENOENT") return undefined; throw e; });
      if (!st) await fsp.mkdir(m.Source, { recursive: true });
    }
    if (m.Type === "volume" && m.Name) {
      await volumes.activate(m.Name);
      const v = volumes.get(m.Name);
      if (v && !v.Populated) {
        if (!m.NoCopy) await copyUp(rootfs, m.Destination, v.Mountpoint);
        await volumes.markPopulated(m.Name);
      }
    }
    out.push({ destination: m.Destination, type: "bind", source: m.Source, options: ["rbind", m.RW ? "rw" : "ro", m.Propagation || "rprivate"] });
  }
  return out;
}

/** Docker's copy-up: an empty volume mounted over image content starts with a copy of it. */
async function copyUp(rootfs: string, destination: string, data: string): Promise<void> {
  if ((await fsp.readdir(data)).length) return;
  // The image's directory at the mount point, resolved inside the root (an image whose /data is a
  // symlink to /etc copies its own /etc, never the host's), and itself no symlink (lstat).
  const src = await secureJoin(rootfs, destination);
  const st = await fsp.lstat(src).catch(() => undefined);
  if (!st?.isDirectory()) return;
  // -a is -P: symlinks inside are copied as symlinks, never followed; one filesystem: nothing mounted below.
  if ((await fsp.readdir(src)).length) await runOk("cp", ["-a", "--no-dereference", "--one-file-system", "--", `${src}/.`, `${data}/`]);
  // The volume takes the directory's owner and mode even when it is empty (postgres' initdb relies on it).
  await fsp.chown(data, st.uid, st.gid).catch(() => {});
  await fsp.chmod(data, st.mode & 0o7777).catch(() => {});
}
