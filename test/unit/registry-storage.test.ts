// berth registry storage: concurrent pushes of one blob, killed and resumed uploads (also across a
// server restart), and garbage collection (dry run, what it keeps, and GC in a loop during pushes).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readdirSync, readFileSync, utimesSync, existsSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { RegistryStorage } from "../../src/registry/storage.js";
import { createRegistryServer } from "../../src/registry/server.js";
import { collectGarbage } from "../../src/registry/gc.js";

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

async function serve(root: string, t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ url: string; storage: RegistryStorage; stop: () => Promise<void> }> {
  const storage = new RegistryStorage(root);
  await storage.init();
  const reg = createRegistryServer({ storage });
  await new Promise<void>((r) => reg.server.listen(0, "127.0.0.1", r));
  let stopped = false;
  const stop = async (): Promise<void> => { if (!stopped) { stopped = true; await reg.close(); } };
  t.after(stop);
  return { url: `http://127.0.0.1:${(reg.server.address() as AddressInfo).port}`, storage, stop };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "berth-registry-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function pushBlob(url: string, name: string, data: Buffer, chunked = false): Promise<Response> {
  const post = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  await post.arrayBuffer();
  let loc = post.headers.get("location")!;
  if (chunked) {
    const half = Math.floor(data.length / 2);
    const p = await fetch(new URL(loc, url), { method: "PATCH", body: new Uint8Array(data.subarray(0, half)), headers: { "Content-Range": `0-${half - 1}` } });
    await p.arrayBuffer();
    assert.equal(p.status, 202);
    loc = p.headers.get("location")!;
    return fetch(new URL(`${loc}?digest=${sha256(data)}`, url), { method: "PUT", body: new Uint8Array(data.subarray(half)), headers: { "Content-Range": `${half}-${data.length - 1}` } });
  }
  return fetch(new URL(`${loc}?digest=${sha256(data)}`, url), { method: "PUT", body: new Uint8Array(data) });
}

/** Pushes an image the way docker does: HEAD each blob, upload the missing ones, then the manifest under a tag. */
async function pushImage(url: string, name: string, tag: string, blobs: Buffer[], extra: Record<string, unknown> = {}): Promise<string> {
  for (const b of blobs) {
    const h = await fetch(`${url}/v2/${name}/blobs/${sha256(b)}`, { method: "HEAD" });
    if (h.status === 200) continue;
    const r = await pushBlob(url, name, b);
    assert.equal(r.status, 201, await r.text());
  }
  const [config, ...layers] = blobs;
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: sha256(l), size: l.length })), ...extra });
  const r = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: "PUT", body: m, headers: { "Content-Type": OCI_MANIFEST } });
  assert.equal(r.status, 201, `${tag}: ${await r.text()}`);
  return sha256(m);
}

/** Pulls a tag and checks every byte against its digest; returns the manifest digest. */
async function pullIntact(url: string, name: string, tag: string): Promise<string> {
  const r = await fetch(`${url}/v2/${name}/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200, `${name}:${tag}`);
  const body = Buffer.from(await r.arrayBuffer());
  assert.equal(r.headers.get("docker-content-digest"), sha256(body));
  const m = JSON.parse(body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
    const b = await fetch(`${url}/v2/${name}/blobs/${d}`);
    assert.equal(b.status, 200, `${name}:${tag} blob ${d}`);
    assert.equal(sha256(Buffer.from(await b.arrayBuffer())), d);
  }
  return sha256(body);
}

test("20 concurrent pushes of the same layer: all succeed, one correct blob, nothing left in uploads", async (t) => {
  const root = tmp(t);
  const R = await serve(root, t);
  const layer = randomBytes(2 * 1024 * 1024);
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pushBlob(R.url, i % 2 ? "team/app" : "team/other", layer, i % 3 === 0)));
  for (const r of results) { assert.equal(r.status, 201, await r.text()); assert.equal(r.headers.get("docker-content-digest"), sha256(layer)); }
  assert.deepEqual(readdirSync(join(root, "blobs", "sha256")), [sha256(layer).slice(7)]);
  assert.equal(sha256(readFileSync(join(root, "blobs", "sha256", sha256(layer).slice(7)))), sha256(layer));
  assert.deepEqual(readdirSync(join(root, "uploads")), []);
  for (const repo of ["team/app", "team/other"]) {
    const g = await fetch(`${R.url}/v2/${repo}/blobs/${sha256(layer)}`);
    assert.equal(sha256(Buffer.from(await g.arrayBuffer())), sha256(layer));
  }
});

/** Sends a PATCH that promises `total` bytes, sends `sent` of them, and lets the test kill the socket. */
function partialPatch(url: string, location: string, total: number, part: Buffer): { kill: () => void } {
  const u = new URL(location, url);
  const s = connect(Number(u.port), u.hostname);
  s.on("error", () => undefined);
  s.write(`PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${total}\r\n\r\n`);
  s.write(part);
  return { kill: () => s.destroy() };
}

async function offsetOf(url: string, location: string): Promise<number> {
  const r = await fetch(new URL(location, url));
  assert.equal(r.status, 204);
  const m = /^0-(\d+)$/.exec(r.headers.get("range") ?? "");
  assert.ok(m);
  return Number(m![1]) + 1;
}

async function until(what: string, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const restart of [false, true]) {
  test(`a killed upload leaves no visible blob and resumes at its offset${restart ? " (after a server restart)" : ""}`, async (t) => {
    const root = tmp(t);
    let R = await serve(root, t);
    const blob = randomBytes(300_000);
    const sent = 120_000;
    const post = await fetch(`${R.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
    const loc = post.headers.get("location")!;
    const p = partialPatch(R.url, loc, blob.length, blob.subarray(0, sent));
    await until("the first bytes to land", async () => (await offsetOf(R.url, loc)) === sent);
    p.kill();
    assert.equal((await fetch(`${R.url}/v2/team/app/blobs/${sha256(blob)}`, { method: "HEAD" })).status, 404);
    assert.ok(!existsSync(join(root, "blobs", "sha256", sha256(blob).slice(7))));
    if (restart) {
      await R.stop();
      R = await serve(root, t);
    }
    const off = await offsetOf(R.url, loc);
    assert.equal(off, sent);
    const rest = await fetch(new URL(loc, R.url), { method: "PATCH", body: new Uint8Array(blob.subarray(off)), headers: { "Content-Range": `${off}-${blob.length - 1}` } });
    assert.equal(rest.status, 202, await rest.text());
    assert.equal(rest.headers.get("range"), `0-${blob.length - 1}`);
    const fin = await fetch(new URL(`${rest.headers.get("location")}?digest=${sha256(blob)}`, R.url), { method: "PUT" });
    assert.equal(fin.status, 201, await fin.text());
    const g = await fetch(`${R.url}/v2/team/app/blobs/${sha256(blob)}`);
    assert.equal(sha256(Buffer.from(await g.arrayBuffer())), sha256(blob));
    assert.deepEqual(readdirSync(join(root, "uploads")), []);
  });
}

function backdate(root: string): void {
  const old = new Date(Date.now() - 3600_000);
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p); else utimesSync(p, old, old);
    }
  };
  walk(join(root, "blobs"));
  walk(join(root, "repositories"));
}

test("gc: keeps what tags reach (and their referrers), removes the rest; --dry-run removes nothing; leases protect fresh blobs", async (t) => {
  const root = tmp(t);
  const R = await serve(root, t);
  const base = randomBytes(5000), only1 = randomBytes(4000), only2 = randomBytes(4000), cfg1 = Buffer.from('{"a":1}'), cfg2 = Buffer.from('{"a":2}'), stray = randomBytes(1000);
  const m1 = await pushImage(R.url, "team/app", "v1", [cfg1, base, only1]);
  const m2 = await pushImage(R.url, "team/app", "v2", [cfg2, base, only2]);
  await pushImage(R.url, "team/copy", "v1", [cfg1, base, only1]);
  assert.equal((await pushBlob(R.url, "team/app", stray)).status, 201);
  // A signature of v1, pushed by digest with a subject (no tag).
  const empty = Buffer.from("{}");
  const sigDigest = await pushImage(R.url, "team/app", "sigtmp", [empty, Buffer.from("sig")], { artifactType: "application/vnd.example.sig", subject: { mediaType: OCI_MANIFEST, digest: m1, size: 1 } });
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/sigtmp`, { method: "DELETE" })).status, 202);
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/v2`, { method: "DELETE" })).status, 202);

  // Fresh: the lease keeps everything.
  const fresh = await collectGarbage(R.storage, { leaseMs: 60_000 });
  assert.deepEqual(fresh.deletedBlobs, []);
  backdate(root);
  const dry = await collectGarbage(R.storage, { leaseMs: 60_000, dryRun: true });
  assert.deepEqual(dry.deletedBlobs.sort(), [sha256(cfg2), sha256(only2), sha256(stray), m2].sort());
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/${m2}`)).status, 200, "dry run deleted nothing");

  const real = await collectGarbage(R.storage, { leaseMs: 60_000 });
  assert.deepEqual(real.deletedBlobs.sort(), dry.deletedBlobs.sort());
  assert.ok(real.deletedManifests.some((m) => m.digest === m2 && m.repository === "team/app"));
  assert.equal(real.freedBytes, dry.freedBytes);
  assert.ok(real.freedBytes > cfg2.length + only2.length + stray.length, "the blobs and the manifest's bytes");
  await pullIntact(R.url, "team/app", "v1");
  await pullIntact(R.url, "team/copy", "v1");
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/${m2}`)).status, 404);
  assert.equal((await fetch(`${R.url}/v2/team/app/blobs/${sha256(only2)}`, { method: "HEAD" })).status, 404);
  assert.equal((await fetch(`${R.url}/v2/team/app/blobs/${sha256(stray)}`, { method: "HEAD" })).status, 404);
  // The signature survives: it refers to a manifest a tag reaches.
  const refs = (await (await fetch(`${R.url}/v2/team/app/referrers/${m1}`)).json()) as { manifests: { digest: string }[] };
  assert.deepEqual(refs.manifests.map((m) => m.digest), [sigDigest]);
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/${sigDigest}`)).status, 200);
  // A second run finds nothing more.
  assert.deepEqual((await collectGarbage(R.storage, { leaseMs: 60_000 })).deletedBlobs, []);
});

test("gc in a loop during a push loop: every pushed image pulls intact", async (t) => {
  const root = tmp(t);
  const R = await serve(root, t);
  // Old, unreferenced content that pushes reuse: GC wants it gone, the pushers' HEADs renew its lease.
  const base = randomBytes(50_000);
  await pushImage(R.url, "team/app", "old", [Buffer.from('{"old":true}'), base]);
  assert.equal((await fetch(`${R.url}/v2/team/app/manifests/old`, { method: "DELETE" })).status, 202);
  backdate(root);
  let pushing = true;
  let gcRuns = 0, deleted = 0;
  const gcLoop = (async () => {
    while (pushing) {
      const r = await collectGarbage(R.storage, { leaseMs: 30_000 });
      gcRuns++;
      deleted += r.deletedBlobs.length;
      await new Promise((res) => setImmediate(res));
    }
  })();
  const pushed: { repo: string; tag: string; digest: string }[] = [];
  const pusher = async (w: number): Promise<void> => {
    for (let i = 0; i < 12; i++) {
      const repo = `team/w${w % 2}`;
      const tag = `w${w}-${i}`;
      const digest = await pushImage(R.url, repo, tag, [Buffer.from(JSON.stringify({ w, i })), base, randomBytes(20_000)]);
      pushed.push({ repo, tag, digest });
      // Untag the one before: garbage for the collector while the pushes go on.
      if (i > 0 && i % 3 === 0) {
        const prev = `w${w}-${i - 1}`;
        assert.equal((await fetch(`${R.url}/v2/${repo}/manifests/${prev}`, { method: "DELETE" })).status, 202);
        pushed.splice(pushed.findIndex((p) => p.tag === prev), 1);
      }
    }
  };
  await Promise.all([0, 1, 2, 3].map(pusher));
  pushing = false;
  await gcLoop;
  assert.ok(gcRuns > 0);
  assert.ok(deleted >= 1, "the old manifest's config at least was collected");
  for (const p of pushed) assert.equal(await pullIntact(R.url, p.repo, p.tag), p.digest);
  // After the pushes, with the leases expired (backdated), what tags reach still pulls and the rest goes.
  backdate(root);
  await collectGarbage(R.storage, { leaseMs: 30_000 });
  for (const p of pushed) assert.equal(await pullIntact(R.url, p.repo, p.tag), p.digest);
  const left = readdirSync(join(root, "blobs", "sha256")).length;
  assert.equal(left, pushed.length * 3 + 1, "each kept image's manifest, config and own layer, plus the shared base");
});

test("gc: abandoned upload sessions go after the upload TTL, live ones stay; a blob a killed collector left aside is put back", async (t) => {
  const root = tmp(t);
  const R = await serve(root, t);
  const oldPost = await fetch(`${R.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
  const oldLoc = oldPost.headers.get("location")!;
  await (await fetch(new URL(oldLoc, R.url), { method: "PATCH", body: "abandoned" })).arrayBuffer();
  const livePost = await fetch(`${R.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
  const liveLoc = livePost.headers.get("location")!;
  const uuid = oldPost.headers.get("docker-upload-uuid")!;
  const longAgo = new Date(Date.now() - 48 * 3600_000);
  for (const f of ["data", "state.json", ""]) utimesSync(join(root, "uploads", uuid, f), longAgo, longAgo);
  // The session's own record of when it started is old too.
  const st = JSON.parse(readFileSync(join(root, "uploads", uuid, "state.json"), "utf8")) as { startedAt: number };
  st.startedAt = longAgo.getTime();
  writeFileSync(join(root, "uploads", uuid, "state.json"), JSON.stringify(st));
  utimesSync(join(root, "uploads", uuid, "data"), longAgo, longAgo);
  const dry = await collectGarbage(R.storage, { leaseMs: 60_000, dryRun: true });
  assert.equal(dry.deletedUploads, 1);
  assert.equal((await fetch(new URL(oldLoc, R.url))).status, 204, "dry run keeps it");
  const r = await collectGarbage(R.storage, { leaseMs: 60_000 });
  assert.equal(r.deletedUploads, 1);
  assert.equal((await fetch(new URL(oldLoc, R.url))).status, 404);
  assert.equal((await fetch(new URL(liveLoc, R.url))).status, 204);

  // A tagged image whose layer sits in trash/ (a collector died between moving it aside and deciding).
  const layer = randomBytes(1000);
  await pushImage(R.url, "team/app", "v1", [Buffer.from("{}"), layer]);
  const path = join(root, "blobs", "sha256", sha256(layer).slice(7));
  mkdirSync(join(root, "trash"), { recursive: true });
  renameSync(path, join(root, "trash", `sha256-${sha256(layer).slice(7)}-0badf00d`));
  await collectGarbage(R.storage, { leaseMs: 0 });
  assert.ok(existsSync(path));
  await pullIntact(R.url, "team/app", "v1");
});

test("the registry's blobs are the engine store's content (store/content.ts): pushed blobs and manifests, sha256 and sha512, read back through a ContentStore on the same root", async (t) => {
  const { ContentStore } = await import("../../src/store/content.js");
  const root = tmp(t);
  const { url } = await serve(root, t);
  const layer = randomBytes(5000);
  const sha512 = "sha512:" + createHash("sha512").update(layer).digest("hex");
  assert.equal((await pushBlob(url, "c/one", layer)).status, 201);
  const post = await fetch(`${url}/v2/c/one/blobs/uploads/?digest=${sha512}`, { method: "POST", body: layer });
  assert.equal(post.status, 201, await post.text());
  const cfg = Buffer.from("{}");
  assert.equal((await pushBlob(url, "c/one", cfg)).status, 201);
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(cfg), size: 2 }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha512, size: layer.length }] }));
  const put = await fetch(`${url}/v2/c/one/manifests/v1`, { method: "PUT", headers: { "Content-Type": OCI_MANIFEST }, body: m });
  assert.equal(put.status, 201, await put.text());
  const content = new ContentStore(root);
  assert.deepEqual(await content.readBytes(sha256(layer)), layer);
  assert.deepEqual(await content.readBytes(sha512), layer);
  assert.deepEqual(await content.readBytes(sha256(m)), m, "the manifest went in through ContentStore.writeBytes");
  assert.deepEqual((await content.list()).sort(), [sha256(layer), sha256(cfg), sha256(m), sha512].sort());
  // And what the content store writes (verified, sha512 included), the registry serves once a repository links it.
  const other = randomBytes(100);
  const d512 = "sha512:" + createHash("sha512").update(other).digest("hex");
  await assert.rejects(content.writeBytes(other, "sha512:" + "0".repeat(128)), /digest mismatch/);
  assert.equal((await content.writeBytes(other, d512)).digest, d512);
  const mount = await fetch(`${url}/v2/c/two/blobs/uploads/?mount=${d512}`, { method: "POST" });
  assert.equal(mount.status, 201);
  assert.deepEqual(Buffer.from(await (await fetch(`${url}/v2/c/two/blobs/${d512}`)).arrayBuffer()), other);
});
