/**
 * cgroup mode detection and cleanup. runc creates a container's cgroups from
 * spec.linux.cgroupsPath (cgroupfs driver); we only detect the host's mode
 * and remove what a dead container left behind.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, statfsSync } from "node:fs";
import { join } from "node:path";

export type CgroupMode = "v1" | "hybrid" | "v2";

const CGROUP2_SUPER_MAGIC = 0x63677270;
let cached: CgroupMode | undefined;

export function detectCgroupMode(): CgroupMode {
  if (cached) return cached;
  try {
    if (statfsSync("/sys/fs/cgroup").type === CGROUP2_SUPER_MAGIC) return (cached = "v2");
  } catch { /* no cgroupfs */ }
  try {
    if (existsSync("/sys/fs/cgroup/unified") && statfsSync("/sys/fs/cgroup/unified").type === CGROUP2_SUPER_MAGIC) return (cached = "hybrid");
  } catch { /* none */ }
  return (cached = "v1");
}

/** Every directory a cgroupsPath maps to on this host. */
export function cgroupDirs(cgroupsPath: string): string[] {
  const rel = cgroupsPath.replace(/^\/+/, "");
  const mode = detectCgroupMode();
  if (mode === "v2") return [join("/sys/fs/cgroup", rel)];
  const dirs: string[] = [];
  for (const c of readdirSync("/sys/fs/cgroup")) {
    if (c === "unified" && mode === "hybrid") { dirs.push(join("/sys/fs/cgroup/unified", rel)); continue; }
    dirs.push(join("/sys/fs/cgroup", c, rel));
  }
  return dirs;
}

/** Removes the container's cgroup directories left over after it died; ignores missing ones. */
export async function removeCgroup(cgroupsPath: string): Promise<void> {
  if (!cgroupsPath) return;
  for (const d of cgroupDirs(cgroupsPath)) {
    if (!existsSync(d)) continue;
    // Child cgroups first (some runtimes nest), then the container's own.
    for (let i = 0; i < 3; i++) {
      try { rmdirSync(d); break; } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ENOENT") break;
        if (code === "EBUSY") { await new Promise((r) => setTimeout(r, 20)); continue; }
        break;
      }
    }
  }
}

/** A container's resource usage, read from its cgroup (v1 or v2), in the units Docker's stats API uses. */
export interface CgroupStats {
  cpuTotalNs: number; cpuUserNs: number; cpuKernelNs: number;
  memoryUsage: number; memoryLimit: number; memoryCache: number; memoryStat: Record<string, number>;
  pids: number; pidsLimit: number;
  /** v1 memory.max_usage_in_bytes (v2 has none). */
  memoryMaxUsage?: number;
  /** Bytes and operations per device and op (Docker's blkio_stats entries). */
  ioServiceBytes: { major: number; minor: number; op: string; value: number }[];
  ioServiced: { major: number; minor: number; op: string; value: number }[];
  throttling: { periods: number; throttled_periods: number; throttled_time: number };
}

function readBlkio(path: string): { major: number; minor: number; op: string; value: number }[] {
  const out: { major: number; minor: number; op: string; value: number }[] = [];
  try {
    for (const l of readFileSync(path, "utf8").split("\n")) {
      const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(l.trim());
      if (m) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3], value: Number(m[4]) });
    }
  } catch { /* none */ }
  return out;
}

/** v2 io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...") as v1-style entries. */
function readIoStat(path: string): { bytes: CgroupStats["ioServiceBytes"]; ios: CgroupStats["ioServiced"] } {
  const bytes: CgroupStats["ioServiceBytes"] = [], ios: CgroupStats["ioServiced"] = [];
  try {
    for (const l of readFileSync(path, "utf8").split("\n")) {
      const [dev, ...kv] = l.trim().split(" ");
      const m = /^(\d+):(\d+)$/.exec(dev ?? "");
      if (!m) continue;
      const f = Object.fromEntries(kv.map((x) => x.split("=")).map(([k, v]) => [k, Number(v)]));
      const major = Number(m[1]), minor = Number(m[2]);
      bytes.push({ major, minor, op: "read", value: f.rbytes ?? 0 }, { major, minor, op: "write", value: f.wbytes ?? 0 });
      ios.push({ major, minor, op: "read", value: f.rios ?? 0 }, { major, minor, op: "write", value: f.wios ?? 0 });
    }
  } catch { /* none */ }
  return { bytes, ios };
}

function readNum(path: string): number | undefined {
  try {
    const t = readFileSync(path, "utf8").trim();
    return t === "max" ? Number.MAX_SAFE_INTEGER : Number(t);
  } catch { return undefined; }
}

function readKV(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  try { for (const l of readFileSync(path, "utf8").split("\n")) { const [k, v] = l.split(" "); if (k && v !== undefined) out[k] = Number(v); } } catch { /* none */ }
  return out;
}

export function readCgroupStats(cgroupsPath: string): CgroupStats {
  const rel = cgroupsPath.replace(/^\/+/, "");
  if (detectCgroupMode() === "v2") {
    const d = join("/sys/fs/cgroup", rel);
    const cpu = readKV(join(d, "cpu.stat"));
    const mem = readKV(join(d, "memory.stat"));
    const io = readIoStat(join(d, "io.stat"));
    return {
      cpuTotalNs: (cpu.usage_usec ?? 0) * 1000, cpuUserNs: (cpu.user_usec ?? 0) * 1000, cpuKernelNs: (cpu.system_usec ?? 0) * 1000,
      memoryUsage: readNum(join(d, "memory.current")) ?? 0, memoryLimit: readNum(join(d, "memory.max")) ?? 0,
      memoryCache: mem.inactive_file ?? 0, memoryStat: mem,
      pids: readNum(join(d, "pids.current")) ?? 0, pidsLimit: readNum(join(d, "pids.max")) ?? 0,
      ioServiceBytes: io.bytes, ioServiced: io.ios,
      throttling: { periods: cpu.nr_periods ?? 0, throttled_periods: cpu.nr_throttled ?? 0, throttled_time: (cpu.throttled_usec ?? 0) * 1000 },
    };
  }
  const v1 = (ctl: string, file: string) => join("/sys/fs/cgroup", ctl, rel, file);
  const acct = readKV(v1("cpuacct", "cpuacct.stat")); // in USER_HZ ticks
  const mem = readKV(v1("memory", "memory.stat"));
  const thr = readKV(v1("cpu", "cpu.stat"));
  return {
    cpuTotalNs: readNum(v1("cpuacct", "cpuacct.usage")) ?? 0, cpuUserNs: (acct.user ?? 0) * 1e7, cpuKernelNs: (acct.system ?? 0) * 1e7,
    memoryUsage: readNum(v1("memory", "memory.usage_in_bytes")) ?? 0, memoryLimit: readNum(v1("memory", "memory.limit_in_bytes")) ?? 0,
    memoryCache: mem.total_inactive_file ?? mem.inactive_file ?? 0, memoryStat: mem,
    pids: readNum(v1("pids", "pids.current")) ?? 0, pidsLimit: readNum(v1("pids", "pids.max")) ?? 0,
    memoryMaxUsage: readNum(v1("memory", "memory.max_usage_in_bytes")),
    ioServiceBytes: readBlkio(v1("blkio", "blkio.throttle.io_service_bytes_recursive")),
    ioServiced: readBlkio(v1("blkio", "blkio.throttle.io_serviced_recursive")),
    throttling: { periods: thr.nr_periods ?? 0, throttled_periods: thr.nr_throttled ?? 0, throttled_time: thr.throttled_time ?? 0 },
  };
}

/** Whether the host can weigh block I/O (blkio.weight on v1, io.weight on v2); Docker discards the weight with a warning otherwise. */
export function blkioWeightSupported(): boolean {
  if (detectCgroupMode() === "v2") { try { return readFileSync("/sys/fs/cgroup/cgroup.subtree_control", "utf8").includes("io"); } catch { return false; } }
  return existsSync("/sys/fs/cgroup/blkio/blkio.weight");
}

/** Host CPU time in ns from /proc/stat (what Docker reports as system_cpu_usage). */
export function systemCpuNs(): number {
  const first = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return first.slice(0, 8).reduce((a, b) => a + b, 0) * 1e7; // USER_HZ = 100
}

/**
 * How many processes the kernel's OOM killer has killed in the container's memory cgroup
 * (v1: memory.oom_control's "oom_kill" (kernel >= 4.13), else memory.failcnt as a hint that the
 * limit was hit; v2: memory.events "oom_kill"). Read it before the cgroup is removed (runc delete).
 * undefined when the cgroup is gone or has no memory controller.
 */
export function oomKillCount(cgroupsPath: string): number | undefined {
  const rel = cgroupsPath.replace(/^\/+/, "");
  if (detectCgroupMode() === "v2") {
    const ev = readKV(join("/sys/fs/cgroup", rel, "memory.events"));
    return ev.oom_kill;
  }
  const ctl = readKV(join("/sys/fs/cgroup/memory", rel, "memory.oom_control"));
  if (ctl.oom_kill !== undefined) return ctl.oom_kill;
  return undefined;
}
