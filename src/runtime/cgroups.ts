/**
 * cgroup mode detection and cleanup. runc creates a container's cgroups from
 * spec.linux.cgroupsPath (cgroupfs driver); we only detect the host's mode
 * and remove what a dead container left behind.
 */
import { existsSync, readdirSync, rmdirSync, statfsSync } from "node:fs";
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
