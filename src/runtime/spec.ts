/**
 * Container config → OCI runtime spec, carrying Docker's defaults (moby's
 * oci/defaults.go): new pid, mount, uts, ipc and network namespaces; the 14
 * default capabilities; masked and read-only /proc and /sys paths; /dev with
 * the standard devices, /dev/pts, /dev/shm, /dev/mqueue; the device cgroup
 * allow-list. No rlimits unless asked (the daemon's own hard limits may be
 * lower than what a runtime default would ask for). Docker's default seccomp
 * profile unless privileged or --security-opt says otherwise (runtime/seccomp.ts),
 * and no-new-privileges from --security-opt. With a remapped daemon
 * (runtime/userns.ts) a user namespace with the daemon's uid and gid maps,
 * or another container's (--net container: on a remapped daemon shares its
 * user namespace too, as dockerd does). The network namespace must then be
 * made by the runtime inside the user namespace (bridge and none networks
 * are: the engine plugs them by pid), or sysfs cannot be mounted.
 */
import type { RuntimeSpec, SpecMount, SpecNamespace, SpecLinuxResources } from "../oci/spec.js";
import { readFileSync, readdirSync, lstatSync } from "node:fs";
import { BadParameterError } from "../lib/errors.js";
import { apparmorEnabled, containerSeccomp, parseSecurityOpt } from "./seccomp.js";
import type { IdMapEntry } from "../store/idmap.js";

export interface SpecInput {
  id: string;
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  hostname: string;
  tty: boolean;
  /** Initial terminal size [height, width] (Docker's HostConfig.ConsoleSize). */
  consoleSize?: [number, number];
  readonlyRootfs?: boolean;
  privileged?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  cgroupsPath: string;
  /** null/undefined: a new network namespace; "host": none; a path: join it. */
  networkNamespacePath?: string | null;
  extraMounts?: { destination: string; source: string; type?: string; options?: string[] }[];
  resources?: SpecResourcesInput;
  /** PID namespace: undefined a new one; "host" none; a path: join it (--pid container:). */
  pidNamespacePath?: string | null;
  /** IPC namespace: undefined a new one; "host" none; a path: join it (--ipc container:). */
  ipcNamespacePath?: string | null;
  /** HostConfig.OomScoreAdj. */
  oomScoreAdj?: number;
  /** Config.Domainname: the UTS namespace's NIS domain name (runc's spec.domainname). */
  domainname?: string;
  /** --cgroupns private: a cgroup namespace of its own. */
  cgroupns?: boolean;
  /** --uts host: no UTS namespace (and no hostname set). */
  utsHost?: boolean;
  /** /dev/shm: a tmpfs of this size (bytes), or a bind of this path (--ipc host|container:), or none (--ipc none). */
  shm?: { size?: number; bind?: string; none?: boolean };
  /** --device-cgroup-rule: "c 1:3 rwm", "b *:* m". */
  deviceCgroupRules?: string[];
  sysctls?: Record<string, string>;
  /** --init: catatonit as pid 1. */
  init?: boolean;
  initPath?: string;
  /** HostConfig.SecurityOpt: seccomp=unconfined|<json>, no-new-privileges[=bool], apparmor=, label=. */
  securityOpt?: string[] | null;
  /** A user namespace with these maps (a remapped daemon's container, not --userns host); `path`: join that one instead. */
  userns?: { uids: IdMapEntry[]; gids: IdMapEntry[]; path?: string } | null;
}

/** The resource fields of Docker's HostConfig that become spec.linux.resources. */
export interface SpecResourcesInput {
  memory?: number; memoryReservation?: number; memorySwap?: number; cpuShares?: number; nanoCpus?: number;
  cpuPeriod?: number; cpuQuota?: number; cpusetCpus?: string; cpusetMems?: string; blkioWeight?: number; pidsLimit?: number;
}

/** One --device-cgroup-rule as Docker parses it ("c|b|a <major|*>:<minor|*> [rwm]"). */
export function parseDeviceCgroupRule(rule: string): { allow: boolean; type: string; major?: number; minor?: number; access: string } {
  const m = /^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.exec(rule.trim());
  if (!m) throw new BadParameterError(`invalid device cgroup format '${rule}'`);
  return { allow: true, type: m[1], major: m[2] === "*" ? undefined : Number(m[2]), minor: m[3] === "*" ? undefined : Number(m[3]), access: m[4] };
}

/** Docker's resources → OCI linux.resources (memory, swap, reservation, CFS quota/period, cpusets, blkio weight, pids). */
export function specResources(r: SpecResourcesInput): Omit<SpecLinuxResources, "devices"> {
  const out: Omit<SpecLinuxResources, "devices"> = {};
  if (r.memory || r.memoryReservation || r.memorySwap) {
    out.memory = {};
    if (r.memory) out.memory.limit = r.memory;
    if (r.memoryReservation) out.memory.reservation = r.memoryReservation;
    // As Docker: swap unset (0) with a memory limit is twice the limit; -1 is unlimited.
    if (r.memorySwap) out.memory.swap = r.memorySwap;
    else if (r.memory) out.memory.swap = r.memory * 2;
  }
  const cpu: NonNullable<SpecLinuxResources["cpu"]> = {};
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.nanoCpus) { cpu.period = 100000; cpu.quota = Math.round((r.nanoCpus / 1e9) * 100000); }
  if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  if (r.cpuQuota) cpu.quota = r.cpuQuota;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length) out.cpu = cpu;
  if (r.blkioWeight) out.blockIO = { weight: r.blkioWeight };
  if (r.pidsLimit && r.pidsLimit > 0) out.pids = { limit: r.pidsLimit };
  return out;
}

export const DEFAULT_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

export const ALL_CAPS = [
  "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ", "CAP_AUDIT_WRITE", "CAP_BLOCK_SUSPEND", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
  "CAP_KILL", "CAP_LEASE", "CAP_LINUX_IMMUTABLE", "CAP_MAC_ADMIN", "CAP_MAC_OVERRIDE", "CAP_MKNOD", "CAP_NET_ADMIN",
  "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_RAW", "CAP_PERFMON", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
  "CAP_SETUID", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYS_PACCT",
  "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_SYSLOG", "CAP_WAKE_ALARM",
];

export const MASKED = [
  "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
];
export const READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

const DEVICES = [
  { path: "/dev/null", major: 1, minor: 3 },
  { path: "/dev/zero", major: 1, minor: 5 },
  { path: "/dev/full", major: 1, minor: 7 },
  { path: "/dev/random", major: 1, minor: 8 },
  { path: "/dev/urandom", major: 1, minor: 9 },
  { path: "/dev/tty", major: 5, minor: 0 },
];

const CAP_BITS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
  "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
  "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN",
  "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
  "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
  "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

let hostCaps: string[] | undefined;
/** The capabilities this process may pass on (its bounding set): --privileged gets these, as with Docker. */
export function hostCapabilities(): string[] {
  if (hostCaps) return hostCaps;
  try {
    const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith("CapBnd:"));
    const mask = BigInt("0x" + (line?.split(/\s+/)[1] ?? "0"));
    hostCaps = CAP_BITS.filter((_, i) => (mask >> BigInt(i)) & 1n);
  } catch {
    hostCaps = [...ALL_CAPS];
  }
  return hostCaps;
}

function capName(c: string): string {
  const up = c.toUpperCase();
  return up === "ALL" ? "ALL" : up.startsWith("CAP_") ? up : `CAP_${up}`;
}

/** Docker's cap-add/cap-drop over the defaults (ALL on either side as Docker treats it). */
export function capabilities(add: string[] = [], drop: string[] = [], privileged = false): string[] {
  if (privileged) return hostCapabilities();
  const a = add.map(capName), d = drop.map(capName);
  for (const c of [...a, ...d]) if (c !== "ALL" && !ALL_CAPS.includes(c)) throw new BadParameterError(`unknown capability: "${c}"`);
  let caps = a.includes("ALL") ? hostCapabilities() : [...DEFAULT_CAPS];
  if (d.includes("ALL")) caps = [];
  caps = caps.filter((c) => !d.includes(c));
  for (const c of a) if (c !== "ALL" && !caps.includes(c)) caps.push(c);
  return caps;
}

type HostDevice = { path: string; type: string; major: number; minor: number; fileMode: number; uid: number; gid: number };
let hostDeviceCache: HostDevice[] | undefined;

/** Every character and block device under the host's /dev (less pts, shm, mqueue, and the console), as Docker gives --privileged. */
export function hostDevices(root = "/dev"): HostDevice[] {
  if (root === "/dev" && hostDeviceCache) return hostDeviceCache;
  const out: HostDevice[] = [];
  const walk = (dir: string): void => {
    let names: string[];
    try { names = readdirSync(dir); } catch { return; }
    for (const n of names) {
      const p = `${dir}/${n}`;
      if (dir === root && ["pts", "shm", "mqueue", "fd", "console", "ptmx"].includes(n)) continue;
      let st;
      try { st = lstatSync(p); } catch { continue; }
      if (st.isDirectory()) { walk(p); continue; }
      if (!st.isCharacterDevice() && !st.isBlockDevice()) continue;
      const rdev = st.rdev;
      const major = ((rdev >> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff;
      const minor = (rdev & 0xff) | ((rdev >> 12) & ~0xff & 0xfffff00);
      out.push({ path: p, type: st.isBlockDevice() ? "b" : "c", major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    }
  };
  walk(root);
  if (root === "/dev") hostDeviceCache = out;
  return out;
}

function sysctls(input: SpecInput): Record<string, string> | undefined {
  const out = { ...(input.sysctls ?? {}) };
  if (input.domainname && !input.utsHost) out["kernel.domainname"] = input.domainname;
  return Object.keys(out).length ? out : undefined;
}

export function buildSpec(input: SpecInput): RuntimeSpec {
  const priv = !!input.privileged;
  const caps = capabilities(input.capAdd, input.capDrop, priv);
  const sec = parseSecurityOpt(input.securityOpt);
  const seccomp = containerSeccomp(sec.seccomp, caps, priv);
  const ns = (type: SpecNamespace["type"], path: string | null | undefined): SpecNamespace[] =>
    path === "host" ? [] : path ? [{ type, path }] : [{ type }];
  const namespaces: SpecNamespace[] = [
    ...ns("pid", input.pidNamespacePath), ...ns("ipc", input.ipcNamespacePath), ...(input.utsHost ? [] : [{ type: "uts" as const }]), { type: "mount" },
    ...(input.cgroupns ? [{ type: "cgroup" as const }] : []),
  ];
  const userns = input.userns?.uids.length ? input.userns : undefined;
  if (userns) namespaces.unshift(userns.path ? { type: "user", path: userns.path } : { type: "user" });
  if (input.networkNamespacePath !== "host") {
    namespaces.push(input.networkNamespacePath ? { type: "network", path: input.networkNamespacePath } : { type: "network" });
  }
  const mounts: SpecMount[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", priv ? "rw" : "ro"] },
    { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", priv ? "rw" : "ro"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
  ];
  const shm = input.shm ?? {};
  if (shm.bind) mounts.push({ destination: "/dev/shm", type: "bind", source: shm.bind, options: ["rbind", "rprivate"] });
  else if (!shm.none) mounts.push({ destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", `size=${shm.size ? Math.floor(shm.size / 1024) + "k" : "65536k"}`] });
  for (const m of input.extraMounts ?? []) {
    mounts.push({ destination: m.destination, type: m.type ?? "bind", source: m.source, options: m.options ?? ["rbind", "rprivate"] });
  }
  let args = input.args;
  if (input.init) {
    const initPath = input.initPath ?? "/usr/bin/catatonit";
    mounts.push({ destination: "/sbin/docker-init", type: "bind", source: initPath, options: ["bind", "ro"] });
    args = ["/sbin/docker-init", "--", ...args];
  }
  const resources: SpecLinuxResources = {
    devices: priv ? [{ allow: true, access: "rwm" }] : [
      { allow: false, access: "rwm" },
      ...DEVICES.map((d) => ({ allow: true, type: "c", major: d.major, minor: d.minor, access: "rwm" })),
      { allow: true, type: "c", major: 5, minor: 1, access: "rwm" }, // /dev/console
      { allow: true, type: "c", major: 5, minor: 2, access: "rwm" }, // /dev/ptmx
      { allow: true, type: "c", major: 136, access: "rwm" }, // /dev/pts/*
      { allow: true, type: "c", major: 10, minor: 200, access: "rwm" }, // /dev/net/tun
      { allow: false, type: "c", major: 10, minor: 229, access: "rwm" },
      { allow: true, type: "c", access: "m" }, { allow: true, type: "b", access: "m" },
      ...(input.deviceCgroupRules ?? []).map(parseDeviceCgroupRule),
    ],
    ...specResources(input.resources ?? {}),
  };

  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: input.tty,
      consoleSize: input.tty && input.consoleSize && input.consoleSize[0] > 0 ? { height: input.consoleSize[0], width: input.consoleSize[1] } : undefined,
      user: { uid: input.user.uid, gid: input.user.gid, additionalGids: input.user.additionalGids?.length ? input.user.additionalGids : undefined },
      args,
      env: input.env,
      cwd: input.cwd || "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: sec.noNewPrivileges,
      ...(sec.apparmor && sec.apparmor !== "unconfined" && !priv && apparmorEnabled() ? { apparmorProfile: sec.apparmor } : {}),
      ...(input.oomScoreAdj ? { oomScoreAdj: input.oomScoreAdj } : {}),
    },
    root: { path: input.rootfs, readonly: !!input.readonlyRootfs },
    hostname: input.utsHost ? undefined : input.hostname,
    mounts,
    linux: {
      namespaces,
      resources,
      cgroupsPath: input.cgroupsPath || undefined,
      devices: priv ? hostDevices() : undefined,
      maskedPaths: priv ? undefined : MASKED,
      readonlyPaths: priv ? undefined : READONLY,
      // The domain name through its sysctl (runc 1.1 has no spec.domainname), in the container's UTS namespace.
      sysctl: sysctls(input),
      seccomp,
      rootfsPropagation: "rprivate",
      ...(userns ? { uidMappings: userns.uids, gidMappings: userns.gids } : {}),
    },
  };
}
