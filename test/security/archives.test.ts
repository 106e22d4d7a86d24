/**
 * Hostile archives: layer tars that try to write outside the snapshot (../,
 * absolute names, symlinks then files, whiteouts or xattrs through them, hard
 * links out, device nodes), GNU sparse files (read as Docker does, the old 'S'
 * type refused as dockerd refuses it), decompression bombs (a gzip of 2 GiB of
 * zeros, built on the fly as concatenated gzip members so this test holds
 * about 2 MB), and image archives for POST /images/load that are garbage,
 * name wrong paths or disagree with themselves. Each refusal is checked for
 * its status, for a message without host paths, and for leaving nothing: no
 * image, no blob, no snapshot, no temp dir.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, lstatSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import net from "node:net";
import * as tar from "tar-stream";
import { Store } from "../../src/store/index.js";
import { setLayerLimits, layerLimits, DEFAULT_LAYER_LIMITS } from "../../src/store/layer-jobs.js";
import { Daemon, api, sleep, until } from "../integration/harness.js";

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

function tmp(t: { after: (fn: () => void) => void }, prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

type Entry = { name: string; type?: tar.Header["type"]; body?: string; linkname?: string; mode?: number; pax?: Record<string, string>; devmajor?: number; devminor?: number };
async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    pack.entry({ name: e.name, type: e.type ?? "file", linkname: e.linkname, mode: e.mode ?? (e.type === "directory" ? 0o755 : 0o644), mtime: new Date(0), pax: e.pax, devmajor: e.devmajor, devminor: e.devminor }, e.body ?? "");
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A ustar header for one regular file of `size` bytes (the data follows it). */
function fileHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(size.toString(8).padStart(11, "0") + "\0", 124);
  h.write("00000000000\0", 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0" + "00", 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  return h;
}

/**
 * A gzip'd layer tar holding one file of `zeros` bytes of zeros, as concatenated gzip members (gunzip
 * reads them as one stream): one 64 MiB member of zeros is compressed once and repeated, so neither
 * building nor holding it costs more than a few MB.
 */
function gzipBomb(zeros: number): Buffer {
  const unit = 64 << 20;
  assert.equal(zeros % unit, 0);
  const member = gzipSync(Buffer.alloc(unit), { level: 9 });
  const parts = [gzipSync(fileHeader("zeros", zeros))];
  for (let i = 0; i < zeros / unit; i++) parts.push(member);
  parts.push(gzipSync(Buffer.alloc(1024)));
  return Buffer.concat(parts);
}

function snapshotState(root: string): { snaps: string[]; tmps: string[]; blobs: string[]; ingest: string[] } {
  const ls = (d: string) => (existsSync(d) ? readdirSync(d).sort() : []);
  const idx = join(root, "snapshots", "index.json");
  const snaps = existsSync(idx) ? Object.keys((JSON.parse(readFileSync(idx, "utf8")) as { snapshots: Record<string, unknown> }).snapshots).sort() : [];
  return { snaps, tmps: ls(join(root, "snapshots")).filter((n) => n.startsWith("tmp-")), blobs: ls(join(root, "content", "blobs", "sha256")), ingest: ls(join(root, "content", "ingest")) };
}

function getfattr(path: string): string {
  return spawnSync("getfattr", ["-h", "-d", "-m", "-", path], { encoding: "utf8" }).stdout;
}

// --- layer tars, fed to the snapshotter (and so to the layer worker and the TarUnpacker) ------------------

test("hostile layer tars never reach outside the snapshot: ../, absolute, symlinks, whiteouts, xattrs, hard links, devices", async (t) => {
  const root = tmp(t, "berth-sec-root-");
  const outside = tmp(t, "berth-sec-outside-");
  writeFileSync(join(outside, "canary"), "untouched");
  writeFileSync(join(outside, "victim"), "untouched");
  mkdirSync(join(outside, "dir"));
  const outsideBefore = () => ({ list: readdirSync(outside).sort(), canary: readFileSync(join(outside, "canary"), "utf8"), victim: readFileSync(join(outside, "victim"), "utf8"), attrs: getfattr(join(outside, "canary")) + getfattr(join(outside, "dir")) });
  const want = outsideBefore();
  const store = await Store.open(root);
  const layer = await makeTar([
    { name: "../../../../" + outside.slice(1) + "/dotdot", body: "x" },
    { name: outside + "/absolute", body: "x" },
    { name: "esc", type: "symlink", linkname: outside },
    { name: "esc/through-symlink", body: "x" },
    { name: "esc/canary", body: "overwritten through a symlink" },
    { name: "esc/.wh.victim" },
    { name: "esc/dir/.wh..wh..opq" },
    { name: "rel", type: "symlink", linkname: "../../../../../../" + outside.slice(1) },
    { name: "rel/through-relative", body: "written through a relative symlink" },
    // A file with an xattr, then replaced by a symlink out: the attribute must not land on the target.
    { name: "attr", body: "a", pax: { "SCHILY.xattr.user.berth": "evil" } },
    { name: "attr", type: "symlink", linkname: join(outside, "canary") },
    // A directory with an xattr, whose name a later entry makes a symlink out.
    { name: "d/", type: "directory", pax: { "SCHILY.xattr.user.berth": "evil" } },
    { name: "d", type: "symlink", linkname: join(outside, "dir") },
    // A device node, then a file of the same name: the file replaces the node, nothing is written through it.
    { name: "null", type: "character-device", devmajor: 1, devminor: 3, mode: 0o666 },
    { name: "null", body: "a file now" },
    { name: "blk", type: "block-device", devmajor: 7, devminor: 0, mode: 0o600 },
    { name: "blk", body: "not a loop device" },
  ]);
  const s = await store.snapshots.applyLayer(null, Readable.from([layer]));
  assert.deepEqual(outsideBefore(), want, "nothing outside changed: no file, no whiteout, no opaque marker, no xattr");
  const dir = (await store.snapshots.lowerDirs(s.chainId))[0];
  assert.equal(readFileSync(join(dir, outside.slice(1), "canary"), "utf8"), "overwritten through a symlink", "writes through the symlink landed inside the layer");
  assert.ok(lstatSync(join(dir, outside.slice(1), "victim")).isCharacterDevice(), "the whiteout landed inside the layer");
  assert.equal(readFileSync(join(dir, "null"), "utf8"), "a file now");
  assert.ok(lstatSync(join(dir, "blk")).isFile());

  // A hard link out is refused with a 400 that names the entry, not a host path; nothing is kept.
  for (const linkname of ["../../../etc/passwd", join(outside, "canary")]) {
    const before = snapshotState(root);
    const hard = await makeTar([{ name: "h", type: "link", linkname }]);
    const err = await store.snapshots.applyLayer(null, Readable.from([hard])).then(() => undefined, (e: Error & { status?: number }) => e);
    assert.ok(err, `hard link to ${linkname} refused`);
    assert.equal(err.status, 400, err.message);
    assert.match(err.message, /\bh\b/);
    assert.ok(!err.message.includes(root), `no host path in: ${err.message}`);
    assert.deepEqual(snapshotState(root), before, "the refused layer left nothing");
  }
  // A device entry under a symlink that leads out is made inside.
  const dev = await makeTar([{ name: "o", type: "symlink", linkname: outside }, { name: "o/zero", type: "character-device", devmajor: 1, devminor: 5 }]);
  await store.snapshots.applyLayer(null, Readable.from([dev]));
  assert.deepEqual(outsideBefore(), want);
});

test("GNU sparse files: PAX 0.0, 0.1 and 1.0 unpack byte for byte (as dockerd); the old GNU 'S' type is refused as dockerd refuses it", async (t) => {
  const work = tmp(t, "berth-sec-sparse-");
  mkdirSync(join(work, "src"));
  const f = join(work, "src", "sp");
  // Data, a hole, data, a hole, data, a trailing hole.
  writeFileSync(f, "HEAD");
  spawnSync("truncate", ["-s", "5M", f]);
  writeFileSync(f, "TAIL", { flag: "a" });
  spawnSync("truncate", ["-s", "6M", f]);
  spawnSync("sh", ["-c", `printf MID | dd of=${f} bs=1 seek=3000000 conv=notrunc 2>/dev/null`]);
  const want = sha(readFileSync(f));
  for (const v of ["0.0", "0.1", "1.0"]) {
    const out = join(work, `${v}.tar`);
    assert.equal(spawnSync("tar", ["-C", join(work, "src"), "-S", "--format=posix", `--sparse-version=${v}`, "-cf", out, "sp"]).status, 0);
    const buf = readFileSync(out);
    assert.ok(buf.length < 64 * 1024, "the tar really is sparse");
    const store = await Store.open(join(work, `root-${v}`));
    const s = await store.snapshots.applyLayer(null, Readable.from([buf]));
    assert.equal(s.diffId, sha(buf));
    const got = join((await store.snapshots.lowerDirs(s.chainId))[0], "sp");
    assert.equal(sha(readFileSync(got)), want, `PAX ${v}: same bytes`);
    assert.equal(statSync(got).size, 6 << 20);
    assert.equal(s.size, 6 << 20);
    assert.ok(statSync(got).blocks * 512 < 1 << 20, "holes stay holes on disk");
    assert.deepEqual(readdirSync(join(work, `root-${v}`, "snapshots", "1", "fs")), ["sp"], "under its own name, not GNUSparseFile.*");
  }
  const old = join(work, "gnu.tar");
  assert.equal(spawnSync("tar", ["-C", join(work, "src"), "-S", "--format=gnu", "-cf", old, "sp"]).status, 0);
  assert.equal(readFileSync(old)[156], 0x53, "GNU tar wrote type 'S'");
  const root = join(work, "root-gnu");
  const store = await Store.open(root);
  const err = await store.snapshots.applyLayer(null, Readable.from([readFileSync(old)])).then(() => undefined, (e: Error & { status?: number }) => e);
  assert.ok(err);
  assert.equal(err.status, 400);
  assert.match(err.message, /unhandled tar header type 83/, "dockerd's words");
  assert.match(err.message, /\bsp\b/, "names the entry");
  assert.deepEqual(snapshotState(root).snaps, []);
  assert.deepEqual(snapshotState(root).tmps, []);
  // A sparse map that claims more data than the entry carries is refused, not half-written.
  // (Same length: the PAX record's own length field stays right; PAX data carries no checksum.)
  const lie = Buffer.from(readFileSync(join(work, "0.1.tar")).toString("latin1").replace("GNU.sparse.map=0,4096,", "GNU.sparse.map=0,4095,"), "latin1");
  await assert.rejects(store.snapshots.applyLayer(null, Readable.from([lie])), (e: Error & { status?: number }) => e.status === 400 && /sparse file sp: its map describes/.test(e.message));
  assert.deepEqual(snapshotState(root).snaps, []);
});

test("a gzip bomb (2 GiB of zeros in about 2 MB) is refused at the default limit, through import and through the pull path; nothing is left", async (t) => {
  const root = tmp(t, "berth-sec-bomb-");
  const store = await Store.open(root);
  assert.deepEqual(layerLimits(), DEFAULT_LAYER_LIMITS);
  const bomb = gzipBomb(2 * 2 ** 30);
  assert.ok(bomb.length < 4 << 20, `the bomb is small: ${bomb.length}`);
  const before = snapshotState(root);
  const rss0 = process.memoryUsage().rss;
  // As a pull feeds it: compressed bytes, sniffed, written as a blob on the way.
  const err = await store.snapshots.applyLayer(null, Readable.from([bomb]), undefined, { compression: "auto", parentPending: true, blob: { content: store.content, digest: sha(bomb), size: bomb.length } })
    .then(() => undefined, (e: Error & { status?: number }) => e);
  assert.ok(err, "refused");
  assert.equal(err.status, 400);
  assert.match(err.message, /decompression bomb/);
  assert.match(err.message, /1 GiB/);
  assert.ok(!err.message.includes(root) && !err.message.includes("/tmp"), err.message);
  assert.deepEqual(snapshotState(root), before, "no snapshot, no blob, no ingest file, no half-unpacked directory");
  assert.ok(process.memoryUsage().rss - rss0 < 512 << 20, "streamed, not held");
  // Through import (createImageFromTar): same refusal, and the ingested blob is removed again.
  const { createImageFromTar } = await import("../../src/store/create-image.js");
  await assert.rejects(createImageFromTar(store, Readable.from([bomb]), {}), /decompression bomb/);
  assert.deepEqual(snapshotState(root), before);
  assert.deepEqual(await store.images.list(), []);
});

test("the limits can be raised (or lowered): ratio and floor for zstd and gzip, and the free-space reserve", async (t) => {
  const root = tmp(t, "berth-sec-limits-");
  const store = await Store.open(root);
  t.after(() => setLayerLimits(DEFAULT_LAYER_LIMITS));
  const bomb = gzipBomb(64 << 20);
  const zstd = spawnSync("zstd", ["-q", "-c"], { input: Buffer.concat([fileHeader("zeros", 64 << 20), Buffer.alloc(64 << 20), Buffer.alloc(1024)]), maxBuffer: 64 << 20 });
  assert.equal(zstd.status, 0);
  setLayerLimits({ minBytes: 16 << 20 });
  for (const [kind, b] of [["gzip", bomb], ["zstd", zstd.stdout]] as const) {
    await assert.rejects(store.snapshots.applyLayer(null, Readable.from([b]), undefined, { compression: "auto" }), (e: Error & { status?: number }) => e.status === 400 && /decompression bomb/.test(e.message) && e.message.includes(kind), kind);
  }
  assert.deepEqual(snapshotState(root).snaps, []);
  setLayerLimits({ minBytes: 16 << 20, maxRatio: 1e6 });
  const ok = await store.snapshots.applyLayer(null, Readable.from([bomb]), undefined, { compression: "auto" });
  assert.equal(statSync(join((await store.snapshots.lowerDirs(ok.chainId))[0], "zeros")).size, 64 << 20, "a raised ratio lets the same layer in");
  // A reserve larger than the disk: the unpack stops with the host's kind of error (500), and leaves nothing.
  setLayerLimits({ ...DEFAULT_LAYER_LIMITS, reserveBytes: Number.MAX_SAFE_INTEGER });
  const before = snapshotState(root);
  const small = await makeTar([{ name: "f", body: "x" }]);
  await assert.rejects(store.snapshots.applyLayer(null, Readable.from([small])), (e: Error & { status?: number }) => e.status === 500 && /no space left on device/.test(e.message) && !e.message.includes(root));
  assert.deepEqual(snapshotState(root), before);
  assert.throws(() => setLayerLimits({ maxRatio: -1 }), /invalid layer limit/);
});

// --- image archives through a real berthd (POST /images/load) and a pull from a registry on loopback ------

const d = new Daemon();
let work = "";
let registry: ChildProcess | undefined;
let port = 0;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-sec-it-"));
  await d.start();
});

after(async () => {
  registry?.kill("SIGTERM");
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

/** What a load must not leave: images, blobs, snapshots, ingest files, temp dirs. */
async function daemonState(): Promise<{ images: string; content: ReturnType<typeof snapshotState>; tmp: string[] }> {
  const imgs = await api(d.sock, "GET", "/v1.41/images/json?all=1");
  const tmpDir = join(d.dataRoot, "tmp");
  return { images: imgs.body, content: snapshotState(d.dataRoot), tmp: existsSync(tmpDir) ? readdirSync(tmpDir).sort() : [] };
}

/** A tar of files (name → content; a { link } value is a symlink). */
async function archive(files: Record<string, Buffer | string | { symlink: string } | { hardlink: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, v] of Object.entries(files)) {
    if (typeof v === "object" && "symlink" in v) pack.entry({ name, type: "symlink", linkname: v.symlink });
    else if (typeof v === "object" && "hardlink" in v) pack.entry({ name, type: "link", linkname: v.hardlink });
    else pack.entry({ name }, v as Buffer | string);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function configFor(diffIds: string[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Cmd: ["/x"] }, rootfs: { type: "layers", diff_ids: diffIds } }));
}

async function assertRefused(name: string, body: Buffer, message: RegExp, status = 400): Promise<void> {
  const before = await daemonState();
  const r = await api(d.sock, "POST", "/v1.41/images/load?quiet=1", body, { "Content-Type": "application/x-tar" });
  assert.equal(r.status, status, `${name}: ${r.status} ${r.body}`);
  const msg = (JSON.parse(r.body) as { message: string }).message;
  assert.match(msg, message, name);
  assert.ok(!msg.includes(d.dataRoot) && !msg.includes(d.root) && !/\/tmp\b/.test(msg), `${name}: no host path in ${JSON.stringify(msg)}`);
  assert.deepEqual(await daemonState(), before, `${name}: nothing was created`);
}

test("POST /images/load refuses garbage and archives whose paths are wrong with a 400 naming the path inside the archive, and creates nothing", async () => {
  const layer = await makeTar([{ name: "x", body: "hello\n", mode: 0o755 }]);
  const lid = sha(layer).slice(7);
  const cfg = configFor([sha(layer)]);
  const cid = sha(cfg).slice(7);
  const good = { [`${cid}.json`]: cfg, [`${lid}/layer.tar`]: layer };
  const m = (e: object) => JSON.stringify([{ Config: `${cid}.json`, RepoTags: ["sec/load:1"], Layers: [`${lid}/layer.tar`], ...e }]);

  await assertRefused("garbage", Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251)), /invalid archive: not a tar archive/);
  await assertRefused("empty tar", await archive({}), /neither manifest\.json .* nor index\.json/);
  await assertRefused("manifest.json not JSON", await archive({ ...good, "manifest.json": "not json" }), /manifest\.json is not valid JSON/);
  await assertRefused("manifest.json an object", await archive({ ...good, "manifest.json": "{\"a\":1}" }), /manifest\.json is not a list/);
  await assertRefused("config missing", await archive({ ...good, "manifest.json": m({ Config: "missing.json" }) }), /"missing\.json" is not a file in the archive/);
  await assertRefused("layer missing", await archive({ ...good, "manifest.json": m({ Layers: ["nolayer.tar"] }) }), /Layers\[0\]: "nolayer\.tar" is not a file in the archive/);
  await assertRefused("../ path", await archive({ ...good, "manifest.json": m({ Config: "../../etc/passwd" }) }), /"\.\.\/\.\.\/etc\/passwd" leads outside the archive/);
  await assertRefused("absolute path", await archive({ ...good, "manifest.json": m({ Layers: ["/etc/passwd"] }) }), /"\/etc\/passwd" is an absolute path/);
  await assertRefused("symlink out (absolute)", await archive({ ...good, "link.json": { symlink: "/etc/passwd" }, "manifest.json": m({ Config: "link.json" }) }), /"link\.json" is \(or is under\) a symlink to "\/etc\/passwd", outside the archive/);
  await assertRefused("symlink out (relative)", await archive({ ...good, "sub/link.tar": { symlink: "../../../etc/passwd" }, "manifest.json": m({ Layers: ["sub/link.tar"] }) }), /"sub\/link\.tar" leads outside the archive/);
  await assertRefused("symlinked directory out", await archive({ ...good, "d": { symlink: "/etc" }, "manifest.json": m({ Layers: ["d/passwd"] }) }), /"d\/passwd" is \(or is under\) a symlink/);
  await assertRefused("bad tag", await archive({ ...good, "manifest.json": m({ RepoTags: ["not a reference:1"] }) }), /not a valid reference/);
  await assertRefused("config digest wrong", await archive({ [`${cid}.json`]: configFor([sha(layer), sha(layer)]), [`${lid}/layer.tar`]: layer, "manifest.json": m({}) }), /does not match its digest/);
  // A layer whose content is not its diff ID: refused at unpack time, and the blob and snapshot go again.
  const other = await makeTar([{ name: "y", body: "other" }]);
  await assertRefused("diff ID mismatch", await archive({ ...good, [`${lid}/layer.tar`]: other, "manifest.json": m({}) }), /layer\.tar: layer diff ID mismatch/);
  // A layer that is not a tar at all.
  await assertRefused("layer not a tar", await archive({ ...good, [`${lid}/layer.tar`]: "garbage ".repeat(200), "manifest.json": m({}) }), /layer\.tar: invalid layer tar/);
  // OCI layout: a blob whose content does not match its name.
  await assertRefused("OCI blob digest", await archive({ "oci-layout": "{}", "index.json": JSON.stringify({ schemaVersion: 2, manifests: [{ digest: `sha256:${"a".repeat(64)}`, size: 5, mediaType: "application/vnd.oci.image.manifest.v1+json" }] }), [`blobs/sha256/${"a".repeat(64)}`]: "hello" }), /blobs\/sha256\/a{64}: its content does not match its digest/);

  // And the good archive, with its layer a symlink to another copy (as old `docker save` writes duplicates), loads.
  const r = await api(d.sock, "POST", "/v1.41/images/load?quiet=1", await archive({ ...good, "dup/layer.tar": { symlink: `../${lid}/layer.tar` }, "manifest.json": m({ Layers: ["dup/layer.tar"] }) }), { "Content-Type": "application/x-tar" });
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /Loaded image: sec\/load:1/);
  assert.deepEqual(readdirSync(join(d.dataRoot, "tmp")).filter((n) => n.startsWith("load-")), [], "the spool directory is gone");
  assert.equal((await api(d.sock, "DELETE", "/v1.41/images/sec/load:1")).status, 200);
});

test("refused imports and loads racing good ones of the same content: each refused one is a 400 (never a 500), every good image keeps its blobs, and once idle nothing refused is left", async () => {
  const good = await makeTar([{ name: "shared", body: "the same layer in every request\n", mode: 0o755 }]);
  const bad = Buffer.from("{".repeat(300));
  // A load that writes the good layer's blob and snapshot, then fails on its second layer.
  const junk = Buffer.from("garbage ".repeat(200));
  const cfg = configFor([sha(good), sha(junk)]);
  const failing = await archive({
    [`${sha(cfg).slice(7)}.json`]: cfg, "a/layer.tar": good, "b/layer.tar": junk,
    "manifest.json": JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ["sec/race:1"], Layers: ["a/layer.tar", "b/layer.tar"] }]),
  });
  const before = await daemonState();
  const imported: string[] = [];
  const wrong: string[] = [];
  const jobs: Promise<void>[] = [];
  for (let w = 0; w < 8; w++) {
    jobs.push((async () => {
      for (let i = 0; i < 6; i++) {
        const kind = (w + i) % 3;
        if (kind === 0) {
          const r = await api(d.sock, "POST", "/v1.41/images/create?fromSrc=-", good, { "Content-Type": "application/x-tar" });
          if (r.status !== 200) wrong.push(`good import: ${r.status} ${r.body}`);
          else imported.push((JSON.parse(r.body) as { status: string }).status);
        } else if (kind === 1) {
          const r = await api(d.sock, "POST", "/v1.41/images/create?fromSrc=-", bad, { "Content-Type": "application/x-tar" });
          if (r.status !== 400) wrong.push(`bad import: ${r.status} ${r.body}`);
        } else {
          const r = await api(d.sock, "POST", "/v1.41/images/load?quiet=1", failing, { "Content-Type": "application/x-tar" });
          if (r.status !== 400) wrong.push(`failing load: ${r.status} ${r.body}`);
        }
      }
    })());
  }
  await Promise.all(jobs);
  assert.deepEqual(wrong, []);
  assert.ok(imported.length > 0);
  // Every imported image is whole: its layer blob is there and the image saves.
  const blob = join(d.dataRoot, "content", "blobs", "sha256", sha(good).slice(7));
  assert.ok(existsSync(blob), "the shared layer blob is still there");
  for (const id of new Set(imported)) {
    const s = await api(d.sock, "GET", `/v1.41/images/get?names=${encodeURIComponent(id)}`);
    assert.equal(s.status, 200, s.body.slice(0, 300));
  }
  const check = await api(d.sock, "POST", "/v1.41/berth/system/check");
  assert.equal(check.status, 200, check.body);
  for (const id of new Set(imported)) assert.equal((await api(d.sock, "DELETE", `/v1.41/images/${id}`)).status, 200);
  // What the refused ones wrote goes with the collection that runs once no write is in flight.
  await until("nothing of the race is left", async () => { const now = await daemonState(); return JSON.stringify(now) === JSON.stringify(before) && now; }, 30_000,
    () => JSON.stringify(snapshotState(d.dataRoot)));
});

test("POST /images/load: fewer (or more) diff_ids than layers is refused with Docker's message; a sparse layer loads; an old GNU sparse one is refused", async () => {
  const a = await makeTar([{ name: "a", body: "a" }]);
  const b = await makeTar([{ name: "b", body: "b" }]);
  for (const [diffIds, layers, msg] of [[[sha(a)], [a, b], /invalid manifest, layers length mismatch: expected 2, got 1/], [[sha(a), sha(b)], [a], /invalid manifest, layers length mismatch: expected 1, got 2/]] as const) {
    const cfg = configFor([...diffIds]);
    const files: Record<string, Buffer | string> = { [`${sha(cfg).slice(7)}.json`]: cfg };
    layers.forEach((l, i) => { files[`l${i}/layer.tar`] = l; });
    files["manifest.json"] = JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ["sec/few:1"], Layers: layers.map((_, i) => `l${i}/layer.tar`) }]);
    await assertRefused(`diff_ids ${diffIds.length} for ${layers.length} layers`, await archive(files), msg);
  }
  // Sparse: PAX 1.0 from GNU tar loads (dockerd loads it too); the old 'S' type is refused, as dockerd does.
  const src = join(work, "sparse");
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, "sp"), "HEAD");
  spawnSync("truncate", ["-s", "3M", join(src, "sp")]);
  writeFileSync(join(src, "sp"), "TAIL", { flag: "a" });
  const want = sha(readFileSync(join(src, "sp")));
  for (const [format, ok] of [[["--format=posix", "--sparse-version=1.0"], true], [["--format=gnu"], false]] as const) {
    assert.equal(spawnSync("tar", ["-C", src, "-S", ...format, "-cf", join(work, "sp.tar"), "sp"]).status, 0);
    const layer = readFileSync(join(work, "sp.tar"));
    const cfg = configFor([sha(layer)]);
    const body = await archive({ [`${sha(cfg).slice(7)}.json`]: cfg, "l/layer.tar": layer, "manifest.json": JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ["sec/sparse:1"], Layers: ["l/layer.tar"] }]) });
    if (!ok) { await assertRefused("old GNU sparse", body, /unhandled tar header type 83/); continue; }
    const r = await api(d.sock, "POST", "/v1.41/images/load?quiet=1", body, { "Content-Type": "application/x-tar" });
    assert.equal(r.status, 200, r.body);
    // The layer's snapshot: the numbered directory under snapshots/ that holds the file.
    const n = readdirSync(join(d.dataRoot, "snapshots")).find((x) => /^\d+$/.test(x) && existsSync(join(d.dataRoot, "snapshots", x, "fs", "sp")));
    assert.ok(n, "the layer was unpacked");
    assert.equal(sha(readFileSync(join(d.dataRoot, "snapshots", n, "fs", "sp"))), want, "the sparse file reads back byte for byte");
    assert.equal((await api(d.sock, "DELETE", "/v1.41/images/sec/sparse:1")).status, 200);
  }
});

test("a gzip bomb layer is refused through POST /images/load and through a pull from a registry on loopback; nothing is left", async () => {
  const bomb = gzipBomb(2 * 2 ** 30);
  // The diff ID a config would name is never reached: any digest will do.
  const cfg = configFor([`sha256:${"b".repeat(64)}`]);
  const body = await archive({ [`${sha(cfg).slice(7)}.json`]: cfg, "l/layer.tar": bomb, "manifest.json": JSON.stringify([{ Config: `${sha(cfg).slice(7)}.json`, RepoTags: ["sec/bomb:1"], Layers: ["l/layer.tar"] }]) });
  await assertRefused("bomb via load", body, /decompression bomb/);
  // A gzip'd archive that is itself a bomb (the spool is bounded too).
  const outer = gzipBomb(2 * 2 ** 30); // a layer tar, not an image archive: its one file is 2 GiB of zeros
  await assertRefused("bomb as the archive itself", outer, /decompression bomb/);

  // The same layer in a registry: written as an OCI layout, copied there by skopeo.
  port = await freePort();
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  const deadline = Date.now() + 20_000;
  while (!(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false))) {
    assert.ok(Date.now() < deadline, "the registry answers");
    await sleep(100);
  }
  const lay = join(work, "layout");
  mkdirSync(join(lay, "blobs", "sha256"), { recursive: true });
  const put = (b: Buffer) => { writeFileSync(join(lay, "blobs", "sha256", sha(b).slice(7)), b); return sha(b); };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: put(cfg), size: cfg.length }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: put(bomb), size: bomb.length }] }));
  writeFileSync(join(lay, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(lay, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: put(manifest), size: manifest.length, annotations: { "org.opencontainers.image.ref.name": "1" } }] }));
  const cp = spawnSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${lay}:1`, `docker://127.0.0.1:${port}/sec/bomb:1`], { encoding: "utf8" });
  assert.equal(cp.status, 0, cp.stderr);
  const before = await daemonState();
  const r = await api(d.sock, "POST", `/v1.41/images/create?fromImage=${encodeURIComponent(`127.0.0.1:${port}/sec/bomb`)}&tag=1`);
  const errLine = r.body.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { error?: string; message?: string }).find((m) => m.error || m.message);
  assert.ok(errLine, `the pull reports an error: ${r.body}`);
  const msg = errLine.error ?? errLine.message ?? "";
  assert.match(msg, /decompression bomb/);
  assert.ok(!msg.includes(d.root) && !/\/tmp\b/.test(msg), msg);
  const now = await daemonState();
  assert.equal(now.images, before.images, "no image");
  assert.deepEqual(now.content.snaps, before.content.snaps, "no snapshot");
  assert.deepEqual(now.content.tmps, [], "no half-unpacked directory");
  assert.deepEqual(now.content.ingest, [], "no partial download");
  assert.ok(!now.content.blobs.includes(sha(bomb).slice(7)), "the bomb's blob was not committed");
  assert.deepEqual(now.tmp, before.tmp);
});
