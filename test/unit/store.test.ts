import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync, readFileSync, readlinkSync, lstatSync, readdirSync, writeFileSync, mkdirSync, symlinkSync, linkSync, chownSync, chmodSync, utimesSync, lutimesSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
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
import { TarUnpacker } from "../../src/store/tar-unpack.js";

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
  // A directory replaced by a symlink that leads out: later entries below it still land inside.
  const swap = await makeTar([
    { name: "d/", type: "directory" }, { name: "d/a", body: "a" },
    { name: "d", type: "symlink", linkname: outside }, { name: "d/b", body: "b" },
    { name: ".wh.", body: "" }, { name: "d/.wh.", body: "" },
  ]);
  const sw = await store.snapshots.applyLayer(null, Readable.from([swap]));
  assert.deepEqual(readdirSync(outside), [], "nothing landed outside through the swapped symlink");
  assert.notEqual(lstatSync(outside).mtimeMs, 0, "the replaced directory's time was not set through the symlink");
  const swDir = (await store.snapshots.lowerDirs(sw.chainId))[0];
  assert.ok(existsSync(join(swDir, outside.slice(1), "b")));
  assert.equal(readlinkSync(join(swDir, "d")), outside);
  const hard = await makeTar([{ name: "h", type: "link", linkname: "../../../etc/passwd" }]);
  await assert.rejects(store.snapshots.applyLayer(null, Readable.from([hard])), /outside the layer|ENOENT/);
  assert.equal((await store.snapshots.list()).length, 2, "the refused layer left no snapshot");
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

/** Everything tar keeps about a tree, for comparing an unpacked layer with its source. */
function describe(root: string): string[] {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = (rel: string) => {
    const p = join(root, rel);
    const st = lstatSync(p);
    const kind = st.isDirectory() ? "dir" : st.isSymbolicLink() ? `symlink→${readlinkSync(p)}` : st.isFIFO() ? "fifo" : st.isFile() ? "file" : "other";
    let extra = "";
    if (st.isFile()) {
      const first = inodes.get(st.ino);
      if (first) extra = ` hardlink of ${first}`;
      else { inodes.set(st.ino, rel); extra = ` ${st.size} ${createHash("sha256").update(readFileSync(p)).digest("hex").slice(0, 16)}`; }
    }
    const mtime = st.isSymbolicLink() ? "" : ` t${Math.floor(st.mtimeMs / 1000)}`;
    out.push(`${rel || "."} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}${mtime}${extra}`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) walk(rel ? `${rel}/${n}` : n);
  };
  walk("");
  return out;
}

function chunked(buf: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let o = 0; o < buf.length; o += size) parts.push(buf.subarray(o, o + size));
  return Readable.from(parts);
}

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

test("layers written by GNU tar in gnu, pax and ustar formats unpack to the same tree", async (t) => {
  const work = tmp(t, "berth-tarfmt-");
  const src = join(work, "src");
  const long = "a-rather-long-directory-name-for-testing/".repeat(4) + "and-a-file-name-that-goes-past-one-hundred.txt";
  mkdirSync(join(src, "dir/sub"), { recursive: true });
  mkdirSync(join(src, long.slice(0, long.lastIndexOf("/"))), { recursive: true });
  writeFileSync(join(src, long), "deep\n");
  writeFileSync(join(src, "dir/héllo wörld ✓"), "utf-8 name\n");
  mkdirSync(join(src, "dir", "p".repeat(80)));
  writeFileSync(join(src, "dir", "p".repeat(80), "f".repeat(40)), "a ustar name with a prefix\n"); // 126 bytes: prefix + name
  writeFileSync(join(src, "dir/empty"), "");
  writeFileSync(join(src, "dir/exact512"), Buffer.alloc(512, 1));
  writeFileSync(join(src, "dir/big"), randomBytes(3 * 1024 * 1024 + 123));
  writeFileSync(join(src, "dir/suid"), "#!/bin/sh\n");
  chmodSync(join(src, "dir/suid"), 0o4755);
  writeFileSync(join(src, "dir/owned"), "mine\n");
  chownSync(join(src, "dir/owned"), 1234, 5678);
  linkSync(join(src, "dir/big"), join(src, "dir/big-hardlink"));
  symlinkSync("../" + long, join(src, "dir/long-symlink"));
  symlinkSync("big", join(src, "dir/short-symlink"));
  spawnSync("mkfifo", ["-m", "0640", join(src, "dir/fifo")]);
  chmodSync(join(src, "dir/sub"), 0o750);
  chmodSync(src, 0o755);
  const walkSet = (rel: string, when: number) => {
    const p = join(src, rel);
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) walkSet(rel ? `${rel}/${n}` : n, when);
    if (st.isSymbolicLink()) lutimesSync(p, when, when); else utimesSync(p, when, when);
  };
  walkSet("", 1_600_000_000);
  const want = describe(src);
  for (const format of ["gnu", "pax", "ustar"]) {
    const tarFile = join(work, `${format}.tar`);
    // ustar cannot hold the long names: leave them out of that one.
    const skip = format === "ustar" ? ["a-rather-long-directory-name-for-testing", "dir/long-symlink"] : [];
    const r = spawnSync("tar", ["--format", format, "--numeric-owner", ...skip.map((n) => `--exclude=./${n}`), "-C", src, "-cf", tarFile, "."], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const buf = readFileSync(tarFile);
    rmSync(join(work, "root"), { recursive: true, force: true });
    const s = await (await Store.open(join(work, "root"))).snapshots.applyLayer(null, chunked(buf, 7777));
    assert.equal(s.diffId, sha(buf), `${format}: the diff ID is the tar's digest`);
    const expected = want.filter((l) => !skip.some((n) => l.startsWith(n)));
    assert.deepEqual(describe(join(work, "root/snapshots/1/fs")), expected, format);
    // The parser itself, fed in pieces of every size: headers and bodies split anywhere.
    const dir = join(work, `direct-${format}`);
    mkdirSync(dir);
    const u = new TarUnpacker(dir);
    for (let o = 0, step = 1; o < buf.length; o += step, step = (step * 7 + 3) % 1500 + 1) u.write(buf.subarray(o, o + step));
    u.end();
    assert.deepEqual(describe(dir).slice(1), expected.slice(1), `${format}, in pieces`);
  }
});

test("compressed layers: gzip and zstd are sniffed; corrupt, truncated and mismatched layers leave nothing behind", async (t) => {
  const work = tmp(t, "berth-compress-");
  const layer = await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/hello", body: "hi\n".repeat(100000) }, { name: "noise", body: randomBytes(200000).toString("hex") }]);
  const plainFile = join(work, "l.tar");
  writeFileSync(plainFile, layer);
  assert.equal(spawnSync("zstd", ["-q", "-3", plainFile, "-o", `${plainFile}.zst`]).status, 0, "zstd CLI (scripts/setup.sh installs it)");
  const zst = readFileSync(`${plainFile}.zst`);
  const gz = gzipSync(layer);
  const store = await Store.open(join(work, "root"));
  const diffId = sha(layer);
  for (const [what, data, chunk] of [["plain", layer, 1000], ["gzip", gz, 4096], ["zstd", zst, 3], ["zstd", zst, 1 << 20]] as const) {
    const s = await store.snapshots.applyLayer(null, chunked(data, chunk), diffId, { compression: "auto" });
    assert.equal(s.diffId, diffId, what);
    const dir = (await store.snapshots.lowerDirs(s.chainId))[0];
    assert.equal(readFileSync(join(dir, "etc/hello"), "utf8"), "hi\n".repeat(100000), what);
    await store.snapshots.remove(s.chainId);
  }
  // The blob is written and verified on the way; a wrong digest commits neither the blob nor the snapshot.
  const ok = await store.snapshots.applyLayer(null, chunked(zst, 65536), diffId, { compression: "auto", blob: { content: store.content, digest: sha(zst), size: zst.length } });
  assert.equal(ok.diffId, diffId);
  assert.deepEqual(await store.content.readBytes(sha(zst)), zst);
  await store.snapshots.remove(ok.chainId);
  const bigGz = gzipSync(randomBytes(9 << 20), { level: 1 }); // over the O_DIRECT threshold; not a tar
  await assert.rejects(store.snapshots.applyLayer(null, chunked(bigGz, 1 << 20), undefined, { compression: "auto", blob: { content: store.content, digest: sha(bigGz), size: bigGz.length } }), /invalid layer tar/);
  const bigTar = await makeTar([{ name: "big", body: randomBytes(6 << 20).toString("latin1") }]);
  const bigTgz = gzipSync(bigTar, { level: 1 });
  const big = await store.snapshots.applyLayer(null, chunked(bigTgz, 100000), sha(bigTar), { compression: "auto", blob: { content: store.content, digest: sha(bigTgz), size: bigTgz.length } });
  assert.deepEqual(await store.content.readBytes(sha(bigTgz)), bigTgz, "a blob written with O_DIRECT reads back the same");
  await store.snapshots.remove(big.chainId);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(gz, 4096), diffId, { compression: "auto", blob: { content: store.content, digest: sha(zst), size: gz.length } }), /digest mismatch/);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(gz, 4096), diffId, { compression: "auto", blob: { content: store.content, digest: sha(gz), size: gz.length - 1 } }), /size mismatch/);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(gz, 4096), sha(Buffer.from("other")), { compression: "auto" }), /diff ID mismatch/);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(layer.subarray(0, 5000), 1000)), /unexpected end of data/);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(gz.subarray(0, gz.length - 10), 1000), undefined, { compression: "auto" }), /unexpected end of file/);
  await assert.rejects(store.snapshots.applyLayer(null, chunked(zst.subarray(0, zst.length - 10), 1000), undefined, { compression: "auto" }));
  await assert.rejects(store.snapshots.applyLayer(null, Readable.from([Buffer.alloc(2048, 7)])), /checksum/);
  // A source that fails midway (a dropped connection) fails the layer too.
  const failing = Readable.from((async function* () { yield layer.subarray(0, 70000); throw new Error("connection reset"); })());
  await assert.rejects(store.snapshots.applyLayer(null, failing, undefined, { blob: { content: store.content, digest: sha(layer), size: layer.length } }), /connection reset/);
  assert.deepEqual(await store.content.list(), [sha(zst), sha(bigTgz)].sort(), "only verified blobs were committed");
  assert.deepEqual(readdirSync(join(work, "root/content/ingest")), [], "no partial blob is left");
  assert.deepEqual((await store.snapshots.list()).length, 0);
  assert.deepEqual(readdirSync(join(work, "root/snapshots")).filter((n) => n.startsWith("tmp-")), [], "no partial snapshot is left");
});

test("extended attributes in PAX records: file capabilities and user attributes are set, trusted.* refused", async (t) => {
  const work = tmp(t, "berth-xattr-");
  // security.capability of `setcap cap_net_raw+ep` (vfs_cap_data revision 2), as Debian's ping carries it.
  const cap = Buffer.from("0100000200200000000000000000000000000000", "hex");
  const pack = tar.pack();
  pack.entry({ name: "bin/", type: "directory", mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: "bin/ping", mode: 0o755, mtime: new Date(0), pax: { "SCHILY.xattr.security.capability": cap.toString("latin1") } } as unknown as tar.Header, "#!/bin/sh\n");
  pack.entry({ name: "data", type: "directory", mode: 0o755, mtime: new Date(0), pax: { "SCHILY.xattr.user.note": "héllo", "SCHILY.xattr.trusted.overlay.opaque": "y" } } as unknown as tar.Header);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const buf = Buffer.concat(chunks);
  const dir = join(work, "fs");
  mkdirSync(dir);
  const u = new TarUnpacker(dir);
  u.write(buf);
  u.end();
  const get = (p: string, n: string) => spawnSync("getfattr", ["--only-values", "-n", n, join(dir, p)]);
  assert.deepEqual(get("bin/ping", "security.capability").stdout, cap);
  const note = get("data", "user.note");
  if (note.status === 0) assert.equal(note.stdout.toString("utf8"), "héllo"); // tmpfs before 6.6 has no user xattrs
  assert.notEqual(get("data", "trusted.overlay.opaque").status, 0, "a layer cannot forge overlay's markers");
  assert.equal(readFileSync(join(dir, "bin/ping"), "utf8"), "#!/bin/sh\n");
});

test("a container's upper directory round-trips as a layer: whiteouts, opaque dirs, hard links, xattrs; diff kinds", async (t) => {
  const { layerTar, changes } = await import("../../src/store/diff.js");
  const work = tmp(t, "berth-diff-");
  const lower = join(work, "lower"), upper = join(work, "upper"), out = join(work, "out");
  for (const d of [lower, upper, out]) mkdirSync(d);
  mkdirSync(join(lower, "etc")); writeFileSync(join(lower, "etc/old"), "old");
  mkdirSync(join(lower, "opq")); writeFileSync(join(lower, "opq/hidden"), "x");
  mkdirSync(join(lower, "bin")); writeFileSync(join(lower, "bin/vi"), "vi");
  // What overlay leaves in upper: a changed file, a new one with a hard link and an xattr, a whiteout, an opaque dir, a mount stub.
  mkdirSync(join(upper, "etc")); writeFileSync(join(upper, "etc/old"), "new");
  writeFileSync(join(upper, "etc/hosts"), "");
  writeFileSync(join(upper, "greeting"), "hi\n"); linkSync(join(upper, "greeting"), join(upper, "hard"));
  assert.equal(spawnSync("setfattr", ["-n", "user.k", "-v", "v1", join(upper, "greeting")]).status, 0);
  mkdirSync(join(upper, "bin")); assert.equal(spawnSync("mknod", [join(upper, "bin/vi"), "c", "0", "0"]).status, 0);
  mkdirSync(join(upper, "opq")); writeFileSync(join(upper, "opq/fresh"), "y");
  assert.equal(spawnSync("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", join(upper, "opq")]).status, 0);

  assert.deepEqual(changes(upper, [lower]).map((c) => `${"CAD"[c.Kind]} ${c.Path}`),
    ["C /bin", "D /bin/vi", "C /etc", "C /etc/old", "A /greeting", "A /hard", "C /opq", "A /opq/fresh"]);

  const chunks: Buffer[] = [];
  for await (const c of layerTar(upper, [lower]) as AsyncIterable<Buffer>) chunks.push(c);
  const buf = Buffer.concat(chunks);
  const names: string[] = [];
  const ex = tar.extract();
  const listed = (async () => { for await (const e of ex) { names.push(e.header.name); e.resume(); } })();
  Readable.from([buf]).pipe(ex);
  await listed;
  assert.ok(names.includes("bin/.wh.vi") && names.includes("opq/.wh..wh..opq") && !names.includes("etc/hosts"), names.join(","));
  // GNU tar reads it too (with the attribute).
  writeFileSync(join(work, "l.tar"), buf);
  const gnu = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "-tvf", join(work, "l.tar")], { encoding: "utf8" });
  assert.equal(gnu.status, 0, gnu.stderr);
  assert.match(gnu.stdout, /hard link to greeting/);
  const u = new TarUnpacker(out);
  u.write(buf);
  u.end();
  assert.equal(readFileSync(join(out, "etc/old"), "utf8"), "new");
  assert.equal(lstatSync(join(out, "greeting")).ino, lstatSync(join(out, "hard")).ino, "hard link kept");
  assert.equal(spawnSync("getfattr", ["--only-values", "-n", "user.k", join(out, "greeting")], { encoding: "utf8" }).stdout, "v1");
  const wh = lstatSync(join(out, "bin/vi"));
  assert.ok(wh.isCharacterDevice() && wh.rdev === 0, "whiteout again");
  assert.equal(spawnSync("getfattr", ["--only-values", "-n", "trusted.overlay.opaque", join(out, "opq")], { encoding: "utf8" }).stdout, "y");
});

test("the snapshot index is a journal: one line per change, an older index.json is taken over, a torn line is dropped", async () => {
  const root = mkdtempSync(join(tmpdir(), "berth-snapidx-"));
  try {
    const snaps = join(root, "snaps");
    mkdirSync(join(snaps, "7", "fs"), { recursive: true });
    writeFileSync(join(snaps, "7", "fs", "f"), "old");
    const old = `sha256:${"a".repeat(64)}`;
    writeFileSync(join(snaps, "index.json"), JSON.stringify({ next: 8, snapshots: { [old]: { n: 7, parent: null, size: 3, diffId: old } } }));
    const { Snapshotter } = await import("../../src/store/snapshots.js");
    let s = new Snapshotter(snaps);
    await s.init();
    assert.deepEqual((await s.list()).map((x) => x.chainId), [old], "the old index is read");
    assert.ok(!existsSync(join(snaps, "index.json")), "and taken over");
    const layer = (name: string) => { const p = tar.pack(); p.entry({ name }, "x"); p.finalize(); return p as unknown as AsyncIterable<Uint8Array>; };
    const a = await s.applyLayer(null, layer("a"));
    const b = await s.applyLayer(a.chainId, layer("b"));
    assert.equal(readFileSync(join(snaps, "snapshots.journal"), "utf8").split("\n").filter(Boolean).length, 2, "one line per new snapshot");
    await s.remove(b.chainId);
    await s.close();
    // A crash in the middle of an append: the torn line is dropped, the rest stands.
    writeFileSync(join(snaps, "snapshots.journal"), readFileSync(join(snaps, "snapshots.journal"), "utf8") + '{"put":[{"chainId":"sha');
    s = new Snapshotter(snaps);
    await s.init();
    assert.deepEqual((await s.list()).map((x) => x.chainId).sort(), [old, a.chainId].sort());
    assert.deepEqual(s.damage, []);
    assert.equal(readFileSync(join((await s.lowerDirs(old))[0], "f"), "utf8"), "old");
    const c = await s.applyLayer(null, layer("c"));
    assert.ok(!(await s.lowerDirs(c.chainId))[0].includes("/7/"), "numbers are not reused");
    await s.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
