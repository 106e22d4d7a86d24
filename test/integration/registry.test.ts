/**
 * `berth registry serve` as users run it (bin/berth registry serve, YAML config, flags win), with real
 * clients: berth push/pull through a real berthd (and the docker CLI against berthd), skopeo copy in and
 * out, the docker CLI against dockerd; `berth registry gc` from another process while it serves; the
 * scheduled GC; /metrics; SIGTERM finishing an in-flight upload.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, PrivateDockerd, BERTH, sleep } from "./harness.js";

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");

const src = new Daemon();
/** Docker's own registry client: a dockerd of this test's (its own bridge, no iptables), busybox loaded from berthd. */
const dockerd = new PrivateDockerd();
let work: string;
let reg: ChildProcess;
let regOut = "";
let port = 0;

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; registry said:\n${regOut.slice(-3000)}`);
    await sleep(50);
  }
}

function startRegistry(args: string[]): { proc: ChildProcess; out: () => string; port: Promise<number> } {
  const proc = spawn(BERTH, ["registry", "serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => { out += d; });
  proc.stderr!.on("data", (d) => { out += d; });
  const p = until("the registry to listen", () => {
    const m = /"msg":"listening","addr":"127\.0\.0\.1:(\d+)"/.exec(out);
    if (proc.exitCode !== null) throw new Error(`berth registry serve exited ${proc.exitCode}: ${out}`);
    return m ? Number(m[1]) : undefined;
  });
  return { proc, out: () => out, port: p };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-registry-it-"));
  // The file says one address and no GC; the flags win for the address, the file's gc keys are used.
  writeFileSync(join(work, "registry.yml"), `addr: 127.0.0.1:1\nroot: ${join(work, "root")}\ngc-interval: 300ms\ngc-lease: 10m\n`);
  const r = startRegistry(["--config", join(work, "registry.yml"), "--addr", "127.0.0.1:0"]);
  reg = r.proc;
  reg.stdout!.on("data", (d) => { regOut += d; });
  port = await r.port;
  regOut = r.out();
  await Promise.all([src.start().then(() => src.bootstrap()), dockerd.start()]);
  dockerd.loadFrom(src, "busybox:latest");
});

after(async () => {
  if (reg.exitCode === null) { reg.kill("SIGTERM"); await until("the registry to exit", () => reg.exitCode !== null || undefined); }
  await dockerd.stop();
  await src.stop();
  rmSync(work, { recursive: true, force: true });
});

test("berth push and pull through berthd; the docker CLI (on berthd) mounts across repositories", () => {
  const ref = `127.0.0.1:${port}/team/bb:1`;
  assert.equal(src.berth(["tag", "busybox", ref]).code, 0);
  const p1 = src.berth(["push", ref]);
  assert.equal(p1.code, 0, p1.stderr + regOut.slice(-2000));
  assert.match(p1.stdout, /Pushed/);
  const digest = /1: digest: (sha256:[0-9a-f]{64}) size: \d+/.exec(p1.stdout)?.[1];
  assert.ok(digest, p1.stdout);
  const p2 = src.berth(["push", ref]);
  assert.equal(p2.code, 0, p2.stderr);
  assert.match(p2.stdout, /Layer already exists/);
  const other = `127.0.0.1:${port}/team/other:1`;
  assert.equal(src.berth(["tag", "busybox", other]).code, 0);
  const p3 = src.docker(["push", other]);
  assert.equal(p3.code, 0, p3.stderr);
  assert.match(p3.stdout, /Mounted from team\/bb/);
  // Pull back: remove the tags, pull by tag, run it.
  assert.equal(src.berth(["rmi", ref, other]).code, 0);
  const pull = src.berth(["pull", ref]);
  assert.equal(pull.code, 0, pull.stderr);
  const insp = spawnSync("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`], { encoding: "utf8" });
  assert.equal((JSON.parse(insp.stdout) as { Digest: string }).Digest, digest);
  assert.equal(src.berth(["run", "--rm", ref, "echo", "round trip"]).stdout, "round trip\n");
  const nf = src.berth(["pull", `127.0.0.1:${port}/team/bb:nosuchtag`]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /manifest unknown/);
});

test("skopeo copy into the registry from a docker-archive (docker save on dockerd) and out of it", () => {
  const archive = join(work, "busybox.tar");
  const save = dockerd.docker(["save", "-o", archive, "busybox:latest"]);
  assert.equal(save.code, 0, save.stderr);
  const inn = spawnSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `docker-archive:${archive}`, `docker://127.0.0.1:${port}/skopeo/busybox:1`], { encoding: "utf8" });
  assert.equal(inn.status, 0, inn.stderr + regOut.slice(-2000));
  const insp = spawnSync("skopeo", ["inspect", "--tls-verify=false", `docker://127.0.0.1:${port}/skopeo/busybox:1`], { encoding: "utf8" });
  assert.equal(insp.status, 0, insp.stderr);
  const info = JSON.parse(insp.stdout) as { Layers: string[]; Digest: string };
  assert.equal(info.Layers.length, 1);
  const out = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://127.0.0.1:${port}/skopeo/busybox:1`, `oci:${join(work, "out")}:1`], { encoding: "utf8" });
  assert.equal(out.status, 0, out.stderr);
  const idx = JSON.parse(readFileSync(join(work, "out", "index.json"), "utf8")) as { manifests: { digest: string }[] };
  const m = JSON.parse(readFileSync(join(work, "out", "blobs", "sha256", idx.manifests[0].digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
  const layer = readFileSync(join(work, "out", "blobs", "sha256", m.layers[0].digest.slice(7)));
  assert.equal(sha256(layer), m.layers[0].digest, "the layer came back byte for byte");
  const tags = spawnSync("skopeo", ["list-tags", "--tls-verify=false", `docker://127.0.0.1:${port}/skopeo/busybox`], { encoding: "utf8" });
  assert.deepEqual((JSON.parse(tags.stdout) as { Tags: string[] }).Tags, ["1"]);
});

test("the docker CLI against dockerd pushes to it and pulls from it (127.0.0.0/8 is insecure by default)", () => {
  const ref = `127.0.0.1:${port}/dockerd/busybox:1`;
  assert.equal(dockerd.docker(["tag", "busybox:latest", ref]).code, 0);
  const push = dockerd.docker(["push", ref]);
  assert.equal(push.code, 0, push.stderr + regOut.slice(-2000));
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  assert.equal(dockerd.docker(["rmi", ref]).code, 0);
  const pull = dockerd.docker(["pull", ref]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));
});

test("berth registry gc from another process while it serves: --dry-run, then a sweep that keeps every tagged image", async () => {
  const stray = randomBytes(4096);
  const post = await fetch(`http://127.0.0.1:${port}/v2/team/stray/blobs/uploads/?digest=${sha256(stray)}`, { method: "POST", body: new Uint8Array(stray) });
  assert.equal(post.status, 201);
  const root = join(work, "root");
  const dry = spawnSync(BERTH, ["registry", "gc", "--root", root, "--gc-lease", "0s", "--dry-run"], { encoding: "utf8" });
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, new RegExp(`would delete blob ${sha256(stray)}`));
  assert.equal((await fetch(`http://127.0.0.1:${port}/v2/team/stray/blobs/${sha256(stray)}`, { method: "HEAD" })).status, 200);
  const real = spawnSync(BERTH, ["registry", "gc", "--root", root, "--gc-lease", "0s"], { encoding: "utf8" });
  assert.equal(real.status, 0, real.stderr);
  assert.match(real.stdout, new RegExp(`deleted blob ${sha256(stray)}`));
  assert.match(real.stdout, /blobs marked, 1 blobs deleted/);
  assert.equal((await fetch(`http://127.0.0.1:${port}/v2/team/stray/blobs/${sha256(stray)}`, { method: "HEAD" })).status, 404);
  assert.ok(!existsSync(join(root, "blobs", "sha256", sha256(stray).slice(7))));
  for (const ref of ["team/bb:1", "team/other:1", "skopeo/busybox:1", "dockerd/busybox:1"]) {
    const insp = spawnSync("skopeo", ["inspect", "--tls-verify=false", `docker://127.0.0.1:${port}/${ref}`], { encoding: "utf8" });
    assert.equal(insp.status, 0, `${ref}: ${insp.stderr}`);
  }
  const copy = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://127.0.0.1:${port}/team/bb:1`, `oci:${join(work, "after-gc")}:1`], { encoding: "utf8" });
  assert.equal(copy.status, 0, copy.stderr);
});

test("the scheduled GC runs while serving, and /metrics reports requests, bytes, latencies and storage", async () => {
  await until("a scheduled gc run in the log", () => /"gc":true,"dryRun":false/.test(regOut) || undefined);
  const line = regOut.split("\n").find((l) => l.includes('"gc":true'))!;
  assert.equal((JSON.parse(line) as { deletedBlobs: number }).deletedBlobs, 0, "within the lease nothing is collected");
  const r = await fetch(`http://127.0.0.1:${port}/metrics`);
  const t = await r.text();
  assert.match(t, /^berth_registry_requests_total\{method="PUT",status="201"\} [1-9]\d*$/m);
  assert.match(t, /^berth_registry_requests_total\{method="HEAD",status="200"\} [1-9]\d*$/m);
  assert.match(t, /^berth_registry_storage_bytes [1-9]\d*$/m);
  assert.match(t, /^berth_registry_request_duration_seconds_count [1-9]\d*$/m);
  // Access log lines: one JSON object per request.
  const access = regOut.split("\n").filter((l) => l.includes('"method":'));
  assert.ok(access.length > 10);
  const a = JSON.parse(access[0]) as Record<string, unknown>;
  for (const k of ["method", "path", "status", "bytes", "ms"]) assert.ok(k in a, k);
});

test("SIGTERM lets an in-flight upload finish, then the server exits 0", async () => {
  const post = await fetch(`http://127.0.0.1:${port}/v2/team/term/blobs/uploads/`, { method: "POST" });
  const loc = post.headers.get("location")!;
  const blob = randomBytes(200_000);
  const s = connect(port, "127.0.0.1");
  let answer = "";
  s.on("data", (d) => { answer += d; });
  s.write(`PATCH ${loc} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\nConnection: close\r\n\r\n`);
  s.write(blob.subarray(0, 100_000));
  await until("the first half to land", async () => {
    const st = await fetch(`http://127.0.0.1:${port}${loc}`);
    return st.headers.get("range") === "0-99999" || undefined;
  });
  reg.kill("SIGTERM");
  await until("the shutdown to begin", () => /"msg":"shutting down"/.test(regOut) || undefined);
  assert.equal(reg.exitCode, null, "still serving the upload");
  s.write(blob.subarray(100_000));
  await until("the answer", () => /\r\n\r\n/.test(answer) || undefined);
  assert.match(answer, /^HTTP\/1\.1 202 /);
  assert.match(answer, /\r\nRange: 0-199999\r\n/i);
  s.destroy();
  const code = await until("the registry to exit", () => reg.exitCode ?? undefined);
  assert.equal(code, 0);
  assert.match(regOut, /"msg":"stopped"/);
});

test("a killed upload (the client cut off mid-chunk, then the registry itself killed -9) shows no blob, and resumes from the offset GET reports", async () => {
  const root = join(work, "killed-root");
  let r = startRegistry(["--root", root, "--addr", "127.0.0.1:0"]);
  try {
    let p = await r.port;
    const blob = randomBytes(3_000_000);
    const digest = sha256(blob);
    const post = await fetch(`http://127.0.0.1:${p}/v2/killed/bb/blobs/uploads/`, { method: "POST" });
    assert.equal(post.status, 202);
    const loc = post.headers.get("location")!;
    const path = loc.startsWith("http") ? new URL(loc).pathname + new URL(loc).search : loc;
    // The client dies one megabyte into a three-megabyte PATCH.
    const s = connect(p, "127.0.0.1");
    s.on("error", () => {});
    s.write(`PATCH ${path} HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${blob.length}\r\n\r\n`);
    s.write(blob.subarray(0, 1_000_000));
    await until("the first megabyte to land", async () => (await fetch(`http://127.0.0.1:${p}${path}`)).headers.get("range") === "0-999999" || undefined);
    s.destroy();
    assert.equal((await fetch(`http://127.0.0.1:${p}/v2/killed/bb/blobs/${digest}`, { method: "HEAD" })).status, 404, "nothing visible");
    // Then the registry dies too, and starts again on the same root: the upload is still there, at its offset.
    r.proc.kill("SIGKILL");
    await until("the registry to die", () => r.proc.exitCode !== null || r.proc.signalCode !== null || undefined);
    r = startRegistry(["--root", root, "--addr", "127.0.0.1:0"]);
    p = await r.port;
    assert.equal((await fetch(`http://127.0.0.1:${p}/v2/killed/bb/blobs/${digest}`, { method: "HEAD" })).status, 404, "nothing visible after the restart");
    const st = await fetch(`http://127.0.0.1:${p}${path}`);
    assert.equal(st.status, 204);
    const range = st.headers.get("range")!;
    const at = Number(/^0-(\d+)$/.exec(range)![1]) + 1;
    assert.equal(at, 1_000_000);
    // A chunk that does not start at the offset is refused; the rest from the offset, then the PUT, succeed.
    const wrong = await fetch(`http://127.0.0.1:${p}${path}`, { method: "PATCH", headers: { "Content-Type": "application/octet-stream", "Content-Range": `0-9` }, body: new Uint8Array(blob.subarray(0, 10)) });
    assert.equal(wrong.status, 416);
    const rest = await fetch(`http://127.0.0.1:${p}${path}`, { method: "PATCH", headers: { "Content-Type": "application/octet-stream", "Content-Range": `${at}-${blob.length - 1}` }, body: new Uint8Array(blob.subarray(at)) });
    assert.equal(rest.status, 202);
    assert.equal(rest.headers.get("range"), `0-${blob.length - 1}`);
    const put = await fetch(`http://127.0.0.1:${p}${path}${path.includes("?") ? "&" : "?"}digest=${digest}`, { method: "PUT" });
    assert.equal(put.status, 201);
    const got = Buffer.from(await (await fetch(`http://127.0.0.1:${p}/v2/killed/bb/blobs/${digest}`)).arrayBuffer());
    assert.equal(sha256(got), digest, "the blob is whole");
  } finally {
    if (r.proc.exitCode === null && r.proc.signalCode === null) { r.proc.kill("SIGTERM"); await until("the second registry to exit", () => r.proc.exitCode !== null || r.proc.signalCode !== null || undefined); }
  }
});
