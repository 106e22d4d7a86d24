/**
 * A hung container never hangs the daemon (issue 10). A real D state cannot be made on purpose, so
 * berthd runs with a runtime stub (`--add-runtime hang=<stub> --default-runtime hang`): a shell
 * script that execs the real runc, except that a call whose container id and subcommand a marker
 * file names (<dir>/hang/<id>.<subcommand>) blocks until the test removes the marker. With
 * `--runtime-timeout 3s` every runtime call has a 3 s deadline (10 s by default, dockerd's kill
 * wait).
 *
 * What a user relies on, with one container's runtime stuck:
 * - `docker stop A` ends (dockerd's Kill: past the runtime it SIGKILLs the process directly), and
 *   ps, inspect A, run/stop/rm of another container, info, events, system df all answer meanwhile;
 * - `docker kill`/`pause` of A fail with Docker's "Cannot kill/pause container <id>: ..." once the
 *   deadline passes, and A's record stays as it was;
 * - a conmon that never reports the exit makes `docker stop A` fail with dockerd's "tried to kill
 *   container, but did not receive an exit event" instead of hanging;
 * - SIGTERM to berthd exits in bounded time while a runtime call is stuck, and a new berthd on the
 *   same data root starts although the stuck container's runtime still does not answer;
 * - released, A stops and goes, and nothing is left behind (processes, runc state, mounts).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Daemon, DOCKER, runAsync, ping, type Result, until as untilH } from "./harness.js";

const stubDir = mkdtempSync(join(tmpdir(), "berth-hang-"));
const hangDir = join(stubDir, "hang");
const stub = join(stubDir, "runc");
mkdirSync(hangDir);
writeFileSync(stub, `#!/bin/sh
# berth's hung-runtime test: runc, except that a call whose container id and subcommand a marker
# file ${hangDir}/<id>.<subcommand> names blocks until the marker is removed.
dir=${hangDir}
sub= id= skip=
for a in "$@"; do
  if [ -n "$skip" ]; then skip=; continue; fi
  case "$a" in
    --root|--log|--log-format|--criu) skip=1 ;;
    -*) ;;
    *) if [ -z "$sub" ]; then sub=$a
       elif [ \${#a} -eq 64 ] && [ -z "$(printf %s "$a" | tr -d 0-9a-f)" ]; then id=$a; fi ;;
  esac
done
if [ -n "$id" ] && [ -e "$dir/$id.$sub" ]; then
  : > "$dir/$id.$sub.hit"
  while [ -e "$dir/$id.$sub" ]; do sleep 0.1; done
fi
exec /usr/sbin/runc "$@"
`);
chmodSync(stub, 0o755);

const d = new Daemon();
d.extraArgs = ["--add-runtime", `hang=${stub}`, "--default-runtime", "hang", "--runtime-timeout", "3s", "--shutdown-timeout", "5"];

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  for (const f of readdirSync(hangDir)) rmSync(join(hangDir, f), { force: true });
  let stubs: string[] = [];
  try {
    if (!d.proc) await d.start().catch(() => {});
    await d.stop();
  } finally {
    stubs = stubProcesses();
    rmSync(stubDir, { recursive: true, force: true });
  }
  assert.deepEqual(stubs, [], "runtime stub processes left behind");
});

/** Processes running the stub (a blocked runtime call that outlived its deadline would show here). */
function stubProcesses(): string[] {
  const out: string[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
      // The stub itself (sh <stub> ...), not berthd, whose flags name it.
      if (argv[0] === stub || argv[1] === stub) out.push(`${p}: ${argv.join(" ")}`);
    } catch { /* gone */ }
  }
  return out;
}

/** A docker CLI call that must answer: 20 s is far beyond any of these on a quiet or a loaded machine. */
function docker(...args: string[]): Result {
  const r = d.docker(args, { timeout: 20_000 });
  return r;
}
function ok(...args: string[]): string {
  const r = docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.code} ${r.stderr}`);
  return r.stdout.trim();
}
function dockerAsync(...args: string[]): Promise<Result> {
  return runAsync(DOCKER, args, { env: { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") } });
}

function hang(id: string, sub: string): void { writeFileSync(join(hangDir, `${id}.${sub}`), ""); }
function release(id: string, sub: string): void { rmSync(join(hangDir, `${id}.${sub}`), { force: true }); rmSync(join(hangDir, `${id}.${sub}.hit`), { force: true }); }

const until = <T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> => untilH(what, fn, ms, () => `--- berthd log ---\n${d.log.slice(-3000)}`);
/** The runtime stub has begun blocking a call. */
function blocked(id: string, sub: string): Promise<true> { return until(`runtime ${sub} of ${id.slice(0, 12)} to block`, () => existsSync(join(hangDir, `${id}.${sub}.hit`)) || undefined); }

/** A promise with a deadline: the old daemon's calls never came back. */
async function within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`${what} did not return within ${ms / 1000}s\n--- berthd log ---\n${d.log.slice(-3000)}`)), ms); });
  try { return await Promise.race([p, t]); } finally { clearTimeout(timer); }
}

function state(ref: string): { Status: string; Running: boolean; Paused: boolean; ExitCode: number; Pid: number } {
  return JSON.parse(ok("inspect", "-f", "{{json .State}}", ref)) as ReturnType<typeof state>;
}

test("while A's runtime kill hangs, docker stop A ends by killing A's process directly, and every other call answers meanwhile", async () => {
  const a = ok("run", "-d", "--name", "hungA", "busybox", "sleep", "1000");
  ok("run", "-d", "--name", "okB", "busybox", "sleep", "1000");
  assert.equal(ok("inspect", "-f", "{{.HostConfig.Runtime}}", a), "hang");
  hang(a, "kill");
  const since = Math.floor(Date.now() / 1000) - 1;
  const stopping = dockerAsync("stop", "-t", "1", "hungA");
  await blocked(a, "kill");
  // The daemon, and every other container, carries on.
  assert.match(ok("ps", "--format", "{{.Names}}"), /hungA[\s\S]*okB|okB[\s\S]*hungA/);
  const st = state("hungA");
  assert.equal(st.Running, true, "inspect of the hung container answers with its record");
  const c = ok("run", "-d", "--name", "okC", "busybox", "sleep", "1000");
  assert.equal(ok("stop", "-t", "1", "okC"), "okC");
  assert.equal(ok("rm", "okC"), "okC");
  assert.equal(ok("stop", "-t", "1", "okB"), "okB");
  assert.equal(ok("rm", "okB"), "okB");
  assert.match(ok("info", "--format", "{{.Containers}} {{.DefaultRuntime}}"), /^\d+ hang$/);
  assert.equal((JSON.parse(ok("info", "--format", "{{json .Runtimes}}")) as Record<string, { path: string }>).hang?.path, stub);
  ok("system", "df");
  ok("images");
  const ev = ok("events", "--since", String(since), "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", `container=${c}`, "--format", "{{.Action}}");
  assert.deepEqual(ev.split("\n").filter((x) => ["create", "start", "die", "destroy"].includes(x)), ["create", "start", "die", "destroy"]);
  // stop A: its runtime never answered, so the signal went to the process itself (dockerd's direct SIGKILL).
  const r = await within("docker stop hungA", stopping, 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "hungA");
  const after = state("hungA");
  assert.equal(after.Status, "exited");
  assert.equal(after.ExitCode, 137);
  release(a, "kill");
});

test("kill and pause of a container whose runtime hangs: a signal or a pause fails with Docker's words after the deadline and the record is unchanged; SIGKILL gets to the process; kill && rm works", async () => {
  const a = ok("inspect", "-f", "{{.Id}}", "hungA");
  ok("start", "hungA");
  hang(a, "kill");
  const killing = dockerAsync("kill", "-s", "USR1", "hungA");
  await blocked(a, "kill");
  assert.equal(state("hungA").Running, true);
  const k = await within("docker kill hungA", killing, 60_000);
  assert.notEqual(k.code, 0);
  assert.match(k.stderr, new RegExp(`Error response from daemon: Cannot kill container ${a}: .*did not return within 3s`));
  release(a, "kill");
  hang(a, "pause");
  const p = await within("docker pause hungA", dockerAsync("pause", "hungA"), 60_000);
  assert.notEqual(p.code, 0);
  assert.match(p.stderr, new RegExp(`Error response from daemon: Cannot pause container ${a}: .*did not return within 3s`));
  release(a, "pause");
  const st = state("hungA");
  assert.equal(st.Status, "running");
  assert.equal(st.Paused, false);
  // Released, it answers again.
  ok("pause", "hungA");
  assert.equal(state("hungA").Status, "paused");
  ok("unpause", "hungA");
  // SIGKILL is dockerd's Kill: past the runtime it goes to the process itself, and the call returns with the exit recorded.
  hang(a, "kill");
  assert.equal(ok("kill", "hungA"), "hungA");
  const killed = state("hungA");
  assert.equal(killed.Status, "exited");
  assert.equal(killed.ExitCode, 137);
  release(a, "kill");
  ok("start", "hungA");
  // ...so `kill && rm` works, as against dockerd (before, rm could still find it running).
  for (let i = 0; i < 3; i++) {
    ok("run", "-d", "--name", `kr${i}`, "busybox", "sleep", "1000");
    ok("kill", `kr${i}`);
    assert.equal(ok("rm", `kr${i}`), `kr${i}`);
  }
});

test("a conmon that never reports the exit: docker stop fails with dockerd's 'did not receive an exit event', then recovers", async () => {
  const a = ok("inspect", "-f", "{{.Id}}", "hungA");
  const conmon = Number(readFileSync(join(d.dataRoot, "containers", a, "conmon.pid"), "utf8"));
  assert.ok(conmon > 0);
  process.kill(conmon, "SIGSTOP");
  try {
    const r = await within("docker stop hungA", dockerAsync("stop", "-t", "1", "hungA"), 60_000);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error response from daemon: cannot stop container: hungA: tried to kill container, but did not receive an exit event/);
    assert.equal(state("hungA").Running, true, "no exit was reported, so the record still says running");
  } finally {
    process.kill(conmon, "SIGCONT");
  }
  await until("the exit to be recorded", () => state("hungA").Status === "exited" || undefined);
});

test("SIGTERM exits in bounded time with a runtime call stuck, and a new berthd starts on the same data root", async () => {
  const a = ok("inspect", "-f", "{{.Id}}", "hungA");
  ok("start", "hungA");
  hang(a, "delete");
  ok("kill", "hungA");
  // The exit's runtime cleanup (runc delete) is what hangs now.
  await blocked(a, "delete");
  const p = d.proc!;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await within("berthd's exit on SIGTERM", exited, 30_000);
  d.proc = undefined;
  // The stuck container's runtime still does not answer: the next daemon comes up regardless.
  rmSync(join(hangDir, `${a}.delete.hit`), { force: true });
  await within("a new berthd", d.start(), 60_000);
  assert.ok(await ping(d.sock));
  assert.equal(state("hungA").Status, "exited");
  ok("run", "--rm", "busybox", "true");
  release(a, "delete");
  assert.equal(ok("rm", "hungA"), "hungA");
  await until("hungA's runc state to go", () => !existsSync(join(d.execRoot, "runc", a)) || undefined);
  assert.deepEqual(stubProcesses(), []);
});

test("a runtime create that never returns: start fails after the create deadline (4 runtime deadlines) with the runtime's words, and the container can go", async () => {
  const id = ok("create", "--name", "hungC", "busybox", "sleep", "1000");
  hang(id, "create");
  const starting = dockerAsync("start", "hungC");
  await blocked(id, "create");
  assert.equal(state("hungC").Status, "created");
  assert.equal(ok("run", "--rm", "busybox", "echo", "hi"), "hi");
  const r = await within("docker start hungC", starting, 60_000);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`Error response from daemon: OCI runtime create failed: container ${id}: the OCI runtime did not return within 12s`));
  assert.equal(state("hungC").Running, false);
  release(id, "create");
  await until("the stub to go", () => stubProcesses().length === 0 || undefined);
  assert.equal(ok("rm", "-f", "hungC"), "hungC");
  await until("hungC's runc state to go", () => !existsSync(join(d.execRoot, "runc", id)) || undefined);
});

test("a daemon restart while a running container's runtime state does not answer: the new daemon comes up and keeps it running; rm -f with its runtime kill stuck still removes it", async () => {
  const id = ok("run", "-d", "--name", "hungS", "busybox", "sleep", "1000");
  const pid = state("hungS").Pid;
  hang(id, "state");
  await within("berthd's exit on SIGTERM", d.stopDaemon(), 30_000);
  await within("a new berthd", d.start(), 60_000);
  await blocked(id, "state");
  // Unknown to the runtime is not gone: its process lives, so the record stands (conmon still reports its exit).
  const st = state("hungS");
  assert.equal(st.Running, true);
  assert.equal(st.Pid, pid);
  release(id, "state");
  hang(id, "kill");
  assert.equal(ok("rm", "-f", "hungS"), "hungS");
  await blocked(id, "kill");
  release(id, "kill");
  assert.equal(docker("inspect", "hungS").code, 1);
  await until("hungS's runc state to go", () => !existsSync(join(d.execRoot, "runc", id)) || undefined);
  await until("the stub to go", () => stubProcesses().length === 0 || undefined);
});
