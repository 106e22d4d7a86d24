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
    return {
      cpuTotalNs: (cpu.usage_usec ?? 0) * 1000, cpuUserNs: (cpu.user_usec ?? 0) * 1000, cpuKernelNs: (cpu.system_usec ?? 0) * 1000,
      memoryUsage: readNum(join(d, "memory.current")) ?? 0, memoryLimit: readNum(join(d, "memory.max")) ?? 0,
      memoryCache: mem.inactive_file ?? 0, memoryStat: mem,
      pids: readNum(join(d, "pids.current")) ?? 0, pidsLimit: readNum(join(d, "pids.max")) ?? 0,
    };
  }
  const v1 = (ctl: string, file: string) => join("/sys/fs/cgroup", ctl, rel, file);
  const acct = readKV(v1("cpuacct", "cpuacct.stat")); // in USER_HZ ticks
  const mem = readKV(v1("memory", "memory.stat"));
  return {
    cpuTotalNs: readNum(v1("cpuacct", "cpuacct.usage")) ?? 0, cpuUserNs: (acct.user ?? 0) * 1e7, cpuKernelNs: (acct.system ?? 0) * 1e7,
    memoryUsage: readNum(v1("memory", "memory.usage_in_bytes")) ?? 0, memoryLimit: readNum(v1("memory", "memory.limit_in_bytes")) ?? 0,
    memoryCache: mem.total_inactive_file ?? mem.inactive_file ?? 0, memoryStat: mem,
    pids: readNum(v1("pids", "pids.current")) ?? 0, pidsLimit: readNum(v1("pids", "pids.max")) ?? 0,
  };
}

/** Host CPU time in ns from /proc/stat (what Docker reports as system_cpu_usage). */
export function systemCpuNs(): number {
  const first = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return first.slice(0, 8).reduce((a, b) => a + b, 0) * 1e7; // USER_HZ = 100
}
