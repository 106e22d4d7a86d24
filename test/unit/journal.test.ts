/**
 * The image metadata journal (store/journal.ts, store/images.ts): changes are
 * lines, a torn last line is dropped, compaction keeps the state, images.json
 * written by older berths is still read, a tag move is one line.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, appendFileSync, existsSync, statSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Journal } from "../../src/store/journal.js";
import { ContentStore } from "../../src/store/content.js";
import { ImageStore } from "../../src/store/images.js";

interface Rec { id: string; v: number; pad?: string }

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "berth-journal-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function table(dir: string): { map: Map<string, Rec>; j: Journal<Rec> } {
  const map = new Map<string, Rec>();
  const j = new Journal<Rec>(dir, "t", "items", (r) => r.id, () => map.values());
  return { map, j };
}

async function reopen(dir: string): Promise<{ recs: Rec[]; damage: string[] }> {
  const { j } = table(dir);
  const { records, damage } = await j.load();
  await j.close();
  return { recs: records.sort((a, b) => a.id.localeCompare(b.id)), damage };
}

test("journal: changes survive a reopen; a change of several records is one line", async (t) => {
  const dir = tmp(t);
  const { map, j } = table(dir);
  await j.load();
  const put = async (...rs: Rec[]) => { for (const r of rs) map.set(r.id, r); await j.change(rs); };
  await put({ id: "a", v: 1 });
  await put({ id: "b", v: 1 }, { id: "a", v: 2 });
  map.delete("b"); await j.change([], ["b"]);
  await j.close();
  const lines = readFileSync(join(dir, "t.journal"), "utf8").split("\n").filter(Boolean);
  assert.equal(lines.length, 3, "one line per change");
  assert.deepEqual(JSON.parse(lines[1]), { put: [{ id: "b", v: 1 }, { id: "a", v: 2 }] });
  assert.deepEqual((await reopen(dir)).recs, [{ id: "a", v: 2 }]);
});

test("journal: a torn last line (a crash mid-append) is dropped and cut off; a damaged middle line is reported", async (t) => {
  const dir = tmp(t);
  const { map, j } = table(dir);
  await j.load();
  map.set("a", { id: "a", v: 1 }); await j.change([{ id: "a", v: 1 }]);
  map.set("b", { id: "b", v: 1 }); await j.change([{ id: "b", v: 1 }]);
  await j.close();
  const good = statSync(join(dir, "t.journal")).size;
  appendFileSync(join(dir, "t.journal"), '{"put":[{"id":"c","v"');
  let r = await reopen(dir);
  assert.deepEqual(r.recs.map((x) => x.id), ["a", "b"]);
  assert.deepEqual(r.damage, [], "a torn tail is not damage");
  assert.equal(statSync(join(dir, "t.journal")).size, good, "the torn tail is truncated away");
  // Zeros the file system allocated but never wrote (no newline) are a torn tail too.
  appendFileSync(join(dir, "t.journal"), Buffer.alloc(300));
  r = await reopen(dir);
  assert.deepEqual(r.recs.map((x) => x.id), ["a", "b"]);
  assert.equal(statSync(join(dir, "t.journal")).size, good);
  // A line that is garbage followed by good lines: real damage, skipped and reported.
  appendFileSync(join(dir, "t.journal"), 'not json\n{"put":[{"id":"d","v":1}]}\n');
  r = await reopen(dir);
  assert.deepEqual(r.recs.map((x) => x.id), ["a", "b", "d"]);
  assert.equal(r.damage.length, 1);
  assert.match(r.damage[0], /line 3 unreadable/);
  // The next append after a truncated tail starts on its own line.
  const t2 = table(dir);
  for (const x of (await t2.j.load()).records) t2.map.set(x.id, x);
  t2.map.set("e", { id: "e", v: 1 }); await t2.j.change([{ id: "e", v: 1 }]);
  await t2.j.close();
  assert.deepEqual((await reopen(dir)).recs.map((x) => x.id), ["a", "b", "d", "e"]);
});

test("journal: compaction rewrites the snapshot and empties the journal; state is unchanged; replay over a compacted snapshot is harmless", async (t) => {
  const dir = tmp(t);
  const { map, j } = table(dir);
  await j.load();
  const pad = "x".repeat(1000);
  for (let i = 0; i < 1500; i++) { // > 1 MiB of journal: at least one automatic compaction
    const r = { id: `r${i % 300}`, v: i, pad };
    map.set(r.id, r);
    await j.change([r]);
  }
  await j.close();
  assert.ok(existsSync(join(dir, "t.json")), "a snapshot was written");
  assert.ok(statSync(join(dir, "t.journal")).size < 1 << 20, "the journal was emptied on compaction");
  const r = await reopen(dir);
  assert.equal(r.recs.length, 300);
  assert.ok(r.recs.every((x) => x.v >= 1200), "latest values win");
  // A crash between writing the snapshot and emptying the journal: the journal replays over it.
  const journal = readFileSync(join(dir, "t.journal"));
  const t3 = table(dir);
  for (const x of (await t3.j.load()).records) t3.map.set(x.id, x);
  await t3.j.compact();
  await t3.j.close();
  writeFileSync(join(dir, "t.journal"), journal);
  assert.deepEqual((await reopen(dir)).recs, r.recs);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith(".tmp")), [], "no temporary files left");
});

test("image store: reads an images.json written by an older berth, fills the list cache from blobs, moves a tag in one line", async (t) => {
  const dir = tmp(t);
  const content = new ContentStore(join(dir, "content"));
  await content.init();
  const cfg = (label: string) => JSON.stringify({ created: "2024-01-01T00:00:00Z", architecture: "amd64", os: "linux", config: { Labels: { l: label } }, rootfs: { type: "layers", diff_ids: [] } });
  const c1 = await content.writeBytes(cfg("one")), c2 = await content.writeBytes(cfg("two"));
  const man = (c: { digest: string; size: number }) => JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", ...c }, layers: [] });
  const m1 = await content.writeBytes(man(c1)), m2 = await content.writeBytes(man(c2));
  const old = (id: string, md: string, tags: string[]) => ({ id, manifestDigest: md, repoTags: tags, repoDigests: [], created: "2024-01-01T00:00:00Z", size: 0, chainId: null, diffIds: [] });
  writeFileSync(join(dir, "images.json"), JSON.stringify({ images: [old(c1.digest, m1.digest, ["docker.io/library/one:latest"]), old(c2.digest, m2.digest, []), old("sha256:" + "0".repeat(64), "sha256:" + "1".repeat(64), ["docker.io/library/gone:latest"])] }, null, 1));
  const store = new ImageStore(dir, content);
  await store.load();
  assert.equal(store.resolve("one")?.id, c1.digest);
  assert.deepEqual(store.get(c1.digest)?.labels, { l: "one" }, "the label cache is filled from the config");
  assert.equal(store.brokenReason("sha256:" + "0".repeat(64))?.includes("missing"), true, "a record whose manifest is gone is marked broken");
  await store.tag(c2.digest, "docker.io/library/one:latest");
  assert.equal(store.resolve("one")?.id, c2.digest);
  assert.deepEqual(store.get(c1.digest)?.repoTags, []);
  const lines = readFileSync(join(dir, "images.journal"), "utf8").split("\n").filter(Boolean);
  assert.equal(lines.length, 1, "the tag move is one line");
  assert.equal((JSON.parse(lines[0]) as { put: unknown[] }).put.length, 2);
  await store.close();
  const again = new ImageStore(dir, content);
  await again.load();
  assert.equal(again.resolve("one:latest")?.id, c2.digest);
  assert.equal(again.resolve(c1.digest.slice(7, 19))?.id, c1.digest, "an ID prefix resolves");
  assert.equal(again.list().length, 3);
  await again.close();
});
