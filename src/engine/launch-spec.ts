/**
 * The OCI runtime spec of a container's start, assembled from its record: the
 * process (argv, env, user, working dir), the /etc files and the user's mounts,
 * the namespaces it shares (--pid, --ipc, --uts, --network container:…), its
 * resources and host limits. Everything here reads; nothing is mounted or
 * started (ContainerService.launch does that around it).
 */
import { promises as fsp } from "node:fs";
import { BadParameterError, ConflictError, NotFoundError } from "../lib/errors.js";
import type { RuntimeSpec } from "../oci/spec.js";
import { buildSpec, type SpecInput, type SpecResourcesInput } from "../runtime/spec.js";
import { resolveUser } from "../runtime/user.js";
import { applyHostLimits, type HostLimits } from "../runtime/limits.js";
import type { VolumeStore } from "../store/volumes.js";
import { rootPair, usernsHost, type IdentityMapping } from "../runtime/userns.js";
import type { EtcPaths } from "./etc-files.js";
import { specMounts, type MountPoint } from "./mounts.js";
import type { ContainerRecord, HostConfig } from "./types.js";

/** Finds a container by ID, name or unique prefix (ContainerService.find). */
export type FindContainer = (ref: string) => ContainerRecord | undefined;

/** Merges env lists: later entries replace earlier ones with the same key. */
export function mergeEnv(...lists: (string[] | null | undefined)[]): string[] {
  const out = new Map<string, string>();
  for (const l of lists) for (const e of l ?? []) {
    const k = e.split("=", 1)[0];
    out.delete(k);
    out.set(k, e);
  }
  return [...out.values()];
}

/** The resources of a HostConfig, for the spec and for live updates. */
export function resourcesOf(hc: HostConfig): SpecResourcesInput {
  const n = (k: string): number | undefined => (typeof hc[k] === "number" && (hc[k] as number) !== 0 ? (hc[k] as number) : undefined);
  return {
    memory: n("Memory"), memoryReservation: n("MemoryReservation"), memorySwap: n("MemorySwap"), cpuShares: n("CpuShares"), nanoCpus: n("NanoCpus"),
    cpuPeriod: n("CpuPeriod"), cpuQuota: n("CpuQuota"), cpusetCpus: (hc.CpusetCpus as string) || undefined, cpusetMems: (hc.CpusetMems as string) || undefined,
    blkioWeight: n("BlkioWeight"), pidsLimit: hc.PidsLimit ?? undefined,
  };
}

/** /etc/hosts lines and env vars of legacy links (Docker's links: "ip alias id name", ALIAS_PORT_80_TCP=...). */
export function linkSettings(c: ContainerRecord, find: FindContainer): { hosts: string[]; env: string[] } {
  const hosts: string[] = [], env: string[] = [];
  for (const l of (c.HostConfig.Links as string[] | null) ?? []) {
    const m = /^\/([^:]+):\/.*\/([^/]+)$/.exec(l);
    if (!m) continue;
    const [, name, alias] = m;
    const target = find(name);
    if (!target || !target.State.Running) throw new ConflictError(`Cannot link to a non running container: /${name} AS ${c.Name}/${alias}`);
    const nets = (target.NetworkSettings.Networks ?? {}) as Record<string, { IPAddress?: string }>;
    const ip = nets.bridge?.IPAddress || Object.values(nets).find((n) => n.IPAddress)?.IPAddress;
    if (!ip) continue;
    const names = [alias, target.Id.slice(0, 12), name].filter((x, i, a) => a.indexOf(x) === i);
    hosts.push(`${names.join(" ")}:${ip}`);
    const prefix = alias.toUpperCase().replace(/-/g, "_");
    if (!/^[A-Z_][A-Z0-9_]*$/.test(prefix)) continue;
    const ports = Object.keys(target.Config.ExposedPorts ?? {}).map((k) => { const [p, proto = "tcp"] = k.split("/"); return { p: Number(p), proto }; })
      .sort((a, b) => a.p - b.p || a.proto.localeCompare(b.proto));
    if (ports.length) env.push(`${prefix}_PORT=${ports[0].proto}://${ip}:${ports[0].p}`);
    for (const { p, proto } of ports) {
      const k = `${prefix}_PORT_${p}_${proto.toUpperCase()}`;
      env.push(`${k}=${proto}://${ip}:${p}`, `${k}_ADDR=${ip}`, `${k}_PORT=${p}`, `${k}_PROTO=${proto}`);
    }
    env.push(`${prefix}_NAME=${c.Name}/${alias}`);
    for (const e of target.Config.Env ?? []) {
      const [k, ...rest] = e.split("=");
      if (["HOME", "HOSTNAME", "PATH"].includes(k)) continue;
      env.push(`${prefix}_ENV_${k}=${rest.join("=")}`);
    }
  }
  return { hosts, env };
}

/** --pid / --ipc container:<ref>: the running container whose namespace is joined. */
function nsDonor(mode: string, what: "pid" | "ipc", find: FindContainer): ContainerRecord {
  const ref = mode.slice("container:".length);
  const t = find(ref);
  if (!t) throw new BadParameterError(`No such container: ${ref}`);
  if (!t.State.Running || !t.State.Pid) throw new ConflictError(`cannot join ${what.toUpperCase()} of a non running container: ${t.Id}`);
  if (what === "ipc" && t.HostConfig.IpcMode !== "shareable" && t.HostConfig.IpcMode !== "host") {
    throw new ConflictError(`non-shareable IPC (hint: use IpcMode:shareable for the donor container)`);
  }
  return t;
}

/** Supplementary groups of --group-add: numbers as they are, names from the container's /etc/group. */
async function groupAdd(rootfs: string, list: string[]): Promise<number[]> {
  if (!list.length) return [];
  const { secureJoin } = await import("../lib/securejoin.js");
  let groups: string[][] = [];
  try { groups = (await fsp.readFile(await secureJoin(rootfs, "/etc/group"), "utf8")).split("\n").filter(Boolean).map((l) => l.split(":")); } catch { /* none */ }
  return list.map((g) => {
    if (/^\d+$/.test(g)) return Number(g);
    const hit = groups.find((x) => x[0] === g);
    if (!hit) throw new BadParameterError(`Unable to find group ${g}: no matching entries in group file`);
    return Number(hit[2]);
  });
}

/** --pid, --ipc, --uts as Docker applies them, and the /dev/shm that goes with the IPC mode. */
function namespaces(c: ContainerRecord, find: FindContainer, shmDir: (id: string) => string): Pick<SpecInput, "pidNamespacePath" | "ipcNamespacePath" | "utsHost" | "shm" | "cgroupns"> {
  const hc = c.HostConfig;
  const pid = (hc.PidMode as string) || "";
  const ipc = (hc.IpcMode as string) || "private";
  const uts = (hc.UTSMode as string) || "";
  let pidNamespacePath: string | null = null, ipcNamespacePath: string | null = null;
  if (pid === "host") pidNamespacePath = "host";
  else if (pid.startsWith("container:")) pidNamespacePath = `/proc/${nsDonor(pid, "pid", find).State.Pid}/ns/pid`;
  else if (pid !== "") throw new BadParameterError(`invalid PID mode: ${pid}`);
  if (uts !== "" && uts !== "host") throw new BadParameterError(`invalid UTS mode: ${uts}`);
  const size = (hc.ShmSize as number) || undefined;
  let shm: SpecInput["shm"] = { size };
  if (ipc === "host") { ipcNamespacePath = "host"; shm = { bind: "/dev/shm" }; }
  else if (ipc.startsWith("container:")) {
    const donor = nsDonor(ipc, "ipc", find);
    ipcNamespacePath = `/proc/${donor.State.Pid}/ns/ipc`;
    shm = { bind: donor.HostConfig.IpcMode === "host" ? "/dev/shm" : shmDir(donor.Id) };
  } else if (ipc === "shareable") shm = { bind: shmDir(c.Id) };
  else if (ipc === "none") shm = { none: true };
  else if (ipc !== "private" && ipc !== "shareable") throw new BadParameterError(`invalid IPC mode: ${ipc}`);
  return { pidNamespacePath, ipcNamespacePath, utsHost: uts === "host", shm, cgroupns: hc.CgroupnsMode === "private" };
}

/** NetworkMode container:<name|id>: that container, which must be running; undefined for other modes. */
export function networkDonor(mode: string, find: FindContainer): ContainerRecord | undefined {
  if (!mode.startsWith("container:")) return undefined;
  const ref = mode.slice("container:".length);
  const target = find(ref);
  if (!target) throw new NotFoundError(`No such container: ${ref}`);
  if (!target.State.Running || !target.State.Pid) throw new ConflictError(`cannot join network namespace of a non running container: container ${target.Id} is ${target.State.Status}`);
  return target;
}

/** --network host: the host's; container:<name|id>: that running container's; otherwise a new one. */
function netnsPath(mode: string, find: FindContainer): string | null {
  if (mode === "host") return "host";
  const target = networkDonor(mode, find);
  return target ? `/proc/${target.State.Pid}/ns/net` : null;
}

export interface LaunchSpecInput {
  c: ContainerRecord;
  /** The mounted rootfs (users, groups and volume paths are resolved in it). */
  rootfs: string;
  /** The container's /etc/hosts, /etc/hostname and /etc/resolv.conf on the host. */
  etc: EtcPaths;
  /** Env vars of legacy links (linkSettings). */
  linkEnv: string[];
  volumes: VolumeStore;
  /** The daemon's --init default, for containers that do not say. */
  defaultInit: boolean;
  find: FindContainer;
  /** A shareable container's /dev/shm directory on the host. */
  shmDir: (id: string) => string;
  /** A remapped daemon's id maps (--userns-remap): a user namespace unless UsernsMode is "host". */
  userns?: IdentityMapping;
}

/**
 * The user namespace of a remapped daemon's container: its maps, or, with
 * --network, --ipc or --pid container:<x>, x's own (dockerd: sharing one of
 * those means sharing the user namespace that owns it). The container's /etc
 * files become the remapped root's, so its root may edit them, as dockerd.
 */
async function userNamespace(x: LaunchSpecInput): Promise<SpecInput["userns"]> {
  const hc = x.c.HostConfig;
  if (!x.userns || usernsHost(hc.UsernsMode)) return undefined;
  const root = rootPair(x.userns);
  await Promise.all([x.etc.hosts, x.etc.hostname, x.etc.resolv].map((f) => fsp.chown(f, root.uid, root.gid).catch(() => {})));
  // As moby's oci_linux.go: network, then IPC, then PID donors (the last one set wins).
  let donor: ContainerRecord | undefined;
  for (const mode of [hc.NetworkMode, hc.IpcMode, hc.PidMode] as (string | undefined)[]) {
    if (mode?.startsWith("container:")) donor = x.find(mode.slice("container:".length)) ?? donor;
  }
  const path = donor?.State.Pid && !usernsHost(donor.HostConfig.UsernsMode) ? `/proc/${donor.State.Pid}/ns/user` : undefined;
  return { uids: x.userns.uids, gids: x.userns.gids, ...(path ? { path } : {}) };
}

/** The runtime spec of a container's start. */
export async function launchSpec(x: LaunchSpecInput): Promise<RuntimeSpec> {
  const { c, rootfs, etc } = x;
  const user = await resolveUser(rootfs, c.Config.User);
  const env = mergeEnv(
    ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    [`HOSTNAME=${c.Config.Hostname}`],
    c.Config.Tty ? ["TERM=xterm"] : [],
    x.linkEnv,
    c.Config.Env,
  );
  if (!env.some((e) => e.startsWith("HOME="))) env.push(`HOME=${user.home || "/root"}`);
  const hc = c.HostConfig;
  const userMounts = await specMounts(c.Mounts as MountPoint[], rootfs, x.volumes);
  const etcMounts = [
    { destination: "/etc/resolv.conf", source: etc.resolv, type: "bind", options: ["rbind", "rprivate"] },
    { destination: "/etc/hostname", source: etc.hostname, type: "bind", options: ["rbind", "rprivate"] },
    { destination: "/etc/hosts", source: etc.hosts, type: "bind", options: ["rbind", "rprivate"] },
  ].filter((m) => !userMounts.some((u) => u.destination === m.destination));
  const extraGids = await groupAdd(rootfs, (hc.GroupAdd as string[] | null) ?? []);
  const ns = namespaces(c, x.find, x.shmDir);
  const userns = await userNamespace(x);
  const spec = buildSpec({
    id: c.Id, rootfs, args: [c.Path, ...c.Args], env, cwd: c.Config.WorkingDir || "/",
    user: { uid: user.uid, gid: user.gid, additionalGids: [...new Set([...user.additionalGids, ...extraGids])] },
    ...ns, deviceCgroupRules: (hc.DeviceCgroupRules as string[] | null) ?? undefined,
    oomScoreAdj: (hc.OomScoreAdj as number) || undefined,
    hostname: c.Config.Hostname, domainname: c.Config.Domainname || undefined, tty: c.Config.Tty, consoleSize: hc.ConsoleSize as [number, number] | undefined, readonlyRootfs: hc.ReadonlyRootfs, privileged: hc.Privileged,
    capAdd: hc.CapAdd ?? [], capDrop: hc.CapDrop ?? [], cgroupsPath: `/berth/${c.Id}`,
    networkNamespacePath: netnsPath(hc.NetworkMode, x.find),
    extraMounts: [...etcMounts, ...userMounts.map((m) => ({ destination: m.destination, source: m.source ?? "", type: m.type, options: m.options }))],
    resources: resourcesOf(hc),
    sysctls: hc.Sysctls, init: hc.Init === null || hc.Init === undefined ? x.defaultInit : !!hc.Init, securityOpt: hc.SecurityOpt as string[] | null | undefined,
    userns,
  });
  applyHostLimits(spec, hc as HostLimits);
  return spec;
}
