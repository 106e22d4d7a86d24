// berth registry pull-through cache: a second in-process registry on loopback is the upstream (with token
// auth, so the proxy's client flow runs too). Blobs are cached verified against their digest, manifests by
// digest cached, by tag revalidated; upstream down serves the cache; pushes to a proxied repository are 405.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { RegistryStorage } from "../../src/registry/storage.js";
import { createRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import { RegistryAuth, DEFAULT_AUTH } from "../../src/registry/auth.js";
import { ProxyCache } from "../../src/registry/proxy.js";

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");
const basic = (u: string, p: string): string => "Basic " + Buffer.from(`${u}:${p}`).toString("base64");
const OCI = "application/vnd.oci.image.manifest.v1+json";

const work = mkdtempSync(join(tmpdir(), "berth-registry-proxy-"));
let upstream: { url: string; reg: RegistryServer; port: number; root: string };
const upstreamLog: string[] = [];
let cache: { url: string; reg: RegistryServer; root: string; logs: string[] };

async function listen(reg: RegistryServer, port = 0): Promise<number> {
  await new Promise<void>((r) => reg.server.listen(port, "127.0.0.1", r));
  return (reg.server.address() as AddressInfo).port;
}

async function startUpstream(port = 0): Promise<void> {
  const root = join(work, "upstream");
  const storage = new RegistryStorage(root);
  await storage.init();
  const auth = new RegistryAuth({ ...DEFAULT_AUTH, type: "token", htpasswd: join(work, "htpasswd") }, root);
  await auth.init();
  const reg = createRegistryServer({ storage, auth, log: (l) => upstreamLog.push(l) });
  const p = await listen(reg, port);
  upstream = { url: `http://127.0.0.1:${p}`, reg, port: p, root };
}

/** Pushes a one-layer image to the upstream (as the mirror's user), returning its digests. */
async function pushUpstream(name: string, tag: string, seed: string): Promise<{ manifest: string; layer: string; layerBytes: Buffer }> {
  const tokRes = await fetch(`${upstream.url}/token?service=berth-registry&scope=repository:${name}:pull,push`, { headers: { Authorization: basic("mirror", "pw") } });
  const authz = { Authorization: `Bearer ${((await tokRes.json()) as { token: string }).token}` };
  const layer = Buffer.from(`layer ${seed} `.repeat(1000));
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  for (const b of [layer, config]) {
    const r = await fetch(`${upstream.url}/v2/${name}/blobs/uploads/?digest=${sha256(b)}`, { method: "POST", body: b, headers: authz });
    assert.equal(r.status, 201);
  }
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }] });
  const r = await fetch(`${upstream.url}/v2/${name}/manifests/${tag}`, { method: "PUT", body: m, headers: { ...authz, "Content-Type": OCI } });
  assert.equal(r.status, 201);
  return { manifest: sha256(m), layer: sha256(layer), layerBytes: layer };
}

before(async () => {
  const r = spawnSync("htpasswd", ["-cbB", "-C", "4", join(work, "htpasswd"), "mirror", "pw"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  await startUpstream();
  const root = join(work, "cache");
  const storage = new RegistryStorage(root);
  await storage.init();
  const logs: string[] = [];
  const proxy = new ProxyCache(storage, [{ name: "up", url: upstream.url, username: "mirror", password: "pw" }], (l) => logs.push(l));
  const reg = createRegistryServer({ storage, proxy, log: (l) => logs.push(l) });
  cache = { url: `http://127.0.0.1:${await listen(reg)}`, reg, root, logs };
});

after(async () => {
  await cache.reg.close();
  if (upstream.reg.server.listening) await upstream.reg.close();
  rmSync(work, { recursive: true, force: true });
});

test("a pull through the cache fetches the manifest and blobs from upstream, verified, and keeps them", async () => {
  const img = await pushUpstream("lib/app", "1", "one");
  const m = await fetch(`${cache.url}/v2/up/lib/app/manifests/1`, { headers: { Accept: OCI } });
  assert.equal(m.status, 200, await m.clone().text());
  assert.equal(m.headers.get("docker-content-digest"), img.manifest);
  assert.equal(sha256(Buffer.from(await m.arrayBuffer())), img.manifest);
  const b = await fetch(`${cache.url}/v2/up/lib/app/blobs/${img.layer}`);
  assert.equal(b.status, 200);
  assert.deepEqual(Buffer.from(await b.arrayBuffer()), img.layerBytes);
  assert.ok(existsSync(join(cache.root, "blobs", "sha256", img.layer.slice(7))), "the blob is in the cache's store");
  const byDigest = await fetch(`${cache.url}/v2/up/lib/app/manifests/${img.manifest}`, { headers: { Accept: OCI } });
  assert.equal(byDigest.status, 200);
  await byDigest.arrayBuffer();
  const tags = await fetch(`${cache.url}/v2/up/lib/app/tags/list`);
  assert.deepEqual(await tags.json(), { name: "up/lib/app", tags: ["1"] });
  const missing = await fetch(`${cache.url}/v2/up/lib/app/manifests/nope`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0].code, "MANIFEST_UNKNOWN");
});

test("a tag is revalidated: re-pushed upstream, the cache serves the new manifest", async () => {
  const a = await pushUpstream("lib/moving", "latest", "a");
  const r1 = await fetch(`${cache.url}/v2/up/lib/moving/manifests/latest`, { method: "HEAD", headers: { Accept: OCI } });
  assert.equal(r1.headers.get("docker-content-digest"), a.manifest);
  const b = await pushUpstream("lib/moving", "latest", "b");
  assert.notEqual(a.manifest, b.manifest);
  const r2 = await fetch(`${cache.url}/v2/up/lib/moving/manifests/latest`, { headers: { Accept: OCI } });
  assert.equal(r2.headers.get("docker-content-digest"), b.manifest);
  await r2.arrayBuffer();
  // The old manifest stays reachable by digest (content never changes under a digest).
  const old = await fetch(`${cache.url}/v2/up/lib/moving/manifests/${a.manifest}`, { headers: { Accept: OCI } });
  assert.equal(old.status, 200);
  await old.arrayBuffer();
  // A tag deleted upstream is unknown here too once revalidated.
  const tok = await fetch(`${upstream.url}/token?service=berth-registry&scope=repository:lib/moving:delete`, { headers: { Authorization: basic("mirror", "pw") } });
  const del = await fetch(`${upstream.url}/v2/lib/moving/manifests/latest`, { method: "DELETE", headers: { Authorization: `Bearer ${((await tok.json()) as { token: string }).token}` } });
  assert.equal(del.status, 202);
  const gone = await fetch(`${cache.url}/v2/up/lib/moving/manifests/latest`, { headers: { Accept: OCI } });
  assert.equal(gone.status, 404);
  assert.equal(((await gone.json()) as { errors: { code: string }[] }).errors[0].code, "MANIFEST_UNKNOWN");
});

test("a blob whose upstream bytes do not match its digest is refused and not cached", async () => {
  const img = await pushUpstream("lib/bad", "1", "bad");
  // Corrupt the upstream's stored copy in place: it now serves other bytes under the digest.
  writeFileSync(join(upstream.root, "blobs", "sha256", img.layer.slice(7)), Buffer.alloc(img.layerBytes.length, 0x41));
  // A whole-blob GET streams: the last chunk waits for the digest check, so the client never gets it all.
  let got: Buffer | undefined;
  try {
    const r = await fetch(`${cache.url}/v2/up/lib/bad/blobs/${img.layer}`);
    if (r.ok) got = Buffer.from(await r.arrayBuffer()); else await r.arrayBuffer();
  } catch { /* the connection is cut: what a client sees of a transfer that failed */ }
  assert.equal(got, undefined, "no complete body for a blob that failed its digest");
  // A ranged GET fetches the whole blob first: the mismatch is an error status.
  const ranged = await fetch(`${cache.url}/v2/up/lib/bad/blobs/${img.layer}`, { headers: { Range: "bytes=0-9" } });
  assert.equal(ranged.status, 502);
  assert.equal(((await ranged.json()) as { errors: { code: string }[] }).errors[0].code, "BLOB_UNKNOWN");
  assert.ok(!existsSync(join(cache.root, "blobs", "sha256", img.layer.slice(7))), "nothing cached");
  const head = await fetch(`${cache.url}/v2/lib/bad/blobs/${img.layer}`, { method: "HEAD" });
  assert.equal(head.status, 404);
});

test("a large blob streams through to concurrent pullers, fetched from upstream once, and is kept", async () => {
  const name = "lib/big";
  const tokRes = await fetch(`${upstream.url}/token?service=berth-registry&scope=repository:${name}:pull,push`, { headers: { Authorization: basic("mirror", "pw") } });
  const authz = { Authorization: `Bearer ${((await tokRes.json()) as { token: string }).token}` };
  const big = Buffer.alloc(6 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  const d = sha256(big);
  const up = await fetch(`${upstream.url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: "POST", body: big, headers: authz });
  assert.equal(up.status, 201);
  const before = upstreamLog.filter((l) => l.includes(`/blobs/${d}`) && l.includes('"method":"GET"') && l.includes('"status":200')).length;
  const bodies = await Promise.all([0, 1, 2].map(async () => {
    const r = await fetch(`${cache.url}/v2/up/${name}/blobs/${d}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-length"), String(big.length));
    return Buffer.from(await r.arrayBuffer());
  }));
  for (const b of bodies) assert.equal(sha256(b), d);
  const fetched = upstreamLog.filter((l) => l.includes(`/blobs/${d}`) && l.includes('"method":"GET"') && l.includes('"status":200')).length - before;
  assert.equal(fetched, 1, "one upstream fetch for three pullers");
  assert.ok(existsSync(join(cache.root, "blobs", "sha256", d.slice(7))));
});

test("a puller that goes away mid-stream does not stop the cache keeping the blob", async () => {
  const name = "lib/quitter";
  const tokRes = await fetch(`${upstream.url}/token?service=berth-registry&scope=repository:${name}:pull,push`, { headers: { Authorization: basic("mirror", "pw") } });
  const authz = { Authorization: `Bearer ${((await tokRes.json()) as { token: string }).token}` };
  const big = Buffer.alloc(8 * 1024 * 1024, 7);
  big.write("quitter", 0);
  const d = sha256(big);
  assert.equal((await fetch(`${upstream.url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: "POST", body: big, headers: authz })).status, 201);
  const ac = new AbortController();
  const r = await fetch(`${cache.url}/v2/up/${name}/blobs/${d}`, { signal: ac.signal });
  assert.equal(r.status, 200);
  const reader = r.body!.getReader();
  await reader.read();
  ac.abort();
  await reader.cancel().catch(() => {});
  const file = join(cache.root, "blobs", "sha256", d.slice(7));
  const deadline = Date.now() + 20_000;
  while (!existsSync(file)) {
    assert.ok(Date.now() < deadline, "the blob was kept after its puller left");
    await new Promise((res) => setTimeout(res, 50));
  }
  const again = await fetch(`${cache.url}/v2/up/${name}/blobs/${d}`);
  assert.equal(sha256(Buffer.from(await again.arrayBuffer())), d);
});

test("pushes and deletes to a proxied repository are 405 UNSUPPORTED; other repositories are ordinary", async () => {
  const post = await fetch(`${cache.url}/v2/up/lib/app/blobs/uploads/`, { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(((await post.json()) as { errors: { code: string }[] }).errors[0].code, "UNSUPPORTED");
  const del = await fetch(`${cache.url}/v2/up/lib/app/manifests/1`, { method: "DELETE" });
  assert.equal(del.status, 405);
  await del.arrayBuffer();
  const own = await fetch(`${cache.url}/v2/mine/blobs/uploads/`, { method: "POST" });
  assert.equal(own.status, 202);
  await own.arrayBuffer();
});

test("with upstream down, cached tags and blobs are still served; an uncached blob is BLOB_UNKNOWN", async () => {
  const img = await pushUpstream("lib/offline", "1", "offline");
  const warm = await fetch(`${cache.url}/v2/up/lib/offline/manifests/1`, { headers: { Accept: OCI } });
  assert.equal(warm.status, 200);
  await warm.arrayBuffer();
  await upstream.reg.close();
  const m = await fetch(`${cache.url}/v2/up/lib/offline/manifests/1`, { headers: { Accept: OCI } });
  assert.equal(m.status, 200);
  assert.equal(m.headers.get("docker-content-digest"), img.manifest);
  await m.arrayBuffer();
  assert.ok(cache.logs.some((l) => /"upstream":"unreachable"/.test(l)), "the fallback is logged");
  const b = await fetch(`${cache.url}/v2/up/lib/offline/blobs/${img.layer}`);
  assert.equal(b.status, 404, "the layer was never pulled through");
  assert.equal(((await b.json()) as { errors: { code: string }[] }).errors[0].code, "BLOB_UNKNOWN");
  const tags = await fetch(`${cache.url}/v2/up/lib/offline/tags/list`);
  assert.deepEqual(await tags.json(), { name: "up/lib/offline", tags: ["1"] });
});
