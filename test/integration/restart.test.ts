/**
 * Restart and stop semantics as dockerd 20.10 has them (issue 10): on-failure:3 restarts exactly
 * three times with Docker's back-off (100, 200, 400 ms at least) and a "restarting" state between;
 * a user's start resets RestartCount; `always` and `unless-stopped` across a daemon restart (a
 * user's stop holds for unless-stopped only) and across a simulated host reboot (every container
 * process and conmon killed, then berthd started); --stop-signal, image STOPSIGNAL and
 * --stop-timeout with the kill/die/stop events dockerd sends.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Daemon, until } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  if (!d.proc) await d.start().catch(() => {});
  await d.stop();
});


function state(name: string): { Status: string; Running: boolean; Restarting: boolean; Pid: number; ExitCode: number; StartedAt: string; RestartCount: number } {
  const r = d.berth(["inspect", "-f", "{{json .State}}|{{.RestartCount}}", name]);
  assert.equal(r.code, 0, r.stderr);
  const [s, n] = r.stdout.trim().split("|");
  return { ...JSON.parse(s), RestartCount: Number(n) };
}

interface Ev { Action: string; Actor: { Attributes: Record<string, string> }; timeNano: number }
function events(name: string, since: number): Ev[] {
  const r = d.docker(["events", "--since", String(since), "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", `container=${name}`, "--format", "{{json .}}"]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Ev);
}

test("on-failure:3 restarts exactly three times, with Docker's back-off, then stays exited; a user's start counts again from 0", async (t) => {
  t.after(() => d.berth(["rm", "-f", "of3"]));
  const since = Math.floor(Date.now() / 1000) - 1;
  const run = d.berth(["run", "-d", "--name", "of3", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 1"]);
  assert.equal(run.code, 0, run.stderr);
  let sawRestarting = false;
  await until("three restarts", () => {
    const s = state("of3");
    // As dockerd: during the back-off the container is Running and Restarting, with no Pid.
    if (s.Status === "restarting") { sawRestarting = true; assert.equal(s.Restarting, true); assert.equal(s.Running, true); assert.equal(s.Pid, 0); }
    return s.Status === "exited" && s.RestartCount === 3;
  });
  assert.ok(sawRestarting, "never saw the restarting state between runs");
  const ev = events("of3", since);
  const starts = ev.filter((e) => e.Action === "start").length, dies = ev.filter((e) => e.Action === "die");
  assert.equal(starts, 4, ev.map((e) => e.Action).join(","));
  assert.equal(dies.length, 4);
  // As dockerd: policy restarts send start, never restart.
  assert.ok(!ev.some((e) => e.Action === "restart"));
  // The back-off: each restart waits 100 ms, then 200, then 400 (it can only be slower).
  const gaps: number[] = [];
  for (let i = 0; i < 3; i++) {
    const die = dies[i].timeNano;
    const start = ev.filter((e) => e.Action === "start" && e.timeNano > die)[0].timeNano;
    gaps.push((start - die) / 1e6);
  }
  assert.ok(gaps[0] >= 100 && gaps[1] >= 200 && gaps[2] >= 400, `gaps ${gaps.map((g) => g.toFixed(0)).join(", ")} ms`);
  // The fourth failure is final: it stays exited with its exit code.
  assert.equal(state("of3").ExitCode, 1);
  // dockerd: `docker start` resets the count and the policy runs again (RestartCount back to 3, not 6 or unchanged).
  const s = d.berth(["start", "of3"]);
  assert.equal(s.code, 0, s.stderr);
  await until("three more restarts", () => { const x = state("of3"); return x.Status === "exited" && x.RestartCount === 3 && events("of3", since).filter((e) => e.Action === "start").length === 8; });
});

test("a user's stop cancels a pending policy restart and rm -f removes a restarting container", async (t) => {
  t.after(() => d.berth(["rm", "-f", "flap"]));
  const run = d.berth(["run", "-d", "--name", "flap", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 2"]);
  assert.equal(run.code, 0, run.stderr);
  await until("a restart", () => state("flap").RestartCount >= 1);
  const st = d.berth(["stop", "-t", "1", "flap"]);
  assert.equal(st.code, 0, st.stderr);
  const s = state("flap");
  assert.equal(s.Running, false);
  assert.equal(s.Status, "exited");
  const n = s.RestartCount;
  // Another container's full run is time enough for a stray restart to show.
  assert.equal(d.berth(["run", "--rm", "busybox", "true"]).code, 0);
  assert.equal(state("flap").RestartCount, n);
  assert.equal(state("flap").Status, "exited");
  // Flapping again: rm -f at any point of its cycle (running, restarting, launching) removes it for good.
  assert.equal(d.berth(["start", "flap"]).code, 0);
  await until("a restart", () => state("flap").RestartCount >= 2);
  const rm = d.berth(["rm", "-f", "flap"]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(d.berth(["run", "--rm", "busybox", "true"]).code, 0);
  assert.equal(d.berth(["ps", "-aq", "--filter", "name=flap"]).stdout.trim(), "");
});

test("a kill or a wait during the restart back-off answers as dockerd: kill stops it (Exited with its code, no more restarts), wait returns then", async (t) => {
  t.after(() => d.berth(["rm", "-f", "bokill"]));
  assert.equal(d.berth(["run", "-d", "--name", "bokill", "--restart", "always", "busybox", "sh", "-c", "exit 3"]).code, 0);
  // After a few failures the back-off (800 ms and more) leaves time to act while it is restarting.
  await until("a long back-off", () => { const s = state("bokill"); return s.RestartCount >= 4 && s.Status === "restarting"; }, 30_000);
  const w = d.berthAsync(["wait", "bokill"]);
  const k = d.docker(["kill", "bokill"]);
  assert.equal(k.code, 0, k.stderr);
  const waited = await w;
  assert.equal(waited.code, 0, waited.stderr);
  assert.equal(waited.stdout.trim(), "3");
  const s = state("bokill");
  assert.equal(s.Status, "exited");
  assert.equal(s.Running, false);
  assert.equal(s.Restarting, false);
  const n = s.RestartCount;
  assert.equal(d.berth(["run", "--rm", "busybox", "true"]).code, 0);
  assert.equal(state("bokill").RestartCount, n);
});

test("a kill marks the container stopped by the user, as dockerd's: always does not restart it, even after a signal it survives", async (t) => {
  t.after(() => { d.berth(["rm", "-f", "kalways"]); d.berth(["rm", "-f", "khup"]); });
  assert.equal(d.berth(["run", "-d", "--name", "kalways", "--restart", "always", "busybox", "sleep", "100"]).code, 0);
  assert.equal(d.docker(["kill", "kalways"]).code, 0);
  await until("exited", () => state("kalways").Status === "exited");
  // HUP is ignored: the process lives on, then exits by itself; dockerd does not restart it either.
  assert.equal(d.berth(["run", "-d", "--name", "khup", "--restart", "always", "busybox", "sh", "-c", "trap '' HUP; sleep 1; exit 1"]).code, 0);
  await until("running", () => state("khup").Status === "running");
  assert.equal(d.docker(["kill", "-s", "HUP", "khup"]).code, 0);
  await until("exited", () => state("khup").Status === "exited", 30_000);
  assert.equal(d.berth(["run", "--rm", "busybox", "true"]).code, 0);
  assert.equal(state("kalways").RestartCount, 0);
  assert.equal(state("khup").RestartCount, 0);
  assert.equal(state("khup").Status, "exited");
});

test("the back-off goes back to 100 ms after a run of 10 s or more (dockerd's restart manager)", async (t) => {
  t.after(() => { d.berth(["rm", "-f", "boreset"]); d.berth(["volume", "rm", "-f", "boreset"]); });
  // Runs 1-4 fail at once (back-off 100, 200, 400, 800 ms), run 5 lasts 10.5 s, run 6 fails at once:
  // without the reset its restart would wait 1.6 s; with it, 100 ms.
  const script = 'n=$(cat /v/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /v/n; [ $n -eq 5 ] && sleep 10.5; [ $n -ge 7 ] && sleep 1000; exit 1';
  const since = Math.floor(Date.now() / 1000) - 1;
  assert.equal(d.berth(["run", "-d", "--name", "boreset", "-v", "boreset:/v", "--restart", "always", "busybox", "sh", "-c", script]).code, 0);
  await until("the seventh run", () => state("boreset").RestartCount >= 6 && state("boreset").Status === "running", 60_000);
  const ev = events("boreset", since);
  const dies = ev.filter((e) => e.Action === "die"), starts = ev.filter((e) => e.Action === "start");
  assert.ok(dies.length >= 6 && starts.length >= 7, ev.map((e) => e.Action).join(","));
  const gap = (i: number): number => (starts[i + 1].timeNano - dies[i].timeNano) / 1e6;
  // Before the long run the back-off had grown to 800 ms (it can only be slower) ...
  assert.ok(gap(3) >= 800, `gap before the long run ${gap(3).toFixed(0)} ms`);
  // ... and after it, it is 100 ms again: well under the 1.6 s the next doubling would have waited.
  assert.ok(gap(5) >= 100 && gap(5) < 1600, `gap after the long run ${gap(5).toFixed(0)} ms`);
});

test("always and unless-stopped across a daemon restart: running ones stay up, a user's stop holds for unless-stopped only", async (t) => {
  t.after(() => d.berth(["rm", "-f", "a-run", "u-run", "a-stopped", "u-stopped", "no-stopped"]));
  for (const [name, policy] of [["a-run", "always"], ["u-run", "unless-stopped"], ["a-stopped", "always"], ["u-stopped", "unless-stopped"], ["no-stopped", "no"]]) {
    const r = d.berth(["run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "300"]);
    assert.equal(r.code, 0, r.stderr);
  }
  for (const name of ["a-stopped", "u-stopped", "no-stopped"]) assert.equal(d.berth(["stop", "-t", "1", name]).code, 0);
  await d.stopDaemon();
  await d.start();
  await until("a-stopped to come back", () => state("a-stopped").Running);
  for (const name of ["a-run", "u-run", "a-stopped"]) assert.equal(state(name).Status, "running", name);
  for (const name of ["u-stopped", "no-stopped"]) assert.equal(state(name).Status, "exited", name);
  // As dockerd's: the start after a daemon restart is a fresh one (RestartCount 0).
  assert.equal(state("a-stopped").RestartCount, 0);
});

test("a simulated host reboot (every container process, conmon and berthd killed): always and unless-stopped start again, no does not", async (t) => {
  t.after(() => d.berth(["rm", "-f", "rb-always", "rb-unless", "rb-no"]));
  const pids: number[] = [];
  const before: Record<string, number> = {};
  for (const [name, policy] of [["rb-always", "always"], ["rb-unless", "unless-stopped"], ["rb-no", "no"]]) {
    const r = d.berth(["run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "300"]);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    const s = state(name);
    before[name] = s.Pid;
    const conmon = Number(readFileSync(join(d.dataRoot, "containers", id, "conmon.pid"), "utf8"));
    pids.push(conmon, s.Pid);
  }
  await d.crash();
  // conmon first (so nothing records an exit), then the containers' processes: the power goes.
  for (const p of pids) { try { process.kill(p, "SIGKILL"); } catch { /* gone */ } }
  await until("the processes to go", () => pids.every((p) => !existsSync(`/proc/${p}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, "utf8"))));
  await d.start();
  await until("rb-always and rb-unless to start again", () => state("rb-always").Running && state("rb-unless").Running);
  for (const name of ["rb-always", "rb-unless"]) assert.notEqual(state(name).Pid, before[name], `${name} has a new process`);
  assert.equal(state("rb-no").Status, "exited");
  assert.equal(state("rb-no").Running, false);
});

test("--stop-signal, an image's STOPSIGNAL and --stop-timeout: the signals dockerd sends and its kill/die/stop events", async (t) => {
  t.after(() => { d.berth(["rm", "-f", "sig", "img-sig", "slow"]); d.berth(["rmi", "-f", "stopsig:test"]); });
  const since = Math.floor(Date.now() / 1000) - 1;
  const trap = "trap 'echo got-$0; exit 3' USR1; echo ready; while :; do sleep 0.1; done";
  const r = d.berth(["run", "-d", "--name", "sig", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", trap]);
  assert.equal(r.code, 0, r.stderr);
  await until("sig ready", () => d.berth(["logs", "sig"]).stdout.includes("ready"));
  assert.equal(d.berth(["stop", "sig"]).code, 0);
  assert.equal(state("sig").ExitCode, 3);
  const ev = events("sig", since).filter((e) => ["kill", "die", "stop"].includes(e.Action));
  assert.deepEqual(ev.map((e) => [e.Action, e.Actor.Attributes.signal ?? e.Actor.Attributes.exitCode ?? ""]), [["kill", "10"], ["die", "3"], ["stop", ""]], JSON.stringify(events("sig", since)));

  const ctx = mkdtempSync(join(tmpdir(), "berth-stopsig-"));
  t.after(() => rmSync(ctx, { recursive: true, force: true }));
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nSTOPSIGNAL SIGUSR1\n");
  const b = d.berth(["build", "-q", "-t", "stopsig:test", ctx], { timeout: 120_000 });
  assert.equal(b.code, 0, b.stderr);
  const r2 = d.berth(["run", "-d", "--name", "img-sig", "stopsig:test", "sh", "-c", trap]);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(d.berth(["inspect", "-f", "{{.Config.StopSignal}}", "img-sig"]).stdout.trim(), "SIGUSR1");
  await until("img-sig ready", () => d.berth(["logs", "img-sig"]).stdout.includes("ready"));
  assert.equal(d.berth(["stop", "img-sig"]).code, 0);
  assert.equal(state("img-sig").ExitCode, 3);

  // sleep as pid 1 ignores SIGTERM: past --stop-timeout 1 comes SIGKILL (kill 15, kill 9, die 137, stop).
  const r3 = d.docker(["run", "-d", "--name", "slow", "--stop-timeout", "1", "busybox", "sleep", "300"]);
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(d.berth(["inspect", "-f", "{{.Config.StopTimeout}}", "slow"]).stdout.trim(), "1");
  assert.equal(d.berth(["stop", "slow"]).code, 0);
  assert.equal(state("slow").ExitCode, 137);
  const ev3 = events("slow", since).filter((e) => ["kill", "die", "stop"].includes(e.Action));
  assert.deepEqual(ev3.map((e) => [e.Action, e.Actor.Attributes.signal ?? e.Actor.Attributes.exitCode ?? ""]), [["kill", "15"], ["kill", "9"], ["die", "137"], ["stop", ""]], JSON.stringify(events("slow", since)));
});

test('daemon.json "init": true runs containers that do not say with an init as pid 1; --init=false and HostConfig.Init stay the user\'s', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "berth-initcfg-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "daemon.json"), JSON.stringify({ init: true }));
  const pid1 = (args: string[]) => {
    const r = d.docker(["run", "--rm", ...args, "busybox", "ps", "-o", "pid,comm"]);
    assert.equal(r.code, 0, r.stderr);
    return /^\s*1\s+(\S+)$/m.exec(r.stdout)?.[1];
  };
  assert.equal(pid1([]), "ps", "without the key pid 1 is the command");
  await d.stopDaemon();
  d.extraArgs = ["--config-file", join(dir, "daemon.json")];
  await d.start();
  assert.notEqual(pid1([]), "ps");
  assert.equal(pid1(["--init=false"]), "ps");
  const c = d.docker(["create", "--name", "init-default", "busybox", "true"]);
  t.after(() => d.berth(["rm", "-f", "init-default"]));
  assert.equal(c.code, 0, c.stderr);
  // As dockerd: the daemon's default is not written into the container's HostConfig.
  assert.equal(d.berth(["inspect", "-f", "{{json .HostConfig.Init}}", "init-default"]).stdout.trim(), "null");
});
