/**
 * Pull from a real registry (Debian's docker-registry, CNCF distribution) on
 * 127.0.0.1: an image written by skopeo is pulled into a fresh data root and
 * runs; layers are fetched and unpacked once; the docker CLI pulls through
 * berthd too; zstd-compressed layers pull like gzip ones.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, readFileSync, rmSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, sleep, BERTH, freePort } from "./harness.js";

const src = new Daemon();
const dst = new Daemon();
let work: string;
let registry: ChildProcess | undefined;
let authRegistry: ChildProcess | undefined;
let port = 0;
let authPort = 0;


/** Writes the image `ref` of a daemon's store as an OCI layout (what `save --format oci` will do). */
/** An image's manifest digest, as the daemon reports it (its metadata files are a journal: not for tests to parse). */
function manifestDigestOf(d: Daemon, ref: string): string {
  const r = d.berth(["image", "inspect", "-f", "{{.Descriptor.digest}}", ref]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

function ociLayout(d: Daemon, ref: string, dir: string, tag: string): void {
  const img = { manifestDigest: manifestDigestOf(d, ref) };
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
  // A second registry that wants htpasswd basic auth.
  authPort = await freePort();
  assert.equal(spawnSync("htpasswd", ["-Bbc", join(work, "htpasswd"), "alice", "s3cret"]).status, 0);
  writeFileSync(join(work, "auth.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/auth-storage\nauth:\n  htpasswd:\n    realm: berth-test\n    path: ${work}/htpasswd\nhttp:\n  addr: 127.0.0.1:${authPort}\n`);
  authRegistry = spawn("docker-registry", ["serve", join(work, "auth.yml")], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    const st = await fetch(`http://127.0.0.1:${authPort}/v2/`).then((r) => r.status, () => 0);
    if (st === 401) break;
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
  authRegistry?.kill("SIGTERM");
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
  // Unpacked layers: the numbered directories under snapshots/.
  const snaps = () => ({ snapshots: Object.fromEntries(readdirSync(join(dst.dataRoot, "snapshots")).filter((n) => /^\d+$/.test(n)).map((n) => [n, true])) });
  const before = Object.keys(snaps().snapshots).length;
  const r = dst.docker(["pull", `127.0.0.1:${port}/team/bb:gz`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(Object.keys(snaps().snapshots).length, before, "same diff ID: no second snapshot");
  assert.equal(dst.berth(["run", "--rm", `127.0.0.1:${port}/team/bb:gz`, "true"]).code, 0);
});

test("a zstd-compressed layer (OCI tar+zstd) is pulled, verified and unpacked", () => {
  // busybox's layer plus a layer compressed here with the zstd CLI, as one OCI image in the registry.
  const lay = join(work, "zstd-layout");
  ociLayout(src, "docker.io/library/busybox:latest", lay, "z");
  const blob = (dg: string) => join(lay, "blobs/sha256", dg.slice(7));
  const sha = (f: string) => `sha256:${spawnSync("sha256sum", [f], { encoding: "utf8" }).stdout.split(" ")[0]}`;
  const gen = join(work, "zstd-gen");
  mkdirSync(join(gen, "etc"), { recursive: true });
  const marker = `from a zstd layer ${Date.now()}\n`;
  writeFileSync(join(gen, "etc/zstd-marker"), marker);
  writeFileSync(join(gen, "etc/bulk"), "x".repeat(3 << 20));
  assert.equal(spawnSync("tar", ["-C", gen, "-cf", `${gen}.tar`, "etc"]).status, 0);
  const zr = spawnSync("zstd", ["-q", "-19", `${gen}.tar`, "-o", `${gen}.tar.zst`], { encoding: "utf8" });
  assert.equal(zr.status, 0, `zstd CLI (scripts/setup.sh installs it): ${zr.stderr}`);
  const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", digest: sha(`${gen}.tar.zst`), size: readFileSync(`${gen}.tar.zst`).length };
  copyFileSync(`${gen}.tar.zst`, blob(layer.digest));
  const index = JSON.parse(readFileSync(join(lay, "index.json"), "utf8")) as { manifests: { digest: string; size: number }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8")) as { config: { digest: string; size: number }; layers: object[] };
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), "utf8")) as { rootfs: { diff_ids: string[] }; history?: object[] };
  config.rootfs.diff_ids.push(sha(`${gen}.tar`));
  config.history?.push({ created_by: "zstd test layer" });
  const put = (o: object) => {
    const p = join(lay, "tmp.json");
    writeFileSync(p, JSON.stringify(o));
    const d = { digest: sha(p), size: readFileSync(p).length };
    copyFileSync(p, blob(d.digest));
    rmSync(p);
    return d;
  };
  manifest.config = { ...manifest.config, ...put(config) };
  manifest.layers.push(layer);
  const man = put(manifest);
  writeFileSync(join(lay, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...man, annotations: { "org.opencontainers.image.ref.name": "z" } }] }));
  const ref = `127.0.0.1:${port}/team/zstd:1`;
  const cp = spawnSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${lay}:z`, `docker://${ref}`], { encoding: "utf8" });
  assert.equal(cp.status, 0, cp.stderr);
  const served = JSON.parse(spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`], { encoding: "utf8" }).stdout) as { layers: { mediaType: string }[] };
  assert.equal(served.layers[1].mediaType, "application/vnd.oci.image.layer.v1.tar+zstd", "the registry serves the zstd layer as such");

  const p = dst.berth(["pull", ref]);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(dst.berth(["run", "--rm", ref, "cat", "/etc/zstd-marker"]).stdout, marker);
  assert.deepEqual(readFileSync(join(dst.dataRoot, "content/blobs/sha256", layer.digest.slice(7))), readFileSync(`${gen}.tar.zst`), "the compressed blob is kept, as pulled");
  assert.equal(dst.berth(["system", "check"]).code, 0);
  assert.equal(dst.berth(["rmi", ref]).code, 0);
  rmSync(gen, { recursive: true, force: true });
});

test("pull errors are Docker's", () => {
  const nf = dst.berth(["pull", `127.0.0.1:${port}/team/bb:nosuchtag`]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /manifest for 127\.0\.0\.1:\d+\/team\/bb:nosuchtag not found: manifest unknown/);
  const missing = dst.berth(["run", "--rm", `127.0.0.1:${port}/team/nothing`, "true"]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /Unable to find image/);
});

test("push to a registry (HEAD first, cross-repository mount), pull it back elsewhere; skopeo reads it", () => {
  const ref = `127.0.0.1:${port}/team/pushed:1`;
  assert.equal(src.berth(["tag", "busybox", ref]).code, 0);
  const p1 = src.berth(["push", ref]);
  assert.equal(p1.code, 0, p1.stderr);
  assert.match(p1.stdout, /The push refers to repository \[127\.0\.0\.1:\d+\/team\/pushed\]/);
  assert.match(p1.stdout, /Pushed/);
  assert.match(p1.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
  const p2 = src.berth(["push", ref]);
  assert.match(p2.stdout, /Layer already exists/, "a second push uploads nothing");
  const other = `127.0.0.1:${port}/team/other:1`;
  src.berth(["tag", "busybox", other]);
  const p3 = src.docker(["push", other]);
  assert.equal(p3.code, 0, p3.stderr);
  assert.match(p3.stdout, /Mounted from team\/pushed/);
  const insp = spawnSync("skopeo", ["inspect", "--tls-verify=false", `docker://${ref}`], { encoding: "utf8" });
  assert.equal(insp.status, 0, insp.stderr);
  assert.equal((JSON.parse(insp.stdout) as { Layers: string[] }).Layers.length, 1);
  assert.equal(dst.berth(["run", "--rm", other, "echo", "round trip"]).stdout, "round trip\n");
});

test("login, push and pull with basic auth; credentials kept as Docker keeps them", () => {
  const ref = `127.0.0.1:${authPort}/private/bb:1`;
  src.berth(["tag", "busybox", ref]);
  const denied = src.berth(["push", ref]);
  assert.notEqual(denied.code, 0);
  const cfg = join(work, "docker-config");
  const env = { DOCKER_CONFIG: cfg };
  const bad = src.berth(["login", "-u", "alice", "--password-stdin", `127.0.0.1:${authPort}`], { input: "wrong\n", env });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unauthorized/);
  const ok = src.berth(["login", "-u", "alice", "--password-stdin", `127.0.0.1:${authPort}`], { input: "s3cret\n", env });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), "Login Succeeded");
  const saved = JSON.parse(readFileSync(join(cfg, "config.json"), "utf8")) as { auths: Record<string, { auth: string }> };
  assert.equal(Buffer.from(saved.auths[`127.0.0.1:${authPort}`].auth, "base64").toString(), "alice:s3cret");
  assert.equal(spawnSync("stat", ["-c", "%a", join(cfg, "config.json")], { encoding: "utf8" }).stdout.trim(), "600");
  const pushed = src.berth(["push", ref], { env });
  assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
  assert.equal(dst.berth(["pull", ref], { env }).code, 0);
  assert.equal(dst.berth(["run", "--rm", ref, "echo", "authenticated"]).stdout, "authenticated\n");
  assert.match(src.berth(["logout", `127.0.0.1:${authPort}`], { env }).stdout, /Removing login credentials/);
  const after = JSON.parse(readFileSync(join(cfg, "config.json"), "utf8")) as { auths: Record<string, unknown> };
  assert.equal(after.auths[`127.0.0.1:${authPort}`], undefined);
});

test("save is read by skopeo; archives written by skopeo load and run; export gives the container's files", () => {
  const saved = join(work, "saved.tar");
  assert.equal(src.berth(["save", "-o", saved, "busybox"]).code, 0);
  for (const transport of ["docker-archive", "oci-archive"]) {
    const r = spawnSync("skopeo", ["inspect", `${transport}:${saved}`], { encoding: "utf8" });
    assert.equal(r.status, 0, `${transport}: ${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { Layers: string[] }).Layers.length, 1);
  }
  for (const [transport, tag] of [["docker-archive", "skd:1"], ["oci-archive", "sko:1"]]) {
    const file = join(work, `${tag.replace(":", "-")}.tar`);
    const cp = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://127.0.0.1:${port}/team/bb:gz`, `${transport}:${file}:${tag}`], { encoding: "utf8" });
    assert.equal(cp.status, 0, cp.stderr);
    const ld = dst.berth(["load", "-i", file]);
    assert.equal(ld.code, 0, ld.stderr);
    assert.match(ld.stdout, /Loaded image/);
  }
  assert.equal(dst.berth(["run", "--rm", "skd:1", "echo", "from docker-archive"]).stdout, "from docker-archive\n");
  assert.match(dst.berth(["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout, /sko:1/);
  // A round trip through save and load keeps the image ID
  const id = src.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout.trim();
  const again = dst.berth(["load", "-i", saved]);
  assert.equal(again.stdout.trim(), "Loaded image: busybox:latest");
  assert.equal(dst.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout.trim(), id);
  const bad = dst.berth(["load"], { input: "not a tar" });
  assert.notEqual(bad.code, 0);

  dst.berth(["run", "--name", "exp", "busybox", "sh", "-c", "echo inside > /marker"]);
  const out = join(work, "exp.tar");
  assert.equal(dst.berth(["export", "-o", out, "exp"]).code, 0);
  const list = spawnSync("tar", ["-tf", out], { encoding: "utf8" }).stdout.split("\n");
  // Entries named as dockerd's export names them: "bin/busybox", no "./".
  assert.ok(list.includes("marker") && list.includes("bin/busybox"), list.slice(0, 5).join(","));
  dst.berth(["rm", "exp"]);
});

test("a pull cut short by kill -9 of berthd leaves the store consistent; the next pull completes", async () => {
  // An image of three 40 MB incompressible layers, so the pull is still running when the daemon dies.
  const lay = join(work, "big");
  mkdirSync(join(lay, "blobs/sha256"), { recursive: true });
  const sha = (f: string) => spawnSync("sha256sum", [f], { encoding: "utf8" }).stdout.split(" ")[0];
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  const diffs: string[] = [];
  for (let i = 1; i <= 3; i++) {
    const dir = join(work, `gen${i}`);
    mkdirSync(dir);
    assert.equal(spawnSync("sh", ["-c", `head -c 40M /dev/urandom > ${dir}/f${i} && tar -C ${dir} -cf ${dir}.tar f${i} && gzip -1 ${dir}.tar`]).status, 0);
    diffs.push(`sha256:${spawnSync("sh", ["-c", `gzip -dc ${dir}.tar.gz | sha256sum`], { encoding: "utf8" }).stdout.split(" ")[0]}`);
    const dg = sha(`${dir}.tar.gz`);
    copyFileSync(`${dir}.tar.gz`, join(lay, "blobs/sha256", dg));
    layers.push({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: `sha256:${dg}`, size: Number(spawnSync("stat", ["-c", "%s", `${dir}.tar.gz`], { encoding: "utf8" }).stdout) });
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.tar.gz`);
  }
  const put = (o: object) => {
    const b = Buffer.from(JSON.stringify(o));
    const p = join(lay, "tmp.json");
    writeFileSync(p, b);
    const dg = sha(p);
    copyFileSync(p, join(lay, "blobs/sha256", dg));
    rmSync(p);
    return { digest: `sha256:${dg}`, size: b.length };
  };
  const cfg = put({ architecture: "amd64", os: "linux", config: { Cmd: ["/bin/true"] }, rootfs: { type: "layers", diff_ids: diffs } });
  const man = put({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", ...cfg }, layers });
  writeFileSync(join(lay, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(lay, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...man, annotations: { "org.opencontainers.image.ref.name": "1" } }] }));
  const ref = `127.0.0.1:${port}/team/big:1`;
  const cp = spawnSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${lay}:1`, `docker://${ref}`], { encoding: "utf8" });
  assert.equal(cp.status, 0, cp.stderr);

  // Kill the daemon as soon as layers start to stream in.
  const cli = spawn(process.execPath, [BERTH, "-H", dst.host, "pull", ref], { stdio: ["ignore", "pipe", "pipe"] });
  let said = "";
  await new Promise<void>((resolve) => {
    const on = (d: Buffer) => { said += d; if (said.includes("Pulling fs layer")) { cli.stderr.off("data", on); resolve(); } };
    cli.stderr.on("data", on);
    cli.on("close", () => resolve());
  });
  await sleep(50);
  await dst.crash();
  const code = await new Promise<number | null>((r) => (cli.exitCode !== null ? r(cli.exitCode) : cli.on("close", r)));
  assert.notEqual(code, 0, `the pull was cut short: ${said}`);
  await dst.start();
  const check = dst.berth(["system", "check"]);
  assert.equal(check.code, 0, check.stdout);
  assert.equal(dst.berth(["image", "inspect", ref]).code, 1, "no half-pulled image is visible");
  const again = dst.berth(["pull", ref]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(dst.berth(["system", "check"]).code, 0);
  // To another registry (no mount possible): its 40 MB layers go in chunked uploads, small blobs monolithic.
  const copy = `127.0.0.1:${authPort}/other/big:2`;
  const env = { DOCKER_CONFIG: join(work, "docker-config-big") };
  assert.equal(dst.berth(["login", "-u", "alice", "--password-stdin", `127.0.0.1:${authPort}`], { input: "s3cret", env }).code, 0);
  dst.berth(["tag", ref, copy]);
  const pushed = dst.berth(["push", copy], { env });
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal((pushed.stdout.match(/: Pushed/g) ?? []).length, 4, pushed.stdout);
  const insp = spawnSync("skopeo", ["inspect", "--tls-verify=false", "--creds", "alice:s3cret", `docker://${copy}`], { encoding: "utf8" });
  assert.deepEqual((JSON.parse(insp.stdout) as { Layers: string[] }).Layers, layers.map((l) => l.digest));
  assert.equal(dst.berth(["rmi", ref, copy]).code, 0);
});

test("credsStore: login, push and logout go through a docker-credential helper", () => {
  const bin = join(work, "helper-bin");
  mkdirSync(bin, { recursive: true });
  const store = join(work, "helper-store.json");
  // A real credential helper speaking Docker's protocol (store/get/erase on stdin), keeping one secret in a file.
  writeFileSync(join(bin, "docker-credential-berthtest"), `#!${process.execPath}
const fs = require("fs"); const store = ${JSON.stringify(store)};
let input = ""; process.stdin.on("data", (d) => input += d).on("end", () => {
  const action = process.argv[2];
  if (action === "store") fs.writeFileSync(store, input);
  else if (action === "get") {
    if (!fs.existsSync(store)) { process.stdout.write("credentials not found in native keychain"); process.exit(1); }
    const v = JSON.parse(fs.readFileSync(store, "utf8"));
    if (v.ServerURL !== input.trim()) { process.stdout.write("credentials not found in native keychain"); process.exit(1); }
    process.stdout.write(JSON.stringify({ ServerURL: v.ServerURL, Username: v.Username, Secret: v.Secret }));
  } else if (action === "erase") fs.rmSync(store, { force: true });
});
`, { mode: 0o755 });
  const cfgDir = join(work, "helper-config");
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(join(cfgDir, "config.json"), JSON.stringify({ credsStore: "berthtest" }));
  const env = { DOCKER_CONFIG: cfgDir, PATH: `${bin}:${process.env.PATH}` };
  const server = `127.0.0.1:${authPort}`;
  assert.equal(src.berth(["login", "-u", "alice", "--password-stdin", server], { input: "s3cret\n", env }).code, 0);
  const kept = JSON.parse(readFileSync(store, "utf8")) as { ServerURL: string; Username: string; Secret: string };
  assert.deepEqual(kept, { ServerURL: server, Username: "alice", Secret: "s3cret" });
  const cfg = JSON.parse(readFileSync(join(cfgDir, "config.json"), "utf8")) as { credsStore: string; auths: Record<string, { auth?: string }> };
  assert.equal(cfg.credsStore, "berthtest");
  assert.equal(cfg.auths[server].auth, undefined, "no password in config.json");
  const ref = `${server}/viahelper/bb:1`;
  src.berth(["tag", "busybox", ref]);
  const pushed = src.berth(["push", ref], { env });
  assert.equal(pushed.code, 0, pushed.stderr + pushed.stdout);
  assert.equal(src.berth(["logout", server], { env }).code, 0);
  assert.throws(() => readFileSync(store), /ENOENT/, "logout erased the helper's secret");
  assert.notEqual(src.berth(["push", ref], { env }).code, 0, "without credentials the push is refused");
});

test("an index: the host's platform is chosen, --platform picks another", () => {
  // Two single-platform images from the source store, put behind one OCI index.
  const tiny = join(work, "tiny-root");
  mkdirSync(tiny, { recursive: true });
  writeFileSync(join(tiny, "which"), "the arm64 one\n");
  spawnSync("tar", ["-C", tiny, "-cf", join(work, "tiny.tar"), "which"]);
  assert.equal(src.berth(["import", join(work, "tiny.tar"), "tiny:arm"]).code, 0);
  const lay = join(work, "multi");
  ociLayout(src, "docker.io/library/busybox:latest", lay, "x");
  const amd = manifestDigestOf(src, "busybox:latest");
  const arm = manifestDigestOf(src, "tiny:arm");
  const blobsOf = (dg: string) => {
    const m = JSON.parse(readFileSync(join(src.dataRoot, "content/blobs/sha256", dg.slice(7)), "utf8")) as { config: { digest: string }; layers: { digest: string }[] };
    return [dg, m.config.digest, ...m.layers.map((l) => l.digest)];
  };
  for (const b of blobsOf(arm)) copyFileSync(join(src.dataRoot, "content/blobs/sha256", b.slice(7)), join(lay, "blobs/sha256", b.slice(7)));
  const size = (dg: string) => readFileSync(join(lay, "blobs/sha256", dg.slice(7))).length;
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [
    { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: arm, size: size(arm), platform: { os: "linux", architecture: "arm64" } },
    { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd, size: size(amd), platform: { os: "linux", architecture: "amd64" } },
  ] }));
  const idxDigest = spawnSync("sha256sum", { input: index, encoding: "utf8" }).stdout.split(" ")[0];
  writeFileSync(join(lay, "blobs/sha256", idxDigest), index);
  writeFileSync(join(lay, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.index.v1+json", digest: `sha256:${idxDigest}`, size: index.length, annotations: { "org.opencontainers.image.ref.name": "multi" } }] }));
  const ref = `127.0.0.1:${port}/team/multi:1`;
  const cp = spawnSync("skopeo", ["copy", "--quiet", "--all", "--dest-tls-verify=false", `oci:${lay}:multi`, `docker://${ref}`], { encoding: "utf8" });
  assert.equal(cp.status, 0, cp.stderr);
  assert.equal(dst.berth(["pull", ref]).code, 0);
  assert.equal(dst.berth(["image", "inspect", "-f", "{{.Architecture}}", ref]).stdout.trim(), "amd64");
  const served = spawnSync("sh", ["-c", `skopeo inspect --raw --tls-verify=false docker://${ref} | sha256sum`], { encoding: "utf8" }).stdout.split(" ")[0];
  assert.match(dst.berth(["image", "inspect", "-f", "{{json .RepoDigests}}", ref]).stdout, new RegExp(`team/multi@sha256:${served}`), "the repo digest is the index's");
  const armRef = `127.0.0.1:${port}/team/multi:1`;
  dst.berth(["rmi", ref]);
  assert.equal(dst.berth(["pull", "--platform", "linux/arm64", armRef]).code, 0);
  assert.equal(dst.berth(["image", "inspect", "-f", "{{.Id}}", armRef]).stdout.trim(), src.berth(["image", "inspect", "-f", "{{.Id}}", "tiny:arm"]).stdout.trim(), "the arm64 entry was pulled");
  const none = dst.berth(["pull", "--platform", "linux/s390x", ref]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no matching manifest for linux\/s390x in the manifest list entries/);
  dst.berth(["rmi", ref]);
});
