/**
 * The builder as BuildKit does it: the Containerfile name and its ignore files, a graph of steps (only
 * what the target needs runs, independent stages in parallel, one cache keyed by step digest that
 * survives a daemon restart and is shared between stages), RUN --mount=type=secret, ADD <url> --checksum.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, utimesSync, readFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
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

test("only the stages the target needs are built: a stage with a failing RUN that nothing needs does not fail the build", () => {
  const c = context({ Dockerfile: ["FROM busybox AS broken", "RUN echo never-runs && exit 3", "FROM busybox", "RUN echo fine > /ok", ""].join("\n") });
  let r = build(["-t", "g-unused", c]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /never-runs|FROM busybox AS broken/);
  assert.match(r.stdout, /^Step 1\/2 : FROM busybox\n/);
  assert.equal(d.berth(["run", "--rm", "g-unused", "cat", "/ok"]).stdout, "fine\n");
  // The stage itself, as the target, fails as it should.
  r = d.berth(["build", "--target", "broken", c]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /The command '\/bin\/sh -c echo never-runs && exit 3' returned a non-zero code: 3/);
});

test("independent stages run side by side: their RUN steps overlap in time; the output stays in file order", () => {
  const c = context({
    Dockerfile: [
      "FROM busybox AS a",
      "RUN cat /proc/uptime > /a0 && sleep 2 && cat /proc/uptime > /a1",
      "FROM busybox AS b",
      "RUN cat /proc/uptime > /b0 && sleep 2 && cat /proc/uptime > /b1",
      "FROM busybox",
      "COPY --from=a /a0 /a1 /",
      "COPY --from=b /b0 /b1 /",
      "",
    ].join("\n"),
  });
  const t0 = Date.now();
  const r = build(["-t", "g-par", c]);
  const wall = Date.now() - t0;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // Each step's stamps as the containers saw them (seconds since boot): the two sleeps overlapped.
  const [a0, a1, b0, b1] = d.berth(["run", "--rm", "g-par", "cat", "/a0", "/a1", "/b0", "/b1"]).stdout.trim().split("\n").map((l) => Number(l.split(" ")[0]));
  assert.ok(a0 < b1 && b0 < a1, `the two RUN steps did not overlap: a ${a0}..${a1}, b ${b0}..${b1} (build took ${wall} ms)`);
  // The classic builder's lines, each stage's together, in file order.
  const steps = [...r.stdout.matchAll(/^Step (\d+)\/7 : /gm)].map((m) => Number(m[1]));
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7]);
});

test("a failing stage stops the stages running beside it and leaves no container", () => {
  const c = context({
    Dockerfile: ["FROM busybox AS slow", "RUN sleep 300", "FROM busybox AS bad", "RUN exit 5", "FROM busybox", "COPY --from=slow /etc/hostname /a", "COPY --from=bad /etc/hostname /b", ""].join("\n"),
  });
  const r = d.berth(["build", c], { timeout: 120_000 });
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /The command '\/bin\/sh -c exit 5' returned a non-zero code: 5/);
  assert.equal(d.berth(["ps", "-aq"]).stdout, "");
});

test("the cache is keyed by step digest: the same step in two stages is built once, the cache outlives a restart, an mtime alone changes nothing, a changed file rebuilds only what depends on it", async () => {
  const c = context({
    Dockerfile: [
      "FROM busybox AS a",
      "RUN cat /proc/sys/kernel/random/uuid > /id",
      "FROM busybox AS b",
      "RUN cat /proc/sys/kernel/random/uuid > /id",
      "FROM busybox",
      "COPY --from=a /id /a",
      "COPY --from=b /id /b",
      "COPY app.txt /app.txt",
      "",
    ].join("\n"),
    "app.txt": "one\n",
  });
  const idOf = (out: string) => /Successfully built ([0-9a-f]{12})/.exec(out)?.[1];
  let r = build(["-t", "g-cache", c]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((r.stdout.match(/Running in/g) ?? []).length, 1, r.stdout);
  const [ida, idb] = d.berth(["run", "--rm", "g-cache", "cat", "/a", "/b"]).stdout.trim().split("\n");
  assert.equal(ida, idb);
  const first = idOf(r.stdout);

  await d.stopDaemon();
  await d.start();
  r = build(["-t", "g-cache", c]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /Running in/);
  assert.equal((r.stdout.match(/Using cache/g) ?? []).length, 5, r.stdout);
  assert.equal(idOf(r.stdout), first);

  utimesSync(join(c, "app.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
  r = build(["-t", "g-cache", c]);
  assert.equal(idOf(r.stdout), first, r.stdout);

  writeFileSync(join(c, "app.txt"), "two\n");
  r = build(["-t", "g-cache", c]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /Running in/);
  assert.equal((r.stdout.match(/Using cache/g) ?? []).length, 4, r.stdout);
  assert.notEqual(idOf(r.stdout), first);
  assert.equal(d.berth(["run", "--rm", "g-cache", "cat", "/app.txt"]).stdout, "two\n");
});

test("RUN --mount=type=secret: the secret is visible to RUN (file and env) and absent from every layer, the config and the history", async () => {
  const value = `berth-s3cret-${randomBytes(8).toString("hex")}`;
  const envValue = `berth-env-s3cret-${randomBytes(8).toString("hex")}`;
  const c = context({
    Dockerfile: [
      "FROM busybox",
      "RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d' ' -f1 > /sum && stat -c '%a %u' /run/secrets/tok > /mode",
      `RUN --mount=type=secret,id=tok,env=TOK,target=/x/tok test "$TOK" = "$(cat /x/tok)" && echo same > /same`,
      'RUN --mount=type=secret,id=fromenv,env=FE echo "${#FE}" > /fe-len && test ! -e /run/secrets/fromenv',
      "RUN --mount=type=secret,id=missing echo optional-ok > /opt",
      "",
    ].join("\n"),
    "tok.txt": value,
  });
  const r = build(["-t", "g-secret", "--secret", `id=tok,src=${join(c, "tok.txt")}`, "--secret", "id=fromenv,env=BERTH_TEST_SECRET", c], { env: { BERTH_TEST_SECRET: envValue } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const run = d.berth(["run", "--rm", "g-secret", "sh", "-c", "cat /sum /mode /same /fe-len /opt; test -e /run/secrets/tok || echo no-secret-file; test -e /x/tok || echo no-target-file"]);
  assert.equal(run.stdout, `${createHash("sha256").update(value).digest("hex")}\n400 0\nsame\n${envValue.length}\noptional-ok\nno-secret-file\nno-target-file\n`);

  // The saved image (every layer, the config with its history): neither secret's bytes anywhere.
  const out = mkdtempSync(join(tmpdir(), "berth-save-"));
  dirs.push(out);
  const saved = d.berth(["save", "-o", join(out, "img.tar"), "g-secret"]);
  assert.equal(saved.code, 0, saved.stderr);
  assert.equal(runSync("tar", ["-C", out, "-xf", join(out, "img.tar")]).code, 0);
  const files = runSync("find", [out, "-type", "f"]).stdout.trim().split("\n");
  assert.ok(files.length > 3);
  for (const f of files) {
    let data = readFileSync(f);
    if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
    for (const s of [value, envValue]) assert.equal(data.includes(s), false, `${s} found in ${f}`);
  }
  for (const args of [["history", "--no-trunc", "g-secret"], ["image", "inspect", "g-secret"]]) {
    const o = d.berth(args).stdout;
    assert.ok(o.length > 0 && !o.includes(value) && !o.includes(envValue), o);
  }

  // A required secret that was not given: BuildKit's words.
  const req = context({ Dockerfile: "FROM busybox\nRUN --mount=type=secret,id=nope,required=true cat /run/secrets/nope\n" });
  const f = d.berth(["build", req]);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /secret nope not found: not found/);

  // Through the API: the X-Berth-Build-Secrets header; a malformed one is a 400.
  const apiCtx = context({ Dockerfile: "FROM busybox\nRUN --mount=type=secret,id=tok,required=true test \"$(cat /run/secrets/tok)\" = api-value && echo api-secret-ok\n" });
  const tarBuf = Buffer.from(runSync("sh", ["-c", `tar -C ${apiCtx} -c Dockerfile | base64 -w0`]).stdout, "base64");
  const header = Buffer.from(JSON.stringify({ tok: Buffer.from("api-value").toString("base64") })).toString("base64");
  const res = await api(d.sock, "POST", "/build?nocache=1", tarBuf, { "Content-Type": "application/x-tar", "X-Berth-Build-Secrets": header });
  assert.equal(res.status, 200);
  assert.match(res.body, /api-secret-ok/);
  assert.doesNotMatch(res.body, /"error"/);
  const bad = await api(d.sock, "POST", "/build", tarBuf, { "Content-Type": "application/x-tar", "X-Berth-Build-Secrets": "not json" });
  assert.equal(bad.status, 400);
  assert.match(bad.body, /invalid X-Berth-Build-Secrets header/);
});

test("ADD <url> with --checksum: a file served on loopback is added (mode 0600, not unpacked, cached by content); a wrong checksum fails with BuildKit's words", async () => {
  const body = Buffer.from(`payload ${randomBytes(8).toString("hex")}\n`);
  const gz = gzipSync(Buffer.from("not to be unpacked\n"));
  const right = `sha256:${createHash("sha256").update(body).digest("hex")}`;
  const wrong = `sha256:${"0".repeat(64)}`;
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    if (req.url === "/files/data.bin") { res.writeHead(200, { "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT" }); res.end(body); }
    else if (req.url === "/files/a.tar.gz") { res.writeHead(200); res.end(gz); }
    else { res.writeHead(404); res.end(); }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const c = context({
      Dockerfile: [
        "FROM busybox",
        `ADD --checksum=${right} ${base}/files/data.bin /data/`,
        `ADD ${base}/files/data.bin /renamed.bin`,
        `ADD ${base}/files/a.tar.gz /`,
        "",
      ].join("\n"),
    });
    images.push("g-url");
    let r = await d.berthAsync(["build", "-t", "g-url", c]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const seen = await d.berthAsync(["run", "--rm", "g-url", "sh", "-c", "stat -c '%a %u %Y' /data/data.bin /renamed.bin; cat /data/data.bin; ls /a.tar.gz"]);
    assert.equal(seen.stdout, `600 0 1445412480\n600 0 1445412480\n${body}/a.tar.gz\n`);

    // Unchanged content: every step from the cache.
    r = await d.berthAsync(["build", "-t", "g-url", c]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal((r.stdout.match(/Using cache/g) ?? []).length, 3, r.stdout);

    const bad = context({ Dockerfile: `FROM busybox\nADD --checksum=${wrong} ${base}/files/data.bin /data.bin\n` });
    r = await d.berthAsync(["build", bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`digest mismatch ${right}: ${wrong}`));

    const local = context({ Dockerfile: `FROM busybox\nADD --checksum=${right} x.txt /x.txt\n`, "x.txt": "x" });
    r = await d.berthAsync(["build", local]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /checksum can't be specified for non-HTTP\(S\) sources/);

    const missing = context({ Dockerfile: `FROM busybox\nADD ${base}/nope /nope\n` });
    r = await d.berthAsync(["build", missing]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid response status 404/);
    assert.ok(hits >= 5);
  } finally {
    server.close();
  }
});
