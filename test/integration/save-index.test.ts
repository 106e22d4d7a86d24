/**
 * `save` of a multi-platform image (a local index) keeps every platform: the archive's index.json names the
 * index (as docker's containerd image store saves one) and holds each entry's manifest, config and layers;
 * manifest.json lists the host's entry for loaders that read only a docker-archive. `load` of it, into
 * another daemon, gives the index back under its tag with both platforms, and `run` picks the host's.
 * `build --output` of such a build: type=oci the same index; type=local and type=tar each platform's
 * filesystem under linux_amd64/ and linux_arm64/, as BuildKit writes them.
 * A build FROM scratch with COPY only makes the two platforms without running foreign code (no qemu).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tar from "tar-stream";
import { Daemon } from "./harness.js";

const a = new Daemon();
const b = new Daemon();
let work: string;
const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => { assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`); return r.stdout; };

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-save-index-"));
  await Promise.all([a.start().then(() => a.bootstrap()), b.start().then(() => b.bootstrap())]);
});

after(async () => {
  await Promise.all([a.stop(), b.stop()]);
  rmSync(work, { recursive: true, force: true });
});

async function entries(file: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const x = tar.extract();
  x.on("entry", (h, s, next) => { const c: Buffer[] = []; s.on("data", (d) => c.push(d as Buffer)); s.on("end", () => { out.set(h.name, Buffer.concat(c)); next(); }); });
  const done = new Promise<void>((r, j) => { x.on("finish", () => r()); x.on("error", j); });
  x.end(readFileSync(file));
  await done;
  return out;
}

test("save of a two-platform image keeps the index and both platforms; load into another daemon gives them back", async () => {
  const ctx = join(work, "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "hello-amd64"), "hello from amd64\n");
  writeFileSync(join(ctx, "hello-arm64"), "hello from arm64\n");
  writeFileSync(join(ctx, "Dockerfile"), "FROM scratch\nARG TARGETARCH\nCOPY hello-$TARGETARCH /hello\nLABEL arch=$TARGETARCH\n");
  ok(a.berth(["build", "--platform", "linux/amd64,linux/arm64", "-t", "si/multi:1", ctx]), "build");
  const tarFile = join(work, "multi.tar");
  ok(a.berth(["save", "-o", tarFile, "si/multi:1"]), "save");

  const files = await entries(tarFile);
  const index = JSON.parse(files.get("index.json")!.toString()) as { manifests: { mediaType: string; digest: string; annotations?: Record<string, string> }[] };
  assert.equal(index.manifests.length, 1);
  assert.equal(index.manifests[0].mediaType, "application/vnd.oci.image.index.v1+json");
  assert.equal(index.manifests[0].annotations?.["io.containerd.image.name"], "docker.io/si/multi:1");
  const inner = JSON.parse(files.get(`blobs/sha256/${index.manifests[0].digest.slice(7)}`)!.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
  assert.deepEqual(inner.manifests.map((m) => m.platform.architecture).sort(), ["amd64", "arm64"]);
  for (const m of inner.manifests) {
    const man = JSON.parse(files.get(`blobs/sha256/${m.digest.slice(7)}`)!.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    const cfg = JSON.parse(files.get(`blobs/sha256/${man.config.digest.slice(7)}`)!.toString()) as { architecture: string };
    assert.equal(cfg.architecture, m.platform.architecture);
    for (const l of man.layers) assert.ok(files.has(`blobs/sha256/${l.digest.slice(7)}`), `layer ${l.digest} of ${m.platform.architecture}`);
  }
  // manifest.json: the host's entry, for docker-archive loaders.
  const mj = JSON.parse(files.get("manifest.json")!.toString()) as { RepoTags: string[]; Config: string }[];
  assert.deepEqual(mj.map((x) => x.RepoTags), [["si/multi:1"]]);
  assert.equal((JSON.parse(files.get(mj[0].Config)!.toString()) as { architecture: string }).architecture, "amd64");

  // Into another daemon: the index under its tag, both platforms, and run takes the host's entry.
  const loaded = ok(b.berth(["load", "-i", tarFile]), "load");
  assert.match(loaded, /Loaded image: si\/multi:1/);
  const list = JSON.parse(ok(b.berth(["manifest", "inspect", "si/multi:1"]), "manifest inspect")) as { manifests: { platform: { architecture: string } }[] };
  assert.deepEqual(list.manifests.map((m) => m.platform.architecture).sort(), ["amd64", "arm64"]);
  const label = ok(b.berth(["image", "inspect", "--format", "{{.Config.Labels.arch}}", "si/multi:1"]), "inspect");
  assert.equal(label.trim(), "amd64");
  // What b has is whole: its own save of the tag is the same archive, byte for byte in every blob.
  const again = join(work, "again.tar");
  ok(b.berth(["save", "-o", again, "si/multi:1"]), "save from b");
  const files2 = await entries(again);
  assert.deepEqual([...files2.keys()].sort(), [...files.keys()].sort());
  for (const [k, v] of files) assert.ok(files2.get(k)!.equals(v), `${k} differs`);
  // The same archive again: nothing new, the same answer.
  assert.match(ok(b.berth(["load", "-i", tarFile]), "load again"), /Loaded image: si\/multi:1/);
  // build --output type=oci of the same build: the same index, every platform in the archive.
  const oci = join(work, "out-oci.tar");
  ok(a.berth(["build", "--platform", "linux/amd64,linux/arm64", "--output", `type=oci,dest=${oci}`, "-t", "si/multi:1", ctx]), "build --output type=oci");
  const files3 = await entries(oci);
  const index3 = JSON.parse(files3.get("index.json")!.toString()) as typeof index;
  assert.equal(index3.manifests[0].digest, index.manifests[0].digest, "the same index as save's");
  for (const k of files.keys()) if (k.startsWith("blobs/")) assert.ok(files3.has(k), `${k} in the type=oci archive`);
  // type=local and type=tar: each platform's filesystem under linux_amd64/ and linux_arm64/, as BuildKit writes them.
  const local = join(work, "out-local");
  ok(a.berth(["build", "--platform", "linux/amd64,linux/arm64", "--output", `type=local,dest=${local}`, ctx]), "build --output type=local");
  assert.equal(readFileSync(join(local, "linux_amd64", "hello"), "utf8"), "hello from amd64\n");
  assert.equal(readFileSync(join(local, "linux_arm64", "hello"), "utf8"), "hello from arm64\n");
  const tarOut = join(work, "out.tar");
  ok(a.berth(["build", "--platform", "linux/amd64,linux/arm64", "--output", `type=tar,dest=${tarOut}`, ctx]), "build --output type=tar");
  const files4 = await entries(tarOut);
  assert.equal(files4.get("linux_arm64/hello")?.toString(), "hello from arm64\n");
  assert.equal(files4.get("linux_amd64/hello")?.toString(), "hello from amd64\n");
  ok(b.berth(["rmi", "si/multi:1"]), "rmi b");
  ok(a.berth(["rmi", "si/multi:1"]), "rmi a");
});


test("the platforms of a multi-platform build run side by side, and a failing one stops the build", async () => {
  const ctx = join(work, "par");
  mkdirSync(ctx, { recursive: true });
  // The RUN runs on the build's own platform (as a cross-compile does), once per target platform.
  writeFileSync(join(ctx, "Dockerfile"), [
    "FROM --platform=$BUILDPLATFORM busybox AS work",
    "ARG TARGETARCH",
    "RUN cut -d' ' -f1 /proc/uptime > /t0 && echo $TARGETARCH > /arch && sleep 1 && cut -d' ' -f1 /proc/uptime > /t1",
    "FROM scratch",
    "COPY --from=work /t0 /t1 /arch /",
    "",
  ].join("\n"));
  const out = join(work, "par-out");
  const r = a.berth(["build", "--platform", "linux/amd64,linux/arm64", "--output", `type=local,dest=${out}`, ctx]);
  ok(r, "build");
  // Classic output lines carry their platform.
  assert.match(r.stdout, /^\[linux\/arm64\] Step 3\/5 : RUN /m);
  // The kernel's uptime: one clock for every container.
  const span = (p: string) => [Number(readFileSync(join(out, p, "t0"), "utf8")), Number(readFileSync(join(out, p, "t1"), "utf8"))];
  const [a0, a1] = span("linux_amd64"), [b0, b1] = span("linux_arm64");
  assert.equal(readFileSync(join(out, "linux_arm64", "arch"), "utf8"), "arm64\n");
  assert.ok(a0 < b1 && b0 < a1, `the two RUN steps overlap in time (amd64 ${a0}-${a1}, arm64 ${b0}-${b1})`);
  // One platform's RUN fails: the build fails with its error, and the other's is stopped.
  writeFileSync(join(ctx, "Dockerfile"), [
    "FROM --platform=$BUILDPLATFORM busybox",
    "ARG TARGETARCH",
    "RUN if [ $TARGETARCH = arm64 ]; then echo arm64 fails; exit 3; else sleep 60; fi",
    "",
  ].join("\n"));
  const t0 = Date.now();
  const f = a.berth(["build", "--platform", "linux/amd64,linux/arm64", "-t", "si/fail", ctx], { timeout: 50_000 });
  assert.equal(f.code, 1, f.stdout + f.stderr);
  assert.match(f.stderr, /returned a non-zero code: 3/);
  assert.ok(Date.now() - t0 < 50_000, "the amd64 RUN (sleep 60) was stopped");
  assert.equal(a.berth(["image", "inspect", "si/fail"]).code, 1);
});
