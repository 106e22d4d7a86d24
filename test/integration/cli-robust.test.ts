/**
 * The CLI as scripts meet it: a daemon that dies mid-command gives one line of Docker's error and a non-zero
 * status (never a stack trace); streamed output into a slow pipe keeps berth's memory bounded; `update`,
 * the new create/network flags and their errors answer as the docker CLI and dockerd do; bin/berth starts
 * node without NODE_EXTRA_CA_CERTS and hands the value back to the daemon it starts.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync, mkdirSync, openSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Daemon, BERTH, DOCKER, runSync, type Result, until } from "./harness.js";

const d = new Daemon();
let work: string;
const dockerd = (args: string[]) => runSync(DOCKER, args, { env: { DOCKER_HOST: "unix:///var/run/docker.sock", DOCKER_CONFIG: join(work, "dc") } });
const haveDockerd = () => existsSync("/var/run/docker.sock") && dockerd(["version"]).code === 0;
const dockerdMade: string[] = [];

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-robust-"));
  await d.start();
  await d.bootstrap();
});
after(async () => {
  if (dockerdMade.length) dockerd(["rm", "-f", ...dockerdMade]);
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

function ok(r: Result, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}


interface Proc { p: ChildProcess; out: string; err: string; done: Promise<number> }
function start(args: string[], env: Record<string, string> = {}): Proc {
  const p = spawn(process.execPath, [BERTH, "-H", d.host, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const r: Proc = { p, out: "", err: "", done: undefined as unknown as Promise<number> };
  p.stdout!.on("data", (x) => { r.out += x; });
  p.stderr!.on("data", (x) => { r.err += x; });
  r.done = new Promise((res) => p.on("close", (c, sig) => res(c ?? (sig ? 128 : -1))));
  return r;
}

function oneLine(what: string, r: Proc, code: number): void {
  assert.notEqual(code, 0, `${what} exited 0 (${r.err})`);
  const lines = r.err.split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `${what}: stderr is not one line:\n${r.err}`);
  assert.doesNotMatch(r.err, /\n\s+at |node:internal|TypeError|ReferenceError/, `${what}: a stack trace`);
}

test("a daemon killed mid-command: logs -f, run, attach, events and exec end with one line and a non-zero status", async () => {
  const id = ok(d.berth(["run", "-d", "--name", "talker", "busybox", "sh", "-c", "while :; do echo hi; sleep 0.2; done"]), "run -d");
  const logs = start(["logs", "-f", id]);
  const attach = start(["attach", "--no-stdin", id]);
  const run = start(["run", "--name", "sleeper", "busybox", "sh", "-c", "echo up; sleep 60"]);
  const events = start(["events"]);
  const exec = start(["exec", id, "sh", "-c", "echo in; sleep 60"]);
  await until("logs -f, attach, run and exec to stream", () => logs.out.includes("hi") && attach.out.includes("hi") && run.out.includes("up") && exec.out.includes("in"));
  await d.crash();
  const codes = await Promise.all([logs.done, attach.done, run.done, events.done, exec.done]);
  oneLine("logs -f", logs, codes[0]);
  assert.match(logs.err, /^unexpected EOF\n$/);
  oneLine("attach", attach, codes[1]);
  oneLine("run", run, codes[2]);
  assert.equal(codes[2], 125, "run cannot learn the exit status: docker's 125");
  assert.match(run.err, /^error waiting for container: /);
  oneLine("events", events, codes[3]);
  oneLine("exec", exec, codes[4]);
  // With no daemon at all: docker's "Cannot connect" line.
  const ps = d.berth(["ps"]);
  assert.equal(ps.code, 1);
  assert.match(ps.stderr, /^Cannot connect to the berth daemon at unix:\/\/.*\. Is the daemon running\?\n$/);
  // Containers survive the crash; the restarted daemon adopts them and they are removed.
  await d.start();
  ok(d.berth(["rm", "-f", "talker", "sleeper"]), "rm -f");
});

function vmRssKb(pid: number): number {
  try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0); } catch { return 0; }
}

test("save into a slow pipe keeps berth's memory bounded and the tar whole", async (t) => {
  // An image with a 160 MiB layer of random bytes (compression cannot shrink it).
  const root = join(work, "big");
  mkdirSync(root);
  const fd = openSync(join(root, "blob.bin"), "w");
  for (let i = 0; i < 160; i++) writeSync(fd, randomBytes(1 << 20));
  closeSync(fd);
  assert.equal(spawnSync("tar", ["-C", root, "-cf", join(work, "big.tar"), "."]).status, 0);
  rmSync(root, { recursive: true });
  ok(d.berth(["import", join(work, "big.tar"), "bigimage:1"], { timeout: 120_000 }), "import");
  rmSync(join(work, "big.tar"));

  const save = spawn(process.execPath, [BERTH, "-H", d.host, "save", "bigimage:1"], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  save.stderr!.on("data", (x) => { err += x; });
  const tar = spawn("tar", ["-tvf", "-"], { stdio: ["pipe", "pipe", "pipe"] });
  let listing = "";
  tar.stdout!.on("data", (x) => { listing += x; });
  let maxRss = 0, bytes = 0, sinceNap = 0;
  const sampler = setInterval(() => { maxRss = Math.max(maxRss, vmRssKb(save.pid!)); }, 20);
  // The reader's pace: 4 MiB, then a 100 ms pause (≈ 40 MiB/s, slower than the daemon sends).
  save.stdout!.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    sinceNap += chunk.length;
    tar.stdin!.write(chunk);
    if (sinceNap >= 4 << 20) { sinceNap = 0; save.stdout!.pause(); setTimeout(() => save.stdout!.resume(), 100); }
  });
  const code = await new Promise<number>((res) => save.on("close", (c) => res(c ?? -1)));
  clearInterval(sampler);
  tar.stdin!.end();
  const tarCode = await new Promise<number>((res) => tar.on("close", (c) => res(c ?? -1)));
  assert.equal(code, 0, err);
  assert.equal(tarCode, 0, "the tar is valid");
  assert.match(listing, /manifest\.json/);
  assert.ok(bytes > 160 << 20, `${bytes} bytes`);
  // Node's own footprint is ~50 MB; a save that buffered its output would hold the whole 160 MiB.
  t.diagnostic(`peak RSS ${Math.round(maxRss / 1024)} MB`);
  assert.ok(maxRss > 0 && maxRss < 150 * 1024, `berth save peaked at ${Math.round(maxRss / 1024)} MB`);
  ok(d.berth(["rmi", "bigimage:1"]), "rmi");
});

test("update: Docker's flags on several containers, each name printed, inspect shows the new values", async () => {
  ok(d.berth(["run", "-d", "--name", "up1", "busybox", "sleep", "600"]), "run up1");
  ok(d.berth(["run", "-d", "--name", "up2", "busybox", "sleep", "600"]), "run up2");
  try {
    const none = d.berth(["update", "up1"]);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, "you must provide one or more flags when using this command\n");
    const r = d.berth(["update", "--cpus", "0.5", "--cpu-shares", "512", "-m", "64m", "--memory-reservation", "32m", "--memory-swap", "128m", "--pids-limit", "50", "--cpuset-cpus", "0", "--restart", "on-failure:3", "up1", "up2"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "up1\nup2\n");
    for (const n of ["up1", "up2"]) {
      const v = ok(d.berth(["inspect", "-f", "{{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.CpusetCpus}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", n]), "inspect");
      assert.equal(v, `500000000 512 ${64 << 20} ${32 << 20} ${128 << 20} 50 0 on-failure:3`);
    }
    // A missing container: the others are updated and printed, its error comes after, exit 1 (as docker).
    const some = d.berth(["update", "--pids-limit", "60", "up1", "nope-xyz", "up2"]);
    assert.equal(some.code, 1);
    assert.equal(some.stdout, "up1\nup2\n");
    assert.equal(some.stderr, "Error response from daemon: No such container: nope-xyz\n");
    assert.equal(ok(d.berth(["inspect", "-f", "{{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}", "up2"]), "inspect"), "60 500000000", "only the flags given change");
  } finally {
    d.berth(["rm", "-f", "up1", "up2"]);
  }
});

test("run/create flags reach HostConfig as with dockerd (pid, uts, ipc, group-add, device-cgroup-rule, cpusets, log, isolation, volumes-from, link)", { skip: !haveDockerd() && "no dockerd here" }, async () => {
  // (The docker CLI's {{json}} of an object sorts its keys; berth's keeps them in order: print the parts.)
  const fmt = "{{.HostConfig.PidMode}}|{{.HostConfig.UTSMode}}|{{.HostConfig.IpcMode}}|{{json .HostConfig.GroupAdd}}|{{json .HostConfig.DeviceCgroupRules}}|{{.HostConfig.CpusetCpus}}|{{.HostConfig.CpusetMems}}|{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}|{{.HostConfig.Isolation}}|{{json .HostConfig.VolumesFrom}}|{{json .HostConfig.Links}}|{{.HostConfig.CpuPeriod}}|{{.HostConfig.CpuQuota}}|{{.HostConfig.MemoryReservation}}";
  const tag = `robust${process.pid}`;
  const flags = (src: string) => ["--pid", "host", "--uts", "host", "--ipc", "shareable", "--group-add", "audio", "--group-add", "1234", "--device-cgroup-rule", "c 1:3 mr",
    "--cpuset-cpus", "0", "--cpuset-mems", "0", "--log-driver", "json-file", "--log-opt", "max-size=10m", "--isolation", "default", "--volumes-from", src, "--link", `${src}:db`,
    "--cpu-period", "100000", "--cpu-quota", "50000", "--memory-reservation", "16m"];
  // dockerd: the same containers, made and removed by this test only.
  const dsrc = `${tag}-src`, dctr = `${tag}-ctr`;
  dockerdMade.push(dsrc, dctr);
  ok(dockerd(["run", "-d", "--name", dsrc, "-v", "/data", "busybox", "sleep", "600"]), "dockerd run src");
  ok(dockerd(["create", "--name", dctr, ...flags(dsrc), "busybox", "true"]), "dockerd create");
  const want = ok(dockerd(["inspect", "-f", fmt, dctr]), "dockerd inspect").replaceAll(`/${dsrc}:/${dctr}/db`, "/SRC:/CTR/db").replaceAll(dsrc, "SRC");
  const bsrc = `${tag}-src`, bctr = `${tag}-ctr`;
  ok(d.berth(["run", "-d", "--name", bsrc, "-v", "/data", "busybox", "sleep", "600"]), "berth run src");
  ok(d.berth(["create", "--name", bctr, ...flags(bsrc), "busybox", "true"]), "berth create");
  const got = ok(d.berth(["inspect", "-f", fmt, bctr]), "berth inspect").replaceAll(`/${bsrc}:/${bctr}/db`, "/SRC:/CTR/db").replaceAll(bsrc, "SRC");
  assert.equal(got, want);
  // --storage-opt on overlay without xfs quotas: dockerd's error, and docker create's exit status 1.
  const bs = d.berth(["create", "--storage-opt", "size=1G", "busybox"]);
  const ds = dockerd(["create", "--storage-opt", "size=1G", "busybox"]);
  assert.equal(ds.code, 1);
  assert.equal(bs.code, ds.code);
  assert.equal(bs.stderr, ds.stderr);
  ok(d.berth(["rm", "-f", bsrc, bctr]), "rm");
});

test("--mac-address and --ip6/--ip/--alias on run and network connect reach the endpoint", async () => {
  const net = `rb${process.pid % 10000}`;
  ok(d.berth(["network", "create", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.1", "--ip-range", "10.213.7.128/25", "--aux-address", "reserved=10.213.7.2", "-o", `com.docker.network.bridge.name=br-${net}`, net]), "network create");
  try {
    const [ipam, bridge] = ok(d.berth(["network", "inspect", "-f", "{{json .IPAM.Config}}|{{index .Options \"com.docker.network.bridge.name\"}}", net]), "network inspect").split("|");
    assert.deepEqual(JSON.parse(ipam), [{ Subnet: "10.213.7.0/24", IPRange: "10.213.7.128/25", Gateway: "10.213.7.1", AuxiliaryAddresses: { reserved: "10.213.7.2" } }]);
    assert.equal(bridge, `br-${net}`);
    ok(d.berth(["run", "-d", "--name", "mac1", "--network", net, "--mac-address", "02:42:ac:11:00:99", "--ip", "10.213.7.150", "busybox", "sleep", "600"]), "run --mac-address");
    assert.equal(ok(d.berth(["inspect", "-f", `{{(index .NetworkSettings.Networks "${net}").MacAddress}} {{(index .NetworkSettings.Networks "${net}").IPAddress}}`, "mac1"]), "inspect"), "02:42:ac:11:00:99 10.213.7.150");
    ok(d.berth(["run", "-d", "--name", "late", "busybox", "sleep", "600"]), "run late");
    ok(d.berth(["network", "connect", "--ip", "10.213.7.160", "--alias", "lateone", "--link", "mac1:m", net, "late"]), "network connect");
    const ep = ok(d.berth(["inspect", "-f", `{{with index .NetworkSettings.Networks "${net}"}}{{.IPAddress}} {{json .Aliases}} {{json .Links}}{{end}}`, "late"]), "inspect late");
    assert.match(ep, /^10\.213\.7\.160 \[.*"lateone".*\] \["mac1:m"\]$/);
  } finally {
    d.berth(["rm", "-f", "mac1", "late"]);
    d.berth(["network", "rm", net]);
  }
});

test("network create's subnet checks are the docker CLI's, word for word", () => {
  const cases = [
    ["--subnet", "10.214.0.0/16", "--gateway", "10.215.0.1"],
    ["--subnet", "10.214.0.0/16", "--ip-range", "10.215.0.0/24"],
    ["--subnet", "10.214.0.0/16", "--aux-address", "a=10.215.0.3"],
    ["--subnet", "10.214.0.0/16", "--subnet", "10.214.1.0/24"],
    ["--gateway", "10.214.0.1"],
    ["--subnet", "10.214.0.0/16", "--gateway", "10.214.0.1", "--gateway", "10.214.0.2", "--subnet", "fd00:214::/64"],
  ];
  for (const c of cases) {
    const b = d.berth(["network", "create", ...c, "nonet-xyz"]);
    // Checked by the CLI before any request: the docker CLI answers the same against any daemon.
    const k = runSync(DOCKER, ["network", "create", ...c, "nonet-xyz"], { env: { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") } });
    assert.equal(k.code, 1, `${c.join(" ")}: ${k.stderr}`);
    assert.equal(b.code, k.code, c.join(" "));
    assert.equal(b.stderr, k.stderr, c.join(" "));
  }
  assert.equal(d.berth(["network", "ls", "-q", "-f", "name=nonet-xyz"]).stdout, "");
});

test("bin/berth starts node without NODE_EXTRA_CA_CERTS; through node it keeps it", () => {
  // Node warns at start when the file cannot be read: the warning shows which process loaded the variable.
  const bad = join(work, "no-such-ca.pem");
  const direct = runSync(BERTH, ["version", "--client"], { env: { NODE_EXTRA_CA_CERTS: bad } });
  assert.equal(direct.code, 0, direct.stderr);
  assert.doesNotMatch(direct.stderr, /extra certs/i);
  const viaNode = runSync(process.execPath, [BERTH, "version", "--client"], { env: { NODE_EXTRA_CA_CERTS: bad } });
  assert.match(viaNode.stderr, /Ignoring extra certs/);
});

test("a command that needs no daemon starts none; an auto-started daemon gets the user's NODE_EXTRA_CA_CERTS back", { skip: (existsSync("/run/berth/berth.sock") || process.getuid?.() !== 0) && "a daemon owns the default socket" }, async () => {
  // A stand-in for berthd (BERTH_DAEMON): records its environment, answers /_ping and /containers/json.
  const fake = join(work, "fake-berthd.cjs");
  const envFile = join(work, "fake-env.json");
  writeFileSync(fake, `
    const net = require("node:net"), fs = require("node:fs");
    fs.writeFileSync(${JSON.stringify(envFile)}, JSON.stringify({ ca: process.env.NODE_EXTRA_CA_CERTS ?? null, saved: process.env.BERTH_NODE_EXTRA_CA_CERTS ?? null }));
    try { fs.unlinkSync("/run/berth/berth.sock"); } catch {}
    const quit = () => { srv.close(); try { fs.unlinkSync("/run/berth/berth.sock"); } catch {} process.exit(0); };
    const srv = net.createServer((s) => s.on("data", (d) => {
      const ping = /GET \\/_ping/.test(d), body = ping ? "OK" : "[]";
      // After the command's own request (ps), the stand-in is done.
      s.end("HTTP/1.1 200 OK\\r\\nApi-Version: 1.47\\r\\nContent-Type: " + (ping ? "text/plain" : "application/json") + "\\r\\nContent-Length: " + body.length + "\\r\\n\\r\\n" + body, () => { if (!ping) quit(); });
    })).listen("/run/berth/berth.sock");
    setTimeout(quit, 30000);
  `);
  const madeDir = !existsSync("/run/berth");
  const ca = "/etc/ssl/certs/ca-certificates.crt";
  try {
    const env: Record<string, string> = { BERTH_DAEMON: fake, NODE_EXTRA_CA_CERTS: ca };
    // Commands that need no daemon start none (the stand-in would write its file when started).
    const clean = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([k]) => k !== "DOCKER_HOST" && k !== "BERTH_HOST")) as Record<string, string>;
    for (const args of [["compose", "--help"], ["compose", "up", "--help"], ["kube", "play", "--help"], ["pod", "--help"], ["run", "--help"], ["version", "--client"], ["registry", "--help"]]) {
      const h = spawnSync(BERTH, args, { encoding: "utf8", env: clean, timeout: 30_000 });
      assert.equal(h.status, 0, `${args.join(" ")}: ${h.stderr}`);
      assert.ok(!existsSync(envFile), `berth ${args.join(" ")} started a daemon`);
    }
    const r = spawnSync(BERTH, ["ps", "-q"], { encoding: "utf8", env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([k]) => k !== "DOCKER_HOST" && k !== "BERTH_HOST")) as Record<string, string>, timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(readFileSync(envFile, "utf8")) as { ca: string | null; saved: string | null };
    assert.deepEqual(seen, { ca, saved: null });
  } finally {
    await until("the stand-in daemon to go", () => !existsSync("/run/berth/berth.sock"), 15_000).catch(() => rmSync("/run/berth/berth.sock", { force: true }));
    rmSync("/run/berth/berthd.log", { force: true });
    if (madeDir) rmSync("/run/berth", { recursive: true, force: true });
  }
});
