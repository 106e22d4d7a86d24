/**
 * The store across crashes: berthd is killed with SIGKILL at random points of
 * a many-step build and of a pull loop from a real registry (Debian's
 * docker-registry on 127.0.0.1) with concurrent rmi, round after round,
 * restarting it each time. A crash must never leave a damaged record:
 * `system check` is clean without --repair, and images, ps -a and system df
 * answer 200. Then damage made by hand (a manifest blob deleted, a journal
 * line garbled) must not turn lists into 500s: check reports it and
 * --repair mends it.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { randomBytes } from "node:crypto";
import { Daemon, sleep, api } from "../integration/harness.js";

const d = new Daemon();
let work: string;
let registry: ChildProcess | undefined;
let port = 0;
const IMAGES = ["i1", "i2", "i3"];
const ref = (name: string) => `127.0.0.1:${port}/crash/${name}:latest`;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

interface Check { Problems: string[]; Repaired: string[]; Images: number; Blobs: number; Snapshots: number }
async function check(repair = false): Promise<Check> {
  const r = await api(d.sock, "POST", `/v1.41/berth/system/check${repair ? "?repair=1" : ""}`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Check;
}

async function listsAnswer(when: string): Promise<{ images: { Id: string; RepoTags: string[] | null }[] }> {
  const images = await api(d.sock, "GET", "/v1.41/images/json");
  assert.equal(images.status, 200, `${when}: GET /images/json: ${images.body}`);
  const ps = await api(d.sock, "GET", "/v1.41/containers/json?all=1");
  assert.equal(ps.status, 200, `${when}: GET /containers/json: ${ps.body}`);
  const df = await api(d.sock, "GET", "/v1.41/system/df");
  assert.equal(df.status, 200, `${when}: GET /system/df: ${df.body}`);
  return { images: JSON.parse(images.body) as { Id: string; RepoTags: string[] | null }[] };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-crash-"));
  port = await freePort();
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  const deadline = Date.now() + 15_000;
  while (!(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false))) {
    assert.ok(Date.now() < deadline, "the registry did not answer");
    await sleep(100);
  }
  await d.start();
  await d.bootstrap();
  // Three images in the registry that share a base layer (so pulls say "Already exists" while an rmi collects).
  const base = join(work, "base");
  mkdirSync(base);
  writeFileSync(join(base, "base.bin"), randomBytes(256 * 1024));
  assert.equal(spawnSync("tar", ["-C", base, "-cf", join(work, "base.tar"), "."]).status, 0);
  ok(d.berth(["import", join(work, "base.tar"), "crashbase:1"]), "import");
  for (const name of IMAGES) {
    const ctx = join(work, `ctx-${name}`);
    mkdirSync(ctx);
    writeFileSync(join(ctx, "own.bin"), randomBytes(128 * 1024));
    writeFileSync(join(ctx, "Dockerfile"), `FROM crashbase:1\nCOPY own.bin /${name}.bin\nLABEL image=${name}\n`);
    ok(d.berth(["build", "-q", "-t", ref(name), ctx], { timeout: 60_000 }), `build ${name}`);
    ok(d.berth(["push", ref(name)], { timeout: 60_000 }), `push ${name}`);
    ok(d.berth(["rmi", ref(name)]), `rmi ${name}`);
  }
  ok(d.berth(["rmi", "crashbase:1"]), "rmi crashbase");
  // The build: many steps, LABELs (an image each) and a few RUNs (a container and a layer each).
  const ctx = join(work, "ctx-build");
  mkdirSync(ctx);
  writeFileSync(join(ctx, "data.txt"), "some data\n");
  const steps = ["FROM busybox", "ARG R"];
  for (let i = 0; i < 12; i++) {
    for (let j = 0; j < 8; j++) steps.push(`LABEL step${i}_${j}=$R`);
    steps.push(i % 4 === 0 ? `RUN echo $R-${i} > /r${i}` : `COPY data.txt /d${i}.txt`);
  }
  writeFileSync(join(ctx, "Dockerfile"), steps.join("\n") + "\n");
});

after(async () => {
  registry?.kill("SIGTERM");
  if (d.proc) await d.stop();
  else { await d.start().catch(() => {}); await d.stop(); }
  rmSync(work, { recursive: true, force: true });
});

test("kill -9 at random points of a build and of a pull loop with concurrent rmi never leaves a damaged record", async () => {
  const ROUNDS = 8;
  const started = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    let stop = false;
    const loops: Promise<unknown>[] = [];
    // A build (no cache, so every step commits), again and again.
    loops.push((async () => {
      for (let n = 0; !stop; n++) await d.berthAsync(["build", "--no-cache", "-q", "--build-arg", `R=${round}-${n}`, "-t", `crashbuild:${n % 2}`, join(work, "ctx-build")]);
    })());
    // Pulls of the three images, each removed again right away (its blobs and snapshots collected).
    for (const name of IMAGES) {
      loops.push((async () => {
        while (!stop) {
          await d.berthAsync(["pull", "-q", ref(name)]);
          await d.berthAsync(["rmi", ref(name)]);
        }
      })());
    }
    // Concurrent rmi of what the build tagged.
    loops.push((async () => {
      while (!stop) { await d.berthAsync(["rmi", "crashbuild:0"]); await sleep(50 + Math.random() * 200); }
    })());
    const at = 300 + Math.floor(Math.random() * 2700);
    await sleep(at);
    await d.crash();
    stop = true;
    await Promise.all(loops);
    await d.start();
    const when = `round ${round + 1} (killed ${at} ms in)`;
    const c = await check();
    assert.deepEqual(c.Problems, [], `${when}: system check after a crash, without --repair`);
    const { images } = await listsAnswer(when);
    // Every listed image is whole: its config reads (inspect) and a container can be made from it.
    for (const img of images) {
      const r = await api(d.sock, "GET", `/v1.41/images/${img.Id}/json`);
      assert.equal(r.status, 200, `${when}: inspect ${img.Id}: ${r.body}`);
    }
    assert.ok(images.some((i) => (i.RepoTags ?? []).includes("busybox:latest")), `${when}: busybox is still there`);
  }
  // Everything the loops made can still be removed, and the store stays clean.
  const ps = await api(d.sock, "GET", "/v1.41/containers/json?all=1");
  const ids = (JSON.parse(ps.body) as { Id: string }[]).map((x) => x.Id);
  if (ids.length) ok(d.berth(["rm", "-f", ...ids], { timeout: 60_000 }), "rm -f");
  ok(d.berth(["image", "prune", "-a", "-f"], { timeout: 60_000 }), "image prune");
  const c = await check();
  assert.deepEqual(c.Problems, []);
  process.stderr.write(`# ${ROUNDS} crash rounds in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
});

test("a damaged record (its manifest blob gone) and a garbled journal line: lists still answer, check reports, --repair mends", async () => {
  await d.bootstrap(); // the first test's prune -a took busybox
  const ctx = join(work, "ctx-damage");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nLABEL victim=1\n");
  const victim = ok(d.berth(["build", "-q", "-t", "victim:1", ctx]), "build victim").trim();
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nLABEL survivor=1\n");
  const survivor = ok(d.berth(["build", "-q", "-t", "survivor:1", ctx]), "build survivor").trim();
  const manifest = ok(d.berth(["image", "inspect", "-f", "{{.Descriptor.digest}}", "victim:1"]), "inspect").trim();
  await d.stopDaemon();
  // What the old collector race left behind: a record whose manifest blob is gone.
  unlinkSync(join(d.dataRoot, "content/blobs/sha256", manifest.slice(7)));
  // And a journal line that is garbage, followed by a good one (not a torn tail: real damage).
  const journal = join(d.dataRoot, "images.journal");
  const lines = readFileSync(journal, "utf8");
  writeFileSync(journal, "{garbled\n" + lines);
  await d.start();
  const { images } = await listsAnswer("with a damaged record");
  assert.ok(!images.some((i) => i.Id === victim), "the damaged record is skipped by the list");
  assert.ok(images.some((i) => i.Id === survivor), "the others are listed");
  const r = d.berth(["system", "check"]);
  assert.equal(r.code, 1, "system check fails on damage");
  assert.match(r.stdout, new RegExp(`image docker.io/library/victim:1: manifest ${manifest} missing`));
  assert.match(r.stdout, /images\.journal: line 1 unreadable/);
  const fixed = d.berth(["system", "check", "--repair"]);
  assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
  assert.match(fixed.stdout, /REPAIRED: dropped image docker.io\/library\/victim:1/);
  assert.match(fixed.stdout, /REPAIRED: rewrote the image metadata files/);
  assert.deepEqual((await check()).Problems, [], "clean after --repair");
  assert.equal(d.berth(["image", "inspect", "victim:1"]).code, 1, "the dropped record is gone");
  ok(d.berth(["image", "inspect", "survivor:1"]), "the survivor stays");
  // And it stays mended across a restart.
  await d.stopDaemon();
  await d.start();
  assert.deepEqual((await check()).Problems, []);
  ok(d.berth(["rmi", "survivor:1"]), "rmi survivor");
});
