/**
 * Images as dockerd lists and removes them after classic builds (answers
 * taken from dockerd 20.10 with DOCKER_BUILDKIT=0 on the same Dockerfiles):
 * intermediate images are parents, hidden from `images` unless -a, never
 * "dangling" while they have children, removed with the image built on them;
 * `system df` counts a shared layer once and shows the build cache, which
 * `builder prune` empties.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, api } from "./harness.js";

const d = new Daemon();
const tmp = mkdtempSync(join(tmpdir(), "berth-images-fid-"));

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function build(name: string, tag: string | undefined, dockerfile: string, files: Record<string, string> = {}): { ids: string[]; out: string; code: number } {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "Dockerfile"), dockerfile);
  for (const [f, b] of Object.entries(files)) writeFileSync(join(dir, f), b);
  const r = d.berth(["build", ...(tag ? ["-t", tag] : []), dir]);
  return { ids: [...r.stdout.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]), out: r.stdout + r.stderr, code: r.code };
}

async function getJson<T>(path: string): Promise<T> {
  const r = await api(d.sock, "GET", `/v1.41${path}`);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as T;
}

type Summary = { Id: string; ParentId: string; RepoTags: string[] | null; RepoDigests: string[] | null; Containers: number; SharedSize: number; Size: number };
const short = (id: string) => id.slice(7, 19);

test("system df counts a layer many images share once (LayersSize), each image's SharedSize the part it shares, and lists the build cache", async () => {
  // Three images on busybox's one layer (config steps add none): dockerd's LayersSize is that layer alone.
  for (const n of ["1", "2"]) assert.equal(build(`df${n}`, `df${n}`, `FROM busybox\nENV N=${n}\n`).code, 0);
  const df = await getJson<{ LayersSize: number; Images: Summary[]; BuildCache: Record<string, unknown>[] | null }>("/system/df");
  const bb = df.Images.find((i) => i.RepoTags?.includes("busybox:latest"))!;
  assert.equal(df.Images.length, 3, JSON.stringify(df.Images));
  assert.equal(df.LayersSize, bb.Size);
  for (const i of df.Images) {
    assert.equal(i.Size, bb.Size);
    assert.equal(i.SharedSize, i.Size, "every layer of each is shared");
    assert.equal(i.Containers, 0);
  }
  // A layer of one image alone is not shared.
  assert.equal(build("df3", "df3", "FROM busybox\nRUN echo own > /own\n").code, 0);
  const df2 = await getJson<{ LayersSize: number; Images: Summary[]; BuildCache: Record<string, unknown>[] }>("/system/df");
  const own = df2.Images.find((i) => i.RepoTags?.includes("df3:latest"))!;
  assert.ok(own.Size > bb.Size);
  assert.equal(own.SharedSize, bb.Size);
  assert.equal(df2.LayersSize, own.Size, "busybox's layer once, plus df3's own");
  // The build cache, with Docker's fields.
  assert.ok(Array.isArray(df2.BuildCache) && df2.BuildCache.length > 0, JSON.stringify(df2.BuildCache));
  for (const k of ["ID", "Parent", "Type", "Description", "InUse", "Shared", "Size", "CreatedAt", "LastUsedAt", "UsageCount"]) assert.ok(k in df2.BuildCache[0], k);
  // The docker CLI shows it as dockerd's (one row per type).
  const viaDocker = d.docker(["system", "df"]);
  assert.equal(viaDocker.code, 0, viaDocker.stderr);
  assert.match(viaDocker.stdout, /^Images\s+4\s+0\s/m);
  for (const t of ["df1", "df2", "df3"]) d.berth(["rmi", t]);
});

test("images hides a build's intermediate images (-a shows them, untagged as <none>); dangling=true lists only untagged images without children", async () => {
  const b = build("chain", "chain", "FROM busybox\nENV A=1\nRUN echo 1 > /one\nENV B=2\n");
  assert.equal(b.code, 0, b.out);
  const [, envA, run, envB] = b.ids;
  const top = await getJson<Summary[]>("/images/json");
  const all = await getJson<Summary[]>("/images/json?all=1");
  const ids = (l: Summary[]) => l.map((i) => short(i.Id));
  assert.ok(ids(top).includes(envB));
  for (const i of [envA, run]) { assert.ok(!ids(top).includes(i), `${i} hidden`); assert.ok(ids(all).includes(i), `${i} listed with all`); }
  const mid = all.find((i) => short(i.Id) === run)!;
  // dockerd's summary of an intermediate image.
  assert.deepEqual(mid.RepoTags, ["<none>:<none>"]);
  assert.deepEqual(mid.RepoDigests, ["<none>@<none>"]);
  assert.equal(short(mid.ParentId), envA);
  assert.equal(mid.Containers, -1);
  assert.equal(mid.SharedSize, -1);
  const tagged = top.find((i) => short(i.Id) === envB)!;
  assert.equal(short(tagged.ParentId), run);
  assert.equal(tagged.RepoDigests, null);
  // The CLIs: berth images / -a, as docker images.
  assert.ok(!d.berth(["images", "-q"]).stdout.includes(run));
  assert.ok(d.berth(["images", "-aq"]).stdout.includes(run));
  assert.ok(!d.docker(["images", "-q"]).stdout.includes(run));
  // Intermediate images have children: not dangling. A failed build's last step has none: dangling.
  const failed = build("failed", undefined, "FROM busybox\nENV F=1\nRUN exit 3\n");
  assert.notEqual(failed.code, 0);
  const head = failed.ids[1];
  const dangling = await getJson<Summary[]>(`/images/json?filters=${encodeURIComponent(JSON.stringify({ dangling: ["true"] }))}`);
  assert.deepEqual(ids(dangling), [head]);
  assert.deepEqual(d.berth(["images", "-q", "--filter", "dangling=true"]).stdout.trim(), head);
  d.berth(["rmi", head]);
});

test("rmi of a built image removes its untagged parent chain, stopping at a parent another image was built on; an image with children is refused by ID", () => {
  const a = build("rmi-a", "rmi-a", "FROM busybox\nENV S=1\nRUN echo a > /a\nENV T=a\n");
  assert.equal(a.code, 0, a.out);
  const b = build("rmi-b", "rmi-b", "FROM busybox\nENV S=1\nRUN echo b > /b\n");
  assert.equal(b.code, 0, b.out);
  const [base, shared, runA, topA] = a.ids;
  assert.equal(b.ids[1], shared, "the cache shares the ENV step");
  // By ID, an image others were built on: dockerd's 409.
  const refused = d.berth(["rmi", shared]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`conflict: unable to delete ${shared} \\(cannot be forced\\) - image has dependent child images`));
  const r = d.berth(["rmi", "rmi-a"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], "Untagged: rmi-a:latest");
  // dockerd's lines: each image, then the layer it was the last to use (runA's RUN layer; an ENV step has none).
  const deleted = lines.slice(1).map((l) => l.replace(/^Deleted: sha256:([0-9a-f]{12}).*$/, "$1"));
  assert.equal(deleted.length, 3, r.stdout);
  assert.deepEqual(deleted.slice(0, 2), [topA, runA]);
  assert.match(deleted[2], /^[0-9a-f]{12}$/);
  assert.ok(![base, shared, ...b.ids].includes(deleted[2]), "a layer, not an image");
  const left = d.berth(["images", "-aq"]).stdout;
  for (const gone of [topA, runA]) assert.ok(!left.includes(gone), gone);
  for (const kept of [base, shared, b.ids[2]]) assert.ok(left.includes(kept), kept);
  // The cache still works for what is left, and rebuilding a brings its steps back.
  const again = build("rmi-b", "rmi-b", "FROM busybox\nENV S=1\nRUN echo b > /b\n");
  assert.equal((again.out.match(/Using cache/g) ?? []).length, 2, again.out);
  // rmi of b goes down to busybox, which stays (tagged).
  const rb = d.berth(["rmi", "rmi-b"]);
  assert.equal(rb.stdout.trim().split("\n").length, 4, rb.stdout); // Untagged, b's RUN image and its layer, the shared ENV image
  assert.ok(d.berth(["images", "-q", "busybox"]).stdout.includes(base));
  assert.ok(!d.berth(["images", "-aq"]).stdout.includes(shared));
});

test("builder prune: POST /build/prune answers as dockerd; -a empties the build cache (cache mounts too) and the next build runs every step", async () => {
  const df = "FROM busybox\nRUN --mount=type=cache,target=/cache head -c 4096 /dev/zero > /cache/blob && echo ran\nENV Z=1\n";
  const b = build("prune", "prune", df);
  assert.equal(b.code, 0, b.out);
  const cache = (await getJson<{ BuildCache: { ID: string; Type: string; Size: number }[] }>("/system/df")).BuildCache;
  const mount = cache.find((c) => c.Type === "exec.cachemount");
  assert.ok(mount && mount.Size >= 4096, JSON.stringify(cache));
  // Without -a only dangling cache goes: records whose image is gone (the earlier tests' rmi left some), never a mount.
  const p = await api(d.sock, "POST", "/v1.41/build/prune");
  assert.equal(p.status, 200, p.body);
  const first = JSON.parse(p.body) as { CachesDeleted: string[] | null; SpaceReclaimed: number };
  assert.ok(!first.CachesDeleted?.includes(mount.ID));
  assert.equal(first.SpaceReclaimed, 0);
  // Nothing dangling left: dockerd's answer when nothing goes.
  const p2 = await api(d.sock, "POST", "/v1.41/build/prune");
  assert.deepEqual(JSON.parse(p2.body), { CachesDeleted: null, SpaceReclaimed: 0 });
  const cli = d.berth(["builder", "prune", "-af"]);
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^Deleted build cache objects:\n([0-9a-z]+\n)+\nTotal reclaimed space: 4\.096kB\n$/);
  assert.ok(cli.stdout.includes(mount.ID));
  const after = (await getJson<{ BuildCache: unknown[] | null }>("/system/df")).BuildCache ?? [];
  assert.equal(after.length, 0, JSON.stringify(after));
  const re = build("prune", "prune", df);
  assert.equal(re.code, 0, re.out);
  assert.ok(!re.out.includes("Using cache"), re.out);
  assert.match(re.out, /\nran\n/);
  d.berth(["rmi", "prune"]);
});
