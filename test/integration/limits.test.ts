/**
 * Limits that report (issue 10), each checked in the cgroup or the process the container
 * really runs in, and each answer as dockerd 20.10 gave it on this machine:
 * an OOM kill is State.OOMKilled with exit 137 and an `oom` event before `die`; --cpus 0.5
 * holds a busy loop near half a core (cgroup CPU usage over ~2 s, wide tolerance); --pids-limit
 * stops a fork bomb (sh's "can't fork", the container stays up, ps shows <= 20 processes);
 * --memory-swappiness and --oom-kill-disable reach the memory cgroup, with dockerd's warning
 * when no memory limit is set; --ulimit, --shm-size, --device with its cgroup permissions and
 * namespaced --sysctl keys in the container; a host-wide key (vm.swappiness) created but refused
 * at start with runc's words, as dockerd.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { Daemon, apiJson, until } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
});

const json = (method: string, path: string, body?: unknown) => apiJson(d.sock, method, path, body);

/** A file of the container's cgroup: the v1 controller dir, or the v2 unified dir. */
function cgroupFile(id: string, ctl: string, v1: string, v2: string): string | undefined {
  for (const [p, f] of [[`/sys/fs/cgroup/${ctl}/berth/${id}`, v1], [`/sys/fs/cgroup/berth/${id}`, v2]]) if (existsSync(`${p}/${f}`)) return `${p}/${f}`;
  return undefined;
}

/** CPU time the container's cgroup has used, in ns. */
function cpuUsageNs(id: string): number {
  const v1 = `/sys/fs/cgroup/cpuacct/berth/${id}/cpuacct.usage`;
  if (existsSync(v1)) return Number(readFileSync(v1, "utf8"));
  const stat = readFileSync(`/sys/fs/cgroup/berth/${id}/cpu.stat`, "utf8");
  return Number(/usage_usec (\d+)/.exec(stat)![1]) * 1000;
}


test("a memory hog over --memory 32m is OOM-killed: exit 137, State.OOMKilled true, an oom event before die", async (t) => {
  t.after(() => d.berth(["rm", "-f", "hog"]));
  const since = Math.floor(Date.now() / 1000) - 1;
  const r = d.docker(["run", "--name", "hog", "--memory", "32m", "busybox", "sh", "-c", "x=a; while :; do x=$x$x$x$x$x$x$x$x; done"], { timeout: 60_000 });
  assert.equal(r.code, 137, r.stderr);
  const st = JSON.parse(d.berth(["inspect", "-f", "{{json .State}}", "hog"]).stdout);
  assert.equal(st.OOMKilled, true);
  assert.equal(st.ExitCode, 137);
  assert.equal(st.Status, "exited");
  const ev = d.docker(["events", "--since", String(since), "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", "container=hog", "--format", "{{json .}}"]);
  assert.equal(ev.code, 0, ev.stderr);
  const list = ev.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const actions = list.map((e) => e.Action);
  const oom = actions.indexOf("oom"), die = actions.indexOf("die");
  assert.ok(oom >= 0, `no oom event in ${actions.join(",")}`);
  assert.ok(die > oom, `die must follow oom: ${actions.join(",")}`);
  assert.deepEqual(Object.keys(list[oom].Actor.Attributes).sort(), ["image", "name"]);
  assert.equal(list[die].Actor.Attributes.exitCode, "137");
  // A container that exits on its own is not OOMKilled, and a restart clears the flag.
  const ok = d.berth(["run", "--name", "fine", "--memory", "32m", "busybox", "true"]);
  t.after(() => d.berth(["rm", "-f", "fine"]));
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(d.berth(["inspect", "-f", "{{.State.OOMKilled}}", "fine"]).stdout.trim(), "false");
});

test("--cpus 0.5 holds a busy loop near half a core, measured from the cgroup", async (t) => {
  const run = d.berth(["run", "-d", "--name", "spin", "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.after(() => d.berth(["rm", "-f", "spin"]));
  // Let the loop get going, then measure ~2 s of wall time against the CPU time it was given.
  await until("the loop to use CPU", () => cpuUsageNs(id) > 50e6);
  const a = cpuUsageNs(id), ta = process.hrtime.bigint();
  await until("2 s to pass", () => process.hrtime.bigint() - ta >= 2_000_000_000n, 10_000);
  const b = cpuUsageNs(id), tb = process.hrtime.bigint();
  const cores = (b - a) / Number(tb - ta);
  assert.ok(cores >= 0.3 && cores <= 0.7, `busy loop used ${cores.toFixed(2)} cores under --cpus 0.5`);
});

test("--pids-limit 20 stops a fork bomb: sh cannot fork, the container stays up, ps shows at most 20 processes", async (t) => {
  const run = d.berth(["run", "-d", "--name", "bomb", "--pids-limit", "20", "busybox", "sleep", "300"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.after(() => d.berth(["rm", "-f", "bomb"]));
  const f = cgroupFile(id, "pids", "pids.max", "pids.max");
  assert.ok(f, "no pids cgroup");
  assert.equal(readFileSync(f, "utf8").trim(), "20");
  // dockerd: exit 2, "sh: can't fork: Resource temporarily unavailable".
  const bomb = d.docker(["exec", "bomb", "sh", "-c", "while :; do sleep 300 & done"], { timeout: 60_000 });
  assert.equal(bomb.code, 2, bomb.stderr);
  assert.match(bomb.stderr, /can't fork/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "bomb"]).stdout.trim(), "running");
  const cur = Number(readFileSync(cgroupFile(id, "pids", "pids.current", "pids.current")!, "utf8"));
  assert.ok(cur <= 20, `pids.current ${cur}`);
  const ps = d.docker(["exec", "bomb", "ps"]);
  assert.equal(ps.code, 0, ps.stderr);
  const procs = ps.stdout.trim().split("\n").length - 1;
  assert.ok(procs > 10 && procs <= 20, `ps shows ${procs} processes`);
});

test("--memory-swappiness and --oom-kill-disable reach the memory cgroup; no memory limit is dockerd's warning", async (t) => {
  const run = d.docker(["run", "-d", "--name", "swp", "-m", "64m", "--memory-swappiness", "10", "--oom-kill-disable", "busybox", "sleep", "300"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  t.after(() => d.berth(["rm", "-f", "swp"]));
  const hc = JSON.parse(d.berth(["inspect", "-f", "{{json .HostConfig}}", "swp"]).stdout);
  assert.equal(hc.MemorySwappiness, 10);
  assert.equal(hc.OomKillDisable, true);
  const swappiness = cgroupFile(id, "memory", "memory.swappiness", "memory.swap.max");
  if (swappiness?.endsWith("memory.swappiness")) {
    assert.equal(readFileSync(swappiness, "utf8").trim(), "10");
    assert.match(readFileSync(cgroupFile(id, "memory", "memory.oom_control", "memory.events")!, "utf8"), /oom_kill_disable 1/);
  }
  const w = await json("POST", "/v1.41/containers/create?name=nolimit", { Image: "busybox", Cmd: ["true"], HostConfig: { OomKillDisable: true } });
  t.after(() => d.berth(["rm", "-f", "nolimit"]));
  assert.equal(w.status, 201, JSON.stringify(w.body));
  assert.deepEqual(w.body.Warnings, ["OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."]);
  const bad = await json("POST", "/v1.41/containers/create", { Image: "busybox", Cmd: ["true"], HostConfig: { MemorySwappiness: 101 } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "Invalid value: 101, valid memory swappiness range is 0-100");
});

test("--ulimit, --shm-size, --device with permissions and namespaced --sysctl keys, as dockerd runs them", () => {
  const ul = d.docker(["run", "--rm", "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"]);
  assert.equal(ul.code, 0, ul.stderr);
  assert.equal(ul.stdout, "100\n200\n");
  const shm = d.docker(["run", "--rm", "--shm-size", "64m", "busybox", "df", "-k", "/dev/shm"]);
  assert.equal(shm.code, 0, shm.stderr);
  assert.match(shm.stdout, /shm\s+65536\s+0\s+65536\s+0% \/dev\/shm/);
  // /dev/kmsg (1:11) is outside Docker's default device list: with "r" the device exists, writing fails.
  const dev = d.docker(["run", "--rm", "--device", "/dev/kmsg:/dev/mykmsg:r", "busybox", "sh", "-c", "ls -l /dev/mykmsg; echo x > /dev/mykmsg; echo w=$?"]);
  assert.equal(dev.code, 0, dev.stderr);
  assert.match(dev.stdout, /^c.* 1,\s+11 .*\/dev\/mykmsg\nw=1\n$/);
  assert.match(dev.stderr, /can't create \/dev\/mykmsg: Operation not permitted/);
  const missing = d.docker(["run", "--rm", "--device", "/dev/berth-no-such-device", "busybox", "true"]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /error gathering device information while adding custom device "\/dev\/berth-no-such-device": no such file or directory/);
  for (const [k, v] of [["net.ipv4.ip_forward", "1"], ["kernel.shmmax", "1"], ["fs.mqueue.msg_max", "20"]]) {
    const r = d.docker(["run", "--rm", "--sysctl", `${k}=${v}`, "busybox", "sysctl", k]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${k} = ${v}\n`);
  }
});

test("a host-wide sysctl (vm.swappiness) is created but refused at start with runc's words, as dockerd", async (t) => {
  const c = await json("POST", "/v1.41/containers/create?name=hostwide", { Image: "busybox", Cmd: ["true"], HostConfig: { Sysctls: { "vm.swappiness": "1" } } });
  t.after(() => d.berth(["rm", "-f", "hostwide"]));
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const s = await json("POST", "/v1.41/containers/hostwide/start");
  assert.equal(s.status, 500);
  assert.match(s.body.message, /sysctl "vm\.swappiness" is not in a separate kernel namespace/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "hostwide"]).stdout.trim(), "created");
});
