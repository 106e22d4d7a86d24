/**
 * The build cache beyond one daemon, as BuildKit's exporters: --cache-to/--cache-from type=local between two
 * data roots, the inline cache (--cache-to type=inline, BUILDKIT_INLINE_CACHE=1) read back by --cache-from
 * <image> from berth and from the docker CLI (Docker's cachefrom); `builder prune` / POST /build/prune with
 * until= and keep-storage.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, readdirSync, utimesSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, api } from "./harness.js";

const a = new Daemon();
const b = new Daemon();
const dirs: string[] = [];

function tmp(files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-bcache-"));
  dirs.push(dir);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/** Each RUN writes a time of its own: the same value after a rebuild means the step was not run again. */
const DF = "FROM busybox AS tools\nRUN date +%s%N > /tool\nFROM busybox\nWORKDIR /app\nCOPY f /app/f\nRUN date +%s%N > /app/stamp\nENV MODE=prod\nCOPY --from=tools /tool /app/tool\nCMD [\"cat\", \"/app/stamp\", \"/app/tool\"]\n";

before(async () => {
  await Promise.all([a.start(), b.start()]);
  await a.bootstrap();
  await b.bootstrap();
  // The base image is the same on both (the bootstrap is reproducible), as a pulled one would be.
  assert.equal(a.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout, b.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout);
});

after(async () => {
  try { await a.stop(); } finally { try { await b.stop(); } finally { for (const d of dirs) rmSync(d, { recursive: true, force: true }); } }
});

/** The step lines of a plain build: "[stage k/n] INSTR" → "CACHED" or "DONE". */
function steps(stderr: string): Record<string, string> {
  const names = new Map<string, string>();
  const out: Record<string, string> = {};
  for (const l of stderr.split("\n")) {
    const h = /^#(\d+) (\[(?!internal).*)$/.exec(l);
    if (h) { names.set(h[1], h[2]); continue; }
    const r = /^#(\d+) (CACHED|DONE)/.exec(l);
    if (r && names.has(r[1])) out[names.get(r[1])!] = r[2];
  }
  return out;
}

test("--cache-to type=local on one data root, --cache-from type=local on a fresh one: every step from the cache, the same image", () => {
  const ctx = tmp({ Dockerfile: DF, f: "v1\n" });
  const cache = join(tmp(), "cache");
  try {
    const r1 = a.berth(["build", "--progress=plain", "--cache-to", `type=local,dest=${cache}`, "-t", "bc-local", ctx]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.ok(existsSync(join(cache, "index.json")) && existsSync(join(cache, "oci-layout")));
    const index = JSON.parse(readFileSync(join(cache, "index.json"), "utf8"));
    assert.ok(index.manifests.some((m: { annotations?: Record<string, string> }) => m.annotations?.["berth.cache.keys"]));

    const r2 = b.berth(["build", "--progress=plain", "--cache-from", `type=local,src=${cache}`, "-t", "bc-local", ctx]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(steps(r2.stderr), {
      "[tools 1/2] FROM docker.io/library/busybox": "CACHED", "[tools 2/2] RUN date +%s%N > /tool": "CACHED",
      "[stage-1 2/5] WORKDIR /app": "CACHED", "[stage-1 3/5] COPY f /app/f": "CACHED", "[stage-1 4/5] RUN date +%s%N > /app/stamp": "CACHED",
      "[stage-1 5/5] COPY --from=tools /tool /app/tool": "CACHED",
    });
    const id = (d: Daemon) => d.berth(["image", "inspect", "-f", "{{.Id}}", "bc-local"]).stdout;
    assert.equal(id(b), id(a));
    assert.equal(b.berth(["run", "--rm", "bc-local"]).stdout, a.berth(["run", "--rm", "bc-local"]).stdout);
    // The cache's images are a build's intermediate images there too: not listed.
    assert.equal(b.berth(["images", "-q", "--filter", "dangling=true"]).stdout.trim().split("\n").filter(Boolean).length,
      a.berth(["images", "-q", "--filter", "dangling=true"]).stdout.trim().split("\n").filter(Boolean).length);

    // A changed file: its step and the ones after it run again, the ones before come from the cache.
    writeFileSync(join(ctx, "f"), "v2\n");
    const r3 = b.berth(["build", "--progress=plain", "-t", "bc-local", ctx]);
    assert.equal(r3.code, 0, r3.stderr);
    const s3 = steps(r3.stderr);
    assert.equal(s3["[stage-1 2/5] WORKDIR /app"], "CACHED");
    assert.equal(s3["[stage-1 3/5] COPY f /app/f"], "DONE");
    assert.equal(s3["[stage-1 4/5] RUN date +%s%N > /app/stamp"], "DONE");

    // A missing cache directory is no cache, not an error (as BuildKit).
    const r4 = b.berth(["build", "-q", "--cache-from", `type=local,src=${join(cache, "nope")}`, ctx]);
    assert.equal(r4.code, 0, r4.stderr);
  } finally { a.berth(["rmi", "-f", "bc-local"]); b.berth(["rmi", "-f", "bc-local"]); }
});

test("the inline cache: --cache-to type=inline (and the docker CLI's BUILDKIT_INLINE_CACHE=1), read back on another daemon by --cache-from <image>", () => {
  const ctx = tmp({ Dockerfile: DF.replaceAll("RUN date", "RUN echo inline && date"), f: "inline\n" });
  const out = tmp();
  try {
    const r1 = a.berth(["build", "-q", "--cache-to", "type=inline", "-t", "bc-inline:1", ctx]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(a.berth(["image", "inspect", "-f", '{{index .Config.Labels "berth.cache.v0"}}', "bc-inline:1"]).stdout, /^[A-Za-z0-9+/=]{40,}\n$/);
    // The image moves as images do (a registry, or here save and load); its builder's intermediate images do not.
    assert.equal(a.berth(["save", "-o", join(out, "img.tar"), "bc-inline:1"]).code, 0);
    assert.equal(b.berth(["load", "-i", join(out, "img.tar")]).code, 0);

    const r2 = b.berth(["build", "--progress=plain", "--cache-from", "bc-inline:1", "-t", "bc-inline:2", ctx]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /^#1 importing cache manifest from bc-inline:1$/m);
    const s = steps(r2.stderr);
    // The target stage's chain is in the image; the other stage's RUN is not (as BuildKit's inline cache, mode=min)...
    assert.equal(s["[stage-1 4/5] RUN echo inline && date +%s%N > /app/stamp"], "CACHED");
    assert.equal(s["[tools 2/2] RUN echo inline && date +%s%N > /tool"], "DONE");
    // ...and the stamp the image was built with is the one the rebuilt step has.
    const stamp = (d: Daemon, img: string) => d.berth(["run", "--rm", "--entrypoint", "cat", img, "/app/stamp"]).stdout;
    assert.equal(stamp(b, "bc-inline:2"), stamp(a, "bc-inline:1"));

    // The docker CLI: --build-arg BUILDKIT_INLINE_CACHE=1 (no "not consumed" warning), --cache-from (Docker's cachefrom).
    const ctx2 = tmp({ Dockerfile: "FROM busybox\nRUN date +%s%N > /s\n" });
    const d1 = a.docker(["build", "--build-arg", "BUILDKIT_INLINE_CACHE=1", "-t", "bc-inline:docker", ctx2]);
    assert.equal(d1.code, 0, d1.stderr);
    assert.doesNotMatch(d1.stdout, /not consumed/);
    assert.equal(a.berth(["save", "-o", join(out, "d.tar"), "bc-inline:docker"]).code, 0);
    assert.equal(b.berth(["load", "-i", join(out, "d.tar")]).code, 0);
    const d2 = b.docker(["build", "--cache-from", "bc-inline:docker", "-t", "bc-inline:docker2", ctx2]);
    assert.equal(d2.code, 0, d2.stderr);
    assert.match(d2.stdout, /Step 2\/2 : RUN date \+%s%N > \/s\n ---> Using cache\n/);
    assert.equal(b.berth(["run", "--rm", "bc-inline:docker2", "cat", "/s"]).stdout, a.berth(["run", "--rm", "bc-inline:docker", "cat", "/s"]).stdout);
  } finally {
    a.berth(["rmi", "-f", "bc-inline:1", "bc-inline:docker"]);
    b.berth(["rmi", "-f", "bc-inline:1", "bc-inline:2", "bc-inline:docker", "bc-inline:docker2"]);
  }
});

test("builder prune: --filter until= keeps what was used since; --keep-storage keeps that many bytes (least recently used go first); POST /build/prune answers as dockerd", async () => {
  const ctx = tmp({ Dockerfile: "FROM busybox\nRUN --mount=type=cache,id=bc-old,target=/c head -c 5000 /dev/zero > /c/old\nRUN --mount=type=cache,id=bc-new,target=/c head -c 3000 /dev/zero > /c/new\n" });
  const r = a.berth(["build", "-q", "-t", "bc-prune", ctx]);
  assert.equal(r.code, 0, r.stderr);
  try {
    const mounts = join(a.dataRoot, "buildcache", "mounts");
    const ids = readdirSync(mounts).filter((n) => !n.endsWith(".used"));
    assert.equal(ids.length, 2);
    const size = (id: string) => readdirSync(join(mounts, id)).length;
    assert.ok(ids.every((id) => size(id) === 1));
    const oldId = ids.find((id) => readdirSync(join(mounts, id)).includes("old"))!;
    const newId = ids.find((id) => readdirSync(join(mounts, id)).includes("new"))!;
    // The old one was last used two hours ago.
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(mounts, `${oldId}.used`), twoHoursAgo, twoHoursAgo);

    // Nothing unused for 3h: nothing goes (dockerd's words when nothing goes).
    const p0 = a.berth(["builder", "prune", "-af", "--filter", "until=3h"]);
    assert.equal(p0.stdout, "Total reclaimed space: 0B\n");
    // keep-storage larger than the whole cache: nothing goes (as dockerd: {"CachesDeleted":null,"SpaceReclaimed":0}).
    const k0 = await api(a.sock, "POST", "/v1.41/build/prune?all=1&keep-storage=1000000000");
    assert.equal(k0.status, 200);
    assert.deepEqual(JSON.parse(k0.body), { CachesDeleted: null, SpaceReclaimed: 0 });
    // keep-storage of 4000 bytes: the least recently used (the 5000-byte old one) goes, the 3000-byte one stays.
    const k1 = await api(a.sock, "POST", "/v1.41/build/prune?all=1&keep-storage=4000&filters=" + encodeURIComponent(JSON.stringify({ type: ["exec.cachemount"] })));
    assert.equal(k1.status, 200);
    assert.deepEqual(JSON.parse(k1.body), { CachesDeleted: [oldId], SpaceReclaimed: 5000 });
    assert.ok(existsSync(join(mounts, newId)) && !existsSync(join(mounts, oldId)));

    // until=1h: only what was unused for an hour goes: back-date the new one and it goes too.
    const p1 = a.berth(["builder", "prune", "-af", "--filter", "type=exec.cachemount", "--filter", "until=1h"]);
    assert.equal(p1.stdout, "Total reclaimed space: 0B\n");
    utimesSync(join(mounts, `${newId}.used`), twoHoursAgo, twoHoursAgo);
    const p2 = a.berth(["builder", "prune", "-af", "--filter", "type=exec.cachemount", "--filter", "until=1h"]);
    assert.equal(p2.stdout, `Deleted build cache objects:\n${newId}\n\nTotal reclaimed space: 3kB\n`);
    assert.ok(!existsSync(join(mounts, newId)));
  } finally { a.berth(["rmi", "-f", "bc-prune"]); }
});
