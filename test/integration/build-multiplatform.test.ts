/**
 * Multi-platform images: an arm64 busybox made offline from Debian's busybox-static:arm64
 * (scripts/foreign-arch.sh; `image bootstrap --platform linux/arm64`), a local manifest list of it and the
 * host's busybox (`manifest create`), `build --platform linux/amd64,linux/arm64` whose arm64 RUN executes
 * under qemu (binfmt_misc, F flag), the OCI index it tags (`image inspect`), `run --platform`, and the index
 * pushed to `berth registry serve` and read back by `pull --platform` and skopeo.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, PrivateDockerd, BERTH, DOCKER, until } from "./harness.js";

const d = new Daemon();
/** Docker's own registry client, for the index pushed (a dockerd of this test's: no bridge of the machine's, no iptables). */
const dockerd = new PrivateDockerd();
let work: string;
let reg: ChildProcess | undefined;
let regOut = "";
let port = 0;
const qemu = existsSync("/proc/sys/fs/binfmt_misc/qemu-aarch64") && existsSync("/usr/local/lib/berth/busybox-static-arm64/bin/busybox");
const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => { assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`); return r.stdout; };

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-multiplatform-"));
  await Promise.all([d.start().then(() => d.bootstrap()), qemu ? dockerd.start() : undefined]);
  reg = spawn(BERTH, ["registry", "serve", "--addr", "127.0.0.1:0", "--root", join(work, "reg")], { stdio: ["ignore", "pipe", "pipe"] });
  reg.stdout!.on("data", (x) => { regOut += x; });
  reg.stderr!.on("data", (x) => { regOut += x; });
  port = await until("the registry to listen", () => { const m = /"msg":"listening","addr":"127\.0\.0\.1:(\d+)"/.exec(regOut); return m ? Number(m[1]) : undefined; });
});

after(async () => {
  reg?.kill("SIGTERM");
  if (reg && reg.exitCode === null) await new Promise((r) => reg!.once("exit", r));
  await dockerd.stop();
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

test("a two-platform build: an index, arm64 RUN under qemu, run --platform, push and pull of the index", { skip: !qemu && "needs qemu-aarch64 in binfmt_misc and the arm64 busybox-static (scripts/foreign-arch.sh)" }, async () => {
  // An arm64 base with no registry, and a local list of both busybox images.
  ok(d.berth(["image", "bootstrap", "--platform", "linux/arm64", "busybox:mp-arm64"]), "bootstrap arm64");
  assert.equal(ok(d.berth(["image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "busybox:mp-arm64"]), "inspect").trim(), "linux/arm64");
  ok(d.berth(["tag", "busybox:latest", "busybox:mp-amd64"]), "tag");
  assert.match(ok(d.berth(["manifest", "create", "mp-base", "busybox:mp-amd64", "busybox:mp-arm64"]), "manifest create"), /^Created manifest list docker\.io\/library\/mp-base:latest\n$/);
  const amend = d.berth(["manifest", "create", "mp-base", "busybox:mp-arm64"]);
  assert.deepEqual([amend.code, amend.stderr], [1, "refusing to amend an existing manifest list with no --amend flag\n"]);
  const shown = ok(d.berth(["manifest", "inspect", "mp-base"]), "manifest inspect");
  // docker manifest inspect's layout of a list: its own field order, three-space indent.
  assert.match(shown, /^\{\n   "schemaVersion": 2,\n   "mediaType": "application\/vnd\.oci\.image\.index\.v1\+json",\n   "manifests": \[\n      \{\n         "mediaType": "application\/vnd\.oci\.image\.manifest\.v1\+json",\n         "size": \d+,\n         "digest": "sha256:[0-9a-f]{64}",\n         "platform": \{\n            "architecture": "amd64",\n            "os": "linux"\n         \}\n      \},/);
  const list = JSON.parse(shown) as { mediaType: string; manifests: { platform: { architecture: string; os: string } }[] };
  assert.equal(list.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.deepEqual(list.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ["linux/amd64", "linux/arm64"]);
  // A cross-compilation pattern: a stage on the build platform, then the target's stage, each told its platform.
  const ctx = join(work, "ctx");
  spawnSync("mkdir", ["-p", ctx]);
  writeFileSync(join(ctx, "Dockerfile"), [
    "FROM --platform=$BUILDPLATFORM mp-base AS tool",
    "ARG TARGETPLATFORM",
    "ARG BUILDPLATFORM",
    "RUN echo \"built on $BUILDPLATFORM for $TARGETPLATFORM\" > /note && uname -m >> /note",
    "FROM mp-base",
    "ARG TARGETARCH",
    "COPY --from=tool /note /note",
    "RUN uname -m > /arch && echo $TARGETARCH > /targetarch",
    "",
  ].join("\n"));
  // An ignore file naming the Dockerfile and itself (each build drops them from the context): every platform's build still reads them.
  writeFileSync(join(ctx, ".dockerignore"), "Dockerfile\n.dockerignore\n");
  const built = d.berth(["build", "--progress=plain", "--platform", "linux/amd64,linux/arm64", "-t", "mp-app", ctx], { timeout: 300_000 });
  ok(built, "build");
  // Each platform's steps named as BuildKit names them.
  assert.match(built.stdout + built.stderr, /#\d+ \[linux\/arm64 stage-1 3\/3\] RUN uname -m > \/arch/);
  assert.match(built.stdout + built.stderr, /#\d+ \[linux\/amd64 tool 2\/2\] RUN echo/);
  assert.match(built.stdout + built.stderr, /#\d+ naming to docker\.io\/library\/mp-app:latest done/);
  const ins = JSON.parse(ok(d.berth(["image", "inspect", "mp-app"]), "image inspect"))[0] as { Id: string; Descriptor: { mediaType: string }; Manifests: { Descriptor: { platform: { architecture: string } } }[] };
  assert.equal(ins.Descriptor.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.deepEqual(ins.Manifests.map((m) => m.Descriptor.platform.architecture), ["amd64", "arm64"]);
  // `images` lists it once, under the index's ID; prune leaves its entries (the runs below use them).
  const rows = ok(d.berth(["images", "--no-trunc", "--format", "{{.Repository}} {{.ID}}"]), "images").split("\n");
  assert.ok(rows.includes(`mp-app ${ins.Id}`), rows.join("\n"));
  ok(d.berth(["image", "prune", "-f"]), "prune");
  const run = (platform: string, cmd: string) => ok(d.berth(["run", "--rm", "--platform", platform, "mp-app", "sh", "-c", cmd]), `run ${platform}`);
  assert.equal(run("linux/arm64", "cat /arch /targetarch"), "aarch64\narm64\n");
  assert.equal(run("linux/amd64", "cat /arch /targetarch"), "x86_64\namd64\n");
  // The tool stage ran on the host (x86_64), told the target it builds for (as BuildKit).
  assert.equal(run("linux/arm64", "cat /note"), "built on linux/amd64 for linux/arm64\nx86_64\n");
  // The docker CLI (classic builder API, its platform parameter) builds the same index on berthd.
  const dcli = spawnSync(DOCKER, ["build", "-q", "--platform", "linux/amd64,linux/arm64", "-t", "mp-docker", ctx], { encoding: "utf8", env: { ...process.env, DOCKER_BUILDKIT: "0", DOCKER_HOST: d.host, DOCKER_CONFIG: join(work, "docker-config") }, timeout: 300_000 });
  assert.equal(dcli.status, 0, dcli.stderr);
  assert.equal(ok(d.berth(["image", "inspect", "-f", "{{.Descriptor.mediaType}} {{len .Manifests}}", "mp-docker"]), "inspect docker-built").trim(), "application/vnd.oci.image.index.v1+json 2");
  // One platform: a plain image of that platform, no index.
  ok(d.berth(["build", "--platform", "linux/arm64", "-t", "mp-one", ctx], { timeout: 300_000 }), "build one platform");
  assert.equal(ok(d.berth(["image", "inspect", "-f", "{{.Architecture}} {{.Descriptor.mediaType}}", "mp-one"]), "inspect one").trim(), "arm64 application/vnd.oci.image.manifest.v1+json");
  // A plain image of another platform is no base for the target's stage (no silent amd64 in an arm64 image).
  const ctx3 = join(work, "ctx3");
  spawnSync("mkdir", ["-p", ctx3]);
  writeFileSync(join(ctx3, "Dockerfile"), "FROM busybox:mp-amd64\nLABEL x=1\n");
  const wrong = d.berth(["build", "--platform", "linux/arm64", "-t", "mp-wrong", ctx3]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stdout + wrong.stderr, /image busybox:mp-amd64 is linux\/amd64, not linux\/arm64/);
  // Push: every manifest and the index; pull --platform and skopeo read it back.
  const ref = `127.0.0.1:${port}/mp/app:1`;
  ok(d.berth(["tag", "mp-app", ref]), "tag index");
  ok(d.berth(["push", ref], { timeout: 120_000 }), "push");
  const sk = spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref}`], { encoding: "utf8" });
  assert.equal(sk.status, 0, sk.stderr);
  const raw = JSON.parse(sk.stdout) as { mediaType: string; manifests: { digest: string; platform: { os: string; architecture: string } }[] };
  assert.equal(raw.mediaType, "application/vnd.oci.image.index.v1+json");
  assert.deepEqual(raw.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ["linux/amd64", "linux/arm64"]);
  const remote = JSON.parse(ok(d.berth(["manifest", "inspect", ref]), "manifest inspect remote")) as typeof raw;
  assert.deepEqual(remote, raw);
  // The docker CLI's manifest inspect of it prints what berth's does, byte for byte.
  const dcfg = join(work, "docker-config");
  const dm = spawnSync(DOCKER, ["manifest", "inspect", "--insecure", ref], { encoding: "utf8", env: { ...process.env, DOCKER_CONFIG: dcfg, DOCKER_HOST: d.host } });
  assert.equal(dm.status, 0, dm.stderr);
  assert.equal(ok(d.berth(["manifest", "inspect", ref]), "manifest inspect remote text"), dm.stdout);
  // dockerd pulls it: the host's entry by default, arm64 when asked (and runs it under qemu).
  ok(dockerd.docker(["pull", ref]), "docker pull");
  assert.equal(ok(dockerd.docker(["image", "inspect", "-f", "{{.Architecture}}", ref]), "docker inspect").trim(), "amd64");
  ok(dockerd.docker(["pull", "--platform", "linux/arm64", ref]), "docker pull --platform");
  assert.equal(ok(dockerd.docker(["image", "inspect", "-f", "{{.Architecture}}", ref]), "docker inspect arm64").trim(), "arm64");
  assert.equal(ok(dockerd.docker(["run", "--rm", "--network", "none", ref, "cat", "/arch"]), "docker run arm64"), "aarch64\n");
  ok(dockerd.docker(["rmi", ref]), "docker rmi");
  ok(d.berth(["rmi", ref]), "rmi");
  ok(d.berth(["pull", "--platform", "linux/arm64", ref], { timeout: 120_000 }), "pull");
  assert.equal(ok(d.berth(["image", "inspect", "-f", "{{.Architecture}}", ref]), "inspect pulled").trim(), "arm64");
  assert.equal(ok(d.berth(["run", "--rm", ref, "cat", "/arch"]), "run pulled"), "aarch64\n");
  // manifest push LIST REF, then rm.
  const ref2 = `127.0.0.1:${port}/mp/base:1`;
  assert.match(ok(d.berth(["manifest", "push", "mp-base", ref2], { timeout: 120_000 }), "manifest push"), /^sha256:[0-9a-f]{64}\n$/);
  const sk2 = JSON.parse(spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref2}`], { encoding: "utf8" }).stdout) as typeof raw;
  assert.equal(sk2.manifests.length, 2);
  ok(d.berth(["manifest", "annotate", "mp-base", "busybox:mp-arm64", "--variant", "v8"]), "annotate");
  const annotated = JSON.parse(ok(d.berth(["manifest", "inspect", "mp-base"]), "inspect annotated")) as { manifests: { platform: { variant?: string } }[] };
  assert.equal(annotated.manifests[1].platform.variant, "v8");
  ok(d.berth(["manifest", "rm", "mp-base"]), "manifest rm");
  // A list of images only the registry has (docker manifest's usual case): a single manifest inspects as
  // docker's does (the registry's bytes, tab-indented), the list is made from it and pushed.
  const single = `127.0.0.1:${port}/mp/bb:arm64`;
  ok(d.berth(["tag", "busybox:mp-arm64", single]), "tag single");
  ok(d.berth(["push", single], { timeout: 120_000 }), "push single");
  ok(d.berth(["rmi", single]), "rmi single");
  const dsingle = spawnSync(DOCKER, ["manifest", "inspect", "--insecure", single], { encoding: "utf8", env: { ...process.env, DOCKER_CONFIG: dcfg, DOCKER_HOST: d.host } });
  assert.equal(dsingle.status, 0, dsingle.stderr);
  assert.equal(ok(d.berth(["manifest", "inspect", single]), "inspect single"), dsingle.stdout);
  const listRef = `127.0.0.1:${port}/mp/bb:list`;
  assert.equal(ok(d.berth(["manifest", "create", listRef, single]), "create from remote"), `Created manifest list ${listRef}\n`);
  ok(d.berth(["manifest", "push", listRef], { timeout: 120_000 }), "push remote list");
  const sk3 = JSON.parse(spawnSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${listRef}`], { encoding: "utf8" }).stdout) as typeof raw;
  assert.deepEqual(sk3.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`), ["linux/arm64"]);
  ok(d.berth(["manifest", "rm", listRef]), "rm remote list");
  // rmi of a multi-platform image's name: the tag, then the index with its last one.
  // (mp-docker is the same index: every step was cached, so the same manifests.)
  assert.equal(ok(d.berth(["rmi", "mp-docker"]), "rmi index tag"), "Untagged: mp-docker:latest\n");
  assert.equal(ok(d.berth(["rmi", "mp-app"]), "rmi index"), `Untagged: mp-app:latest\nDeleted: ${ins.Id}\n`);
  assert.notEqual(d.berth(["image", "inspect", "mp-app"]).code, 0);
  // docker manifest's errors, word for word (its commands work in the client: no "Error response from daemon").
  const again = d.berth(["manifest", "rm", "mp-base"]);
  assert.deepEqual([again.code, again.stderr], [1, "No such manifest: docker.io/library/mp-base:latest\n"]);
});
