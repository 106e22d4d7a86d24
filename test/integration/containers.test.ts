/**
 * Containers end to end: a real berthd, real conmon and runc, driven by
 * bin/berth and by the real docker CLI.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { Daemon, api, sleep, runSync, BERTH, DOCKER } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
});

test("run prints output, keeps stdout and stderr apart, and passes the exit code", () => {
  const r = d.berth(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  assert.equal(r.code, 3);
});

test("the container is isolated: own hostname (short ID), own pid 1, ps sees only itself", (t) => {
  t.after(() => d.berth(["rm", "-f", "iso"]));
  // ps alone (no pipeline running beside it): it must see exactly the shell and itself.
  const r = d.berth(["run", "--name", "iso", "busybox", "sh", "-c", "hostname; echo pid=$$; ps -o pid,comm > /tmp/ps.txt; grep -vc PID /tmp/ps.txt"]);
  assert.equal(r.code, 0, r.stderr);
  const [host, pid, count] = r.stdout.trim().split("\n");
  const id = d.berth(["inspect", "--format", "{{.Id}}", "iso"]).stdout.trim();
  assert.equal(host, id.slice(0, 12));
  assert.equal(pid, "pid=1");
  assert.equal(count.trim(), "2"); // sh and ps
});

test("image defaults, env, workdir, user and entrypoint merge as Docker does", () => {
  const r = d.berth(["run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "busybox", "sh", "-c", "echo $FOO $PWD $(id -u) $PATH"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "bar /tmp 65534 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  const e = d.berth(["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]);
  assert.equal(e.stdout, "a b\n");
  const h = d.berth(["run", "--rm", "--hostname", "box1", "busybox", "cat", "/etc/hostname"]);
  assert.equal(h.stdout, "box1\n");
});

test("run -d, ps, logs, exec, stop, rm with bin/berth", async () => {
  const run = d.berth(["run", "-d", "--name", "web", "--label", "tier=front", "busybox", "sh", "-c", "echo started; echo oops >&2; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);

  const ps = d.berth(["ps"]);
  assert.match(ps.stdout, /CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES/);
  assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}\\s+busybox\\s+.*Up .*web`));
  assert.equal(d.berth(["ps", "-q"]).stdout.trim(), id.slice(0, 12));
  assert.equal(d.berth(["ps", "-q", "--no-trunc", "--filter", "label=tier=front"]).stdout.trim(), id);
  assert.equal(d.berth(["ps", "-q", "--filter", "label=tier=back"]).stdout.trim(), "");
  assert.equal(d.berth(["ps", "--format", "{{.ID}} {{.Names}}"]).stdout.trim(), `${id.slice(0, 12)} web`);

  await sleep(300);
  const logs = d.berth(["logs", "web"]);
  assert.equal(logs.stdout, "started\n");
  assert.equal(logs.stderr, "oops\n");
  assert.match(d.berth(["logs", "-t", "web"]).stdout, /^\d{4}-\d\d-\d\dT[\d:.]+Z started\n$/);

  const ex = d.berth(["exec", "-e", "X=1", "-w", "/etc", "web", "sh", "-c", "echo $X $PWD; exit 4"]);
  assert.equal(ex.stdout, "1 /etc\n");
  assert.equal(ex.code, 4);
  assert.equal(d.berth(["exec", "-u", "nobody", "web", "id", "-u"]).stdout.trim(), "65534");
  assert.equal(d.berth(["exec", "-i", "web", "cat"], { input: "piped\n" }).stdout, "piped\n");
  assert.equal(d.berth(["exec", "web", "nonexistent-cmd"]).code, 126); // dockerd: 126 (the process could not be started)

  const stop = d.berth(["stop", "web"]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout.trim(), "web");
  assert.match(d.berth(["logs", "web"]).stdout, /bye/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"]).stdout.trim(), "exited 0");
  assert.match(d.berth(["ps", "-a"]).stdout, /Exited \(0\) .* ago\s+web/);
  assert.equal(d.berth(["rm", "web"]).code, 0);
  assert.equal(d.berth(["ps", "-aq"]).stdout.trim(), "");
});

test("the docker CLI drives berthd: run, -d, ps, logs, exec, stop, rm", async () => {
  const r = d.docker(["run", "--rm", "busybox", "sh", "-c", "echo hi; echo warn >&2; exit 2"]);
  assert.equal(r.stdout, "hi\n");
  assert.equal(r.stderr, "warn\n");
  assert.equal(r.code, 2);
  const run = d.docker(["run", "-d", "--name", "dk", "busybox", "sh", "-c", "echo ready; exec sleep 1000"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  assert.match(d.docker(["ps"]).stdout, new RegExp(`${id.slice(0, 12)}\\s+busybox\\s+"sh -c 'echo ready.*Up .*dk`));
  await sleep(200);
  assert.equal(d.docker(["logs", "dk"]).stdout, "ready\n");
  const ex = d.docker(["exec", "dk", "sh", "-c", "echo in-$HOSTNAME"]);
  assert.equal(ex.stdout.trim(), `in-${id.slice(0, 12)}`);
  assert.equal(d.docker(["exec", "dk", "sh", "-c", "exit 5"]).code, 5);
  assert.equal(d.docker(["exec", "-i", "dk", "cat"], { input: "via-docker\n" }).stdout, "via-docker\n");
  const inspect = JSON.parse(d.docker(["inspect", "dk"]).stdout) as { State: { Running: boolean }; Name: string }[];
  assert.equal(inspect[0].State.Running, true);
  assert.equal(inspect[0].Name, "/dk");
  const t0 = Date.now();
  assert.equal(d.docker(["stop", "-t", "1", "dk"]).code, 0); // sleep ignores TERM as pid 1: killed after 1 s
  assert.ok(Date.now() - t0 < 8000);
  assert.equal(d.docker(["inspect", "-f", "{{.State.ExitCode}}", "dk"]).stdout.trim(), "137");
  assert.equal(d.docker(["rm", "dk"]).stdout.trim(), "dk");
  assert.equal(d.docker(["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.trim(), "busybox:latest");
  assert.equal(d.docker(["version", "--format", "{{.Server.Os}}"]).stdout.trim(), "linux");
});

test("cgroup limits, capabilities, --init and --privileged", () => {
  const mem = d.berth(["run", "--rm", "-m", "64m", "busybox", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]);
  assert.equal(mem.stdout.trim(), "67108864", mem.stderr);
  const pids = d.berth(["run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max"]);
  assert.equal(pids.stdout.trim(), "20");
  const caps = (args: string[]) => d.berth(["run", "--rm", ...args, "busybox", "sh", "-c", "grep CapEff /proc/1/status"]).stdout.trim().split(/\s+/)[1];
  assert.equal(caps([]), "00000000a80425fb", "Docker's 14 default capabilities");
  assert.equal(d.berth(["run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "nobody", "/tmp"]).code, 1);
  assert.equal(d.berth(["run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "ip", "link", "set", "lo", "down"]).code, 0);
  assert.notEqual(d.berth(["run", "--rm", "busybox", "ip", "link", "set", "lo", "down"]).code, 0);
  assert.ok(BigInt("0x" + caps(["--privileged"])) > 0xa80425fbn, "privileged gets every capability berthd has");
  // --privileged sees the host's devices (a block device is the telling one); a plain container does not.
  const block = readdirSync("/dev").find((n) => { try { return statSync(`/dev/${n}`).isBlockDevice(); } catch { return false; } });
  if (block) {
    assert.equal(d.berth(["run", "--rm", "--privileged", "busybox", "sh", "-c", `test -b /dev/${block} && echo yes`]).stdout, "yes\n");
    assert.equal(d.berth(["run", "--rm", "busybox", "sh", "-c", `test -e /dev/${block} && echo yes || echo no`]).stdout, "no\n");
  }
  const init = d.berth(["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
  assert.match(init.stdout, /^\s+1 docker-init$/m);
});

test("stats: CPU, memory against its limit, pids (berth and docker CLI)", () => {
  d.berth(["run", "-d", "--name", "busy", "-m", "100m", "busybox", "sh", "-c", "while true; do :; done"]);
  for (const r of [d.berth(["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy"]), d.docker(["stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy"])]) {
    assert.equal(r.code, 0, r.stderr);
    const [name, cpu, used, , limit, pids] = r.stdout.trim().split(" ");
    assert.equal(name, "busy");
    assert.ok(parseFloat(cpu) > 10, `a busy loop uses CPU (an idle container shows 0%; a loaded machine gives it less than a whole one): ${cpu}`);
    assert.match(used, /^\d+(\.\d+)?[KM]iB$/);
    assert.equal(limit, "100MiB");
    assert.equal(pids, "1");
  }
  d.berth(["rm", "-f", "busy"]);
});

test("restart policies: on-failure retries up to its count; always restarts until stopped", async () => {
  d.berth(["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3"]);
  for (let i = 0; i < 50 && d.berth(["inspect", "-f", "{{.RestartCount}}", "flaky"]).stdout.trim() !== "2"; i++) await sleep(100);
  await sleep(500);
  assert.equal(d.berth(["inspect", "-f", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "flaky"]).stdout.trim(), "2 exited 3");
  d.berth(["run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2"]);
  for (let i = 0; i < 50 && Number(d.berth(["inspect", "-f", "{{.RestartCount}}", "always"]).stdout.trim()) < 2; i++) await sleep(100);
  assert.ok(Number(d.berth(["inspect", "-f", "{{.RestartCount}}", "always"]).stdout.trim()) >= 2);
  assert.equal(d.berth(["stop", "always"]).code, 0);
  await sleep(600);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Running}}", "always"]).stdout.trim(), "false", "a stopped container stays stopped");
  const both = d.berth(["run", "--rm", "--restart", "always", "busybox", "true"]);
  assert.equal(both.code, 125);
  assert.match(both.stderr, /Conflicting options: cannot specify both --restart and --rm/);
  d.berth(["rm", "-f", "flaky", "always"]);
});

test("-it gives a terminal (through a pty)", () => {
  for (const cli of ["berth", "docker"]) {
    const cmd = cli === "berth" ? `${process.execPath} ${BERTH} -H ${d.host}` : `DOCKER_HOST=${d.host} DOCKER_CONFIG=${d.root}/docker-config ${DOCKER}`;
    const r = spawnSync("script", ["-qfec", `${cmd} run --rm -it busybox sh -c 'tty; stty size; read x; echo got-$x; exit 7'`, "/dev/null"], {
      input: "hello\n", encoding: "utf8", timeout: 30_000,
    });
    assert.match(r.stdout, /\/dev\/pts\/0/, `${cli}: ${r.stdout} ${r.stderr}`);
    assert.match(r.stdout, /got-hello/, `${cli}: ${r.stdout}`);
    assert.equal(r.status, 7, `${cli}: ${r.stdout}`);
  }
});

test("-i pipes stdin into the container and closes it at EOF", () => {
  const r = d.berth(["run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo done"], { input: "line1\nline2\n" });
  assert.equal(r.stdout, "line1\nline2\ndone\n");
  const k = d.docker(["run", "--rm", "-i", "busybox", "wc", "-l"], { input: "a\nb\nc\n" });
  assert.equal(k.stdout.trim(), "3");
});

test("create, start -a, wait, restart, kill, attach", async () => {
  const id = d.berth(["create", "--name", "c1", "busybox", "sh", "-c", "echo run; exit 9"]).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "c1"]).stdout.trim(), "created");
  const s = d.berth(["start", "-a", "c1"]);
  assert.equal(s.stdout, "run\n");
  assert.equal(s.code, 9);
  assert.equal(d.berth(["wait", "c1"]).stdout.trim(), "9");
  d.berth(["rm", "c1"]);

  d.berth(["run", "-d", "--name", "k1", "busybox", "sleep", "1000"]);
  const w = d.berthAsync(["wait", "k1"]);
  await sleep(200);
  assert.equal(d.berth(["kill", "-s", "TERM", "k1"]).code, 0);
  // sleep as pid 1 ignores TERM: still running; KILL stops it
  await sleep(300);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Running}}", "k1"]).stdout.trim(), "true");
  d.berth(["kill", "k1"]);
  assert.equal((await w).stdout.trim(), "137");
  const rs = d.berth(["restart", "k1"]);
  assert.equal(rs.code, 0, rs.stderr);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Running}}", "k1"]).stdout.trim(), "true");
  d.berth(["rm", "-f", "k1"]);

  d.berth(["run", "-d", "--name", "a1", "busybox", "sh", "-c", "sleep 0.5; echo late"]);
  const at = d.berth(["attach", "a1"]);
  assert.equal(at.stdout, "late\n");
  d.berth(["rm", "a1"]);
});

test("logs --tail, --since and -f", async () => {
  d.berth(["run", "-d", "--name", "lg", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo l$i; done; sleep 1; echo l6"]);
  await sleep(400);
  assert.equal(d.berth(["logs", "--tail", "2", "lg"]).stdout, "l4\nl5\n");
  assert.equal(d.berth(["logs", "--since", "1h", "lg"]).stdout.split("\n")[0], "l1");
  const f = d.berth(["logs", "-f", "lg"]);
  assert.equal(f.stdout, "l1\nl2\nl3\nl4\nl5\nl6\n");
  d.berth(["rm", "lg"]);
});

test("errors and exit codes are Docker's, and bad input changes nothing", async () => {
  const before = d.berth(["ps", "-aq"]).stdout;
  // A registry on loopback that refuses connections: the pull fails without leaving the machine.
  const nf = d.berth(["run", "127.0.0.1:59999/nosuchimage"]);
  assert.equal(nf.code, 125);
  assert.match(nf.stderr, /Unable to find image '127.0.0.1:59999\/nosuchimage:latest' locally/);
  assert.match(nf.stderr, /Error response from daemon: .*127\.0\.0\.1:59999/);
  const never = d.berth(["run", "--pull", "never", "nosuchimage"]);
  assert.equal(never.code, 125);
  assert.match(never.stderr, /No such image: nosuchimage:latest/);
  const cmd = d.berth(["run", "--rm", "busybox", "no-such-command"]);
  assert.equal(cmd.code, 127, cmd.stderr);
  assert.match(cmd.stderr, /no-such-command/);
  const dk = d.docker(["run", "--rm", "busybox", "no-such-command"]);
  assert.equal(dk.code, 127, dk.stderr);
  const flag = d.berth(["run", "--no-such-flag", "busybox"]);
  assert.equal(flag.code, 125);
  assert.match(flag.stderr, /unknown flag: --no-such-flag/);

  d.berth(["create", "--name", "dup", "busybox", "true"]);
  const dup = d.berth(["create", "--name", "dup", "busybox", "true"]);
  assert.equal(dup.code, 1); // docker create: "Error response from daemon: Conflict...", exit 1 (dockerd 20.10 + docker CLI 28)
  assert.match(dup.stderr, /Conflict\. The container name "\/dup" is already in use/);
  d.berth(["rm", "dup"]);

  const bad = await api(d.sock, "POST", "/v1.47/containers/create", "{not json");
  assert.equal(bad.status, 400);
  assert.match(JSON.parse(bad.body).message, /invalid JSON/);
  const noimg = await api(d.sock, "POST", "/v1.47/containers/create", JSON.stringify({ Image: "ghost" }));
  assert.equal(noimg.status, 404);
  assert.match(JSON.parse(noimg.body).message, /No such image: ghost/);
  const nocont = await api(d.sock, "POST", "/v1.47/containers/nope/start");
  assert.equal(nocont.status, 404);
  assert.equal(JSON.parse(nocont.body).message, "No such container: nope");

  d.berth(["run", "--name", "done1", "busybox", "true"]);
  const st = await api(d.sock, "POST", "/v1.47/containers/done1/stop");
  assert.equal(st.status, 304);
  assert.equal(d.berth(["stop", "done1"]).code, 0);
  const kl = d.berth(["kill", "done1"]);
  assert.notEqual(kl.code, 0);
  assert.match(kl.stderr, /is not running/);
  d.berth(["rm", "done1"]);
  assert.equal(d.berth(["ps", "-aq"]).stdout, before);
  const run1 = d.berth(["run", "-d", "--name", "busy1", "busybox", "sleep", "100"]);
  const rm = d.berth(["rm", "busy1"]);
  assert.notEqual(rm.code, 0);
  assert.match(rm.stderr, /container is running: stop the container before removing or force remove/);
  assert.equal(d.berth(["rm", "-f", run1.stdout.trim()]).code, 0);
});

test("version negotiation and version-prefixed paths", async () => {
  const p = await api(d.sock, "GET", "/_ping");
  assert.equal(p.status, 200);
  assert.equal(p.body, "OK");
  assert.ok(p.headers["api-version"]);
  assert.equal((await api(d.sock, "GET", "/v1.24/containers/json")).status, 200);
  assert.equal((await api(d.sock, "GET", "/v9.99/containers/json")).status, 400);
  const v = JSON.parse((await api(d.sock, "GET", "/version")).body);
  assert.equal(v.MinAPIVersion, "1.24");
});

test("50 concurrent run -d all succeed with distinct names", async () => {
  const runs = await Promise.all(Array.from({ length: 50 }, (_, i) => d.berthAsync(["run", "-d", "--name", `par${i}`, "busybox", "sleep", "1000"])));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
  const ids = new Set(runs.map((r) => r.stdout.trim()));
  assert.equal(ids.size, 50);
  const names = d.berth(["ps", "--format", "{{.Names}}"]).stdout.trim().split("\n");
  assert.equal(names.filter((n) => n.startsWith("par")).length, 50);
  const rm = d.berth(["rm", "-f", ...[...ids]], { timeout: 120_000 });
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(d.berth(["ps", "-aq"]).stdout.trim(), "");
});

test("a slow container does not block requests about others", async () => {
  d.berth(["run", "-d", "--name", "slow", "busybox", "sh", "-c", "trap '' TERM; sleep 1000"]);
  const stopping = d.berthAsync(["stop", "-t", "3", "slow"]);
  await sleep(200);
  const t0 = Date.now();
  const ps = d.berth(["ps", "-a"]);
  const r = d.berth(["run", "--rm", "busybox", "true"]);
  assert.equal(ps.code, 0);
  assert.equal(r.code, 0);
  assert.ok(Date.now() - t0 < 2500, "ps and run answered while a stop was waiting");
  await stopping;
  d.berth(["rm", "slow"]);
});

test("containers survive kill -9 of berthd; exits while it was down are recorded", async () => {
  d.berth(["run", "-d", "--name", "keep", "busybox", "sh", "-c", "echo alive; exec sleep 1000"]);
  d.berth(["run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 42"]);
  const pid = d.berth(["inspect", "-f", "{{.State.Pid}}", "keep"]).stdout.trim();
  await d.crash();
  await sleep(1500); // "short" exits while no daemon runs
  assert.equal(runSync("kill", ["-0", pid]).code, 0, "container process still running");
  await d.start();
  assert.equal(d.berth(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", "keep"]).stdout.trim(), `true ${pid}`);
  await sleep(200);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short"]).stdout.trim(), "exited 42");
  assert.equal(d.berth(["exec", "keep", "echo", "still-here"]).stdout, "still-here\n");
  assert.equal(d.berth(["logs", "keep"]).stdout, "alive\n");
  // A clean daemon stop also leaves it running
  await d.stopDaemon();
  await d.start();
  assert.equal(d.berth(["inspect", "-f", "{{.State.Running}}", "keep"]).stdout.trim(), "true");
  assert.equal(d.berth(["stop", "-t", "0", "keep"]).code, 0);
  assert.equal(d.berth(["rm", "keep", "short"]).code, 0);
});

test("health checks: the test runs in the container; failures in a row make it unhealthy, a success healthy; ps shows it", async () => {
  const status = (n: string) => d.berth(["inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", n]).stdout.trim();
  const until = async (n: string, want: string) => {
    for (let i = 0; i < 100 && status(n) !== want; i++) await sleep(100);
    return status(n);
  };
  assert.equal(d.berth(["run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok", "--health-interval", "200ms", "--health-retries", "2", "busybox", "sleep", "60"]).code, 0);
  assert.equal(status("hc"), "starting");
  assert.equal(await until("hc", "unhealthy"), "unhealthy");
  const health = JSON.parse(d.berth(["inspect", "-f", "{{json .State.Health}}", "hc"]).stdout);
  assert.ok(health.FailingStreak >= 2 && health.Log.at(-1).ExitCode === 1, JSON.stringify(health));
  assert.match(d.berth(["ps", "--format", "{{.Status}}", "-f", "name=hc"]).stdout, /\(unhealthy\)/);
  assert.equal(d.berth(["exec", "hc", "touch", "/tmp/ok"]).code, 0);
  assert.equal(await until("hc", "healthy"), "healthy");
  assert.equal(d.berth(["ps", "-q", "--no-trunc", "-f", "health=healthy"]).stdout.trim(), d.berth(["inspect", "-f", "{{.Id}}", "hc"]).stdout.trim());
  // A probe in flight shows as an exec (as in Docker), and goes when it ends: the user's exec stays.
  const execs = () => d.berth(["inspect", "-f", "{{len .ExecIDs}}", "hc"]).stdout.trim();
  // (On a loaded machine a 200 ms probe may always be in flight: then one probe beside the user's exec, never a pile.)
  let fewest = Infinity;
  for (const deadline = Date.now() + 5_000; fewest > 1 && Date.now() < deadline;) { fewest = Math.min(fewest, Number(execs())); await sleep(20); }
  assert.ok(fewest <= 2 && Number(execs()) <= 2, `only the user's exec and at most one probe in flight: ${execs()}`);
  // The docker CLI's flags mean the same; --no-healthcheck turns an image's check off.
  assert.equal(d.docker(["run", "-d", "--name", "hc2", "--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "60"]).code, 0);
  assert.equal(await until("hc2", "healthy"), "healthy");
  assert.equal(d.berth(["run", "-d", "--name", "hc3", "--no-healthcheck", "busybox", "sleep", "60"]).code, 0);
  assert.equal(status("hc3"), "");
  d.berth(["rm", "-f", "hc", "hc2", "hc3"]);
});
