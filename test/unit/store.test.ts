import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync, readFileSync, readlinkSync, lstatSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { spawnSync } from "node:child_process";
import * as tar from "tar-stream";
import { Store } from "../../src/store/index.js";
import { ContentStore } from "../../src/store/content.js";
import { chainIdOf, isMountPoint } from "../../src/store/snapshots.js";
import { bootstrapBusybox, createImageFromTar } from "../../src/store/create-image.js";

function tmp(t: { after: (fn: () => void) => void }, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

type Entry = { name: string; type?: tar.Header["type"]; body?: string; linkname?: string; mode?: number };
async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? "file", linkname: e.linkname, mode: e.mode ?? (e.type === "directory" ? 0o755 : 0o644), mtime: new Date(0) }, e.body ?? "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test("content store verifies digests and commits atomically", async (t) => {
  const cs = new ContentStore(tmp(t, "berth-cs-"));
  await cs.init();
  const d = await cs.ingest(Readable.from([Buffer.from("hello")]));
  assert.equal(d.digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  assert.equal((await cs.readBytes(d.digest)).toString(), "hello");
  await assert.rejects(cs.ingest(Readable.from([Buffer.from("evil")]), { digest: d.digest.replace(/.$/, "0") }), /digest mismatch/);
  assert.deepEqual(await cs.list(), [d.digest]);
  assert.deepEqual(readdirSync(join(cs.root, "ingest")), [], "a refused blob leaves nothing behind");
  await assert.rejects(cs.ingest(Readable.from([Buffer.from("short")]), { size: 99 }), /size mismatch/);
});

test("layers unpack once, keyed by chain ID; whiteouts and opaque dirs hide lower content", async (t) => {
  const root = tmp(t, "berth-snap-");
  const store = await Store.open(root);
  const l1 = await makeTar([{ name: "a/", type: "directory" }, { name: "a/keep", body: "k" }, { name: "a/gone", body: "g" }, { name: "o/", type: "directory" }, { name: "o/old", body: "o" }]);
  const l2 = await makeTar([{ name: "a/.wh.gone" }, { name: "o/", type: "directory" }, { name: "o/.wh..wh..opq" }, { name: "o/new", body: "n" }]);
  const s1 = await store.snapshots.applyLayer(null, Readable.from([l1]));
  const s2 = await store.snapshots.applyLayer(s1.chainId, Readable.from([l2]));
  assert.equal(s2.chainId, chainIdOf([s1.diffId, s2.diffId]));
  const again = await store.snapshots.applyLayer(null, Readable.from([l1]), s1.diffId);
  assert.equal(again.chainId, s1.chainId);
  assert.equal((await store.snapshots.list()).length, 2, "the same layer is stored once");
  const ctr = join(root, "ctr");
  const target = join(ctr, "rootfs");
  t.after(() => store.snapshots.unmount(target));
  await store.snapshots.mount(s2.chainId, ctr, target);
  assert.ok(isMountPoint(target));
  assert.ok(existsSync(join(target, "a/keep")));
  assert.ok(!existsSync(join(target, "a/gone")), "whiteout hides the file");
  assert.ok(!existsSync(join(target, "o/old")), "opaque dir hides lower content");
  assert.equal(readFileSync(join(target, "o/new"), "utf8"), "n");
  await store.snapshots.unmount(target);
  assert.ok(!isMountPoint(target));
});

test("hostile layers never write outside the snapshot", async (t) => {
  const root = tmp(t, "berth-hostile-");
  const outside = tmp(t, "berth-outside-");
  const store = await Store.open(root);
  const layer = await makeTar([
    { name: "../../../../" + outside.slice(1) + "/dotdot", body: "x" },
    { name: outside + "/absolute", body: "x" },
    { name: "esc", type: "symlink", linkname: outside },
    { name: "esc/through-symlink", body: "x" },
    { name: "rel", type: "symlink", linkname: "../../../../../../" + outside.slice(1) },
    { name: "rel/through-relative", body: "x" },
  ]);
  const s = await store.snapshots.applyLayer(null, Readable.from([layer]));
  assert.deepEqual(readdirSync(outside), [], "nothing landed outside");
  const dir = (await store.snapshots.lowerDirs(s.chainId))[0];
  assert.equal(readlinkSync(join(dir, "esc")), outside, "the symlink itself is kept as data");
  assert.ok(existsSync(join(dir, outside.slice(1), "through-symlink")), "writes through it land inside the layer");
  const hard = await makeTar([{ name: "h", type: "link", linkname: "../../../etc/passwd" }]);
  await assert.rejects(store.snapshots.applyLayer(null, Readable.from([hard])), /outside the layer|ENOENT/);
  assert.equal((await store.snapshots.list()).length, 1, "the refused layer left no snapshot");
});

test("import of plain and gzip tars; busybox bootstrap is deterministic", async (t) => {
  const root = tmp(t, "berth-img-");
  const store = await Store.open(root);
  const plain = await makeTar([{ name: "hello.txt", body: "hi" }]);
  const a = await createImageFromTar(store, Readable.from([plain]), { ref: "plain:1", config: { Cmd: ["cat", "/hello.txt"] } });
  const b = await createImageFromTar(store, Readable.from([gzipSync(plain)]), { ref: "gz:1" });
  assert.deepEqual(a.diffIds, b.diffIds, "gzip or not, the same diff ID");
  assert.equal(store.images.resolve("plain:1")?.id, a.id);
  assert.equal(store.images.resolve("docker.io/library/gz:1")?.id, b.id);
  assert.equal(store.images.resolve(a.id.slice(7, 19))?.id, a.id, "by short ID");
  assert.deepEqual((await store.images.config(a)).config?.Cmd, ["cat", "/hello.txt"]);
  const bb1 = await bootstrapBusybox(store);
  const bb2 = await bootstrapBusybox(store, "busybox:again");
  assert.equal(bb1.id, bb2.id);
  assert.deepEqual(bb1.diffIds, bb2.diffIds);
  assert.deepEqual(store.images.resolve("busybox")!.repoTags.sort(), ["docker.io/library/busybox:again", "docker.io/library/busybox:latest"]);
  const dir = (await store.snapshots.lowerDirs(bb1.chainId!))[0];
  assert.ok(lstatSync(join(dir, "bin/busybox")).isFile());
  assert.equal(readlinkSync(join(dir, "bin/sh")), "busybox");
  const run = spawnSync(join(dir, "bin/busybox"), ["echo", "ok"], { encoding: "utf8" });
  assert.equal(run.stdout, "ok\n");
  await store.images.tag(bb1.id, "other:1");
  await store.images.tag(a.id, "other:1");
  assert.equal(store.images.resolve("other:1")?.id, a.id, "a tag moves to the new image");
  assert.ok(!store.images.resolve(bb1.id)!.repoTags.includes("docker.io/library/other:1"));
});
