/** The builder's output side without a daemon: BuildKit's plain printer and tty view, --output, --cache-*, --annotation, --progress parsing. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PlainProgress, TtyProgress, type ProgressEvent } from "../../src/lib/build-progress.js";
import { BuildProgress, fullName, fullNameTagged } from "../../src/builder/progress.js";
import { parseAnnotation } from "../../src/builder/output.js";
import { parseOutput, parseCacheSpec, progressMode, tagsImage } from "../../src/cli/build-output.js";
import { parseDockerfile } from "../../src/builder/dockerfile.js";

/** Events of a build on a fake clock (ms): what the daemon would send. */
function events(): ProgressEvent[] {
  let now = 1000;
  const out: ProgressEvent[] = [];
  const p = new BuildProgress((e) => out.push(e), () => now);
  p.instant("[internal] load build definition from Dockerfile", ["transferring dockerfile: 52B done"]);
  const from = p.start("[1/2] FROM docker.io/library/busybox");
  from.cached(); from.done();
  const run = p.start("[2/2] RUN echo a; sleep 1; echo b");
  now += 238; run.log("a\n");
  now += 1000; run.log("b\npart");
  now += 100; run.done();
  const bad = p.start("[x 1/1] RUN false");
  now += 50; bad.done(new Error("exit code: 1"));
  return out;
}

test("plain: BuildKit's printer (#N name, status lines, timed log lines, CACHED, DONE 0.0s, ERROR), a blank line between vertices", () => {
  let s = "";
  const r = new PlainProgress((x) => { s += x; });
  for (const e of events()) r.event(e);
  r.end();
  assert.equal(s, [
    "#1 [internal] load build definition from Dockerfile", "#1 transferring dockerfile: 52B done", "#1 DONE 0.0s", "",
    "#2 [1/2] FROM docker.io/library/busybox", "#2 CACHED", "",
    "#3 [2/2] RUN echo a; sleep 1; echo b", "#3 0.238 a", "#3 1.238 b", "#3 1.338 part", "#3 DONE 1.3s", "",
    "#4 [x 1/1] RUN false", "#4 ERROR: exit code: 1", "",
  ].join("\n"));
  // The failure summary: each failed step framed, with its last lines.
  s = "";
  r.event({ log: { id: 4, t: 12, data: "why\n" } });
  s = "";
  r.failed();
  assert.equal(s, "------\n > [x 1/1] RUN false:\n#4 0.012 why\n------\n");
});

test("plain: interleaved vertices (parallel stages) repeat their header when the output switches back", () => {
  let s = "";
  const r = new PlainProgress((x) => { s += x; });
  r.event({ v: { id: 1, name: "[a 2/2] RUN x", started: 0 } });
  r.event({ v: { id: 2, name: "[b 2/2] RUN y", started: 0 } });
  r.event({ log: { id: 1, t: 10, data: "from a\n" } });
  r.event({ v: { id: 2, name: "[b 2/2] RUN y", started: 0, completed: 500 } });
  assert.equal(s, "#1 [a 2/2] RUN x\n\n#2 [b 2/2] RUN y\n\n#1 [a 2/2] RUN x\n#1 0.010 from a\n\n#2 [b 2/2] RUN y\n#2 DONE 0.5s\n");
});

test("tty: one line per step, CACHED and times flush right, the running step's last lines, FINISHED at the end", () => {
  const r = new TtyProgress(() => {}, () => 60, () => 20);
  const evs = events();
  for (const e of evs.slice(0, evs.findIndex((e) => "v" in e && e.v.completed !== undefined && e.v.name.startsWith("[2/2]")))) r.event(e);
  const live = r.lines(false);
  assert.match(live[0], /^\[\+\] Building \d+\.\ds \(2\/3\)$/);
  assert.equal(live[2], " => CACHED [1/2] FROM docker.io/library/busybox         0.0s");
  assert.match(live[3], /^ => \[2\/2\] RUN echo a; sleep 1; echo b +\d+\.\ds$/);
  assert.deepEqual(live.slice(4), [" => => # a", " => => # b", " => => # part"]);
  for (const e of evs) r.event(e);
  const fin = r.lines(true);
  assert.match(fin[0], /^\[\+\] Building \d+\.\ds \(4\/4\) FINISHED$/);
  assert.equal(fin[3], " => [2/2] RUN echo a; sleep 1; echo b".padEnd(56) + "1.3s");
  assert.ok(fin.every((l) => l.length <= 60));
  r.end();
});

test("step names: [stage k/n] counting FROM, RUN, COPY, ADD, WORKDIR; no stage name in a one-stage Dockerfile; BuildKit's image names", () => {
  const df = parseDockerfile("FROM busybox AS build\nWORKDIR /w\nENV A=1\nRUN x\nFROM busybox\nCOPY --from=build /w /w\n");
  assert.equal(BuildProgress.stepName(df, df.stages[0], 2, "WORKDIR /w"), "[build 2/3] WORKDIR /w");
  assert.equal(BuildProgress.stepName(df, df.stages[1], 2, "COPY --from=build /w /w"), "[stage-1 2/2] COPY --from=build /w /w");
  const one = parseDockerfile("FROM busybox\nRUN x\n");
  assert.equal(BuildProgress.stepName(one, one.stages[0], 1, "FROM docker.io/library/busybox"), "[1/2] FROM docker.io/library/busybox");
  assert.equal(fullName("busybox"), "docker.io/library/busybox");
  assert.equal(fullName("debian:bookworm-slim"), "docker.io/library/debian:bookworm-slim");
  assert.equal(fullName("localhost:5000/a/b"), "localhost:5000/a/b");
  assert.equal(fullNameTagged("busybox"), "docker.io/library/busybox:latest");
});

test("--output, --cache-from/--cache-to, --annotation and --progress as buildx reads them", () => {
  assert.deepEqual(parseOutput("out"), { type: "local", dest: "out" });
  assert.deepEqual(parseOutput("-"), { type: "tar", dest: "-" });
  assert.deepEqual(parseOutput("type=tar,dest=x.tar"), { type: "tar", dest: "x.tar", name: undefined });
  assert.deepEqual(parseOutput("type=oci,dest=x.tar,name=a:1"), { type: "oci", dest: "x.tar", name: ["a:1"] });
  assert.deepEqual(parseOutput("dest=d"), { type: "local", dest: "d" });
  assert.throws(() => parseOutput("type=local"), /dest is required for local exporter/);
  assert.throws(() => parseOutput("type=s3,dest=x"), /not supported/);
  assert.equal(tagsImage([]), true);
  assert.equal(tagsImage([parseOutput("type=local,dest=x")]), false);
  assert.equal(tagsImage([parseOutput("type=docker")]), true);
  assert.equal(tagsImage([parseOutput("type=docker,dest=x.tar")]), false);

  assert.deepEqual(parseCacheSpec("user/app:cache", "cache-from"), { type: "image", ref: "user/app:cache" });
  assert.deepEqual(parseCacheSpec("type=registry,ref=r/a", "cache-from"), { type: "image", ref: "r/a" });
  assert.deepEqual(parseCacheSpec("type=local,src=/c", "cache-from"), { type: "local", dir: "/c" });
  assert.deepEqual(parseCacheSpec("type=local,dest=/c,mode=max", "cache-to"), { type: "local", dir: "/c" });
  assert.deepEqual(parseCacheSpec("type=inline", "cache-to"), { type: "inline" });
  assert.throws(() => parseCacheSpec("type=local,dest=/c", "cache-from"), /src is required/);

  assert.deepEqual(parseAnnotation("org.opencontainers.image.title=x=y"), { level: "manifest", key: "org.opencontainers.image.title", value: "x=y" });
  assert.deepEqual(parseAnnotation("index:k=v"), { level: "index", key: "k", value: "v" });
  assert.deepEqual(parseAnnotation("manifest-descriptor[linux/amd64]:k=v"), { level: "manifest-descriptor", key: "k", value: "v" });
  assert.throws(() => parseAnnotation("novalue"), /expected key=value/);

  const env = process.env.BUILDKIT_PROGRESS;
  delete process.env.BUILDKIT_PROGRESS;
  try {
    assert.equal(progressMode(undefined, false, false), "classic");
    assert.equal(progressMode(undefined, false, true), "tty");
    assert.equal(progressMode("auto", false, false), "plain");
    assert.equal(progressMode("auto", false, true), "tty");
    assert.equal(progressMode("plain", true, true), "quiet");
    process.env.BUILDKIT_PROGRESS = "plain";
    assert.equal(progressMode(undefined, false, true), "plain");
    assert.throws(() => progressMode("fancy", false, false), /invalid progress mode/);
  } finally { if (env === undefined) delete process.env.BUILDKIT_PROGRESS; else process.env.BUILDKIT_PROGRESS = env; }
});
