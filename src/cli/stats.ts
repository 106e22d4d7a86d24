/** `berth stats`: CPU, memory and pids per container, as `docker stats` shows them. */
import type { Command, Ctx } from "./command.js";
import { formatRows } from "../lib/template.js";
import type { ContainerStatsResponse, ContainerSummary } from "../api/types.js";

type Stats = ContainerStatsResponse;

/** go-units HumanSizeWithPrecision(n, 3): decimal units ("1.2kB"), as docker stats prints NET I/O and BLOCK I/O. */
function decimalSize(n: number): string {
  const u = ["B", "kB", "MB", "GB", "TB", "PB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${Number(n.toPrecision(3))}${u[i]}`;
}

/** Received and sent bytes over every interface of the container. */
function netIO(s: Stats): string {
  let rx = 0, tx = 0;
  for (const n of Object.values(s.networks ?? {})) { rx += n.rx_bytes ?? 0; tx += n.tx_bytes ?? 0; }
  return `${decimalSize(rx)} / ${decimalSize(tx)}`;
}

/** Bytes read and written (cgroup blkio), as docker's calculateBlockIO. */
function blockIO(s: Stats): string {
  let r = 0, w = 0;
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op.toLowerCase();
    if (op === "read") r += e.value; else if (op === "write") w += e.value;
  }
  return `${decimalSize(r)} / ${decimalSize(w)}`;
}

/** go-units BytesSize: binary units, 4 significant digits ("1.5MiB"). */
export function bytesSize(n: number): string {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${Number(n.toPrecision(4))}${u[i]}`;
}

export function statsRow(s: Stats, noTrunc: boolean): Record<string, unknown> {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - (s.precpu_stats.cpu_usage?.total_usage ?? 0);
  const sysDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0);
  const cpu = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * (s.cpu_stats.online_cpus ?? 1) * 100 : 0;
  const m = s.memory_stats;
  const used = Math.max(0, (m.usage ?? 0) - (m.stats?.inactive_file ?? 0));
  const limit = m.limit ?? 0;
  return {
    ID: noTrunc ? s.id : s.id.slice(0, 12), Container: s.name.replace(/^\//, ""), Name: s.name.replace(/^\//, ""),
    CPUPerc: `${cpu.toFixed(2)}%`, MemUsage: `${bytesSize(used)} / ${bytesSize(limit)}`,
    MemPerc: `${limit ? ((used / limit) * 100).toFixed(2) : "0.00"}%`, NetIO: netIO(s), BlockIO: blockIO(s), PIDs: String(s.pids_stats.current ?? 0),
  };
}

const HEADERS = { ID: "CONTAINER ID", Container: "CONTAINER", Name: "NAME", CPUPerc: "CPU %", MemUsage: "MEM USAGE / LIMIT", MemPerc: "MEM %", NetIO: "NET I/O", BlockIO: "BLOCK I/O", PIDs: "PIDS" };

async function sample(c: Ctx, ids: string[]): Promise<Stats[]> {
  return Promise.all(ids.map((id) => c.api.json<Stats>("GET", `/containers/${id}/stats`, { query: { stream: false } })));
}

export const statsCommand: Command = {
  name: "stats", usage: "stats [OPTIONS] [CONTAINER...]", desc: "Display a live stream of container(s) resource usage statistics",
  flags: [
    { long: "all", short: "a", type: "bool", desc: "Show all containers (default shows just running)" },
    { long: "no-stream", type: "bool", desc: "Disable streaming stats and only pull the first result" },
    { long: "no-trunc", type: "bool", desc: "Do not truncate output" },
    { long: "format", type: "string", desc: "Format output using a custom template" },
  ],
  run: async (c, f, a) => {
    const ids = a.length ? a : (await c.api.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: !!f.all } })).map((x) => x.Id);
    const fmt = (f.format as string | undefined) ?? "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
    for (;;) {
      const rows = (await sample(c, ids)).map((s) => statsRow(s, !!f["no-trunc"]));
      const out = formatRows(fmt, rows, HEADERS);
      if (f["no-stream"]) { c.out(out); return 0; }
      c.out(`\x1b[2J\x1b[H${out}`);
    }
  },
};
