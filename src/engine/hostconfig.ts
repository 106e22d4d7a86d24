/**
 * HostConfig as dockerd stores and shows it: every field of Docker's
 * container.HostConfig with Docker's defaults (what `inspect` of a plain
 * container on dockerd 20.10 carries), the checks dockerd makes at create
 * (log driver and options, storage options, isolation, cpusets, swap), and
 * the merge of a create request's Env with the image's.
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { BadParameterError, SystemError } from "../lib/errors.js";
import { MASKED, READONLY } from "../runtime/spec.js";
import type { HostConfig } from "./types.js";
import { checkLogOpts, mergeLogConfig } from "./logging.js";

/** Docker's /dev/shm default (64 MiB). */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** Docker's merge of Env: the request's entries, then the image's whose key the request does not set. */
export function dockerEnvMerge(user: string[] | null | undefined, image: string[] | null | undefined): string[] {
  const out = [...(user ?? [])];
  const keys = new Set(out.map((e) => e.split("=", 1)[0]));
  for (const e of image ?? []) if (!keys.has(e.split("=", 1)[0])) out.push(e);
  return out;
}

/** A cpuset list ("0-2,4") as a set of numbers, or undefined when malformed. */
export function parseCpuset(v: string): Set<number> | undefined {
  const out = new Set<number>();
  for (const part of v.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return undefined;
    const a = Number(m[1]), b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) return undefined;
    for (let i = a; i <= b && out.size < 4096; i++) out.add(i);
  }
  return out;
}

function readFirst(paths: string[]): string | undefined {
  for (const p of paths) { try { const t = readFileSync(p, "utf8").trim(); if (t) return t; } catch { /* next */ } }
  return undefined;
}

/** The CPUs and memory nodes containers may use (the root cpuset, or what the host has online). */
export function availableCpuset(): { cpus: string; mems: string } {
  return {
    cpus: readFirst(["/sys/fs/cgroup/cpuset/cpuset.effective_cpus", "/sys/fs/cgroup/cpuset/cpuset.cpus", "/sys/fs/cgroup/cpuset.cpus.effective", "/sys/devices/system/cpu/online"]) ?? `0-${cpus().length - 1}`,
    mems: readFirst(["/sys/fs/cgroup/cpuset/cpuset.effective_mems", "/sys/fs/cgroup/cpuset/cpuset.mems", "/sys/fs/cgroup/cpuset.mems.effective", "/sys/devices/system/node/online"]) ?? "0",
  };
}

/** Docker's checks of cpuset-cpus / cpuset-mems (daemon/daemon_unix.go verifyPlatformContainerResources). */
export function checkCpusets(cpusetCpus: unknown, cpusetMems: unknown): void {
  const avail = availableCpuset();
  const check = (v: unknown, what: "cpus" | "mems") => {
    if (typeof v !== "string" || v === "") return;
    const want = parseCpuset(v);
    if (!want) throw new BadParameterError(`Invalid value ${v} for cpuset ${what}: invalid format: ${v}`);
    const have = parseCpuset(what === "cpus" ? avail.cpus : avail.mems) ?? new Set<number>();
    if ([...want].some((x) => !have.has(x))) {
      throw new BadParameterError(what === "cpus"
        ? `Requested CPUs are not available - requested ${v}, available: ${avail.cpus}`
        : `Requested memory nodes are not available - requested ${v}, available: ${avail.mems}`);
    }
  };
  check(cpusetCpus, "cpus");
  check(cpusetMems, "mems");
}

/** CFS quota and period, and --cpus, as dockerd checks them at create (verifyPlatformContainerResources). */
export function checkCpu(hc: Record<string, unknown>): void {
  const n = (k: string) => (typeof hc[k] === "number" ? (hc[k] as number) : 0);
  const nano = n("NanoCpus"), period = n("CpuPeriod"), quota = n("CpuQuota");
  if (nano > 0 && period > 0) throw new BadParameterError("Conflicting options: Nano CPUs and CPU Period cannot both be set");
  if (nano > 0 && quota > 0) throw new BadParameterError("Conflicting options: Nano CPUs and CPU Quota cannot both be set");
  // The host's CPU count only when --cpus is given (os.cpus() reads /proc/stat and /proc/cpuinfo).
  const ncpu = nano !== 0 ? cpus().length : 0;
  if (nano < 0 || nano > ncpu * 1e9) throw new BadParameterError(`Range of CPUs is from 0.01 to ${ncpu.toFixed(2)}, as there are only ${ncpu} CPUs available`);
  if (period !== 0 && (period < 1000 || period > 1_000_000)) throw new BadParameterError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
  if (quota > 0 && quota < 1000) throw new BadParameterError("CPU cfs quota can not be less than 1ms (i.e. 1000)");
}

/** Memory and swap as Docker checks them at create and update. */
export function checkMemory(memory: number, swap: number): void {
  if (memory > 0 && memory < 6 * 1024 * 1024) throw new BadParameterError("Minimum memory limit allowed is 6MB");
  if (swap > 0 && memory <= 0) throw new BadParameterError("You should always set the Memory limit when using Memoryswap limit, see usage");
  if (swap > 0 && swap < memory) throw new BadParameterError("Minimum memoryswap limit should be larger than memory limit, see usage");
}

/** What dockerd refuses at create, with its status and words. */
export function checkHostConfig(hc: Record<string, unknown>): void {
  // Option names now, with the daemon's defaults merged in (Docker's mergeAndVerifyLogConfig); values when it starts.
  const log = mergeLogConfig(hc.LogConfig as { Type?: string; Config?: Record<string, string> } | undefined);
  checkLogOpts(log.Type, log.Config);
  if (hc.StorageOpt && Object.keys(hc.StorageOpt as object).length) {
    throw new SystemError("--storage-opt is supported only for overlay over xfs with 'pquota' mount option");
  }
  const iso = hc.Isolation;
  if (typeof iso === "string" && iso !== "" && iso.toLowerCase() !== "default") {
    throw new SystemError(`Invalid isolation: ${JSON.stringify(iso)} - linux only supports 'default'`);
  }
  checkCpusets(hc.CpusetCpus, hc.CpusetMems);
  checkCpu(hc);
  const oom = hc.OomScoreAdj;
  if (typeof oom === "number" && (oom < -1000 || oom > 1000)) throw new BadParameterError(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);
  if (typeof hc.ShmSize === "number" && hc.ShmSize < 0) throw new BadParameterError("SHM size can not be less than 0");
  checkMemory(typeof hc.Memory === "number" ? hc.Memory : 0, typeof hc.MemorySwap === "number" ? hc.MemorySwap : 0);
  for (const r of (hc.DeviceCgroupRules as string[] | undefined) ?? []) {
    if (!/^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$/.test(r.trim())) throw new BadParameterError(`invalid device cgroup format '${r}'`);
  }
}

const nil = <T>(v: T | undefined | null): T | null => (v === undefined ? null : v);

/**
 * The stored HostConfig: Docker's every field with Docker's defaults, the
 * request's values where it set them, and `fixed` (values the engine decided).
 */
export function inspectHostConfig(hc: Record<string, unknown>, fixed: Partial<HostConfig>): HostConfig {
  const g = <T>(k: string, dflt: T): T => (hc[k] === undefined || hc[k] === null ? dflt : (hc[k] as T));
  const log = hc.LogConfig as { Type?: string; Config?: Record<string, string> } | undefined;
  const privileged = !!hc.Privileged;
  const out: HostConfig = {
    Binds: nil(hc.Binds as string[] | undefined),
    ContainerIDFile: g("ContainerIDFile", ""),
    LogConfig: mergeLogConfig(log),
    NetworkMode: "default",
    PortBindings: nil(hc.PortBindings as HostConfig["PortBindings"] | undefined),
    RestartPolicy: { Name: "", MaximumRetryCount: 0 },
    AutoRemove: !!hc.AutoRemove,
    VolumeDriver: g("VolumeDriver", ""),
    VolumesFrom: nil(hc.VolumesFrom as string[] | undefined),
    ConsoleSize: g("ConsoleSize", [0, 0]),
    CapAdd: nil(hc.CapAdd as string[] | undefined),
    CapDrop: nil(hc.CapDrop as string[] | undefined),
    CgroupnsMode: g("CgroupnsMode", "") || "host",
    Dns: null, DnsOptions: null, DnsSearch: null,
    ExtraHosts: nil(hc.ExtraHosts as string[] | undefined),
    GroupAdd: nil(hc.GroupAdd as string[] | undefined),
    IpcMode: g("IpcMode", "") || "private",
    Cgroup: g("Cgroup", ""),
    Links: null,
    OomScoreAdj: g("OomScoreAdj", 0),
    PidMode: g("PidMode", ""),
    Privileged: privileged,
    PublishAllPorts: !!hc.PublishAllPorts,
    ReadonlyRootfs: !!hc.ReadonlyRootfs,
    SecurityOpt: nil(hc.SecurityOpt as string[] | undefined),
    UTSMode: g("UTSMode", ""),
    UsernsMode: g("UsernsMode", ""),
    ShmSize: g("ShmSize", 0) || DEFAULT_SHM_SIZE,
    Isolation: g("Isolation", ""),
    Runtime: "runc",
    CpuShares: g("CpuShares", 0),
    Memory: g("Memory", 0),
    NanoCpus: g("NanoCpus", 0),
    CgroupParent: g("CgroupParent", ""),
    BlkioWeight: g("BlkioWeight", 0),
    BlkioWeightDevice: nil(hc.BlkioWeightDevice),
    BlkioDeviceReadBps: nil(hc.BlkioDeviceReadBps),
    BlkioDeviceWriteBps: nil(hc.BlkioDeviceWriteBps),
    BlkioDeviceReadIOps: nil(hc.BlkioDeviceReadIOps),
    BlkioDeviceWriteIOps: nil(hc.BlkioDeviceWriteIOps),
    CpuPeriod: g("CpuPeriod", 0),
    CpuQuota: g("CpuQuota", 0),
    CpuRealtimePeriod: g("CpuRealtimePeriod", 0),
    CpuRealtimeRuntime: g("CpuRealtimeRuntime", 0),
    CpusetCpus: g("CpusetCpus", ""),
    CpusetMems: g("CpusetMems", ""),
    Devices: nil(hc.Devices),
    DeviceCgroupRules: nil(hc.DeviceCgroupRules as string[] | undefined),
    DeviceRequests: nil(hc.DeviceRequests),
    KernelMemory: g("KernelMemory", 0),
    KernelMemoryTCP: g("KernelMemoryTCP", 0),
    MemoryReservation: g("MemoryReservation", 0),
    MemorySwap: g("MemorySwap", 0),
    MemorySwappiness: nil(hc.MemorySwappiness as number | undefined),
    OomKillDisable: !!hc.OomKillDisable,
    // As dockerd: 0 and -1 (unlimited) are stored as not set.
    PidsLimit: typeof hc.PidsLimit === "number" && hc.PidsLimit > 0 ? hc.PidsLimit : null,
    Ulimits: nil(hc.Ulimits),
    CpuCount: g("CpuCount", 0),
    CpuPercent: g("CpuPercent", 0),
    IOMaximumIOps: g("IOMaximumIOps", 0),
    IOMaximumBandwidth: g("IOMaximumBandwidth", 0),
    MaskedPaths: privileged ? null : (hc.MaskedPaths as string[] | undefined) ?? [...MASKED],
    ReadonlyPaths: privileged ? null : (hc.ReadonlyPaths as string[] | undefined) ?? [...READONLY],
    Init: hc.Init === undefined ? null : (hc.Init as boolean | null),
  };
  if (hc.Tmpfs !== undefined) out.Tmpfs = hc.Tmpfs;
  if (hc.Mounts !== undefined) out.Mounts = hc.Mounts;
  if (hc.Sysctls !== undefined) out.Sysctls = hc.Sysctls as Record<string, string>;
  if (hc.StorageOpt !== undefined) out.StorageOpt = hc.StorageOpt;
  Object.assign(out, fixed);
  return out;
}
