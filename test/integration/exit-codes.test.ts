/**
 * A command's exit status is what scripts rely on: `run`, `start -a` and `exec` must return the container's
 * (or the exec's) status every time, also when the process exits at once without output (its stream closes
 * before the CLI listens for its end). Through bin/berth and through the docker CLI, several at a time.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Daemon, BERTH, DOCKER, type Result } from "./harness.js";

const d = new Daemon();

before(async () => { await d.start(); await d.bootstrap(); });
after(async () => { await d.stop(); });

/** Runs a command with an empty stdin (a process that exits before reading it is no error here). */
function runAsync(cmd: string, args: string[], opts: { env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (x) => { stdout += x; });
    p.stderr.on("data", (x) => { stderr += x; });
    p.stdin.on("error", () => {});
    p.on("close", (c) => res({ code: c ?? -1, stdout, stderr }));
    p.stdin.end();
  });
}

/** Runs jobs `width` at a time; returns their results in order. */
async function pool<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) { const i = next++; out[i] = await job(i); }
  }));
  return out;
}

const code = (i: number) => 1 + ((i * 37 + 11) % 255);
const berth = (args: string[]) => runAsync(process.execPath, [BERTH, "-H", d.host, ...args]);
const docker = (args: string[]) => runAsync(DOCKER, args, { env: { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") } });

/** Through a pty (util-linux's script), for -it: script -e returns the command's status. */
const inPty = (cmd: string, env: Record<string, string> = {}) => runAsync("script", ["-qfec", cmd, "/dev/null"], { env });

function mismatches(results: { want: number; what: string; r: Result }[]): string[] {
  return results.filter((x) => x.r.code !== x.want).map((x) => `${x.what}: want ${x.want}, got ${x.r.code} (${x.r.stderr.trim()}${x.r.stdout.trim()})`);
}

const VARIANTS: string[][] = [["--rm"], [], ["--rm", "-t"], ["-t"], ["--rm", "-i"], ["-i"]];
const PTY_VARIANTS: string[][] = [["--rm", "-i", "-t"], ["-i", "-t"]];

test("berth run returns the container's exit status, 200 times, with and without --rm, -t, -i", async () => {
  // 176 with a pipe for stdin, 24 with -it through a pty.
  const results = await pool(200, 4, async (i) => {
    const want = code(i);
    if (i % 25 === 0 || i % 25 === 12 || i % 25 === 19) {
      const v = PTY_VARIANTS[i % 2];
      return { want, what: `run ${v.join(" ")} (pty) exit ${want}`, r: await inPty(`${process.execPath} ${BERTH} -H ${d.host} run ${v.join(" ")} busybox sh -c 'exit ${want}'`) };
    }
    const v = VARIANTS[i % VARIANTS.length];
    return { want, what: `run ${v.join(" ")} exit ${want}`, r: await berth(["run", ...v, "busybox", "sh", "-c", `exit ${want}`]) };
  });
  assert.equal(results.length, 200);
  assert.deepEqual(mismatches(results), []);
  // The runs without --rm left their containers, each exited with its status.
  const left = (await berth(["ps", "-aq", "--no-trunc"])).stdout.split("\n").filter(Boolean);
  assert.ok(left.length >= 90, `${left.length} containers left`);
  const codes = (await berth(["inspect", "-f", "{{.State.ExitCode}}", ...left])).stdout.split("\n").filter(Boolean).map(Number);
  assert.ok(codes.every((c) => c > 0), codes.join(","));
  assert.equal((await berth(["rm", "-f", ...left])).code, 0);
});

test("-i -t with a stdin that is no terminal is docker's error, before anything is created", async () => {
  const b = await berth(["run", "--rm", "-i", "-t", "busybox", "true"]);
  const k = await docker(["run", "--rm", "-i", "-t", "busybox", "true"]);
  assert.equal(k.code, 1);
  assert.equal(b.code, k.code);
  assert.equal(b.stderr.trim(), k.stderr.trim());
  assert.equal((await berth(["ps", "-aq"])).stdout, "");
});

test("the docker CLI gets the same exit status from berthd's run", async () => {
  const results = await pool(60, 4, async (i) => {
    const want = code(i + 7);
    if (i % 10 === 0) {
      const env = { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") };
      return { want, what: `docker run --rm -it (pty) exit ${want}`, r: await inPty(`${DOCKER} run --rm -it busybox sh -c 'exit ${want}'`, env) };
    }
    const v = VARIANTS[i % VARIANTS.length].includes("--rm") ? VARIANTS[i % VARIANTS.length] : ["--rm", ...VARIANTS[i % VARIANTS.length]];
    return { want, what: `docker run ${v.join(" ")} exit ${want}`, r: await docker(["run", ...v, "busybox", "sh", "-c", `exit ${want}`]) };
  });
  assert.deepEqual(mismatches(results), []);
});

test("start -a returns the container's exit status", async () => {
  const ids: string[] = [];
  const results = await pool(30, 4, async (i) => {
    const want = code(i + 3);
    const tty = i % 2 ? ["-t"] : [];
    const c = await berth(["create", ...tty, "busybox", "sh", "-c", `exit ${want}`]);
    assert.equal(c.code, 0, c.stderr);
    const id = c.stdout.trim();
    ids[i] = id;
    return { want, what: `start -a (${tty.join("")}) exit ${want}`, r: await berth(["start", "-a", id]) };
  });
  assert.deepEqual(mismatches(results), []);
  // And a second start -a of the same container gives the status again.
  const again = await berth(["start", "-a", ids[0]]);
  assert.equal(again.code, code(3));
  assert.equal((await berth(["rm", "-f", ...ids])).code, 0);
});

test("exec and exec -t return the command's exit status", async () => {
  const r = await berth(["run", "-d", "--name", "exec-codes", "busybox", "sleep", "600"]);
  assert.equal(r.code, 0, r.stderr);
  try {
    const results = await pool(60, 4, async (i) => {
      const want = code(i + 5);
      const v = i % 2 ? ["-t"] : i % 4 === 0 ? ["-i"] : [];
      return { want, what: `exec ${v.join(" ")} exit ${want}`, r: await berth(["exec", ...v, "exec-codes", "sh", "-c", `exit ${want}`]) };
    });
    assert.deepEqual(mismatches(results), []);
    // docker exec against berthd, too.
    const viaDocker = await pool(16, 4, async (i) => {
      const want = code(i + 9);
      const v = i % 2 ? ["-t"] : [];
      return { want, what: `docker exec ${v.join(" ")} exit ${want}`, r: await docker(["exec", ...v, "exec-codes", "sh", "-c", `exit ${want}`]) };
    });
    assert.deepEqual(mismatches(viaDocker), []);
  } finally {
    await berth(["rm", "-f", "exec-codes"]);
  }
});

test("failures keep docker's exit statuses (127 for a missing command, 1 for wait of a missing container)", async () => {
  // wait on a container that does not exist: docker's 'wait' prints the error and exits 1; run of a missing
  // command is 127 (the daemon's error at start), as with docker.
  const missing = await berth(["run", "--rm", "busybox", "/no/such/binary"]);
  assert.equal(missing.code, 127, missing.stderr);
  const w = await berth(["wait", "no-such-container-xyz"]);
  assert.equal(w.code, 1);
  assert.match(w.stderr, /No such container/);
});
