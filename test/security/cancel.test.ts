/**
 * A pull whose client has gone stops (issue 8), as dockerd cancels a pull
 * with its request's context: a real registry (Debian's docker-registry) on
 * 127.0.0.1 sits behind a throttling TCP proxy made here, so a pull of a
 * 32 MiB layer is slow enough to cut. The client's connection is destroyed
 * mid-download; then the daemon must have no work left: no connection to the
 * registry, no partial blob in content/ingest, no tmp- dir under snapshots/,
 * no image. The next pull of the same image completes and the image runs. Two
 * clients pulling the same image: the one that stays gets its image when the
 * other goes away.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, readdirSync, existsSync, statSync, copyFileSync, symlinkSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import net from "node:net";
import { Daemon, sleep, api } from "../integration/harness.js";

const d = new Daemon();
let work: string;
let registry: ChildProcess | undefined;
let regPort = 0;
let proxy: Throttle;

const BIG = 32 << 20;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

/** Polls `check` until it returns true, or fails with `what` at the deadline. */
async function until(what: string | (() => string), check: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(50);
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of the registry that forwards the registry's answers at `rate`
 * bytes a second (Infinity: as fast as they come); it counts the connections open through it.
 */
class Throttle {
  rate = 1 << 20;
  readonly open = new Set<net.Socket>();
  private server!: net.Server;
  port = 0;

  /** Bytes forwarded towards the registry (uploads). */
  sent = 0;

  async start(target: number): Promise<void> {
    this.server = net.createServer((client) => {
      this.open.add(client);
      const up = net.connect(target, "127.0.0.1");
      client.on("close", () => { this.open.delete(client); up.destroy(); });
      up.on("close", () => client.destroy());
      client.on("error", () => up.destroy());
      up.on("error", () => client.destroy());
      this.forward(client, up, (n) => { this.sent += n; });
      this.forward(up, client, () => {});
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** from → to at `rate` (read as each chunk goes, so it can change mid-transfer). */
  private forward(from: net.Socket, to: net.Socket, count: (n: number) => void): void {
    let timer: NodeJS.Timeout | undefined;
    from.on("close", () => clearTimeout(timer));
    to.on("drain", () => { if (!timer) from.resume(); });
    from.on("data", (chunk: Buffer) => {
      count(chunk.length);
      if (!to.write(chunk)) from.pause(); // resumed on drain
      if (this.rate === Infinity) return;
      from.pause();
      timer = setTimeout(() => { timer = undefined; if (!to.writableNeedDrain) from.resume(); }, Math.ceil((chunk.length / this.rate) * 1000));
    });
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

/** Uploads a blob to the registry (monolithic). */
async function putBlob(repo: string, b: Buffer): Promise<string> {
  const digest = sha(b);
  const start = await fetch(`http://127.0.0.1:${regPort}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  assert.equal(start.status, 202);
  const loc = new URL(start.headers.get("location")!, `http://127.0.0.1:${regPort}`);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, { method: "PUT", body: new Uint8Array(b), headers: { "Content-Type": "application/octet-stream" } });
  assert.equal(put.status, 201, await put.text());
  return digest;
}

/** A layer tar: busybox (so it runs) and /big.bin, BIG random bytes; and the sha256 of those bytes. */
function makeLayer(name: string): { layer: Buffer; sum: string } {
  const root = join(work, name);
  mkdirSync(join(root, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", join(root, "bin/busybox"));
  symlinkSync("busybox", join(root, "bin/sh"));
  const big = randomBytes(BIG);
  writeFileSync(join(root, "big.bin"), big);
  const tar = join(work, `${name}.tar`);
  const r = spawnSync("tar", ["--owner=0", "--group=0", "-C", root, "-cf", tar, "bin", "big.bin"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const layer = readFileSync(tar);
  rmSync(root, { recursive: true, force: true });
  rmSync(tar, { force: true });
  return { layer, sum: createHash("sha256").update(big).digest("hex") };
}

/**
 * An image of one uncompressed layer: busybox (so it runs) and /big.bin, BIG random bytes, pushed as
 * `repo:1`. Returns the content's sha256 so a run can check it arrived whole.
 */
async function makeImage(repo: string): Promise<string> {
  const { layer, sum } = makeLayer(repo.replace(/\//g, "_"));
  const layerDigest = await putBlob(repo, layer);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["sh"] }, rootfs: { type: "layers", diff_ids: [layerDigest] } }));
  const configDigest = await putBlob(repo, config);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: layerDigest, size: layer.length }],
  });
  const put = await fetch(`http://127.0.0.1:${regPort}/v2/${repo}/manifests/1`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
  assert.equal(put.status, 201, await put.text());
  return sum;
}

/** A pull over raw HTTP on the daemon's socket: its progress lines as they come, and a way to cut it. */
function startPull(ref: string): { lines: string[]; done: Promise<void>; cut: () => void } {
  const lines: string[] = [];
  let req!: http.ClientRequest;
  const done = new Promise<void>((resolve, reject) => {
    req = http.request({ socketPath: d.sock, method: "POST", path: `/images/create?fromImage=${encodeURIComponent(ref)}&tag=1` }, (res) => {
      let buf = "";
      res.on("data", (c: Buffer) => {
        buf += c.toString();
        for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) lines.push(buf.slice(0, i));
      });
      res.on("end", () => resolve());
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("aborted")));
    });
    req.on("error", reject);
    req.end();
  });
  done.catch(() => {});
  return { lines, done, cut: () => req.destroy() };
}

const ingest = () => readdirSync(join(d.dataRoot, "content/ingest"));
const ingestBytes = () => ingest().reduce((a, n) => { try { return a + statSync(join(d.dataRoot, "content/ingest", n)).size; } catch { return a; } }, 0);
const tmpSnapshots = () => readdirSync(join(d.dataRoot, "snapshots")).filter((n) => n.startsWith("tmp-"));
const downloading = (lines: string[]) => lines.some((l) => l.includes('"Downloading"'));
const imagePresent = async (ref: string) => (await api(d.sock, "GET", `/images/${encodeURIComponent(ref)}/json`)).status === 200;

/** The daemon has no work left for a cancelled pull: nothing half-written, nothing still reading the registry. */
async function idle(ref: string, openAllowed = 0): Promise<void> {
  await until(() => `a quiet daemon: ingest=${ingest().join(",")} tmp=${tmpSnapshots().join(",")} proxy connections=${proxy.open.size}`,
    () => ingest().length === 0 && tmpSnapshots().length === 0 && proxy.open.size <= openAllowed);
  assert.equal(await imagePresent(ref), false, "a cancelled pull recorded no image");
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-cancel-"));
  regPort = await freePort();
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\nhttp:\n  addr: 127.0.0.1:${regPort}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  await until("the registry", () => fetch(`http://127.0.0.1:${regPort}/v2/`).then((r) => r.ok, () => false), 15_000);
  proxy = new Throttle();
  await proxy.start(regPort);
  await d.start();
});

after(async () => {
  await proxy?.stop();
  await d.stop();
  registry?.kill();
  if (registry && registry.exitCode === null) await new Promise((r) => registry!.once("exit", r));
  if (work) rmSync(work, { recursive: true, force: true });
});

test("a pull whose client goes away stops and leaves nothing; the next pull completes and runs", async () => {
  const sum = await makeImage("cancel/one");
  const ref = `127.0.0.1:${proxy.port}/cancel/one`;
  proxy.rate = 1 << 20; // 32 MiB at 1 MiB/s: half a minute, far longer than it takes to cut it
  const a = startPull(ref);
  // Cut mid-download: the layer job is writing the blob and unpacking into its tmp- dir.
  await until("the download to be under way", () => downloading(a.lines) && ingestBytes() > 0 && tmpSnapshots().length > 0);
  a.cut();
  await idle(`${ref}:1`);
  assert.equal(existsSync(join(d.dataRoot, "content/ingest")), true);

  // The same image again, now at full speed: it completes, and runs with every byte of the layer.
  proxy.rate = Infinity;
  const b = startPull(ref);
  await b.done;
  assert.ok(b.lines.some((l) => l.includes("Status: Downloaded newer image")), b.lines.join("\n"));
  assert.ok(!b.lines.some((l) => l.includes('"error"')), b.lines.join("\n"));
  const run = d.berth(["run", "--rm", `${ref}:1`, "busybox", "sha256sum", "/big.bin"], { timeout: 120_000 });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.split(/\s+/)[0], sum);
  assert.equal(ingest().length, 0);
  assert.equal(tmpSnapshots().length, 0);
});

test("two clients pull the same image: one going away leaves the other's pull running to the end", async () => {
  const sum = await makeImage("cancel/two");
  const ref = `127.0.0.1:${proxy.port}/cancel/two`;
  proxy.rate = 1 << 20;
  const before = proxy.open.size;
  const a = startPull(ref);
  const b = startPull(ref);
  await until("both downloads to be under way", () => downloading(a.lines) && downloading(b.lines) && ingest().length >= 2);
  a.cut();
  // A's work stops (its partial blob and tmp- dir go) while B's goes on.
  await until(() => `one download left: ingest=${ingest().join(",")} tmp=${tmpSnapshots().join(",")}`, () => ingest().length === 1 && tmpSnapshots().length === 1);
  assert.equal(b.lines.some((l) => l.includes('"error"')), false, b.lines.join("\n"));
  proxy.rate = Infinity;
  await b.done;
  assert.ok(b.lines.some((l) => l.includes("Status: Downloaded newer image")), b.lines.join("\n"));
  assert.equal(await imagePresent(`${ref}:1`), true);
  const run = d.berth(["run", "--rm", `${ref}:1`, "busybox", "sha256sum", "/big.bin"], { timeout: 120_000 });
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.split(/\s+/)[0], sum);
  await until("no ingest, no tmp- snapshot, no registry connection", () => ingest().length === 0 && tmpSnapshots().length === 0 && proxy.open.size <= before);
});

test("a push whose client goes away stops uploading and puts no manifest; the next push completes", async () => {
  // An image made here (imported), whose layer the registry has in no repository: the push must upload it.
  const ref = `127.0.0.1:${proxy.port}/cancel/pushed`;
  const imp = await api(d.sock, "POST", `/images/create?fromSrc=-&repo=${encodeURIComponent(ref)}&tag=1`, makeLayer("pushed").layer, { "Content-Type": "application/x-tar" });
  assert.equal(imp.status, 200, imp.body);
  assert.equal(await imagePresent(`${ref}:1`), true);
  const manifest = () => fetch(`http://127.0.0.1:${regPort}/v2/cancel/pushed/manifests/1`, { headers: { Accept: "application/vnd.oci.image.manifest.v1+json" } }).then((r) => r.status);
  proxy.rate = 1 << 20;
  const sent0 = proxy.sent;
  const lines: string[] = [];
  const req = http.request({ socketPath: d.sock, method: "POST", path: `/images/${encodeURIComponent(ref)}/push?tag=1`, headers: { "X-Registry-Auth": "e30=" } }, (res) => {
    res.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter(Boolean)));
    res.on("error", () => {});
  });
  req.on("error", () => {});
  req.end();
  await until("the upload to be under way", () => lines.some((l) => l.includes('"Pushing"')) && proxy.sent - sent0 > 2 << 20);
  req.destroy();
  // The daemon stops uploading: its connections through the proxy close (an upload still streaming holds one).
  await until(() => `no connection left through the proxy (${proxy.open.size} open)`, () => proxy.open.size === 0);
  assert.equal(await manifest(), 404, "a cancelled push put no manifest");
  assert.ok(proxy.sent - sent0 < BIG, "the cancelled push did not upload the whole layer");

  proxy.rate = Infinity;
  const again = await api(d.sock, "POST", `/images/${encodeURIComponent(ref)}/push?tag=1`, undefined, { "X-Registry-Auth": "e30=" });
  assert.equal(again.status, 200);
  assert.ok(!again.body.includes('"error"'), again.body);
  assert.match(again.body, /1: digest: sha256:[a-f0-9]{64}/);
  assert.equal(await manifest(), 200);
  assert.equal(d.berth(["rmi", `${ref}:1`]).code, 0);
});

test("a build whose client goes away stops its base image's pull", async () => {
  await makeImage("cancel/three");
  const ref = `127.0.0.1:${proxy.port}/cancel/three`;
  const ctx = join(work, "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "Dockerfile"), `FROM ${ref}:1\nRUN true\n`);
  const tar = spawnSync("tar", ["-C", ctx, "-cf", "-", "Dockerfile"]);
  assert.equal(tar.status, 0);
  proxy.rate = 1 << 20;
  const lines: string[] = [];
  const req = http.request({ socketPath: d.sock, method: "POST", path: "/build?t=cancel-build:1", headers: { "Content-Type": "application/x-tar" } }, (res) => {
    res.on("data", (c: Buffer) => lines.push(...c.toString().split("\n").filter(Boolean)));
    res.on("error", () => {});
  });
  req.on("error", () => {});
  req.end(tar.stdout);
  await until(() => `the base image's download to be under way: ${lines.join(" ")}`, () => ingestBytes() > 0 && tmpSnapshots().length > 0);
  req.destroy();
  await idle(`${ref}:1`);
  assert.equal(await imagePresent("cancel-build:1"), false);
  proxy.rate = Infinity;
});
