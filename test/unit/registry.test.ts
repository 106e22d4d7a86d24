// berth registry: the OCI distribution-spec conformance suite's checks (pull, push, discovery,
// management), on an in-process server bound to a free loopback port and driven with fetch.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, existsSync, readdirSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { RegistryStorage } from "../../src/registry/storage.js";
import { createRegistryServer, type RegistryServer } from "../../src/registry/server.js";

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");
const sha512 = (b: Buffer | string): string => "sha512:" + createHash("sha512").update(b).digest("hex");

export interface Running { url: string; root: string; reg: RegistryServer; storage: RegistryStorage; logs: string[]; stop: () => Promise<void> }

export async function startRegistry(opts: { allowSparseIndex?: boolean } = {}): Promise<Running> {
  const root = mkdtempSync(join(tmpdir(), "berth-registry-"));
  const storage = new RegistryStorage(root, opts);
  await storage.init();
  const logs: string[] = [];
  const reg = createRegistryServer({ storage, log: (l) => logs.push(l) });
  await new Promise<void>((r) => reg.server.listen(0, "127.0.0.1", r));
  const port = (reg.server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, root, reg, storage, logs, stop: async () => { await reg.close(); rmSync(root, { recursive: true, force: true }); } };
}

async function errCode(r: Response): Promise<string> {
  const j = (await r.json()) as { errors: { code: string; message: string }[] };
  assert.ok(Array.isArray(j.errors) && j.errors.length > 0, "an errors list");
  assert.equal(typeof j.errors[0].message, "string");
  return j.errors[0].code;
}

/** Monolithic push of a blob: POST then PUT ?digest. */
export async function pushBlob(url: string, name: string, data: Buffer | string): Promise<string> {
  const d = sha256(data);
  const post = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  assert.equal(post.status, 202);
  const loc = post.headers.get("location")!;
  const put = await fetch(new URL(loc + (loc.includes("?") ? "&" : "?") + "digest=" + d, url), { method: "PUT", body: typeof data === "string" ? data : new Uint8Array(data), headers: { "Content-Type": "application/octet-stream" } });
  assert.equal(put.status, 201, await put.text());
  return d;
}

export function imageManifest(config: { digest: string; size: number }, layers: { digest: string; size: number }[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...l })), ...extra,
  });
}

describe("registry: conformance checks", () => {
  let R: Running;
  const name = "conformance/repo-a";
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const layer = randomBytes(3000);
  let manifest: string;
  before(async () => { R = await startRegistry(); });
  after(async () => { await R.stop(); });

  test("GET /v2/ answers 200 with the API version header", async () => {
    const r = await fetch(`${R.url}/v2/`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("docker-distribution-api-version"), "registry/2.0");
    assert.deepEqual(await r.json(), {});
  });

  test("push: streamed PATCH, then PUT with digest (201, Location)", async () => {
    const post = await fetch(`${R.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
    assert.equal(post.status, 202);
    const uuid = post.headers.get("docker-upload-uuid");
    assert.ok(uuid);
    assert.equal(post.headers.get("range"), "0-0");
    const loc = post.headers.get("location")!;
    assert.ok(loc.endsWith(uuid!));
    const patch = await fetch(new URL(loc, R.url), { method: "PATCH", body: layer, headers: { "Content-Type": "application/octet-stream" } });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get("range"), `0-${layer.length - 1}`);
    const st = await fetch(new URL(patch.headers.get("location")!, R.url));
    assert.equal(st.status, 204);
    assert.equal(st.headers.get("range"), `0-${layer.length - 1}`);
    assert.ok(st.headers.get("location"));
    const put = await fetch(new URL(`${patch.headers.get("location")}?digest=${sha256(layer)}`, R.url), { method: "PUT" });
    assert.equal(put.status, 201);
    assert.equal(put.headers.get("location"), `/v2/${name}/blobs/${sha256(layer)}`);
    assert.equal(put.headers.get("docker-content-digest"), sha256(layer));
    const get = await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`);
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), layer);
    // The session is gone after commit.
    assert.equal((await fetch(new URL(loc, R.url))).status, 404);
  });

  test("push: monolithic POST with digest yields 201; PUT upload yields 201", async () => {
    const r = await fetch(`${R.url}/v2/${name}/blobs/uploads/?digest=${sha256(config)}`, { method: "POST", body: config, headers: { "Content-Type": "application/octet-stream" } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get("location"), `/v2/${name}/blobs/${sha256(config)}`);
    const head = await fetch(`${R.url}/v2/${name}/blobs/${sha256(config)}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-length"), String(config.length));
    assert.equal(head.headers.get("docker-content-digest"), sha256(config));
    const other = Buffer.from("monolithic put");
    assert.equal(await pushBlob(R.url, name, other), sha256(other));
  });

  test("push: chunked upload; out-of-order and repeated chunks are 416 with Range; final PUT with the last chunk", async () => {
    const blob = randomBytes(10_000);
    const c1 = blob.subarray(0, 4000), c2 = blob.subarray(4000, 8000), c3 = blob.subarray(8000);
    const post = await fetch(`${R.url}/v2/${name}/blobs/uploads/`, { method: "POST", headers: { "Content-Length": "0" } });
    const loc = new URL(post.headers.get("location")!, R.url);
    const ooo = await fetch(loc, { method: "PATCH", body: c2, headers: { "Content-Type": "application/octet-stream", "Content-Range": "4000-7999" } });
    assert.equal(ooo.status, 416);
    assert.equal(ooo.headers.get("range"), "0-0");
    assert.ok(ooo.headers.get("location"));
    await ooo.arrayBuffer();
    const p1 = await fetch(loc, { method: "PATCH", body: c1, headers: { "Content-Type": "application/octet-stream", "Content-Range": "0-3999" } });
    assert.equal(p1.status, 202);
    assert.equal(p1.headers.get("range"), "0-3999");
    const again = await fetch(loc, { method: "PATCH", body: c1, headers: { "Content-Type": "application/octet-stream", "Content-Range": "0-3999" } });
    assert.equal(again.status, 416);
    assert.equal(again.headers.get("range"), "0-3999");
    await again.arrayBuffer();
    const p2 = await fetch(new URL(p1.headers.get("location")!, R.url), { method: "PATCH", body: c2, headers: { "Content-Type": "application/octet-stream", "Content-Range": "4000-7999" } });
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.get("range"), "0-7999");
    const fin = await fetch(new URL(`${p2.headers.get("location")}?digest=${sha256(blob)}`, R.url), { method: "PUT", body: c3, headers: { "Content-Type": "application/octet-stream", "Content-Range": "8000-9999" } });
    assert.equal(fin.status, 201);
    const get = await fetch(`${R.url}/v2/${name}/blobs/${sha256(blob)}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob);
  });

  test("push: a wrong digest is 400 DIGEST_INVALID and commits nothing", async () => {
    const data = Buffer.from("some content");
    const wrong = sha256("other content");
    const r = await fetch(`${R.url}/v2/${name}/blobs/uploads/?digest=${wrong}`, { method: "POST", body: data });
    assert.equal(r.status, 400);
    assert.equal(await errCode(r), "DIGEST_INVALID");
    assert.equal((await fetch(`${R.url}/v2/${name}/blobs/${wrong}`, { method: "HEAD" })).status, 404);
    assert.equal((await fetch(`${R.url}/v2/${name}/blobs/${sha256(data)}`, { method: "HEAD" })).status, 404);
    assert.deepEqual(readdirSync(join(R.root, "uploads")), [], "no upload left behind");
  });

  test("push: a malformed digest is 400 DIGEST_INVALID, never 500", async () => {
    for (const bad of ["sha256:abc", "sha256:" + "Z".repeat(64), "md5:" + "a".repeat(32), "nocolon", "sha256:" + "a".repeat(63)]) {
      const b = await fetch(`${R.url}/v2/${name}/blobs/${encodeURIComponent(bad)}`);
      assert.equal(b.status, 400, bad);
      assert.equal(await errCode(b), "DIGEST_INVALID");
      const p = await fetch(`${R.url}/v2/${name}/blobs/uploads/?digest=${encodeURIComponent(bad)}`, { method: "POST", body: "x" });
      assert.equal(p.status, 400, bad);
      assert.equal(await errCode(p), "DIGEST_INVALID");
      const rf = await fetch(`${R.url}/v2/${name}/referrers/${encodeURIComponent(bad)}`);
      assert.equal(rf.status, 400, bad);
      assert.equal(await errCode(rf), "DIGEST_INVALID");
    }
    const post = await fetch(`${R.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
    const noDigest = await fetch(new URL(post.headers.get("location")!, R.url), { method: "PUT", body: "x" });
    assert.equal(noDigest.status, 400);
    assert.equal(await errCode(noDigest), "DIGEST_INVALID");
  });

  test("push: sha512 blobs", async () => {
    const data = randomBytes(500);
    const d = sha512(data);
    const r = await fetch(`${R.url}/v2/${name}/blobs/uploads/?digest=${d}`, { method: "POST", body: data });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get("docker-content-digest"), d);
    const get = await fetch(`${R.url}/v2/${name}/blobs/${d}`);
    assert.equal(get.status, 200);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), data);
    const bad = await fetch(`${R.url}/v2/${name}/blobs/uploads/?digest=${sha512("nope")}`, { method: "POST", body: data });
    assert.equal(bad.status, 400);
    assert.equal(await errCode(bad), "DIGEST_INVALID");
  });

  test("pull: GET with Range is 206 with Content-Range; an unsatisfiable range is 416", async () => {
    const r = await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`, { headers: { Range: "bytes=10-19" } });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get("content-range"), `bytes 10-19/${layer.length}`);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), layer.subarray(10, 20));
    const tail = await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`, { headers: { Range: "bytes=-5" } });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), layer.subarray(layer.length - 5));
    const bad = await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`, { headers: { Range: `bytes=${layer.length + 10}-` } });
    assert.equal(bad.status, 416);
    await bad.arrayBuffer();
  });

  test("pull: unknown blob is 404 BLOB_UNKNOWN; a blob is visible only in the repositories it was pushed or mounted to", async () => {
    const r = await fetch(`${R.url}/v2/${name}/blobs/${sha256("nothing here")}`);
    assert.equal(r.status, 404);
    assert.equal(await errCode(r), "BLOB_UNKNOWN");
    const other = await fetch(`${R.url}/v2/conformance/other/blobs/${sha256(layer)}`, { method: "HEAD" });
    assert.equal(other.status, 404);
  });

  test("push: cross-repository mount (201), anonymous mount, and 202 fallback for an unknown blob", async () => {
    const m = await fetch(`${R.url}/v2/conformance/mounted/blobs/uploads/?mount=${sha256(layer)}&from=${name}`, { method: "POST" });
    assert.equal(m.status, 201);
    assert.equal(m.headers.get("location"), `/v2/conformance/mounted/blobs/${sha256(layer)}`);
    assert.equal(m.headers.get("docker-content-digest"), sha256(layer));
    assert.equal((await fetch(`${R.url}/v2/conformance/mounted/blobs/${sha256(layer)}`, { method: "HEAD" })).status, 200);
    const anon = await fetch(`${R.url}/v2/conformance/anon/blobs/uploads/?mount=${sha256(config)}`, { method: "POST" });
    assert.equal(anon.status, 201);
    const unknown = await fetch(`${R.url}/v2/conformance/mounted/blobs/uploads/?mount=${sha256("unknown")}&from=${name}`, { method: "POST" });
    assert.equal(unknown.status, 202);
    assert.ok(unknown.headers.get("location")?.includes("/blobs/uploads/"));
    // From a repository that does not hold it: also a fallback, never a leak.
    const wrongFrom = await fetch(`${R.url}/v2/conformance/mounted2/blobs/uploads/?mount=${sha256(layer)}&from=conformance/other`, { method: "POST" });
    assert.equal(wrongFrom.status, 202);
  });

  test("push: DELETE of an upload session cancels it (204, then 404 BLOB_UPLOAD_UNKNOWN)", async () => {
    const post = await fetch(`${R.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
    const loc = new URL(post.headers.get("location")!, R.url);
    await (await fetch(loc, { method: "PATCH", body: "partial" })).arrayBuffer();
    const del = await fetch(loc, { method: "DELETE" });
    assert.equal(del.status, 204);
    const again = await fetch(loc);
    assert.equal(again.status, 404);
    assert.equal(await errCode(again), "BLOB_UPLOAD_UNKNOWN");
    const patch = await fetch(loc, { method: "PATCH", body: "more" });
    assert.equal(patch.status, 404);
    assert.equal(await errCode(patch), "BLOB_UPLOAD_UNKNOWN");
    // A session belongs to its repository.
    const post2 = await fetch(`${R.url}/v2/${name}/blobs/uploads/`, { method: "POST" });
    const uuid = post2.headers.get("docker-upload-uuid");
    assert.equal((await fetch(`${R.url}/v2/conformance/other/blobs/uploads/${uuid}`)).status, 404);
  });

  test("manifests: PUT by tag (201, Location, Docker-Content-Digest); GET/HEAD by tag and digest", async () => {
    manifest = imageManifest({ digest: sha256(config), size: config.length }, [{ digest: sha256(layer), size: layer.length }]);
    const d = sha256(manifest);
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${R.url}/v2/${name}/manifests/test${i}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get("location"), `/v2/${name}/manifests/${d}`);
      assert.equal(r.headers.get("docker-content-digest"), d);
    }
    for (const ref of ["test0", d]) {
      const g = await fetch(`${R.url}/v2/${name}/manifests/${ref}`, { headers: { Accept: "application/vnd.oci.image.manifest.v1+json" } });
      assert.equal(g.status, 200);
      assert.equal(g.headers.get("content-type"), "application/vnd.oci.image.manifest.v1+json");
      assert.equal(g.headers.get("docker-content-digest"), d);
      assert.equal(await g.text(), manifest);
      const h = await fetch(`${R.url}/v2/${name}/manifests/${ref}`, { method: "HEAD" });
      assert.equal(h.status, 200);
      assert.equal(h.headers.get("content-length"), String(Buffer.byteLength(manifest)));
      assert.equal(h.headers.get("docker-content-digest"), d);
    }
  });

  test("manifests: Docker schema2 and manifest lists; the stored media type is served back", async () => {
    const dm = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.v2+json", config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: sha256(config), size: config.length }, layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", digest: sha256(layer), size: layer.length }] });
    const r = await fetch(`${R.url}/v2/${name}/manifests/docker`, { method: "PUT", body: dm, headers: { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json" } });
    assert.equal(r.status, 201);
    const list = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.docker.distribution.manifest.list.v2+json", manifests: [{ mediaType: "application/vnd.docker.distribution.manifest.v2+json", digest: sha256(dm), size: Buffer.byteLength(dm), platform: { architecture: "amd64", os: "linux" } }] });
    const l = await fetch(`${R.url}/v2/${name}/manifests/list`, { method: "PUT", body: list, headers: { "Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json" } });
    assert.equal(l.status, 201);
    const g = await fetch(`${R.url}/v2/${name}/manifests/list`);
    assert.equal(g.headers.get("content-type"), "application/vnd.docker.distribution.manifest.list.v2+json");
    const oci = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: Buffer.byteLength(manifest) }] });
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/index`, { method: "PUT", body: oci, headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" } })).status, 201);
  });

  test("manifests: validation (MANIFEST_BLOB_UNKNOWN, MANIFEST_INVALID, TAG_INVALID, DIGEST_INVALID, an index of unknown manifests)", async () => {
    const missing = imageManifest({ digest: sha256(config), size: config.length }, [{ digest: sha256("not pushed"), size: 10 }]);
    const r = await fetch(`${R.url}/v2/${name}/manifests/missing`, { method: "PUT", body: missing, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(r.status, 400);
    assert.equal(await errCode(r), "MANIFEST_BLOB_UNKNOWN");
    // A blob from another repository is not referable without a mount.
    const elsewhere = await fetch(`${R.url}/v2/conformance/other/manifests/x`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(elsewhere.status, 400);
    assert.equal(await errCode(elsewhere), "MANIFEST_BLOB_UNKNOWN");
    for (const body of ["{not json", "[]", JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { digest: "bad", size: 1 }, layers: [] })]) {
      const b = await fetch(`${R.url}/v2/${name}/manifests/bad`, { method: "PUT", body, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
      assert.equal(b.status, 400, body);
      assert.equal(await errCode(b), "MANIFEST_INVALID");
    }
    const mismatch = await fetch(`${R.url}/v2/${name}/manifests/mm`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.docker.distribution.manifest.v2+json" } });
    assert.equal(await errCode(mismatch), "MANIFEST_INVALID");
    const tag = await fetch(`${R.url}/v2/${name}/manifests/${"-bad"}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(tag.status, 400);
    assert.equal(await errCode(tag), "TAG_INVALID");
    const totallyWrong = await fetch(`${R.url}/v2/${name}/manifests/sha256:totallywrong`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(totallyWrong.status, 400);
    assert.equal(await errCode(totallyWrong), "DIGEST_INVALID");
    const wrongDigest = await fetch(`${R.url}/v2/${name}/manifests/${sha256("x")}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(wrongDigest.status, 400);
    assert.equal(await errCode(wrongDigest), "DIGEST_INVALID");
    const idx = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256("absent manifest"), size: 15 }] });
    const ri = await fetch(`${R.url}/v2/${name}/manifests/sparse`, { method: "PUT", body: idx, headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" } });
    assert.equal(ri.status, 400);
    assert.equal(await errCode(ri), "MANIFEST_BLOB_UNKNOWN");
    // By digest, with sha512.
    const by512 = await fetch(`${R.url}/v2/${name}/manifests/${sha512(manifest)}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(by512.status, 201);
    assert.equal(by512.headers.get("docker-content-digest"), sha512(manifest));
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/${sha512(manifest)}`)).status, 200);
  });

  test("manifests: unknown ones are 404 MANIFEST_UNKNOWN, unknown repositories NAME_UNKNOWN, bad names NAME_INVALID", async () => {
    const r = await fetch(`${R.url}/v2/${name}/manifests/nonexistent`);
    assert.equal(r.status, 404);
    assert.equal(await errCode(r), "MANIFEST_UNKNOWN");
    const h = await fetch(`${R.url}/v2/${name}/manifests/${sha256("nope")}`, { method: "HEAD" });
    assert.equal(h.status, 404);
    const n = await fetch(`${R.url}/v2/no/such/repo/manifests/latest`);
    assert.equal(n.status, 404);
    assert.equal(await errCode(n), "NAME_UNKNOWN");
    const t = await fetch(`${R.url}/v2/no/such/repo/tags/list`);
    assert.equal(t.status, 404);
    assert.equal(await errCode(t), "NAME_UNKNOWN");
    for (const bad of ["UPPER/case", "a//b", "-lead", "trail-", "a..b"]) {
      const b = await fetch(`${R.url}/v2/${bad}/tags/list`);
      assert.equal(b.status, 400, bad);
      assert.equal(await errCode(b), "NAME_INVALID");
    }
  });

  test("discovery: tags list is sorted, limited by n, continued after last, with a Link header", async () => {
    for (const t of ["zeta", "alpha", "Mid"]) {
      await (await fetch(`${R.url}/v2/${name}/manifests/${t}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } })).arrayBuffer();
    }
    const all = (await (await fetch(`${R.url}/v2/${name}/tags/list`)).json()) as { name: string; tags: string[] };
    assert.equal(all.name, name);
    assert.deepEqual(all.tags, [...all.tags].sort());
    assert.ok(all.tags.includes("alpha") && all.tags.includes("test3"));
    const half = Math.floor(all.tags.length / 2);
    const p1 = await fetch(`${R.url}/v2/${name}/tags/list?n=${half}`);
    const j1 = (await p1.json()) as { tags: string[] };
    assert.deepEqual(j1.tags, all.tags.slice(0, half));
    assert.equal(p1.headers.get("link"), `</v2/${name}/tags/list?n=${half}&last=${encodeURIComponent(all.tags[half - 1])}>; rel="next"`);
    const p2 = await fetch(`${R.url}/v2/${name}/tags/list?n=${half}&last=${all.tags[half - 1]}`);
    const j2 = (await p2.json()) as { tags: string[] };
    assert.deepEqual(j2.tags, all.tags.slice(half, half * 2));
    assert.ok(!j2.tags.includes(all.tags[half - 1]));
    const end = await fetch(`${R.url}/v2/${name}/tags/list?n=1000&last=${all.tags[all.tags.length - 2]}`);
    assert.deepEqual(((await end.json()) as { tags: string[] }).tags, [all.tags[all.tags.length - 1]]);
    assert.equal(end.headers.get("link"), null);
  });

  test("discovery: _catalog lists repositories, paginated", async () => {
    const all = (await (await fetch(`${R.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(all.repositories.includes(name));
    assert.ok(all.repositories.includes("conformance/mounted"));
    assert.deepEqual(all.repositories, [...all.repositories].sort());
    const p = await fetch(`${R.url}/v2/_catalog?n=1`);
    assert.deepEqual(((await p.json()) as { repositories: string[] }).repositories, all.repositories.slice(0, 1));
    assert.match(p.headers.get("link") ?? "", /^<\/v2\/_catalog\?n=1&last=.+>; rel="next"$/);
  });

  test("referrers: manifests with a subject are listed (OCI-Subject on PUT), filtered by artifactType", async () => {
    const subject = { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256(manifest), size: Buffer.byteLength(manifest) };
    const empty = Buffer.from("{}");
    assert.equal(await pushBlob(R.url, name, empty), "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    const sig = Buffer.from("signature bytes");
    await pushBlob(R.url, name, sig);
    // artifactType from config.mediaType, and an explicit artifactType with the empty config.
    const a = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.example.sig.a", digest: sha256(empty), size: 2 }, layers: [{ mediaType: "application/octet-stream", digest: sha256(sig), size: sig.length }], subject, annotations: { "org.example.k": "a" } });
    const b = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/vnd.example.sig.b", config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(empty), size: 2 }, layers: [{ mediaType: "application/octet-stream", digest: sha256(sig), size: sig.length }], subject, annotations: { "org.example.k": "b" } });
    const ix = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", artifactType: "application/vnd.example.sig.a", manifests: [], subject, annotations: { "org.example.k": "ix" } });
    for (const [m, ct] of [[a, "application/vnd.oci.image.manifest.v1+json"], [b, "application/vnd.oci.image.manifest.v1+json"], [ix, "application/vnd.oci.image.index.v1+json"]]) {
      const r = await fetch(`${R.url}/v2/${name}/manifests/${sha256(m)}`, { method: "PUT", body: m, headers: { "Content-Type": ct } });
      assert.equal(r.status, 201, await r.text());
      assert.equal(r.headers.get("oci-subject"), subject.digest);
    }
    // A referrer to a subject that is not (yet) in the registry is fine.
    const missingSubject = { ...subject, digest: sha256("later") };
    const c = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/vnd.example.sig.c", config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(empty), size: 2 }, layers: [{ mediaType: "application/octet-stream", digest: sha256(sig), size: sig.length }], subject: missingSubject });
    const rc = await fetch(`${R.url}/v2/${name}/manifests/${sha256(c)}`, { method: "PUT", body: c, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(rc.headers.get("oci-subject"), missingSubject.digest);

    const r = await fetch(`${R.url}/v2/${name}/referrers/${subject.digest}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/vnd.oci.image.index.v1+json");
    const idx = (await r.json()) as { schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType: string; annotations: Record<string, string>; size: number; mediaType: string }[] };
    assert.equal(idx.schemaVersion, 2);
    assert.deepEqual(idx.manifests.map((x) => x.digest).sort(), [sha256(a), sha256(b), sha256(ix)].sort());
    const byDigest = new Map(idx.manifests.map((x) => [x.digest, x]));
    assert.equal(byDigest.get(sha256(a))!.artifactType, "application/vnd.example.sig.a");
    assert.equal(byDigest.get(sha256(b))!.artifactType, "application/vnd.example.sig.b");
    assert.equal(byDigest.get(sha256(ix))!.mediaType, "application/vnd.oci.image.index.v1+json");
    assert.deepEqual(byDigest.get(sha256(b))!.annotations, { "org.example.k": "b" });
    assert.equal(byDigest.get(sha256(a))!.size, Buffer.byteLength(a));
    const f = await fetch(`${R.url}/v2/${name}/referrers/${subject.digest}?artifactType=application/vnd.example.sig.a`);
    assert.equal(f.headers.get("oci-filters-applied"), "artifactType");
    assert.deepEqual(((await f.json()) as typeof idx).manifests.map((x) => x.digest).sort(), [sha256(a), sha256(ix)].sort());
    const none = await fetch(`${R.url}/v2/${name}/referrers/${sha256("no referrers")}`);
    assert.equal(none.status, 200);
    assert.deepEqual(((await none.json()) as typeof idx).manifests, []);
    const later = await fetch(`${R.url}/v2/${name}/referrers/${missingSubject.digest}`);
    assert.deepEqual(((await later.json()) as typeof idx).manifests.map((x) => x.digest), [sha256(c)]);
    // Deleting a referrer removes it from the list; no tags were made for any of them.
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/${sha256(b)}`, { method: "DELETE" })).status, 202);
    const after = (await (await fetch(`${R.url}/v2/${name}/referrers/${subject.digest}`)).json()) as typeof idx;
    assert.deepEqual(after.manifests.map((x) => x.digest).sort(), [sha256(a), sha256(ix)].sort());
    const tags = ((await (await fetch(`${R.url}/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags;
    assert.ok(!tags.some((t) => t.startsWith("sha256-")), "no tag littering");
  });

  test("management: DELETE by tag, then by digest (and its tags); blob DELETE is 202 then 404", async () => {
    const before = ((await (await fetch(`${R.url}/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags;
    const del = await fetch(`${R.url}/v2/${name}/manifests/test0`, { method: "DELETE" });
    assert.equal(del.status, 202);
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/test0`)).status, 404);
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/test1`)).status, 200, "other tags stay");
    const afterTag = ((await (await fetch(`${R.url}/v2/${name}/tags/list`)).json()) as { tags: string[] }).tags;
    assert.equal(afterTag.length, before.length - 1);
    const dd = await fetch(`${R.url}/v2/${name}/manifests/${sha256(manifest)}`, { method: "DELETE" });
    assert.equal(dd.status, 202);
    const g = await fetch(`${R.url}/v2/${name}/manifests/${sha256(manifest)}`);
    assert.equal(g.status, 404);
    assert.equal(await errCode(g), "MANIFEST_UNKNOWN");
    assert.equal((await fetch(`${R.url}/v2/${name}/manifests/test1`)).status, 404, "tags of a deleted manifest go with it");
    const again = await fetch(`${R.url}/v2/${name}/manifests/${sha256(manifest)}`, { method: "DELETE" });
    assert.equal(again.status, 404);
    const bd = await fetch(`${R.url}/v2/${name}/blobs/${sha256(config)}`, { method: "DELETE" });
    assert.equal(bd.status, 202);
    const bg = await fetch(`${R.url}/v2/${name}/blobs/${sha256(config)}`);
    assert.equal(bg.status, 404);
    assert.equal(await errCode(bg), "BLOB_UNKNOWN");
    // Still there for the repository that mounted it.
    assert.equal((await fetch(`${R.url}/v2/conformance/anon/blobs/${sha256(config)}`, { method: "HEAD" })).status, 200);
  });

  test("errors: unknown routes and methods are spec-shaped JSON", async () => {
    const r = await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`, { method: "PATCH" });
    assert.equal(r.status, 405);
    assert.equal(await errCode(r), "UNSUPPORTED");
    const u = await fetch(`${R.url}/v2/${name}/blobs/uploads/not-a-uuid`);
    assert.equal(u.status, 404);
    assert.equal(await errCode(u), "BLOB_UPLOAD_UNKNOWN");
  });

  test("access log: one JSON line per request with method, path, status, bytes, ms", async () => {
    const n = R.logs.length;
    await (await fetch(`${R.url}/v2/${name}/blobs/${sha256(layer)}`)).arrayBuffer();
    const deadline = Date.now() + 5000;
    while (R.logs.length === n && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const line = JSON.parse(R.logs[R.logs.length - 1]) as { method: string; path: string; status: number; bytes: number; ms: number };
    assert.equal(line.method, "GET");
    assert.equal(line.path, `/v2/${name}/blobs/${sha256(layer)}`);
    assert.equal(line.status, 200);
    assert.equal(line.bytes, layer.length);
    assert.equal(typeof line.ms, "number");
  });

  test("/metrics: Prometheus text with requests by method/status, bytes, latency histogram, storage bytes", async () => {
    const r = await fetch(`${R.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const t = await r.text();
    assert.match(t, /^berth_registry_requests_total\{method="GET",status="200"\} \d+$/m);
    assert.match(t, /^berth_registry_requests_total\{method="PUT",status="201"\} \d+$/m);
    assert.match(t, /^berth_registry_request_duration_seconds_bucket\{le="\+Inf"\} \d+$/m);
    const sent = Number(/^berth_registry_sent_bytes_total (\d+)$/m.exec(t)![1]);
    assert.ok(sent >= layer.length);
    const recv = Number(/^berth_registry_received_bytes_total (\d+)$/m.exec(t)![1]);
    assert.ok(recv >= layer.length);
    const storage = Number(/^berth_registry_storage_bytes (\d+)$/m.exec(t)![1]);
    assert.ok(storage >= layer.length);
    assert.ok(existsSync(join(R.root, "blobs", "sha256", sha256(layer).slice(7))));
  });
});

describe("registry: options and edge cases", () => {
  test("a sparse index is refused by default and accepted with allowSparseIndex", async () => {
    const idx = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: sha256("a platform we did not copy"), size: 26, platform: { architecture: "arm64", os: "linux" } }] });
    for (const allow of [false, true]) {
      const R = await startRegistry({ allowSparseIndex: allow });
      try {
        const r = await fetch(`${R.url}/v2/sparse/repo/manifests/multi`, { method: "PUT", body: idx, headers: { "Content-Type": "application/vnd.oci.image.index.v1+json" } });
        if (allow) {
          assert.equal(r.status, 201);
          const g = await fetch(`${R.url}/v2/sparse/repo/manifests/multi`);
          assert.equal(await g.text(), idx);
        } else {
          assert.equal(r.status, 400);
          assert.equal(await errCode(r), "MANIFEST_BLOB_UNKNOWN");
        }
      } finally { await R.stop(); }
    }
  });

  test("an empty blob (POST, then PUT with no body) and a 0-byte GET", async () => {
    const R = await startRegistry();
    try {
      const d = sha256("");
      const post = await fetch(`${R.url}/v2/edge/blobs/uploads/`, { method: "POST", headers: { "Content-Length": "0" } });
      const put = await fetch(new URL(`${post.headers.get("location")}?digest=${d}`, R.url), { method: "PUT" });
      assert.equal(put.status, 201);
      const g = await fetch(`${R.url}/v2/edge/blobs/${d}`);
      assert.equal(g.status, 200);
      assert.equal(g.headers.get("content-length"), "0");
      assert.equal((await g.arrayBuffer()).byteLength, 0);
    } finally { await R.stop(); }
  });
});
