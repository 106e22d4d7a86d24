/**
 * The HostConfig limits that the spec builder (spec.ts) leaves out, applied to a built spec as
 * dockerd applies them (daemon/oci_linux.go): --ulimit (process.rlimits), --device with its cgroup
 * permissions (linux.devices and a device cgroup rule), --memory-swappiness and --oom-kill-disable
 * (linux.resources.memory). Checked against dockerd 20.10 on a cgroup v1/hybrid host.
 */
import { statSync } from "node:fs";
import type { RuntimeSpec } from "../oci/spec.js";
import { BadParameterError } from "../lib/errors.js";

export interface HostLimits {
  Ulimits?: { Name: string; Soft: number; Hard: number }[] | null;
  Devices?: { PathOnHost: string; PathInContainer?: string; CgroupPermissions?: string }[] | null;
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  Privileged?: boolean;
}

const RLIMITS = new Set(["as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"]);

/** major/minor of a device number as the kernel encodes it (new_encode_dev). */
function devNumbers(rdev: bigint): { major: number; minor: number } {
  return { major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)) };
}

/** One host device for the container, as dockerd's DeviceFromPath (a missing or non-device path is dockerd's error). */
export function deviceFromPath(hostPath: string, containerPath: string, permissions: string): { dev: NonNullable<NonNullable<RuntimeSpec["linux"]>["devices"]>[number]; rule: { allow: true; type: string; major: number; minor: number; access: string } } {
  let st;
  try { st = statSync(hostPath, { bigint: true }); } catch {
    throw new BadParameterError(`error gathering device information while adding custom device "${hostPath}": no such file or directory`);
  }
  const type = st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : "";
  if (!type) throw new BadParameterError(`error gathering device information while adding custom device "${hostPath}": not a device node`);
  const { major, minor } = devNumbers(st.rdev);
  return {
    dev: { path: containerPath, type, major, minor, fileMode: Number(st.mode & 0o777n), uid: Number(st.uid), gid: Number(st.gid) },
    rule: { allow: true, type, major, minor, access: permissions },
  };
}

/** Applies the limits to spec in place. */
export function applyHostLimits(spec: RuntimeSpec, hc: HostLimits): void {
  const ul = hc.Ulimits ?? [];
  if (ul.length) {
    const rl = (spec.process.rlimits ?? []).filter((r) => !ul.some((u) => `RLIMIT_${u.Name.toUpperCase()}` === r.type));
    for (const u of ul) {
      if (!RLIMITS.has(u.Name)) throw new BadParameterError(`invalid ulimit type: ${u.Name}`);
      rl.push({ type: `RLIMIT_${u.Name.toUpperCase()}`, soft: u.Soft, hard: u.Hard });
    }
    spec.process.rlimits = rl;
  }
  const linux = spec.linux ?? (spec.linux = { namespaces: [] } as unknown as NonNullable<RuntimeSpec["linux"]>);
  for (const d of hc.Devices ?? []) {
    if (!d?.PathOnHost) continue;
    const perms = d.CgroupPermissions || "rwm";
    if (!/^[rwm]{1,3}$/.test(perms)) throw new BadParameterError(`invalid device mode: ${perms}`);
    const { dev, rule } = deviceFromPath(d.PathOnHost, d.PathInContainer || d.PathOnHost, perms);
    linux.devices = [...(linux.devices ?? []).filter((x) => x.path !== dev.path), dev];
    // A privileged container may use every device already.
    if (!hc.Privileged) {
      const res = linux.resources ?? (linux.resources = {});
      res.devices = [...(res.devices ?? []), rule];
    }
  }
  const swappiness = hc.MemorySwappiness;
  if ((typeof swappiness === "number" && swappiness >= 0) || hc.OomKillDisable) {
    const res = linux.resources ?? (linux.resources = {});
    const mem = (res.memory ?? (res.memory = {})) as NonNullable<typeof res.memory> & { swappiness?: number };
    if (typeof swappiness === "number" && swappiness >= 0) mem.swappiness = swappiness;
    if (hc.OomKillDisable) mem.disableOOMKiller = true;
  }
}

/** dockerd's create-time warnings and refusals for these limits. */
export function hostLimitWarnings(hc: HostLimits & { Memory?: number }): string[] {
  const s = hc.MemorySwappiness;
  if (typeof s === "number" && s !== -1 && (s < 0 || s > 100)) throw new BadParameterError(`Invalid value: ${s}, valid memory swappiness range is 0-100`);
  const out: string[] = [];
  if (hc.OomKillDisable && !hc.Memory) out.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.");
  return out;
}
