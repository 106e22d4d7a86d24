/**
 * Dockerfiles as dockerd's classic builder builds them. Every expected answer
 * here is what dockerd 20.10 (DOCKER_BUILDKIT=0) gave for the same Dockerfile
 * on a busybox image made as berth's `image bootstrap busybox` makes it:
 * WORKDIR makes its directory, COPY leaves the directories it passes through
 * as they were, a Dockerfile outside the context builds, and a built image
 * records Parent, Container and ContainerConfig.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, DOCKER, runSync } from "./harness.js";

const d = new Daemon();
const tmp = mkdtempSync(join(tmpdir(), "berth-build-fid-"));

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function context(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(join(dir, f, ".."), { recursive: true });
    writeFileSync(join(dir, f), body);
  }
  return dir;
}

/** The image IDs a build printed, in order (" ---> <id>" lines, "Using cache" aside). */
function stepIds(out: string): string[] {
  return [...out.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]);
}

function inspect(ref: string): Record<string, any> {
  const r = d.berth(["image", "inspect", ref]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout)[0];
}

const ADD_APPUSER = 'RUN echo "appuser:x:1000:1000::/home/appuser:/bin/sh" >> /etc/passwd && echo "appuser:x:1000:" >> /etc/group';

test("WORKDIR makes its directory (root's, 0755, whatever the USER); COPY keeps the owners and modes of the directories it passes through; --chown owns the parents it makes", () => {
  const ctx = context("dirs", {
    "a.txt": "hi\n",
    "requirements.txt": "req\n",
    Dockerfile: [
      "FROM busybox",
      ADD_APPUSER,
      "WORKDIR /app",
      "COPY requirements.txt /app",
      "USER appuser",
      "WORKDIR /home/appuser/work",
      "WORKDIR /opt/x/y",
      "USER root",
      "RUN mkdir -p /home/app && chown 1000:1000 /home/app && chmod 1777 /home/app",
      "COPY a.txt /home/app/sub/",
      "COPY a.txt /tmp/",
      "COPY --chown=1000:1000 a.txt /new1/new2/",
      "COPY --chown=1000:1000 a.txt /new3/new4/f.txt",
      "RUN stat -c '%n %u %g %A' /app /app/requirements.txt /home/appuser/work /opt/x /opt/x/y /home/app /home/app/sub /home/app/sub/a.txt /tmp /new1 /new1/new2 /new1/new2/a.txt /new3 /new3/new4 /new3/new4/f.txt",
      "",
    ].join("\n"),
  });
  const r = d.berth(["build", "-t", "fid-dirs", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // dockerd 20.10's answer, line for line.
  assert.ok(r.stdout.includes([
    "/app 0 0 drwxr-xr-x",
    "/app/requirements.txt 0 0 -rw-r--r--",
    "/home/appuser/work 0 0 drwxr-xr-x",
    "/opt/x 0 0 drwxr-xr-x",
    "/opt/x/y 0 0 drwxr-xr-x",
    "/home/app 1000 1000 drwxrwxrwt",
    "/home/app/sub 0 0 drwxr-xr-x",
    "/home/app/sub/a.txt 0 0 -rw-r--r--",
    "/tmp 0 0 drwxrwxrwt",
    "/new1 1000 1000 drwxr-xr-x",
    "/new1/new2 1000 1000 drwxr-xr-x",
    "/new1/new2/a.txt 1000 1000 -rw-r--r--",
    "/new3 1000 1000 drwxr-xr-x",
    "/new3/new4 1000 1000 drwxr-xr-x",
    "/new3/new4/f.txt 1000 1000 -rw-r--r--",
    "",
  ].join("\n")), r.stdout);
  // The image itself (its layers stacked, not the build's view): a container sees the same.
  const run = d.berth(["run", "--rm", "fid-dirs", "stat", "-c", "%n %u %g %A", "/home/app", "/tmp", "/app", "/app/requirements.txt"]);
  assert.equal(run.stdout, "/home/app 1000 1000 drwxrwxrwt\n/tmp 0 0 drwxrwxrwt\n/app 0 0 drwxr-xr-x\n/app/requirements.txt 0 0 -rw-r--r--\n", run.stderr);
  const img = inspect("fid-dirs");
  assert.equal(img.Config.WorkingDir, "/opt/x/y");
  assert.equal(img.Config.User, "root");
});

test("USER of a built image is recorded in its config, and the RUN steps after it run as that user", () => {
  const ctx = context("user", {
    Dockerfile: ["FROM busybox", ADD_APPUSER, "USER appuser", "WORKDIR /home/appuser", "ENV APP=1", "RUN id -u && id -g && pwd", ""].join("\n"),
  });
  const r = d.berth(["build", "-t", "fid-user", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /\n1000\n1000\n\/home\/appuser\n/);
  const img = inspect("fid-user");
  assert.equal(img.Config.User, "appuser");
  assert.equal(img.Config.WorkingDir, "/home/appuser");
  assert.ok(img.Config.Env.includes("APP=1"), JSON.stringify(img.Config.Env));
});

test("a Dockerfile outside the context builds, through the berth CLI and the docker CLI, and is not copied with the context", () => {
  const ctx = context("outside/ctx", { "a.txt": "a\n" });
  const df = join(tmp, "outside/df/Dockerfile.outside");
  mkdirSync(join(df, ".."), { recursive: true });
  writeFileSync(df, "FROM busybox\nCOPY . /ctx/\nRUN ls -A /ctx\n");
  const docker = (args: string[]) => runSync(DOCKER, args, { env: { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config"), DOCKER_BUILDKIT: "0" } });
  // dockerd: the context alone ("a.txt"); with a .dockerignore of the context's own, it stays and the Dockerfile does not.
  for (const [who, build] of [["berth", (a: string[]) => d.berth(a)], ["docker", docker]] as const) {
    rmSync(join(ctx, ".dockerignore"), { force: true });
    rmSync(join(ctx, "b.txt"), { force: true });
    const r = build(["build", "--no-cache", "-f", df, "-t", `fid-outside-${who}`, ctx]);
    assert.equal(r.code, 0, `${who}: ${r.stderr}${r.stdout}`);
    assert.match(r.stdout, /Running in [0-9a-f]{12}\na\.txt\nRemoving intermediate/, `${who}: ${r.stdout}`);
    writeFileSync(join(ctx, ".dockerignore"), "a.txt\n");
    writeFileSync(join(ctx, "b.txt"), "b\n");
    const r2 = build(["build", "--no-cache", "-f", df, "-t", `fid-outside-${who}`, ctx]);
    assert.equal(r2.code, 0, `${who}: ${r2.stderr}${r2.stdout}`);
    assert.match(r2.stdout, /Running in [0-9a-f]{12}\n\.dockerignore\nb\.txt\nRemoving intermediate/, `${who}: ${r2.stdout}`);
  }
});

test("a built image records its Parent (the previous step's image), the Container its last RUN ran in and that step's ContainerConfig, as the classic builder", () => {
  const ctx = context("meta", {
    "f.txt": "f\n",
    Dockerfile: ["FROM busybox", "ENV E=v", "COPY f.txt /f.txt", "RUN echo made > /made", ""].join("\n"),
  });
  const r = d.berth(["build", "-t", "fid-meta", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const [base, env, copy, run] = stepIds(r.stdout);
  const full = (short: string) => inspect(short).Id as string;
  const img = inspect("fid-meta");
  assert.equal(img.Id.slice(7, 19), run);
  assert.equal(img.Parent, full(copy));
  // The RUN step: the ID of the container it ran in, and its config with the command as Cmd.
  assert.match(img.Container, /^[0-9a-f]{64}$/);
  assert.ok(r.stdout.includes(`Running in ${img.Container.slice(0, 12)}`), r.stdout);
  assert.deepEqual(img.ContainerConfig.Cmd, ["/bin/sh", "-c", "echo made > /made"]);
  assert.equal(img.ContainerConfig.Image, full(copy));
  assert.deepEqual(img.ContainerConfig.Env, img.Config.Env);
  assert.deepEqual(img.Config.Cmd, ["sh"]);
  // A COPY ran no container: Container "", the step as a "#(nop)" Cmd.
  const c = inspect(copy);
  assert.equal(c.Parent, full(env));
  assert.equal(c.Container, "");
  assert.deepEqual(c.ContainerConfig.Cmd.slice(0, 2), ["/bin/sh", "-c"]);
  assert.match(c.ContainerConfig.Cmd[2], /^#\(nop\) COPY /);
  assert.equal(c.ContainerConfig.Cmd.length, 3);
  // A config step: dockerd's ["/bin/sh","-c","#(nop) ","ENV E=v"].
  const e = inspect(env);
  assert.equal(e.Parent, full(base));
  assert.deepEqual(e.ContainerConfig.Cmd, ["/bin/sh", "-c", "#(nop) ", "ENV E=v"]);
  assert.equal(e.ContainerConfig.Image, full(base));
  // The base image (not built): no parent, no container, an empty ContainerConfig.
  const b = inspect("busybox");
  assert.equal(b.Parent, "");
  assert.equal(b.Container, "");
  assert.equal(b.ContainerConfig.Cmd, null);
  assert.equal(b.ContainerConfig.Image, "");
  // docker's CLI reads the same fields.
  const viaDocker = d.docker(["image", "inspect", "-f", "{{.Parent}} {{.Container}}", "fid-meta"]);
  assert.equal(viaDocker.stdout.trim(), `${full(copy)} ${img.Container}`);
});
