/**
 * The attach relay (bin/berth-attach, started by the mount helper and connected back to berthd's relay
 * socket) as clients drive it: a client that keeps writing to a container that never reads its stdin
 * still gets the exit status; a client that goes away leaves no relay behind and the container running,
 * with and without stdin. stop() checks that no relay is left under the daemon's roots.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Daemon, BERTH, DOCKER, relays, sleep, type Result } from "./harness.js";

const d = new Daemon();

before(async () => { await d.start(); await d.bootstrap(); });
after(async () => { await d.stop(); });

const dockerEnv = () => ({ ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") });

/** A shell pipeline, killed past 60 s (a hang is a failure, not a stuck suite). */
function sh(cmd: string): Promise<Result> {
  return new Promise((res) => {
    const p = spawn("bash", ["-c", cmd], { env: dockerEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.stdout.on("data", (x) => { stdout += x; });
    p.stderr.on("data", (x) => { stderr += x; });
    p.on("close", (c) => { clearTimeout(timer); res({ code: c ?? -1, stdout, stderr }); });
  });
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test("a client that keeps writing to stdin gets the exit status of a container that never reads it", async () => {
  // The container exits with unread input in the relay's connection; its output still ends (no hang).
  const runs = [];
  for (let i = 0; i < 12; i++) {
    const cli = i % 2 ? `${DOCKER}` : `${process.execPath} ${BERTH} -H ${d.host}`;
    const rm = i % 4 < 2 ? "--rm" : "";
    runs.push(sh(`yes | ${cli} run -i ${rm} busybox sh -c 'exit ${20 + i}'; echo "status $?"`).then((r) => ({ i, r })));
  }
  for (const { i, r } of await Promise.all(runs)) assert.match(r.stdout, new RegExp(`status ${20 + i}\\b`), `run ${i}: ${r.stdout}${r.stderr}`);
  // And with output: what the container wrote arrives whole before the end.
  const r = await sh(`yes | ${DOCKER} run -i --rm busybox sh -c 'seq 1 2000; exit 3'; echo "status $?"`);
  assert.match(r.stdout, /\n2000\nstatus 3\n$/);
  assert.equal((await sh(`${DOCKER} rm -f $(${DOCKER} ps -aq) 2>&1 || true`)).code, 0);
});

test("a client that goes away leaves no relay behind and the container running", async () => {
  for (const stdin of [false, true]) {
    const name = `relay-${stdin ? "i" : "n"}`;
    const made = await sh(`${DOCKER} run -d ${stdin ? "-i" : ""} --name ${name} busybox sh -c 'while true; do echo tick; sleep 0.2; done'`);
    assert.equal(made.code, 0, made.stderr);
    const id = made.stdout.trim();
    // docker attach; with stdin its input ends at once (a half-closed relay, which must still go with its client).
    const cli = spawn(DOCKER, ["attach", ...(stdin ? [] : ["--no-stdin"]), name], { env: dockerEnv(), stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
    if (stdin) cli.stdin!.end();
    let out = "";
    cli.stdout!.on("data", (x) => { out += x; });
    await until("the attach's output", () => out.includes("tick"));
    assert.ok(relays(d.root).includes(id), `a relay for ${id}: ${relays(d.root)}`);
    cli.kill("SIGKILL");
    await until(`the relay of ${name} to go`, () => !relays(d.root).includes(id));
    const st = await sh(`${DOCKER} inspect -f '{{.State.Running}}' ${name}`);
    assert.equal(st.stdout.trim(), "true");
    assert.equal((await sh(`${DOCKER} rm -f ${name}`)).code, 0);
  }
});
