/**
 * Pull from a real registry (Debian's docker-registry, CNCF distribution) on
 * 127.0.0.1: an image written by skopeo is pulled into a fresh data root and
 * runs; layers are fetched and unpacked once; the docker CLI pulls through
 * berthd too.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { Daemon, sleep } from "./harness.js";

const src = new Daemon();
const dst = new Daemon();
let work: string;
let registry: ChildProcess | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

/** Writes the image `ref` of a daemon's store as an OCI layout (what `save --format oci` will do). */
function ociLayout(d: Daemon, ref: string, dir: string, tag: string): void {
  const images = JSON.parse(readFileSync(join(d.dataRoot, "images.json"), "utf8")) as { images: { manifestDigest: string; repoTags: string[] }[] };
  const img = images.images.find((i) => i.repoTags.includes(ref))!;
  const blob = (dg: string) => join(d.dataRoot, "content/blobs/sha256", dg.slice(7));
  mkdirSync(join(dir, "blobs/sha256"), { recursive: true });
  const manifestBytes = readFileSync(blob(img.manifestDigest));
  const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const dg of [img.manifestDigest, manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) copyFileSync(blob(dg), join(dir, "blobs/sha256", dg.slice(7)));
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: img.manifestDigest, size: manifestBytes.length, annotations: { "org.opencontainers.image.ref.name": tag } }] }));
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-reg-"));
  port = await freePort();
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false);
    if (ok) break;
    await sleep(100);
  }
  await src.start();
  await src.bootstrap();
  await dst.start();
  ociLayout(src, "docker.io/library/busybox:latest", join(work, "layout"), "1.0");
  for (const [tag, extra] of [["1.0", []], ["gz", ["--dest-compress"]]] as const) {
    const r = spawnSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", ...extra, `oci:${join(work, "layout")}:1.0`, `docker://127.0.0.1:${port}/team/bb:${tag}`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
});

after(async () => {
  registry?.kill("SIGTERM");
  await src.stop();
  await dst.stop();
  rmSync(work, { recursive: true, force: true });
});

test("pull from a local registry into a fresh data root, then run", () => {
  const ref = `127.0.0.1:${port}/team/bb:1.0`;
  const p = dst.berth(["pull", ref]);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(dst.berth(["run", "--rm", ref, "echo", "pulled and running"]).stdout, "pulled and running\n");
  const srcId = src.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout.trim();
  assert.equal(dst.berth(["image", "inspect", "-f", "{{.Id}}", ref]).stdout.trim(), srcId, "same config, same image ID");
  assert.match(dst.berth(["images", "--digests", "--format", "{{.Digest}}"]).stdout, /sha256:[0-9a-f]{64}/);
});

test("a compressed layer already in the store is not unpacked again; the docker CLI pulls through berthd", () => {
  const snaps = () => JSON.parse(readFileSync(join(dst.dataRoot, "snapshots/index.json"), "utf8")) as { snapshots: Record<string, unknown> };
  const before = Object.keys(snaps().snapshots).length;
  const r = dst.docker(["pull", `127.0.0.1:${port}/team/bb:gz`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Object.keys(snaps().snapshots).length, before, "same diff ID: no second snapshot");
  assert.equal(dst.berth(["run", "--rm", `127.0.0.1:${port}/team/bb:gz`, "true"]).code, 0);
});

test("pull errors are Docker's", () => {
  const nf = dst.berth(["pull", `127.0.0.1:${port}/team/bb:nosuchtag`]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /manifest for 127\.0\.0\.1:\d+\/team\/bb:nosuchtag not found: manifest unknown/);
  const missing = dst.berth(["run", "--rm", `127.0.0.1:${port}/team/nothing`, "true"]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /Unable to find image/);
});
