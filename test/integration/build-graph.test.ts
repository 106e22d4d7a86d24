/**
 * The builder as BuildKit does it: the Containerfile name and its ignore files, a graph of steps (only
 * what the target needs runs, independent stages in parallel, one cache keyed by step digest that
 * survives a daemon restart and is shared between stages), RUN --mount=type=secret, ADD <url> --checksum.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, runSync, api } from "./harness.js";

const d = new Daemon();
const dirs: string[] = [];
const images: string[] = [];

function context(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-graph-"));
  dirs.push(dir);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

function build(args: string[], opts: { env?: Record<string, string> } = {}): ReturnType<Daemon["berth"]> {
  const t = args[args.indexOf("-t") + 1];
  if (args.includes("-t")) images.push(t);
  return d.berth(["build", ...args], opts);
}

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  for (const i of images) d.berth(["rmi", "-f", i]);
  await d.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test("Containerfile: used when the context has no Dockerfile, with .containerignore or Containerfile.dockerignore beside it", async () => {
  const a = context({ Containerfile: "FROM busybox\nCOPY . /ctx/\n", ".containerignore": "junk.txt\n", "junk.txt": "x\n", "keep.txt": "y\n" });
  let r = build(["-t", "cf-a", a]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(d.berth(["run", "--rm", "cf-a", "ls", "-A", "/ctx"]).stdout, ".containerignore\nContainerfile\nkeep.txt\n");

  // <Containerfile>.dockerignore wins over .containerignore and .dockerignore, and may exclude itself.
  const b = context({
    Containerfile: "FROM busybox\nCOPY . /ctx/\n", "Containerfile.dockerignore": "a.txt\nContainerfile.dockerignore\n",
    ".containerignore": "b.txt\n", ".dockerignore": "c.txt\n", "a.txt": "", "b.txt": "", "c.txt": "",
  });
  r = build(["-t", "cf-b", b]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(d.berth(["run", "--rm", "cf-b", "ls", "-A", "/ctx"]).stdout, ".containerignore\n.dockerignore\nContainerfile\nb.txt\nc.txt\n");

  // A Dockerfile is still the first choice.
  const c = context({ Dockerfile: "FROM busybox\nLABEL which=dockerfile\n", Containerfile: "FROM busybox\nLABEL which=containerfile\n" });
  r = build(["-t", "cf-c", c]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(d.berth(["inspect", "-f", "{{.Config.Labels.which}}", "cf-c"]).stdout, "dockerfile\n");

  // Neither: the docker CLI's words.
  const e = context({ "x.txt": "" });
  r = d.berth(["build", e]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat .*\/Dockerfile: no such file or directory/);

  // The API without a dockerfile parameter: the daemon falls back to Containerfile too.
  const tarBuf = Buffer.from(runSync("sh", ["-c", `tar -C ${a} -c Containerfile | base64 -w0`]).stdout, "base64");
  const res = await api(d.sock, "POST", "/build?t=cf-api", tarBuf, { "Content-Type": "application/x-tar" });
  images.push("cf-api");
  assert.equal(res.status, 200);
  assert.match(res.body, /Successfully tagged cf-api:latest/);
  assert.doesNotMatch(res.body, /"error"/);
});
