/**
 * Container filesystem paths: nothing a container holds (symlinks to host
 * paths: absolute, relative, chained, to "/") lets `cp`, commit, diff,
 * export or a volume's copy-up read or write outside the container.
 *
 * A canary directory outside every root holds a file of random content: it
 * must never appear in a copy, an image, an export or a volume, and must
 * never change. Plus the ordinary `cp` cases, as Docker answers them.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, lstatSync, rmSync, existsSync, chownSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, DOCKER, api } from "../integration/harness.js";

let d: Daemon;
let canaryDir: string;
let canaryFile: string;
let canary: string;
let work: string;
const made: string[] = [];

function berthBin(args: string[], input?: Buffer): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, ...args], { input: input ?? Buffer.alloc(0), timeout: 60_000, cwd: work, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
function dockerBin(args: string[], input?: Buffer): { code: number; stdout: Buffer; stderr: string } {
  const r = spawnSync(DOCKER, args, { input: input ?? Buffer.alloc(0), timeout: 60_000, cwd: work, maxBuffer: 1 << 28, env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}
function ok(r: { code: number; stdout: string | Buffer; stderr: string }, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr}${r.stdout.toString().slice(0, 500)}`);
}

/** Every regular file under dir (symlinks not followed), with its bytes. */
function filesUnder(dir: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  const go = (p: string) => {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) go(join(p, n));
    else if (st.isFile()) out.push([p, readFileSync(p)]);
  };
  if (existsSync(dir)) go(dir);
  return out;
}
function assertNoCanary(where: string, bytes: Buffer): void {
  assert.ok(!bytes.includes(Buffer.from(canary)), `the host canary's content appeared in ${where}`);
}
function assertCanaryIntact(): void {
  assert.equal(readFileSync(canaryFile, "utf8"), canary, "the host canary file was changed");
  assert.deepEqual(readdirSync(canaryDir), ["canary"], "something was written into the host canary directory");
}

/** The evil container's symlinks: each leads, if followed on the host, to the canary directory. */
function evilScript(): string {
  const depth = "../".repeat(12);
  return [
    `ln -s ${canaryDir} /abs`,                       // absolute
    `mkdir -p /deep/a/b && ln -s ${depth}${canaryDir.slice(1)} /deep/a/b/rel`, // relative, climbing far above /
    `ln -s /abs /chain1 && ln -s chain1 /chain2`,     // chained
    `ln -s / /rt`,                                     // the root itself
    `ln -s ${canaryFile} /file-link`,                  // straight at the file
    `mkdir -p /d && echo inside > /d/f`,
  ].join(" && ");
}

before(async () => {
  canaryDir = mkdtempSync(join(tmpdir(), "berth-canary-"));
  canaryFile = join(canaryDir, "canary");
  canary = `canary-${randomBytes(16).toString("hex")}`;
  writeFileSync(canaryFile, canary);
  work = mkdtempSync(join(tmpdir(), "berth-cpwork-"));
  d = new Daemon();
  await d.start();
  await d.bootstrap();
  // The evil image: the symlinks are in a layer, so diff/commit/export/copy-up meet them in a lower dir too.
  ok(d.berth(["run", "--name", "evil-base", "busybox", "sh", "-c", evilScript()]), "evil-base");
  ok(d.berth(["commit", "evil-base", "evil:1"]), "commit evil");
  made.push("evil:1");
});

after(async () => {
  try {
    for (const img of made) d.berth(["rmi", "-f", img]);
    await d.stop();
  } finally {
    rmSync(work, { recursive: true, force: true });
    // The last check: whatever ran, the canary is as it was.
    const intact = readFileSync(canaryFile, "utf8") === canary && readdirSync(canaryDir).length === 1;
    rmSync(canaryDir, { recursive: true, force: true });
    assert.ok(intact, "the host canary was changed");
  }
});

const EVIL_PATHS = () => ["/abs/canary", "/deep/a/b/rel/canary", "/chain2/canary", `/rt${canaryFile}`, "/file-link/", "/abs/", "/chain2/."];

test("cp out: no symlink in the container reads a host file (berth cp, docker cp, the API, -L)", () => {
  ok(d.berth(["run", "-d", "--name", "evil-out", "evil:1", "sleep", "600"]), "run");
  for (const p of EVIL_PATHS()) {
    for (const [who, run] of [["berth", berthBin], ["docker", dockerBin]] as const) {
      const dest = join(work, `${who}-out-${p.replace(/\W/g, "_")}`);
      const r = run(["cp", `evil-out:${p}`, dest]);
      assert.notEqual(r.code, 0, `${who} cp evil-out:${p} found something: ${r.stderr}`);
      for (const [f, b] of filesUnder(dest)) assertNoCanary(`${who} cp ${p} → ${f}`, b);
      const s = run(["cp", `evil-out:${p}`, "-"]);
      assertNoCanary(`${who} cp ${p} -`, s.stdout);
      const l = run(["cp", "-L", `evil-out:${p.replace(/\/\.?$/, "")}`, dest + "-L"]);
      for (const [f, b] of filesUnder(dest + "-L")) assertNoCanary(`${who} cp -L ${p} → ${f}`, b);
      assert.ok(l.code !== 0 || !existsSync(dest + "-L") || filesUnder(dest + "-L").length === 0);
    }
  }
  // The whole root, through every symlink at once: symlinks travel as symlinks.
  const all = berthBin(["cp", "evil-out:/", "-"]);
  ok(all, "cp /");
  assertNoCanary("cp evil-out:/ -", all.stdout);
  const dockerAll = dockerBin(["cp", "evil-out:/", "-"]);
  ok(dockerAll, "docker cp /");
  assertNoCanary("docker cp evil-out:/ -", dockerAll.stdout);
  // A symlink copied out is the container's symlink, not the file it names on the host.
  ok(berthBin(["cp", "evil-out:/abs", join(work, "abs-link")]), "cp link");
  assert.ok(lstatSync(join(work, "abs-link")).isSymbolicLink());
  assertCanaryIntact();
});

test("cp in: no symlink in the container leads a write to the host (berth cp, docker cp, a tar on stdin)", () => {
  ok(d.berth(["run", "-d", "--name", "evil-in", "evil:1", "sleep", "600"]), "run");
  const src = join(work, "payload");
  writeFileSync(src, "payload\n");
  mkdirSync(join(work, "payload-dir"));
  writeFileSync(join(work, "payload-dir", "canary"), "overwritten\n");
  for (const [, run] of [["berth", berthBin], ["docker", dockerBin]] as const) {
    for (const p of ["/abs/canary", "/deep/a/b/rel/canary", "/chain2/canary", `/rt${canaryFile}`, "/file-link", "/abs/", "/chain2/", `/rt${canaryDir}/`]) {
      run(["cp", src, `evil-in:${p}`]);
      run(["cp", join(work, "payload-dir") + "/.", `evil-in:${p}`]);
      assertCanaryIntact();
    }
  }
  // With the container's own copy of the canary's directory there, the write lands in the container.
  // (A fresh container: a directory copied to a dangling link's name replaced the link above, as
  // noOverwriteDirNonDir is not honoured yet.)
  ok(d.berth(["run", "-d", "--name", "evil-in2", "evil:1", "sleep", "600"]), "run");
  ok(d.berth(["exec", "evil-in2", "mkdir", "-p", canaryDir]), "mkdir");
  ok(berthBin(["cp", src, `evil-in2:/chain2/canary`]), "cp into the container's dir");
  assert.equal(d.berth(["exec", "evil-in2", "cat", canaryFile]).stdout, "payload\n");
  ok(dockerBin(["cp", join(work, "payload-dir") + "/.", `evil-in2:/deep/a/b/rel/`]), "docker cp into the container's dir");
  assert.equal(d.berth(["exec", "evil-in2", "cat", canaryFile]).stdout, "overwritten\n");
  assertCanaryIntact();
  // A hostile tar: a symlink to / and then a file through it, a ../ climb, a hard link to a host path.
  const t = mkdtempSync(join(work, "tar-"));
  spawnSync("ln", ["-s", "/", join(t, "up")]);
  writeFileSync(join(t, "x"), "evil\n");
  writeFileSync(join(t, "y"), "evil\n");
  // "up" → /, then a file through it; a ../ climb; a hard link to the host's canary.
  const hostile = spawnSync("tar", ["-C", t, "-P", "--transform", `s,^x$,up${canaryFile},`, "--transform", `s,^y$,../../../../../../..${canaryFile},`, "-cf", "-", "up", "x", "y"]).stdout;
  const hard = spawnSync("tar", ["-C", "/", "-P", "-cf", "-", "--hard-dereference", canaryFile, canaryFile]).stdout;
  assert.ok(hostile.length > 1024 && hard.length > 1024);
  for (const tar of [hostile, hard]) {
    for (const p of ["/d", "/abs", "/rt", "/chain2"]) {
      berthBin(["cp", "-", `evil-in:${p}`], tar);
      dockerBin(["cp", "-", `evil-in:${p}`], tar);
      assertCanaryIntact();
    }
  }
  // The API straight: PUT through every evil path.
  return Promise.all(EVIL_PATHS().map((p) => api(d.sock, "PUT", `/containers/evil-in/archive?path=${encodeURIComponent(p)}`, hostile, { "Content-Type": "application/x-tar" })))
    .then(() => assertCanaryIntact());
});

test("commit, diff and export of a container full of symlinks to host paths carry none of the host's bytes", () => {
  // Changes on top of the evil image: a directory where a lower symlink to the host was, files behind symlinks.
  ok(d.berth(["run", "--name", "evil-ch", "evil:1", "sh", "-c", `rm /abs && mkdir /abs && echo mine > /abs/canary && ln -s ${canaryFile} /d/also && ln /d/f /d/hard`]), "run");
  const diff = d.berth(["diff", "evil-ch"]);
  ok(diff, "diff");
  const lines = diff.stdout.split("\n");
  // As Docker: the symlink replaced by a directory is a change, the file in it is new (the host's canary is not "below").
  assert.ok(lines.includes("C /abs"), diff.stdout);
  assert.ok(lines.includes("A /abs/canary"), diff.stdout);
  assert.ok(lines.includes("A /d/also"), diff.stdout);
  ok(d.berth(["commit", "evil-ch", "evil:2"]), "commit");
  made.push("evil:2");
  const saved = join(work, "evil2.tar");
  ok(d.berth(["save", "-o", saved, "evil:2"]), "save");
  assertNoCanary("the committed image", readFileSync(saved));
  // The docker CLI's diff and commit over the same API.
  const ddiff = d.docker(["diff", "evil-ch"]);
  ok(ddiff, "docker diff");
  assert.ok(ddiff.stdout.split("\n").includes("A /abs/canary"), ddiff.stdout);
  // export: running (from the live mount) and stopped (mounted for the occasion).
  ok(d.berth(["run", "-d", "--name", "evil-ex", "evil:2", "sleep", "600"]), "run");
  for (const state of ["running", "stopped"]) {
    const out = join(work, `export-${state}.tar`);
    ok(d.berth(["export", "-o", out, "evil-ex"]), `export ${state}`);
    const bytes = readFileSync(out);
    assertNoCanary(`export (${state})`, bytes);
    assert.ok(bytes.includes(Buffer.from("mine\n")), "the container's own file is in the export");
    const list = spawnSync("tar", ["-tvf", out], { encoding: "utf8" }).stdout;
    assert.match(list, /^l.* rt -> \/$/m); // entries named as dockerd's export names them (no "./")
    if (state === "running") ok(d.berth(["stop", "-t", "0", "evil-ex"]), "stop");
  }
  const dexp = dockerBin(["export", "evil-ex"]);
  ok(dexp, "docker export");
  assertNoCanary("docker export", dexp.stdout);
  assertCanaryIntact();
});

test("volume copy-up from an image directory that is a symlink to a host directory copies the image's, never the host's", () => {
  // /data → the canary's directory (absolute), /data2 → the same by a relative climb; the container has its own dir there.
  ok(d.berth(["run", "--name", "evil-vol-base", "evil:1", "sh", "-c", `mkdir -p ${canaryDir} && echo image > ${canaryDir}/inner && ln -s ${canaryDir} /data && ln -s ../../../../..${canaryDir} /data2 && ln -s /nowhere${canaryDir} /data3`]), "base");
  ok(d.berth(["commit", "evil-vol-base", "evil:vol"]), "commit");
  made.push("evil:vol");
  for (const [i, target] of ["/data", "/data2", "/data3", "/abs", "/chain2"].entries()) {
    const vol = `evil-vol-${i}`;
    const r = d.berth(["run", "--name", vol, "-v", `${vol}:${target}`, "evil:vol", "true"]);
    ok(r, `run with ${vol}:${target}`);
    ok(d.berth(["rm", vol]), "rm");
    const mp = d.berth(["volume", "inspect", "-f", "{{.Mountpoint}}", vol]).stdout.trim();
    const files = filesUnder(mp);
    for (const [f, b] of files) assertNoCanary(`volume ${vol} (${f})`, b);
    assert.ok(!existsSync(join(mp, "canary")), `volume at ${target} got the host's canary`);
    if (target === "/data" || target === "/data2") assert.equal(readFileSync(join(mp, "inner"), "utf8"), "image\n", "copy-up copies the image's directory");
    ok(d.berth(["volume", "rm", vol]), "volume rm");
  }
  assertCanaryIntact();
});

test("cp: the ordinary cases answer as Docker's (file/dir out and in, '-', a stopped container, missing paths)", () => {
  ok(d.berth(["run", "-d", "--name", "plain", "busybox", "sh", "-c", "mkdir -p /d/sub && echo hi > /d/f && ln -s /etc /lnk && sleep 600"]), "run");
  const out = mkdtempSync(join(work, "plain-"));
  const at = (p: string) => join(out, p);
  // out
  ok(berthBin(["cp", "plain:/d/f", at("f1")]), "file out");
  assert.equal(readFileSync(at("f1"), "utf8"), "hi\n");
  ok(berthBin(["cp", "plain:/d", out]), "dir out into a dir");
  assert.equal(readFileSync(at("d/f"), "utf8"), "hi\n");
  assert.ok(lstatSync(at("d/sub")).isDirectory());
  ok(berthBin(["cp", "plain:/d", at("newd")]), "dir out as a new name");
  assert.equal(readFileSync(at("newd/f"), "utf8"), "hi\n");
  ok(berthBin(["cp", "plain:/d/.", at("dots")]), "dir contents out");
  assert.deepEqual(readdirSync(at("dots")).sort(), ["f", "sub"]);
  ok(berthBin(["cp", "-L", "plain:/lnk", at("etc")]), "-L");
  assert.ok(lstatSync(at("etc")).isDirectory() && existsSync(at("etc/passwd")));
  const t = berthBin(["cp", "plain:/d/f", "-"]);
  ok(t, "to stdout");
  assert.match(spawnSync("tar", ["-tf", "-"], { input: t.stdout, encoding: "utf8" }).stdout, /^f\n$/);
  // Docker's errors and exit codes (the docker CLI's own words).
  const cases: [string[], RegExp][] = [
    [["cp", "plain:/missing", out], /^Error: No such container:path: plain:\/missing$/m],
    [["cp", "nope:/d", out], /^Error: No such container:path: nope:\/d$/m],
    [["cp", "plain:/d/f", at("nodir") + "/"], /^no such directory$/m],
    [["cp", "plain:/d/f", at("nodir/x")], /^invalid output path: directory ".*nodir" does not exist$/m],
    [["cp", "plain:/d", at("f1")], /^cannot copy directory$/m],
    [["cp", "a", "b"], /^must specify at least one container source$/m],
    [["cp", "plain:/a", "plain:/b"], /^copying between containers is not supported$/m],
    [["cp", "/nonexistent-src", "plain:/d"], /^lstat \/nonexistent-src: no such file or directory$/m],
    [["cp", at("f1"), "plain:/nodir/x"], /^Error: No such container:path: plain:\/nodir$/m],
    [["cp", at("f1"), "plain:/nodir/"], /^no such directory$/m],
    [["cp", out, "plain:/d/f"], /^cannot copy directory$/m],
  ];
  for (const [args, re] of cases) {
    const r = berthBin(args);
    assert.equal(r.code, 1, `${args.join(" ")}: exit ${r.code} ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
  }
  const usage = berthBin(["cp", "x"]);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /"cp" requires exactly 2 arguments/);
  const notDir = berthBin(["cp", "-", "plain:/d/f"], Buffer.alloc(1024));
  assert.equal(notDir.code, 1);
  assert.match(notDir.stderr, /destination "plain:\/d\/f" must be a directory/);
  // in
  writeFileSync(at("in.txt"), "in\n");
  chownSync(at("in.txt"), 1234, 555);
  ok(berthBin(["cp", at("in.txt"), "plain:/d"]), "file into a dir");
  assert.equal(d.berth(["exec", "plain", "cat", "/d/in.txt"]).stdout, "in\n");
  assert.equal(d.berth(["exec", "plain", "stat", "-c", "%u:%g", "/d/in.txt"]).stdout.trim(), "1234:555", "owners kept, as dockerd keeps them");
  ok(berthBin(["cp", at("in.txt"), "plain:/renamed"]), "file as a new name");
  assert.equal(d.berth(["exec", "plain", "cat", "/renamed"]).stdout, "in\n");
  ok(berthBin(["cp", at("d"), "plain:/din"]), "dir as a new name");
  assert.equal(d.berth(["exec", "plain", "cat", "/din/f"]).stdout, "hi\n");
  ok(berthBin(["cp", "-", "plain:/d"], spawnSync("tar", ["-C", out, "-cf", "-", "f1"]).stdout), "tar on stdin");
  assert.equal(d.berth(["exec", "plain", "cat", "/d/f1"]).stdout, "hi\n");
  const bad = berthBin(["cp", "-", "plain:/d"], Buffer.from("not a tar\n"));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /Error response from daemon: Error processing tar file/);
  // the docker CLI, both ways
  ok(dockerBin(["cp", "plain:/d/f", at("docker-f")]), "docker cp out");
  assert.equal(readFileSync(at("docker-f"), "utf8"), "hi\n");
  ok(dockerBin(["cp", at("in.txt"), "plain:/docker-in"]), "docker cp in");
  assert.equal(d.berth(["exec", "plain", "cat", "/docker-in"]).stdout, "in\n");
  const dmiss = dockerBin(["cp", "plain:/missing", out]);
  assert.equal(dmiss.code, 1);
  assert.match(dmiss.stderr, /Could not find the file \/missing in container plain/);
  // a stopped container: both ways, its root mounted for the occasion and unmounted after
  ok(d.berth(["stop", "-t", "0", "plain"]), "stop");
  ok(berthBin(["cp", at("in.txt"), "plain:/stopped-in"]), "cp into a stopped container");
  ok(berthBin(["cp", "plain:/stopped-in", at("back")]), "cp out of a stopped container");
  assert.equal(readFileSync(at("back"), "utf8"), "in\n");
  ok(dockerBin(["cp", "plain:/d/f", at("docker-stopped")]), "docker cp out of a stopped container");
  assert.equal(readFileSync(at("docker-stopped"), "utf8"), "hi\n");
  ok(d.berth(["start", "plain"]), "start");
  assert.equal(d.berth(["exec", "plain", "cat", "/stopped-in"]).stdout, "in\n");
});

test("archive API: the stat header and errors as dockerd's", async () => {
  ok(d.berth(["run", "-d", "--name", "api-c", "busybox", "sh", "-c", "mkdir -p /d && echo hi > /d/f && ln -s /etc /lnk && sleep 600"]), "run");
  const stat = async (p: string) => {
    const r = await api(d.sock, "HEAD", `/v1.41/containers/api-c/archive?path=${encodeURIComponent(p)}`);
    const h = r.headers["x-docker-container-path-stat"];
    return { status: r.status, stat: h ? JSON.parse(Buffer.from(String(h), "base64").toString()) as Record<string, unknown> : undefined };
  };
  const f = await stat("/d/f");
  assert.equal(f.status, 200);
  assert.deepEqual({ ...f.stat, mtime: undefined }, { name: "f", size: 3, mode: 0o644, mtime: undefined, linkTarget: "" });
  assert.match(String(f.stat!.mtime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  const dir = await stat("/d");
  assert.equal(dir.stat!.mode, 2 ** 31 + 0o755);
  const lnk = await stat("/lnk");
  assert.deepEqual([lnk.stat!.name, lnk.stat!.mode, lnk.stat!.linkTarget], ["lnk", 2 ** 27 + 0o777, "/etc"]);
  const followed = await stat("/lnk/");
  assert.deepEqual([followed.stat!.name, followed.stat!.linkTarget], ["lnk", ""]);
  assert.ok(Number(followed.stat!.mode) >= 2 ** 31);
  assert.equal((await stat("/missing")).status, 404);
  const miss = await api(d.sock, "GET", "/v1.41/containers/api-c/archive?path=/missing");
  assert.equal(miss.status, 404);
  assert.equal(JSON.parse(miss.body).message, "Could not find the file /missing in container api-c");
  const noc = await api(d.sock, "GET", "/v1.41/containers/nope/archive?path=/");
  assert.equal(noc.status, 404);
  assert.equal(JSON.parse(noc.body).message, "No such container: nope");
  const put = await api(d.sock, "PUT", "/v1.41/containers/api-c/archive?path=/d/f", Buffer.alloc(1024), { "Content-Type": "application/x-tar" });
  assert.equal(JSON.parse(put.body).message, "extraction point is not a directory");
  const putMiss = await api(d.sock, "PUT", "/v1.41/containers/api-c/archive?path=/nope", Buffer.alloc(1024), { "Content-Type": "application/x-tar" });
  assert.equal(putMiss.status, 404);
  assert.equal(JSON.parse(putMiss.body).message, "Could not find the file /nope in container api-c");
});
