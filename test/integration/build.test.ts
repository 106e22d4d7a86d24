/**
 * berth build (the classic builder's protocol): multi-stage builds, ARG and
 * --build-arg, the layer cache, .dockerignore, COPY --from/--chown/--chmod,
 * heredocs, failing steps; the docker CLI's legacy builder against berthd.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, runSync } from "./harness.js";

const d = new Daemon();
let ctx: string;

before(async () => {
  await d.start();
  await d.bootstrap();
  ctx = mkdtempSync(join(tmpdir(), "berth-ctx-"));
  mkdirSync(join(ctx, "app"));
  writeFileSync(join(ctx, "app/hello.sh"), '#!/bin/sh\necho "hi from $APP_HOME: $(cat $APP_HOME/out.txt)"\n');
  chmodSync(join(ctx, "app/hello.sh"), 0o755);
  writeFileSync(join(ctx, "app/secret.txt"), "do not send\n");
  writeFileSync(join(ctx, ".dockerignore"), "app/secret.txt\n*.log\n");
  writeFileSync(join(ctx, "noise.log"), "x\n");
  writeFileSync(join(ctx, "Dockerfile"), [
    "ARG BASE=busybox",
    "FROM $BASE AS builder",
    "ARG GREETING=hello",
    "WORKDIR /src",
    "COPY app/ ./",
    'RUN echo "$GREETING from build" > /src/out.txt && ls /src > /src/listing && cat /src/out.txt',
    "FROM busybox",
    "LABEL org.example.tier=demo",
    "ENV APP_HOME=/app",
    "COPY --from=builder /src/out.txt /src/listing $APP_HOME/",
    "COPY --chown=1000:1000 --chmod=750 app/hello.sh /usr/local/bin/hello",
    "COPY <<EOT /etc/motd",
    "welcome to $APP_HOME",
    "EOT",
    "EXPOSE 8080",
    'ENTRYPOINT ["/bin/sh", "-c"]',
    'CMD ["hello"]',
    "",
  ].join("\n"));
});

after(async () => {
  await d.stop();
  rmSync(ctx, { recursive: true, force: true });
});

test("a multi-stage build with build args, COPY --from/--chown/--chmod, a heredoc and .dockerignore; the image runs", () => {
  const r = d.berth(["build", "-t", "myapp", "--build-arg", "GREETING=howdy", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^Step 1\/15 : ARG BASE=busybox\nStep 2\/15 : FROM \$BASE AS builder\n ---> [0-9a-f]{12}\n/);
  assert.match(r.stdout, / ---> Running in [0-9a-f]{12}\nhowdy from build\nRemoving intermediate container [0-9a-f]{12}\n/);
  assert.match(r.stdout, /Successfully built [0-9a-f]{12}\nSuccessfully tagged myapp:latest\n$/);
  assert.equal(d.berth(["run", "--rm", "myapp"]).stdout, "hi from /app: howdy from build\n");
  // .dockerignore kept the secret and the log out of the context.
  assert.equal(d.berth(["run", "--rm", "myapp", "cat /app/listing"]).stdout, "hello.sh\nlisting\nout.txt\n");
  assert.equal(d.berth(["run", "--rm", "myapp", "stat -c '%u:%g %a' /usr/local/bin/hello"]).stdout, "1000:1000 750\n");
  assert.equal(d.berth(["run", "--rm", "myapp", "cat /etc/motd"]).stdout, "welcome to /app\n");
  assert.equal(d.berth(["run", "--rm", "myapp", "test -e /src && echo leaked || echo clean"]).stdout, "clean\n");
  const cfg = JSON.parse(d.berth(["image", "inspect", "myapp"]).stdout)[0].Config;
  assert.deepEqual(cfg.ExposedPorts, { "8080/tcp": {} });
  assert.equal(cfg.Labels["org.example.tier"], "demo");
  assert.ok(cfg.Env.includes("APP_HOME=/app"));
  assert.deepEqual(cfg.Entrypoint, ["/bin/sh", "-c"]);
  assert.deepEqual(cfg.Cmd, ["hello"]);
  assert.equal(d.berth(["ps", "-aq"]).stdout, "", "intermediate containers are removed");
});

test("the cache: an unchanged build reuses every step; a changed file or arg rebuilds from there; --no-cache rebuilds all", () => {
  const again = d.berth(["build", "-t", "myapp", "--build-arg", "GREETING=howdy", ctx]);
  assert.equal(again.code, 0, again.stderr);
  assert.doesNotMatch(again.stdout, /Running in/);
  const first = /Successfully built ([0-9a-f]{12})/.exec(again.stdout)![1];
  assert.equal(d.berth(["image", "inspect", "-f", "{{.Id}}", "myapp"]).stdout.trim().slice(7, 19), first);
  const otherArg = d.berth(["build", "--build-arg", "GREETING=hey", ctx]);
  assert.match(otherArg.stdout, /hey from build/);
  writeFileSync(join(ctx, "app/hello.sh"), '#!/bin/sh\necho "changed: $(cat $APP_HOME/out.txt)"\n');
  const changed = d.berth(["build", "-t", "myapp", "--build-arg", "GREETING=howdy", ctx]);
  assert.match(changed.stdout, /Running in/, "a changed source invalidates the COPY and what follows");
  assert.equal(d.berth(["run", "--rm", "myapp"]).stdout, "changed: howdy from build\n");
  const nocache = d.berth(["build", "--no-cache", "--build-arg", "GREETING=howdy", ctx]);
  assert.doesNotMatch(nocache.stdout, /Using cache/);
});

test("-q, --target, -f, and the docker CLI's legacy builder", () => {
  const q = d.berth(["build", "-q", "--target", "builder", "--build-arg", "GREETING=howdy", ctx]);
  assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(d.berth(["run", "--rm", "--entrypoint", "cat", q.stdout.trim(), "/src/out.txt"]).stdout, "howdy from build\n");
  writeFileSync(join(ctx, "Other.dockerfile"), "FROM busybox\nRUN echo other > /other\n");
  assert.equal(d.berth(["build", "-f", join(ctx, "Other.dockerfile"), "-t", "other:2", ctx]).code, 0);
  assert.equal(d.berth(["run", "--rm", "other:2", "cat", "/other"]).stdout, "other\n");
  // The daemon answers /_ping with Builder-Version 1, so the docker CLI picks its classic builder by itself.
  const viaDocker = d.docker(["build", "-t", "fromdocker", ctx]);
  assert.equal(viaDocker.code, 0, viaDocker.stderr);
  assert.match(viaDocker.stdout, /Successfully tagged fromdocker:latest/);
});

test("a failing RUN stops the build with Docker's message and leaves no container; a bad Dockerfile is a clear error", () => {
  writeFileSync(join(ctx, "Fail.dockerfile"), "FROM busybox\nRUN echo before && exit 3\nRUN echo never\n");
  const r = d.berth(["build", "-f", join(ctx, "Fail.dockerfile"), ctx]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The command '\/bin\/sh -c echo before && exit 3' returned a non-zero code: 3/);
  assert.doesNotMatch(r.stdout, /never/);
  assert.equal(d.berth(["ps", "-aq"]).stdout, "");
  writeFileSync(join(ctx, "Bad.dockerfile"), "FROM busybox\nRUNN echo\n");
  const bad = d.berth(["build", "-f", join(ctx, "Bad.dockerfile"), ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown instruction: RUNN/);
  writeFileSync(join(ctx, "Missing.dockerfile"), "FROM busybox\nCOPY nothere /x\n");
  const missing = d.berth(["build", "-f", join(ctx, "Missing.dockerfile"), ctx]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nothere: file does not exist/);
});

test("ADD unpacks local archives (plain, gzip, xz) keeping their owners; COPY copies them as files", () => {
  const src = join(ctx, "payload");
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "sub/data.txt"), "inside\n");
  for (const [file, flag] of [["p.tar", ""], ["p.tar.gz", "z"], ["p.tar.xz", "J"]]) {
    const r = runSync("tar", [`--owner=1234`, `--group=4321`, `-c${flag}f`, join(ctx, file), "-C", src, "sub"]);
    assert.equal(r.code, 0, r.stderr);
  }
  writeFileSync(join(ctx, "Add.dockerfile"), "FROM busybox\nADD p.tar /plain/\nADD p.tar.gz /gz\nADD p.tar.xz /xz/\nCOPY p.tar.gz /copied/\n");
  const b = d.berth(["build", "-f", join(ctx, "Add.dockerfile"), "-t", "adder", ctx]);
  assert.equal(b.code, 0, b.stderr + b.stdout);
  const out = d.berth(["run", "--rm", "adder", "sh", "-c", "cat /plain/sub/data.txt /gz/sub/data.txt /xz/sub/data.txt; stat -c '%u:%g' /gz/sub/data.txt; ls /copied"]).stdout;
  assert.equal(out, "inside\ninside\ninside\n1234:4321\np.tar.gz\n");
});

test("a build cut short by a daemon crash leaves nothing once the daemon is back", async () => {
  await d.crash();
  const left = join(d.dataRoot, "tmp", "build-crashed", "rootfs-1", "fs");
  mkdirSync(left, { recursive: true });
  assert.equal(runSync("mount", ["-t", "tmpfs", "tmpfs", left]).code, 0);
  await d.start();
  assert.ok(!readFileSync("/proc/self/mountinfo", "utf8").includes(left), "the mount is gone");
  assert.ok(!existsSync(join(d.dataRoot, "tmp", "build-crashed")), "the scratch directory is gone");
});

test("RUN --mount: a cache directory persists between builds, bind mounts show the context read-only, tmpfs is fresh; none ends up in the image", () => {
  writeFileSync(join(ctx, "Mount.dockerfile"), [
    "FROM busybox",
    "RUN --mount=type=cache,target=/cache echo run >> /cache/count && wc -l < /cache/count > /seen",
    "RUN --mount=type=bind,source=app,target=/ctx cp /ctx/hello.sh /copied && (touch /ctx/x 2>/dev/null && echo writable || echo read-only) > /bind-mode",
    "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -c ' /scratch tmpfs ' /proc/mounts > /tmpfs-seen",
    "",
  ].join("\n"));
  for (const want of ["1", "2"]) {
    const b = d.berth(["build", "--no-cache", "-f", join(ctx, "Mount.dockerfile"), "-t", "mounts", ctx]);
    assert.equal(b.code, 0, b.stderr + b.stdout);
    assert.equal(d.berth(["run", "--rm", "mounts", "cat", "/seen"]).stdout.trim(), want);
  }
  assert.equal(d.berth(["run", "--rm", "mounts", "sh", "-c", "cat /bind-mode /tmpfs-seen; test -e /cache/count || echo no-cache-in-image; test -e /ctx/hello.sh || echo no-ctx-in-image; test -e /scratch/x || echo no-tmpfs-in-image"]).stdout,
    "read-only\n1\nno-cache-in-image\nno-ctx-in-image\nno-tmpfs-in-image\n");
  assert.match(d.berth(["run", "--rm", "mounts", "cat", "/copied"]).stdout, /^#!\/bin\/sh/);
  writeFileSync(join(ctx, "Secret.dockerfile"), "FROM busybox\nRUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok\n");
  const secret = d.berth(["build", "-f", join(ctx, "Secret.dockerfile"), ctx]);
  assert.equal(secret.code, 1);
  assert.match(secret.stderr, /secret tok not found: not found/);
});
