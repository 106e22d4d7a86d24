/**
 * POST /containers/{id}/update and stats as dockerd answers them (issue 9):
 * a running container's cgroup changes at once (read back from the cgroup
 * files), inspect shows the new values, they survive a daemon restart, and
 * dockerd's refusals come with its words; stats carry per-interface network
 * counters, memory max_usage (cgroup v1), pids and blkio entries, and a zero
 * precpu_stats on a one-shot read. Expected answers were taken from dockerd
 * 20.10 on this machine.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { Daemon, apiJson } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
});

const json = (method: string, path: string, body?: unknown) => apiJson(d.sock, method, path, body);

/** A value of the container's cgroup (v1 controller dir, or the v2 unified dir). */
function cgroup(id: string, ctl: string, v1: string, v2: string): string | undefined {
  for (const [p, f] of [[`/sys/fs/cgroup/${ctl}/berth/${id}`, v1], [`/sys/fs/cgroup/berth/${id}`, v2]]) if (existsSync(`${p}/${f}`)) return readFileSync(`${p}/${f}`, "utf8").trim();
  return undefined;
}

test("update changes a running container's cgroup, inspect shows it, and it survives a daemon restart", async (t) => {
  const run = d.berth(["run", "-d", "--name", "up", "-m", "64m", "--memory-swap", "128m", "busybox", "sleep", "300"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.after(() => d.berth(["rm", "-f", "up"]));
  const r = await json("POST", "/v1.41/containers/up/update", {
    Memory: 100_000_000, MemorySwap: 200_000_000, CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, CpusetCpus: "0", PidsLimit: 50,
    MemoryReservation: 50_000_000, RestartPolicy: { Name: "on-failure", MaximumRetryCount: 3 },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(Array.isArray(r.body.Warnings));
  // The kernel rounds a memory limit down to pages.
  const mem = Number(cgroup(id, "memory", "memory.limit_in_bytes", "memory.max"));
  assert.ok(mem <= 100_000_000 && mem > 100_000_000 - 8192, String(mem));
  if (existsSync(`/sys/fs/cgroup/cpu/berth/${id}`)) {
    assert.equal(cgroup(id, "cpu", "cpu.shares", ""), "512");
    assert.equal(cgroup(id, "cpu", "cpu.cfs_quota_us", ""), "50000");
  }
  assert.equal(cgroup(id, "pids", "pids.max", "pids.max"), "50");
  assert.equal(cgroup(id, "cpuset", "cpuset.cpus", "cpuset.cpus"), "0");
  const want = { Memory: 100_000_000, MemorySwap: 200_000_000, CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000, CpusetCpus: "0", PidsLimit: 50, MemoryReservation: 50_000_000, RestartPolicy: { Name: "on-failure", MaximumRetryCount: 3 } };
  const check = async () => {
    const hc = (await json("GET", "/v1.41/containers/up/json")).body.HostConfig;
    for (const [k, v] of Object.entries(want)) assert.deepEqual(hc[k], v, `HostConfig.${k}`);
  };
  await check();
  // The docker CLI's update drives the same route.
  const cli = d.docker(["update", "--pids-limit", "60", "up"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(cgroup(id, "pids", "pids.max", "pids.max"), "60");
  want.PidsLimit = 60;
  await d.stopDaemon();
  await d.start();
  await check();
  assert.equal((await json("GET", "/v1.41/containers/up/json")).body.State.Running, true);
});

test("update refuses as dockerd does", async (t) => {
  assert.equal(d.berth(["run", "-d", "--name", "upx", "-m", "64m", "--memory-swap", "128m", "--cpu-period", "100000", "busybox", "sleep", "300"]).code, 0);
  assert.equal(d.berth(["run", "-d", "--rm", "--name", "uprm", "busybox", "sleep", "300"]).code, 0);
  t.after(() => d.berth(["rm", "-f", "upx", "uprm"]));
  const id = (await json("GET", "/v1.41/containers/upx/json")).body.Id;
  const rmId = (await json("GET", "/v1.41/containers/uprm/json")).body.Id;
  const cases: [string, unknown, number, string][] = [
    ["upx", { Memory: 200_000_000 }, 409, `Cannot update container ${id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time`],
    ["upx", { NanoCpus: 500_000_000 }, 409, `Cannot update container ${id}: Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set`],
    ["upx", { Memory: 1000 }, 400, "Minimum memory limit allowed is 6MB"],
    ["upx", { CpusetCpus: "99" }, 400, "Requested CPUs are not available - requested 99, available: "],
    ["upx", { RestartPolicy: { Name: "bogus" } }, 400, "invalid restart policy 'bogus'"],
    ["uprm", { RestartPolicy: { Name: "always" } }, 409, `Cannot update container ${rmId}: Restart policy cannot be updated because AutoRemove is enabled for the container`],
    ["nope", {}, 404, "No such container: nope"],
  ];
  for (const [name, body, status, message] of cases) {
    const r = await json("POST", `/v1.41/containers/${name}/update`, body);
    assert.equal(r.status, status, `${name} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assert.ok(r.body.message.startsWith(message), `${r.body.message} !~ ${message}`);
  }
  const km = await json("POST", "/v1.41/containers/upx/update", { KernelMemory: 100_000_000 });
  assert.equal(km.status, 200);
  assert.deepEqual(km.body.Warnings, ["Specifying a kernel memory limit is deprecated and will be removed in a future release."]);
  // Nothing of the refused updates stuck.
  const hc = (await json("GET", "/v1.41/containers/upx/json")).body.HostConfig;
  assert.equal(hc.Memory, 64 * 1024 * 1024);
  assert.equal(hc.NanoCpus, 0);
});

test("a stopped container's update is kept for its next start", async (t) => {
  assert.equal(d.berth(["create", "--name", "upc", "busybox", "sleep", "300"]).code, 0);
  t.after(() => d.berth(["rm", "-f", "upc"]));
  const r = await json("POST", "/v1.41/containers/upc/update", { PidsLimit: 42 });
  assert.equal(r.status, 200);
  assert.equal(d.berth(["start", "upc"]).code, 0);
  const id = (await json("GET", "/v1.41/containers/upc/json")).body.Id;
  assert.equal(cgroup(id, "pids", "pids.max", "pids.max"), "42");
});

test("stats: per-interface networks, memory max_usage, pids, blkio, Docker's precpu", async (t) => {
  assert.equal(d.berth(["run", "-d", "--name", "st", "busybox", "sleep", "300"]).code, 0);
  t.after(() => d.berth(["rm", "-f", "st"]));
  // Some traffic of its own: a ping of its gateway (this daemon's bridge).
  const gw = d.berth(["inspect", "-f", "{{.NetworkSettings.Gateway}}", "st"]).stdout.trim();
  assert.equal(d.berth(["exec", "st", "ping", "-c", "1", "-W", "5", gw]).code, 0);
  const s = (await json("GET", "/v1.41/containers/st/stats?stream=false&one-shot=true")).body;
  assert.ok(s.networks && s.networks.eth0, JSON.stringify(s.networks));
  for (const k of ["rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"]) assert.equal(typeof s.networks.eth0[k], "number", k);
  assert.ok(!("lo" in s.networks));
  assert.ok(s.networks.eth0.tx_packets >= 1 && s.networks.eth0.rx_packets >= 1, JSON.stringify(s.networks.eth0));
  if (existsSync("/sys/fs/cgroup/memory/memory.max_usage_in_bytes") || existsSync("/sys/fs/cgroup/memory/berth")) {
    assert.equal(typeof s.memory_stats.max_usage, "number");
    assert.ok(s.memory_stats.max_usage >= s.memory_stats.usage);
  }
  assert.ok(s.pids_stats.current >= 1);
  assert.equal(s.num_procs, 0);
  for (const k of ["io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive", "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive", "sectors_recursive"]) assert.ok(k in s.blkio_stats, k);
  assert.deepEqual(s.precpu_stats, { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } });
  assert.deepEqual(Object.keys(s.cpu_stats.throttling_data).sort(), ["periods", "throttled_periods", "throttled_time"]);
  // The docker CLI's NetIO column comes from networks.
  const cli = d.docker(["stats", "--no-stream", "--format", "{{.NetIO}}", "st"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.doesNotMatch(cli.stdout, /^0B \/ 0B$/m);
});
