/** `docker stats`: one sample of a container's cgroup and network counters, in Docker's shape. */
import { readFileSync } from "node:fs";
import { totalmem, cpus as hostCpus } from "node:os";
import { readCgroupStats, systemCpuNs } from "../runtime/cgroups.js";
import { ZERO_TIME } from "./container-list.js";
import type { ContainerRecord } from "./types.js";

/** One stats sample in Docker's shape (precpu filled by the caller from the previous sample). */
export function containerStats(c: ContainerRecord): Record<string, unknown> {
  const running = c.State.Running;
  const s = running ? readCgroupStats(`/berth/${c.Id}`) : undefined;
  const cpus = hostCpus().length;
  const zeroCpu = { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  const blk = (list: { major: number; minor: number; op: string; value: number }[] | undefined) => (list?.length ? list : null);
  const out: Record<string, unknown> = {
    read: new Date().toISOString(), preread: ZERO_TIME, id: c.Id, name: c.Name,
    pids_stats: s ? { current: s.pids, ...(s.pidsLimit && s.pidsLimit < Number.MAX_SAFE_INTEGER ? { limit: s.pidsLimit } : {}) } : {},
    num_procs: 0, storage_stats: {},
    blkio_stats: {
      io_service_bytes_recursive: blk(s?.ioServiceBytes), io_serviced_recursive: blk(s?.ioServiced), io_queue_recursive: null,
      io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
    },
    cpu_stats: s ? { cpu_usage: { total_usage: s.cpuTotalNs, usage_in_kernelmode: s.cpuKernelNs, usage_in_usermode: s.cpuUserNs }, system_cpu_usage: systemCpuNs(), online_cpus: cpus, throttling_data: s.throttling } : zeroCpu,
    precpu_stats: zeroCpu,
    memory_stats: s ? {
      usage: s.memoryUsage, ...(s.memoryMaxUsage !== undefined ? { max_usage: s.memoryMaxUsage } : {}),
      stats: { ...s.memoryStat, inactive_file: s.memoryCache }, limit: Math.min(s.memoryLimit, totalmem()),
    } : {},
  };
  if (s && c.HostConfig.NetworkMode !== "host" && c.State.Pid) {
    const nets = netDevStats(c.State.Pid);
    if (nets) out.networks = nets;
  }
  return out;
}

/** Per-interface counters of a process's network namespace (/proc/<pid>/net/dev), less loopback, in Docker's names. */
function netDevStats(pid: number): Record<string, Record<string, number>> | undefined {
  let text: string;
  try { text = readFileSync(`/proc/${pid}/net/dev`, "utf8"); } catch { return undefined; }
  const out: Record<string, Record<string, number>> = {};
  for (const line of text.split("\n").slice(2)) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const name = line.slice(0, i).trim();
    if (name === "lo") continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    out[name] = { rx_bytes: f[0], rx_packets: f[1], rx_errors: f[2], rx_dropped: f[3], tx_bytes: f[8], tx_packets: f[9], tx_errors: f[10], tx_dropped: f[11] };
  }
  return out;
}

