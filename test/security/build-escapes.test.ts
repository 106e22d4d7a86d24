/**
 * Nothing gets out of a build: every path a build resolves (COPY/ADD sources
 * in the context, in a stage or in an image; COPY's destination; --chown's
 * /etc/passwd; RUN --mount sources; the Dockerfile itself) stays inside its
 * root, its symlinks followed as if that root were "/", as Docker does. Each
 * test plants a canary file outside every root and asserts that its content
 * never reaches an image or an answer, and that the canary is unchanged.
 * Legit uses of symlinks keep working as with Docker. Last, a build stops
 * when its client goes away: its RUN container and scratch directory go, and
 * its tag never appears.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, existsSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, basename } from "node:path";
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { gzipSync } from "node:zlib";
import { Daemon, runSync, sleep, api } from "../integration/harness.js";
import { writeTar, type TarEntry } from "../../src/lib/tar-writer.js";

const d = new Daemon();
const secret = `canary-content-${randomBytes(12).toString("hex")}`;
let work: string;       // this file's temp dir: contexts and canaries
let canary: string;     // a host file outside every root
let canaryDir: string;  // a host dir holding a passwd with a user only the host knows
const canaryUser = `canary${randomBytes(3).toString("hex")}`;
const made: string[] = [];
let n = 0;

before(async () => {
  await d.start();
  await d.bootstrap();
  work = mkdtempSync(join(tmpdir(), "berth-sec-"));
  canary = join(work, `canary-${randomBytes(4).toString("hex")}`);
  writeFileSync(canary, secret + "\n");
  canaryDir = join(work, "canarydir");
  mkdirSync(canaryDir);
  writeFileSync(join(canaryDir, "passwd"), `${canaryUser}:x:4242:4242::/:/bin/sh\n${secret}:x:0:0::/:/bin/sh\n`);
  writeFileSync(join(canaryDir, "group"), `${canaryUser}:x:4242:\n`);
});

after(async () => {
  try {
    for (const img of made) d.berth(["rmi", "-f", img]);
    await d.stop();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

type Spec = string | { link: string } | { dir: true } | Buffer;

/** A context dir from {path: content | {link} | {dir}}. */
function context(files: Record<string, Spec>): string {
  const dir = join(work, `ctx-${++n}`);
  mkdirSync(dir);
  for (const [p, v] of Object.entries(files)) {
    const abs = join(dir, p);
    mkdirSync(join(abs, ".."), { recursive: true });
    if (typeof v === "string" || Buffer.isBuffer(v)) writeFileSync(abs, v);
    else if ("link" in v) symlinkSync(v.link, abs);
    else mkdirSync(abs, { recursive: true });
  }
  return dir;
}

function build(ctx: string, tag: string, extra: string[] = []): { code: number; out: string } {
  made.push(tag);
  const r = d.berth(["build", "-t", tag, ...extra, ctx], { timeout: 180_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

function imageExists(tag: string): boolean { return d.berth(["image", "inspect", tag]).code === 0; }

/** The image's whole filesystem (export of a container made from it) and its config hold no canary content. */
function assertClean(tag: string): void {
  const c = d.berth(["create", tag, "true"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  try {
    const tarPath = join(work, `export-${++n}.tar`);
    const r = d.berth(["export", "-o", tarPath, id]);
    assert.equal(r.code, 0, r.stderr);
    const fsTar = readFileSync(tarPath);
    rmSync(tarPath);
    assert.ok(fsTar.length > 0, "export is empty");
    assert.ok(!fsTar.includes(secret), `the canary's content is in ${tag}'s filesystem`);
    assert.ok(!d.berth(["image", "inspect", tag]).stdout.includes(secret), `the canary's content is in ${tag}'s config`);
  } finally {
    d.berth(["rm", "-f", id]);
  }
}

function assertCanaryIntact(): void {
  assert.equal(readFileSync(canary, "utf8"), secret + "\n");
  assert.deepEqual(readdirSync(canaryDir).sort(), ["group", "passwd"]);
}

/** A build that must fail without leaking: no image, no canary content in what it said. */
function assertRefused(r: { code: number; out: string }, tag: string, message?: RegExp): void {
  assert.notEqual(r.code, 0, r.out);
  if (message) assert.match(r.out, message);
  assert.ok(!r.out.includes(secret), "the canary's content is in the build output");
  assert.ok(!imageExists(tag), `${tag} was tagged`);
  assertCanaryIntact();
}

// ------------------------------------------------------------ COPY --from a stage or an image

test("COPY --from a stage through its absolute, relative and chained symlinks to / finds the stage's file, not the host's", () => {
  const cases: [string, string][] = [
    ["RUN ln -s / /host", `/host${canary}`],
    ["RUN ln -s ../../../../../../.. /up", `/up${canary}`],
    ["RUN ln -s /l2 /l1 && ln -s ../../.. /l2", `/l1${canary}`],
    [`RUN mkdir -p /x && ln -s ${canary} /x/c`, "/x/c"],
  ];
  for (const [run, src] of cases) {
    const tag = `sec-stage-${++n}`;
    const ctx = context({ Dockerfile: `FROM busybox AS s\n${run}\nFROM busybox\nCOPY --from=s ${src} /stolen\n` });
    // Docker: "COPY failed: stat host/tmp/canary-…: file does not exist" (the path cleaned, inside the stage).
    assertRefused(build(ctx, tag), tag, new RegExp(`COPY failed: stat ${src.slice(1).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: file does not exist`));
  }
});

test("COPY --from a stage: a glob through a symlinked directory matches nothing, a directory behind a symlink is the stage's", () => {
  const tag = `sec-stage-glob-${++n}`;
  const ctx = context({ Dockerfile: `FROM busybox AS s\nRUN ln -s / /host\nFROM busybox\nCOPY --from=s /host${join(work, "canary-*")} /stolen/\n` });
  assertRefused(build(ctx, tag), tag, /no source files were specified/);

  // A link to a directory the stage has: that directory is copied (the stage's, empty here), never the host's.
  const tag2 = `sec-stage-dir-${++n}`;
  const ctx2 = context({ Dockerfile: `FROM busybox AS s\nRUN mkdir -p ${work} && ln -s ${work} /w\nFROM busybox\nCOPY --from=s /w/ /stolen/\nRUN ls -A /stolen | wc -l > /count\n` });
  const r = build(ctx2, tag2);
  assert.equal(r.code, 0, r.out);
  assert.equal(d.berth(["run", "--rm", tag2, "cat", "/count"]).stdout.trim(), "0");
  assertClean(tag2);
  assertCanaryIntact();
});

test("COPY --from an image (not a stage) whose filesystem links to / finds the image's file, not the host's", () => {
  const base = `sec-evil-base-${++n}`;
  const r0 = build(context({ Dockerfile: `FROM busybox\nRUN ln -s / /host && ln -s ${canary} /direct\n` }), base);
  assert.equal(r0.code, 0, r0.out);
  for (const src of [`/host${canary}`, "/direct"]) {
    const tag = `sec-from-image-${++n}`;
    assertRefused(build(context({ Dockerfile: `FROM busybox\nCOPY --from=${base} ${src} /stolen\n` }), tag), tag, /COPY failed: stat .*: file does not exist/);
  }
});

// ------------------------------------------------------------ context symlinks

test("COPY of a context symlink to a host file (absolute, relative, chained) or through one to a host dir is 'not found', as Docker", () => {
  const cases: [Record<string, Spec>, string, string][] = [
    [{ c: { link: canary } }, "COPY c /p", "c"],
    [{ c: { link: "../../../../../../../.." + canary } }, "COPY c /p", "c"],
    [{ c1: { link: "c2" }, c2: { link: "sub/c3" }, "sub/c3": { link: canary } }, "COPY c1 /p", "c1"],
    [{ w: { link: work } }, `COPY w/${basename(canary)} /p`, `w/${basename(canary)}`],
    [{ w: { link: "../../../../../../.." + work } }, `ADD w/${basename(canary)} /p`, `w/${basename(canary)}`],
    [{ l1: { link: "l2" }, l2: { link: "/" } }, `COPY l1${canary} /p`, `l1${canary}`],
  ];
  for (const [files, step, shown] of cases) {
    const tag = `sec-ctx-${++n}`;
    const ctx = context({ ...files, Dockerfile: `FROM busybox\n${step}\n` });
    assertRefused(build(ctx, tag), tag, new RegExp(`file not found in build context or excluded by \\.dockerignore: stat ${shown.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: file does not exist`));
  }
});

test("a source climbing out with ../ is forbidden, in the context and --from a stage (Docker's words)", () => {
  for (const df of [`FROM busybox\nCOPY ../../../../../../..${canary} /p\n`, `FROM busybox AS s\nFROM busybox\nCOPY --from=s ../../../../../../..${canary} /p\n`, `FROM busybox\nADD ../x/../../../../../../..${canary} /p\n`]) {
    const tag = `sec-dots-${++n}`;
    assertRefused(build(context({ Dockerfile: df }), tag), tag, /(COPY|ADD) failed: forbidden path outside the build context: \.\.\/.* \(\)/);
  }
});

test("globs: a pattern through a symlinked directory matches nothing; a pattern matching a link to a host file is 'not found'", () => {
  const t1 = `sec-glob-${++n}`;
  assertRefused(build(context({ w: { link: work }, Dockerfile: "FROM busybox\nCOPY w/canary-* /p/\n" }), t1), t1, /COPY failed: no source files were specified/);
  const t2 = `sec-glob-${++n}`;
  assertRefused(build(context({ l1: { link: canary }, Dockerfile: "FROM busybox\nCOPY l* /p/\n" }), t2), t2, /stat l1: file does not exist/);
  // A link to a host directory matched by a glob resolves inside the context: here, to nothing.
  const t3 = `sec-glob-${++n}`;
  assertRefused(build(context({ w1: { link: work }, Dockerfile: "FROM busybox\nCOPY w* /p/\n" }), t3), t3, /stat w1: file does not exist/);
});

test("legit symlinks in the context work as with Docker: links inside are followed, links in a copied dir are kept as links", () => {
  const tag = `sec-legit-${++n}`;
  const ctx = context({
    "a.txt": "A\n", l: { link: "a.txt" }, la: { link: "/a.txt" }, "d/b": "B\n", "d/out": { link: canary }, d2: { link: "d" },
    etc: { dir: true }, "etc/passwd": "fake\n", e: { link: "/etc" },
    Dockerfile: "FROM busybox\nCOPY l /p\nCOPY la /pa\nCOPY d /d/\nCOPY d2 /d2/\nCOPY e/passwd /ep\nCOPY l* /g/\n",
  });
  const r = build(ctx, tag);
  assert.equal(r.code, 0, r.out);
  const sh = (cmd: string) => d.berth(["run", "--rm", tag, "sh", "-c", cmd]).stdout;
  assert.equal(sh("cat /p /pa /d/b /d2/b /ep"), "A\nA\nB\nB\nfake\n");
  // A link inside a copied directory is copied as the link it is (its target is not read).
  assert.equal(sh("readlink /d/out; readlink /d2/out"), `${canary}\n${canary}\n`);
  // The glob matched l and la, both followed inside the context, copied under their own names.
  assert.equal(sh("cat /g/l /g/la"), "A\nA\n");
  assertClean(tag);
  assertCanaryIntact();
});

// ------------------------------------------------------------ destinations and --chown

test("COPY's destination follows the image's symlinks inside the image (as Docker), never the host's", () => {
  const tag = `sec-dest-${++n}`;
  // /y links to a host directory that exists (canaryDir) but not in the image: Docker writes the file at
  // the image's own ${canaryDir}; nothing may land on the host or be read from there.
  const ctx = context({
    "a.txt": "A\n",
    Dockerfile: `FROM busybox\nRUN mkdir -p /tmp/zz && ln -s /tmp /x && ln -s ${canaryDir} /y && ln -s ../../../../tmp/zz /z\nCOPY a.txt /x/\nCOPY a.txt /y\nCOPY a.txt /z/q\n`,
  });
  const r = build(ctx, tag);
  assert.equal(r.code, 0, r.out);
  const sh = (cmd: string) => d.berth(["run", "--rm", tag, "sh", "-c", cmd]).stdout;
  assert.equal(sh("readlink /x; readlink /y; readlink /z"), `/tmp\n${canaryDir}\n../../../../tmp/zz\n`);
  assert.equal(sh(`cat /tmp/a.txt ${canaryDir} /tmp/zz/q`), "A\nA\nA\n");
  assertClean(tag);
  assertCanaryIntact();
});

test("--chown reads the image's /etc/passwd even when the image's /etc is a symlink to a host directory", () => {
  const tag = `sec-chown-${++n}`;
  const ctx = context({ "a.txt": "A\n", "root/etc": { link: canaryDir }, Dockerfile: `FROM scratch\nCOPY root/ /\nCOPY --chown=${canaryUser} a.txt /a\n` });
  assertRefused(build(ctx, tag), tag, new RegExp(`can't find uid for user ${canaryUser}`));
  // A name only in the canary's passwd is not found either, and the canary's lines never show.
  const tag2 = `sec-chown-${++n}`;
  assertRefused(build(context({ "a.txt": "A\n", "root/etc": { link: canaryDir }, Dockerfile: `FROM scratch\nCOPY root/ /\nCOPY --chown=${canaryUser}:${canaryUser} a.txt /a\n` }), tag2), tag2);
});

// ------------------------------------------------------------ RUN --mount

test("RUN --mount=type=bind with a source linking to / or to a host file mounts the context's path, never the host's", () => {
  // A link to /: the context itself is mounted (it holds the Dockerfile, not the host's /proc or the canary).
  const tag = `sec-bind-${++n}`;
  const ctx = context({ root: { link: "/" }, up: { link: "../../../../../.." }, Dockerfile: "FROM busybox\nRUN --mount=type=bind,source=root,target=/m ls -A /m > /l1\nRUN --mount=type=bind,source=up,target=/m ls -A /m > /l2\n" });
  const r = build(ctx, tag);
  assert.equal(r.code, 0, r.out);
  for (const f of ["/l1", "/l2"]) {
    const listing = d.berth(["run", "--rm", tag, "cat", f]).stdout.split("\n").filter(Boolean).sort();
    assert.deepEqual(listing, ["Dockerfile", "root", "up"]);
  }
  assertClean(tag);
  // A link to a host file: not in the context, so the step fails (BuildKit: "not found"), and writing through it is impossible.
  for (const src of ["c", "w"]) {
    const t = `sec-bind-${++n}`;
    const c2 = context({ c: { link: canary }, w: { link: work }, Dockerfile: `FROM busybox\nRUN --mount=type=bind,source=${src},target=/m,rw sh -c 'cat /m/${basename(canary)} /m; echo pwned > /m/${basename(canary)}; echo pwned > /m' ; cat /m > /out || true\n` });
    assertRefused(build(c2, t), t, /not found/);
  }
});

test("RUN --mount=type=cache: an id or a target with .. or / stays in the daemon's cache directory", () => {
  const name = `escaped-${randomBytes(4).toString("hex")}`;
  const tag = `sec-cache-${++n}`;
  const ctx = context({ Dockerfile: `FROM busybox\nRUN --mount=type=cache,id=../../../../../../..${work}/${name},target=/c echo pwned > /c/${name}\nRUN --mount=type=cache,target=/../../..${work}/${name} echo pwned > ${work}/${name}/f\n` });
  const r = build(ctx, tag);
  assert.equal(r.code, 0, r.out);
  assert.ok(!existsSync(join(work, name)), "a cache mount landed on the host");
  // The cache directories are under the daemon's data root.
  const mounts = join(d.dataRoot, "buildcache", "mounts");
  const found = readdirSync(mounts).filter((m) => existsSync(join(mounts, m, name)));
  assert.equal(found.length, 1, `no cache dir holds ${name}`);
  assertCanaryIntact();
});

// ------------------------------------------------------------ ADD of a local archive

async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of writeTar(entries)) parts.push(b);
  return Buffer.concat(parts);
}

test("ADD of a hostile local archive (links out, .. names, a file through a link) unpacks inside the image only", async () => {
  const name = `added-${randomBytes(4).toString("hex")}`;
  const now = new Date();
  const evil = await tarOf([
    { name: "out", type: "symlink", mode: 0o777, linkname: work, mtime: now },
    { name: `out/${name}`, type: "file", mode: 0o644, source: Buffer.from("pwned\n"), mtime: now },
    { name: `../../../../../../..${work}/${name}-dots`, type: "file", mode: 0o644, source: Buffer.from("pwned\n"), mtime: now },
    { name: "ok.txt", type: "file", mode: 0o644, source: Buffer.from("inside\n"), mtime: now },
  ]);
  for (const [file, data] of [["evil.tar", evil], ["evil.tar.gz", gzipSync(evil)]] as const) {
    const tag = `sec-add-${++n}`;
    const r = build(context({ [file]: data, Dockerfile: `FROM busybox\nADD ${file} /x/\n` }), tag);
    assert.equal(r.code, 0, r.out);
    assertClean(tag);
    // Everything landed inside the image: the file through the link under the image's own ${work}, the ".." one cleaned.
    const sh = (cmd: string) => d.berth(["run", "--rm", tag, "sh", "-c", cmd]).stdout;
    assert.equal(sh(`cat /x/ok.txt; readlink /x/out; cat ${work}/${name} /x${work}/${name}-dots 2>&1 | wc -l`), `inside\n${work}\n2\n`);
    assert.deepEqual(readdirSync(work).filter((f) => f.startsWith(name)), [], "ADD wrote on the host");
    assertCanaryIntact();
  }
  // A hard link to a host file: refused or left out, never a copy of the canary.
  const hard = await tarOf([{ name: "hl", type: "link", mode: 0o644, linkname: `../../../../../..${canary}`, mtime: now }]);
  const tagH = `sec-add-${++n}`;
  const rh = build(context({ "h.tar": hard, Dockerfile: "FROM busybox\nADD h.tar /x/\n" }), tagH);
  assert.ok(!rh.out.includes(secret));
  if (rh.code === 0) assertClean(tagH); else assert.ok(!imageExists(tagH));
  assertCanaryIntact();
  // An archive that is a context link to a host archive is not found.
  writeFileSync(join(work, "host.tar.gz"), gzipSync(await tarOf([{ name: "stolen", type: "file", mode: 0o644, source: Buffer.from(secret + "\n"), mtime: now }])));
  const tag = `sec-add-${++n}`;
  try {
    assertRefused(build(context({ a: { link: join(work, "host.tar.gz") }, Dockerfile: "FROM busybox\nADD a /x/\n" }), tag), tag, /stat a: file does not exist/);
  } finally { rmSync(join(work, "host.tar.gz")); }
});

// ------------------------------------------------------------ the Dockerfile

/** A build context made of these files, as the tar a client sends. */
function contextTar(files: Record<string, Spec>): Buffer {
  const tarPath = join(work, `ctx-${++n}.tar`);
  runSync("tar", ["-C", context(files), "-cf", tarPath, "."]);
  const body = readFileSync(tarPath);
  rmSync(tarPath);
  return body;
}

/** POST /build with a context tar made of these files and this dockerfile parameter; the whole answer. */
async function buildApi(files: Record<string, Spec>, dockerfile: string, tag: string): Promise<string> {
  made.push(tag);
  const body = contextTar(files);
  const r = await api(d.sock, "POST", `/v1.41/build?t=${tag}&dockerfile=${encodeURIComponent(dockerfile)}`, body, { "Content-Type": "application/x-tar" });
  return r.body;
}

test("the Dockerfile is read from inside the context only: ../ names are forbidden, links to host files are not found (Docker's words)", async () => {
  // The canary as a Dockerfile would echo its content in the parse error: it must never be read.
  const files: Record<string, Spec> = { Dockerfile: "FROM busybox\n", Dfl: { link: canary }, Drel: { link: "../../../../../../.." + canary }, "sub/ok": { link: "../Dockerfile" } };
  const cases: [string, RegExp][] = [
    ["../../x", /forbidden path outside the build context: \.\.\/\.\.\/x \(\)/],
    [`../../../../../../..${canary}`, /forbidden path outside the build context/],
    ["Dfl", /Cannot locate specified Dockerfile: Dfl/],
    ["Drel", /Cannot locate specified Dockerfile: Drel/],
    [canary, /Cannot locate specified Dockerfile: /],
  ];
  for (const [df, msg] of cases) {
    const tag = `sec-df-${++n}`;
    const out = await buildApi(files, df, tag);
    assert.match(out, msg);
    assert.ok(!out.includes(secret), `the canary's content is in the answer for dockerfile=${df}`);
    assert.ok(!imageExists(tag));
  }
  // Legit: a link to the context's Dockerfile, and an absolute name taken from the context's root.
  for (const df of ["sub/ok", "/Dockerfile"]) {
    const tag = `sec-df-${++n}`;
    const out = await buildApi(files, df, tag);
    assert.match(out, /Successfully tagged/, out);
  }
  assertCanaryIntact();
});

// ------------------------------------------------------------ cancellation

function buildDirs(): string[] {
  return readdirSync(join(d.dataRoot, "tmp")).filter((f) => f.startsWith("build-"));
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Starts POST /build over the socket; resolves once `ready` holds of what the daemon streamed, with the request to destroy. */
async function startBuild(files: Record<string, Spec>, tag: string, ready: (out: string) => boolean): Promise<{ destroy: () => void; out: () => string }> {
  made.push(tag);
  const body = contextTar(files);
  let out = "";
  const req = request({ socketPath: d.sock, method: "POST", path: `/v1.41/build?t=${tag}`, headers: { "Content-Type": "application/x-tar" } });
  let seen: () => void = () => {};
  const got = new Promise<void>((res) => { seen = res; });
  req.on("response", (r) => { r.on("data", (c) => { out += c; if (ready(out)) seen(); }); r.on("error", () => {}); });
  req.on("error", () => {});
  req.end(body);
  const deadline = setTimeout(() => seen(), 120_000);
  await got;
  clearTimeout(deadline);
  assert.ok(ready(out), `the build never got going: ${out}`);
  return { destroy: () => req.destroy(), out: () => out };
}

test("a build whose client goes away during a RUN stops: its container is killed and removed, its scratch dir goes, no tag", async () => {
  const tag = `sec-cancel-run-${++n}`;
  const b = await startBuild({ Dockerfile: "FROM busybox\nRUN echo started; sleep 600\nLABEL never=reached\n" }, tag, (o) => o.includes("started"));
  assert.equal(d.berth(["ps", "-aq"]).stdout.trim().split("\n").filter(Boolean).length, 1, "no build container while the RUN runs");
  b.destroy();
  await until("the build container to go", () => d.berth(["ps", "-aq"]).stdout.trim() === "");
  await until("the build's scratch dir to go", () => buildDirs().length === 0);
  assert.ok(!imageExists(tag), "a cancelled build was tagged");
  assert.ok(!b.out().includes("Successfully built"));
});

test("a build whose client goes away between steps (10 000 LABEL lines) stops, and is not tagged", async () => {
  const tag = `sec-cancel-labels-${++n}`;
  const lines = ["FROM busybox"];
  for (let i = 0; i < 10_000; i++) lines.push(`LABEL l${i}=v${i}`);
  const b = await startBuild({ Dockerfile: lines.join("\n") + "\n" }, tag, (o) => o.includes("Step 5/10001"));
  b.destroy();
  await until("the build's scratch dir to go", () => buildDirs().length === 0);
  assert.ok(!imageExists(tag), "a cancelled build was tagged");
  // It stopped early: far from all 10 000 steps ran (the cache holds only the finished ones).
  // The build cache's journal: one line per finished step (plus a compacted snapshot, if it grew that far).
  const dir = join(d.dataRoot, "buildcache");
  const journal = existsSync(join(dir, "cache.journal")) ? readFileSync(join(dir, "cache.journal"), "utf8").split("\n").filter(Boolean).length : 0;
  const snapshot = existsSync(join(dir, "cache.json")) ? (JSON.parse(readFileSync(join(dir, "cache.json"), "utf8")) as { entries: unknown[] }).entries.length : 0;
  assert.ok(journal + snapshot > 0, "the steps that finished are cached");
  assert.ok(journal + snapshot < 10_000, `all ${journal + snapshot} steps ran`);
  // The daemon still builds.
  const ok = build(context({ Dockerfile: "FROM busybox\nLABEL after=cancel\n" }), `sec-after-${++n}`);
  assert.equal(ok.code, 0, ok.out);
});
