/**
 * The OCI distribution-spec conformance suite (opencontainers/distribution-spec, conformance/, v1.1:
 * 01_pull_test.go, 02_push_test.go, 03_discovery_test.go, 04_management_test.go with setup.go's test
 * data), every workflow enabled (OCI_TEST_PULL, OCI_TEST_PUSH, OCI_TEST_CONTENT_DISCOVERY,
 * OCI_TEST_CONTENT_MANAGEMENT, OCI_AUTOMATIC_CROSSMOUNT=true, OCI_DELETE_MANIFEST_BEFORE_BLOBS unset
 * = true), against a real `bin/berth registry serve` on 127.0.0.1:0, with Node's fetch.
 *
 * The suite's v1.1.0 release has 74 checks (the count distribution 2.8 fails 13 of); its main branch
 * adds 7 to the push workflow (the two "Setup" uploads and five "Manifest Upload" checks: custom
 * config/mediaType, custom artifactType, image index, nested index, dangling subject). All 81 are here.
 *
 * One node:test test per check of the suite, in the suite's order (the suite is stateful: setup,
 * checks, teardown), named "<workflow> › <context> › <the suite's spec text>". The suite's three
 * checks that exclude one another (tag name from the environment, tag list with no push, the
 * automatic-crossmount-disabled case) are skipped by the suite's own rules, as there. Where the suite
 * accepts several answers, the test asserts the one berth gives (and the spec's error code), so a
 * change of behaviour shows. A last group runs the chunked checks again against a registry that
 * advertises OCI-Chunk-Min-Length, rebuilding the chunked blob as the suite does.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BERTH, sleep } from "./harness.js";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const ERROR_CODES = ["BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "MANIFEST_UNVERIFIED", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "TAG_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED"];

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");
/** Go's json.MarshalIndent(v, "", "\t"), which the suite's content is made with. */
const marshal = (v: unknown): Buffer => Buffer.from(JSON.stringify(v, null, "\t"));
const b64 = (b: Buffer | string): string => Buffer.from(b).toString("base64");

interface Blob { content: Buffer; digest: string; length: string }
const blobOf = (content: Buffer): Blob => ({ content, digest: sha256(content), length: String(content.length) });

// ---- setup.go's test data ----
const NUM_WORKFLOWS = 5;
const testTagName = "tagtest0";
const emptyLayerTestTag = "emptylayer";
const nonexistentManifest = ".INVALID_MANIFEST_NAME";
const invalidManifestContent = Buffer.from("blablabla");
const dummyDigest = sha256("hello world");
const testAnnotationKey = "org.opencontainers.conformance.test";
const testAnnotationValues: Record<string, string> = {};
const testRefArtifactTypeA = "application/vnd.nhl.peanut.butter.bagel";
const testRefArtifactTypeB = "application/vnd.nba.strawberry.jam.croissant";
const testRefArtifactTypeIndex = "application/vnd.food.stand";
const layerBlobData = Buffer.from("H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0" +
  "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD" +
  "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA", "base64");
const layer = blobOf(layerBlobData);
const layers = [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer.digest, size: layerBlobData.length, data: null, newUnspecifiedField: null }];
const emptyJSON = blobOf(Buffer.from("{}"));
const emptyJSONDescriptor = { mediaType: "application/vnd.oci.empty.v1+json", digest: emptyJSON.digest, size: 2, data: null, newUnspecifiedField: null };

const configs: Blob[] = [];
const manifests: Blob[] = [];
for (let i = 0; i < NUM_WORKFLOWS; i++) {
  // A random author makes each run's config (and so its manifest) unique, as the suite's.
  configs.push(blobOf(marshal({ author: randomBytes(12).toString("base64url"), architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } })));
}
for (let i = 0; i < NUM_WORKFLOWS; i++) {
  manifests.push(blobOf(marshal({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    // data must be the config's content; newUnspecifiedField is a field no spec knows, kept as it is.
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configs[i].digest, size: configs[i].content.length, data: b64(configs[i].content), newUnspecifiedField: b64("hello world") },
    layers,
  })));
}
const testBlobA = blobOf(randomBytes(42));
let testBlobB: Blob, testBlobBChunk1: Buffer, testBlobBChunk2: Buffer, testBlobBChunk1Range: string, testBlobBChunk2Range: string;
function setupChunkedBlob(size: number): void {
  testBlobB = blobOf(randomBytes(size));
  testBlobBChunk1 = testBlobB.content.subarray(0, Math.floor(size / 2) + 1);
  testBlobBChunk2 = testBlobB.content.subarray(Math.floor(size / 2) + 1);
  testBlobBChunk1Range = `0-${testBlobBChunk1.length - 1}`;
  testBlobBChunk2Range = `${testBlobBChunk1.length}-${size - 1}`;
}
setupChunkedBlob(42);
const testRefBlobA = blobOf(Buffer.from("NHL Peanut Butter on my NHL bagel"));
const testRefBlobB = blobOf(Buffer.from("NBA Strawberry Jam on my NBA croissant"));
const subjectOf = (m: Blob): object => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.content.length, data: null, newUnspecifiedField: null });

const emptyLayerManifest = blobOf(marshal({
  schemaVersion: 2, mediaType: OCI_MANIFEST,
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configs[1].digest, size: configs[1].content.length, data: b64(configs[1].content), newUnspecifiedField: b64("hello world") },
  layers: [emptyJSONDescriptor],
}));
const testManifestConfigType = blobOf(marshal({
  schemaVersion: 2, mediaType: OCI_MANIFEST,
  config: { mediaType: testRefArtifactTypeA, digest: testRefBlobA.digest, size: testRefBlobA.content.length, data: null, newUnspecifiedField: null },
  layers,
}));
const testManifestArtifactType = blobOf(marshal({
  schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: testRefArtifactTypeA,
  config: { mediaType: OCI_MANIFEST, digest: testRefBlobA.digest, size: testRefBlobA.content.length, data: null, newUnspecifiedField: null },
  layers,
}));
function refsManifest(kind: "config" | "layer", type: string, ref: Blob, subject: Blob, annotation?: string): Blob {
  const refDesc = { mediaType: type, digest: ref.digest, size: ref.content.length, data: null, newUnspecifiedField: null };
  const m = blobOf(marshal({
    schemaVersion: 2, mediaType: OCI_MANIFEST, ...(kind === "layer" ? { artifactType: type } : {}),
    config: kind === "config" ? refDesc : emptyJSONDescriptor,
    layers: kind === "config" ? [emptyJSONDescriptor] : [refDesc],
    subject: subjectOf(subject),
    ...(annotation ? { annotations: { [testAnnotationKey]: annotation } } : {}),
  }));
  if (annotation) testAnnotationValues[m.digest] = annotation;
  return m;
}
const refsManifestAConfigArtifact = refsManifest("config", testRefArtifactTypeA, testRefBlobA, manifests[4], "test config a");
const refsManifestBConfigArtifact = refsManifest("config", testRefArtifactTypeB, testRefBlobB, manifests[4], "test config b");
const refsManifestALayerArtifact = refsManifest("layer", testRefArtifactTypeA, testRefBlobA, manifests[4], "test layer a");
const refsManifestBLayerArtifact = refsManifest("layer", testRefArtifactTypeB, testRefBlobB, manifests[4], "test layer b");
// The same as B's layer artifact, with a subject that is never pushed in discovery (a dangling subject).
const refsManifestCLayerArtifact = refsManifest("layer", testRefArtifactTypeB, testRefBlobB, manifests[3]);
const refsIndexArtifact = blobOf(marshal({
  schemaVersion: 2, mediaType: OCI_INDEX, artifactType: testRefArtifactTypeIndex,
  manifests: [refsManifestAConfigArtifact, refsManifestALayerArtifact].map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: m.content.length, data: null, newUnspecifiedField: null })),
  subject: subjectOf(manifests[4]),
  annotations: { [testAnnotationKey]: "test index" },
}));
testAnnotationValues[refsIndexArtifact.digest] = "test index";

// ---- the registry and a small client (the suite's reggie: <name> is the namespace) ----
const namespace = "conformance/suite";
const crossmountNamespace = `conformance-${randomUUID()}`;
let work: string;
const servers: { proc: ChildProcess; out: string; base: string }[] = [];
let base = "";

interface Res { status: number; headers: Headers; body: Buffer; location: string; json: <T>() => T }

async function start(extra: string[]): Promise<{ proc: ChildProcess; out: string; base: string }> {
  const root = mkdtempSync(join(work, "root-"));
  const proc = spawn(BERTH, ["registry", "serve", "--addr", "127.0.0.1:0", "--root", root, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  const s = { proc, out: "", base: "" };
  proc.stdout!.on("data", (d) => { s.out += d; });
  proc.stderr!.on("data", (d) => { s.out += d; });
  servers.push(s);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const m = /"msg":"listening","addr":"(127\.0\.0\.1:\d+)"/.exec(s.out);
    if (m) { s.base = `http://${m[1]}`; return s; }
    if (proc.exitCode !== null) throw new Error(`berth registry serve exited ${proc.exitCode}: ${s.out}`);
    if (Date.now() > deadline) throw new Error(`the registry did not listen: ${s.out}`);
    await sleep(25);
  }
}

/** One request: `path` with <name> replaced by the namespace (or `name`), or a Location from an earlier answer. */
async function req(method: string, path: string, o: { query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer; name?: string; base?: string } = {}): Promise<Res> {
  const b = o.base ?? base;
  const url = new URL(path.replace("<name>", o.name ?? namespace), b);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, v);
  const r = await fetch(url, { method, headers: o.headers, body: o.body === undefined ? undefined : new Uint8Array(o.body), redirect: "manual" });
  const body = Buffer.from(await r.arrayBuffer());
  const loc = r.headers.get("location") ?? "";
  return { status: r.status, headers: r.headers, body, location: loc, json: <T>() => JSON.parse(body.toString("utf8")) as T };
}
/** The path (and query) of a Location, as reggie's GetRelativeLocation. */
const rel = (r: Res): string => { const u = new URL(r.location, base); return u.pathname + u.search; };
const ok2xx = (r: Res, what = ""): void => assert.ok(r.status >= 200 && r.status < 300, `${what} status ${r.status}: ${r.body.toString()}`);
const errorCode = (r: Res): string => r.json<{ errors: { code: string }[] }>().errors[0].code;
const tagsOf = (r: Res): string[] => { try { return r.json<{ tags: string[] | null }>().tags ?? []; } catch { return []; } };

async function pushBlob(b: Blob, name?: string): Promise<Res> {
  const post = await req("POST", "/v2/<name>/blobs/uploads/", { name });
  assert.equal(post.status, 202, post.body.toString());
  return req("PUT", rel(post), { query: { digest: b.digest }, headers: { "Content-Type": "application/octet-stream" }, body: b.content });
}
const putManifest = (ref: string, m: Buffer, type = OCI_MANIFEST): Promise<Res> => req("PUT", `/v2/<name>/manifests/${ref}`, { headers: { "Content-Type": type }, body: m });
const del = (path: string): Promise<Res> => req("DELETE", path);
/** Teardown deletes accept 2xx, 404 and 405 (as the suite); berth's is asserted where the suite names one. */
const okDelete = (r: Res): void => assert.ok((r.status >= 200 && r.status < 300) || r.status === 404 || r.status === 405, `status ${r.status}: ${r.body.toString()}`);

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-registry-conformance-"));
  base = (await start([])).base;
});

after(async () => {
  for (const s of servers) {
    if (s.proc.exitCode === null) {
      s.proc.kill("SIGTERM");
      const deadline = Date.now() + 20_000;
      while (s.proc.exitCode === null && Date.now() < deadline) await sleep(25);
      if (s.proc.exitCode === null) s.proc.kill("SIGKILL");
    }
  }
  rmSync(work, { recursive: true, force: true });
});

// ================================ 01 Pull ================================
let pullTag = "";
const P = "Pull";
test(`${P} › Setup › Populate registry with test blob`, async () => { ok2xx(await pushBlob(configs[0])); });
test(`${P} › Setup › Populate registry with test layer`, async () => { ok2xx(await pushBlob(layer)); });
test(`${P} › Setup › Populate registry with test manifest`, async () => { ok2xx(await putManifest(testTagName, manifests[0].content)); });
test(`${P} › Setup › Get the name of a tag`, async () => {
  const r = await req("GET", "/v2/<name>/tags/list");
  pullTag = tagsOf(r)[0] ?? "";
  assert.equal(pullTag, testTagName);
  // The suite then overwrites that tag with this run's manifest.
  ok2xx(await putManifest(pullTag, manifests[0].content));
});
test(`${P} › Setup › Get tag name from environment`, (t) => { t.skip("the suite runs this only when OCI_TAG_NAME, OCI_MANIFEST_DIGEST and OCI_BLOB_DIGEST replace the pull setup"); });

test(`${P} › Pull blobs › HEAD request to nonexistent blob should result in 404 response`, async () => {
  const r = await req("HEAD", `/v2/<name>/blobs/${dummyDigest}`);
  assert.equal(r.status, 404);
});
test(`${P} › Pull blobs › HEAD request to existing blob should yield 200`, async () => {
  const r = await req("HEAD", `/v2/<name>/blobs/${configs[0].digest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("docker-content-digest"), configs[0].digest);
  assert.equal(r.headers.get("content-length"), configs[0].length);
});
test(`${P} › Pull blobs › GET nonexistent blob should result in 404 response`, async () => {
  const r = await req("GET", `/v2/<name>/blobs/${dummyDigest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "BLOB_UNKNOWN");
});
test(`${P} › Pull blobs › GET request to existing blob URL should yield 200`, async () => {
  const r = await req("GET", `/v2/<name>/blobs/${configs[0].digest}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, configs[0].content);
});

test(`${P} › Pull manifests › HEAD request to nonexistent manifest should return 404`, async () => {
  const r = await req("HEAD", `/v2/<name>/manifests/${nonexistentManifest}`);
  assert.equal(r.status, 404);
});
test(`${P} › Pull manifests › HEAD request to manifest path (digest) should yield 200 response`, async () => {
  const r = await req("HEAD", `/v2/<name>/manifests/${manifests[0].digest}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("docker-content-digest"), manifests[0].digest);
  assert.equal(r.headers.get("content-type"), OCI_MANIFEST);
  assert.equal(r.headers.get("content-length"), manifests[0].length);
});
test(`${P} › Pull manifests › HEAD request to manifest path (tag) should yield 200 response`, async () => {
  assert.notEqual(pullTag, "");
  // (The suite sends a GET here.)
  const r = await req("GET", `/v2/<name>/manifests/${pullTag}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("docker-content-digest"), manifests[0].digest);
});
test(`${P} › Pull manifests › GET nonexistent manifest should return 404`, async () => {
  const r = await req("GET", `/v2/<name>/manifests/${nonexistentManifest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "MANIFEST_UNKNOWN");
});
test(`${P} › Pull manifests › GET request to manifest path (digest) should yield 200 response`, async () => {
  const r = await req("GET", `/v2/<name>/manifests/${manifests[0].digest}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, manifests[0].content, "the manifest's bytes, unknown fields and all");
});
test(`${P} › Pull manifests › GET request to manifest path (tag) should yield 200 response`, async () => {
  assert.notEqual(pullTag, "");
  const r = await req("GET", `/v2/<name>/manifests/${pullTag}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, manifests[0].content);
});

test(`${P} › Error codes › 400 response body should contain OCI-conforming JSON message`, async () => {
  const r = await putManifest("sha256:totallywrong", invalidManifestContent);
  assert.equal(r.status, 400);
  assert.equal(r.headers.get("content-type"), "application/json");
  const errs = r.json<{ errors: { code: string; message: string }[] }>().errors;
  assert.ok(errs.length > 0);
  assert.ok(ERROR_CODES.includes(errs[0].code), errs[0].code);
  assert.equal(errs[0].code, "DIGEST_INVALID");
});

test(`${P} › Teardown › Delete manifest created in setup`, async () => {
  assert.equal((await del(`/v2/<name>/manifests/${manifests[0].digest}`)).status, 202);
});
test(`${P} › Teardown › Delete config blob created in setup`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${configs[0].digest}`)).status, 202);
});
test(`${P} › Teardown › Delete layer blob created in setup`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${layer.digest}`)).status, 202);
});

// ================================ 02 Push ================================
const U = "Push";
let last: Res | undefined;
let pushIndex: Blob | undefined;

test(`${U} › Setup › Upload empty JSON blob needed for further tests`, async () => {
  assert.equal(emptyJSON.digest, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  ok2xx(await pushBlob(emptyJSON));
});
test(`${U} › Setup › Upload blob needed for further tests`, async () => { ok2xx(await pushBlob(testRefBlobA)); });

test(`${U} › Blob Upload Streamed › PATCH request with blob in body should yield 202 response`, async () => {
  const post = await req("POST", "/v2/<name>/blobs/uploads/");
  assert.notEqual(post.location, "");
  const r = await req("PATCH", rel(post), { headers: { "Content-Type": "application/octet-stream" }, body: testBlobA.content });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get("range"), `0-${testBlobA.content.length - 1}`);
  last = r;
});
test(`${U} › Blob Upload Streamed › PUT request to session URL with digest should yield 201 response`, async () => {
  assert.ok(last);
  const r = await req("PUT", rel(last), { query: { digest: testBlobA.digest }, headers: { "Content-Type": "application/octet-stream" } });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.location, `/v2/${namespace}/blobs/${testBlobA.digest}`);
});

test(`${U} › Blob Upload Monolithic › GET nonexistent blob should result in 404 response`, async () => {
  const r = await req("GET", `/v2/<name>/blobs/${dummyDigest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "BLOB_UNKNOWN");
});
test(`${U} › Blob Upload Monolithic › POST request with digest and blob should yield a 201 or 202`, async () => {
  const r = await req("POST", "/v2/<name>/blobs/uploads/", { query: { digest: configs[1].digest }, headers: { "Content-Type": "application/octet-stream" }, body: configs[1].content });
  assert.notEqual(r.location, "");
  assert.equal(r.status, 201, "berth takes a monolithic POST in one request");
  last = r;
});
test(`${U} › Blob Upload Monolithic › GET request to blob URL from prior request should yield 200 or 404 based on response code`, async () => {
  assert.ok(last);
  const r = await req("GET", `/v2/<name>/blobs/${configs[1].digest}`);
  assert.equal(r.status, last.status === 202 ? 404 : 200);
  assert.deepEqual(r.body, configs[1].content);
});
test(`${U} › Blob Upload Monolithic › POST request should yield a session ID`, async () => {
  const r = await req("POST", "/v2/<name>/blobs/uploads/");
  assert.equal(r.status, 202);
  assert.match(r.headers.get("docker-upload-uuid") ?? "", /^[0-9a-f-]{36}$/);
  assert.ok(rel(r).startsWith(`/v2/${namespace}/blobs/uploads/`), r.location);
  last = r;
});
test(`${U} › Blob Upload Monolithic › PUT upload of a blob should yield a 201 Response`, async () => {
  assert.ok(last);
  const r = await req("PUT", rel(last), { query: { digest: configs[1].digest }, headers: { "Content-Type": "application/octet-stream" }, body: configs[1].content });
  assert.notEqual(r.location, "");
  assert.equal(r.status, 201);
});
test(`${U} › Blob Upload Monolithic › GET request to existing blob should yield 200 response`, async () => {
  const r = await req("GET", `/v2/<name>/blobs/${configs[1].digest}`);
  assert.equal(r.status, 200);
});
test(`${U} › Blob Upload Monolithic › PUT upload of a layer blob should yield a 201 Response`, async () => {
  const r = await pushBlob(layer);
  assert.notEqual(r.location, "");
  assert.equal(r.status, 201);
});
test(`${U} › Blob Upload Monolithic › GET request to existing layer should yield 200 response`, async () => {
  const r = await req("GET", `/v2/<name>/blobs/${layer.digest}`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, layerBlobData);
});

/** The suite's "Blob Upload Chunked" context; `b` is the registry (the main one, or one with a minimum chunk size). */
function chunked(ctx: string, b: () => string): void {
  let prevR: Res | undefined, lastR: Res | undefined;
  test(`${ctx} › Out-of-order blob upload should return 416`, async () => {
    const post = await req("POST", "/v2/<name>/blobs/uploads/", { base: b(), body: Buffer.alloc(0) });
    assert.notEqual(post.location, "");
    // Rebuild the chunked blob if the registry's minimum is above our chunk size (as the suite does).
    const min = post.headers.get("oci-chunk-min-length");
    if (min) {
      const n = Number(min);
      assert.ok(Number.isInteger(n) && n > 0, min);
      if (n > testBlobBChunk1.length) setupChunkedBlob(n * 2 - 2);
    }
    const r = await req("PATCH", rel(post), { base: b(), headers: { "Content-Type": "application/octet-stream", "Content-Range": testBlobBChunk2Range }, body: testBlobBChunk2 });
    assert.equal(r.status, 416);
    assert.equal(errorCode(r), "BLOB_UPLOAD_INVALID");
  });
  test(`${ctx} › PATCH request with first chunk should return 202`, async () => {
    const post = await req("POST", "/v2/<name>/blobs/uploads/", { base: b(), body: Buffer.alloc(0) });
    assert.notEqual(post.location, "");
    prevR = post;
    const r = await req("PATCH", rel(post), { base: b(), headers: { "Content-Type": "application/octet-stream", "Content-Range": testBlobBChunk1Range }, body: testBlobBChunk1 });
    assert.equal(r.status, 202);
    assert.equal(r.headers.get("range"), testBlobBChunk1Range);
    lastR = r;
  });
  test(`${ctx} › Retry previous blob chunk should return 416`, async () => {
    assert.ok(prevR);
    const r = await req("PATCH", rel(prevR), { base: b(), headers: { "Content-Type": "application/octet-stream", "Content-Range": testBlobBChunk1Range }, body: testBlobBChunk1 });
    assert.equal(r.status, 416);
    // The spec's 416 tells the client where the upload stands.
    assert.equal(r.headers.get("range"), testBlobBChunk1Range);
    assert.notEqual(r.location, "");
  });
  test(`${ctx} › Get on stale blob upload should return 204 with a range and location`, async () => {
    assert.ok(prevR);
    const r = await req("GET", rel(prevR), { base: b() });
    assert.equal(r.status, 204);
    assert.notEqual(r.location, "");
    assert.equal(r.headers.get("range"), testBlobBChunk1Range);
    lastR = r;
  });
  test(`${ctx} › PATCH request with second chunk should return 202`, async () => {
    assert.ok(lastR);
    const r = await req("PATCH", rel(lastR), { base: b(), headers: { "Content-Type": "application/octet-stream", "Content-Range": testBlobBChunk2Range }, body: testBlobBChunk2 });
    assert.equal(r.status, 202);
    assert.equal(r.headers.get("range"), `0-${testBlobB.content.length - 1}`);
    assert.notEqual(r.location, "");
    lastR = r;
  });
  test(`${ctx} › PUT request with digest should return 201`, async () => {
    assert.ok(lastR);
    const r = await req("PUT", rel(lastR), { base: b(), query: { digest: testBlobB.digest }, headers: { "Content-Type": "application/octet-stream" }, body: Buffer.alloc(0) });
    assert.equal(r.status, 201, r.body.toString());
    assert.notEqual(r.location, "");
    const g = await req("GET", r.location, { base: b() });
    assert.deepEqual(g.body, testBlobB.content, "the chunks joined");
  });
}
chunked(`${U} › Blob Upload Chunked`, () => base);

test(`${U} › Cross-Repository Blob Mount › Cross-mounting of a blob without the from argument should yield session id`, async () => {
  const r = await req("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: dummyDigest } });
  assert.equal(r.status, 202);
  assert.notEqual(r.location, "");
});
test(`${U} › Cross-Repository Blob Mount › POST request to mount another repository's blob should return 201 or 202`, async () => {
  const r = await req("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: testBlobA.digest, from: namespace } });
  assert.equal(r.status, 201, "berth mounts a blob the client may read");
  last = r;
});
test(`${U} › Cross-Repository Blob Mount › GET request to test digest within cross-mount namespace should return 200`, async (t) => {
  assert.ok(last);
  if (last.status !== 201) { t.skip("run only if the mount was 201"); return; }
  assert.equal(rel(last), `/v2/${crossmountNamespace}/blobs/${testBlobA.digest}`);
  const r = await req("GET", rel(last));
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, testBlobA.content);
});
test(`${U} › Cross-Repository Blob Mount › Cross-mounting of nonexistent blob should yield session id`, (t) => {
  assert.ok(last);
  if (last.status !== 202) { t.skip("the suite runs this only if the mount was 202"); return; }
  assert.ok(rel(last).startsWith(`/v2/${crossmountNamespace}/blobs/uploads/`));
});
test(`${U} › Cross-Repository Blob Mount › Cross-mounting without from, and automatic content discovery enabled should return a 201`, async () => {
  assert.equal(last?.status, 201);
  const r = await req("POST", "/v2/<name>/blobs/uploads/", { name: crossmountNamespace, query: { mount: testBlobA.digest } });
  assert.equal(r.status, 201);
});
test(`${U} › Cross-Repository Blob Mount › Cross-mounting without from, and automatic content discovery disabled should return a 202`, (t) => {
  t.skip("the suite runs this only with OCI_AUTOMATIC_CROSSMOUNT=false; berth without auth mounts anonymously (enabled)");
});

test(`${U} › Manifest Upload › GET nonexistent manifest should return 404`, async () => {
  const r = await req("GET", `/v2/<name>/manifests/${nonexistentManifest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "MANIFEST_UNKNOWN");
});
test(`${U} › Manifest Upload › PUT should accept a manifest upload`, async () => {
  for (let i = 0; i < 4; i++) {
    const r = await putManifest(`test${i}`, manifests[1].content);
    assert.notEqual(r.location, "");
    assert.equal(r.status, 201, r.body.toString());
    assert.equal(r.headers.get("docker-content-digest"), manifests[1].digest);
  }
});
test(`${U} › Manifest Upload › Registry should accept a manifest upload with no layers`, async () => {
  const r = await putManifest(emptyLayerTestTag, emptyLayerManifest.content);
  assert.equal(r.status, 201, r.body.toString());
  assert.notEqual(r.location, "");
});
test(`${U} › Manifest Upload › GET request to manifest URL (digest) should yield 200 response`, async () => {
  const r = await req("GET", `/v2/<name>/manifests/${manifests[1].digest}`, { headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, manifests[1].content);
});
test(`${U} › Manifest Upload › Registry should accept a manifest upload with custom config/mediaType (as artifact type) [OCI-Image v1.1]`, async () => {
  ok2xx(await putManifest(testManifestConfigType.digest, testManifestConfigType.content), "PUT manifest fails");
});
test(`${U} › Manifest Upload › Registry should accept a manifest upload with custom artifactType [OCI-Image v1.1]`, async () => {
  ok2xx(await putManifest(testManifestArtifactType.digest, testManifestArtifactType.content), "PUT manifest fails");
});
test(`${U} › Manifest Upload › Registry should accept a manifest upload with image index`, async () => {
  ok2xx(await pushBlob(configs[0]));
  ok2xx(await putManifest(testTagName, manifests[0].content));
  pushIndex = blobOf(marshal({
    schemaVersion: 2, mediaType: OCI_INDEX, artifactType: testRefArtifactTypeIndex,
    manifests: [{ mediaType: OCI_MANIFEST, size: manifests[0].content.length, digest: manifests[0].digest, data: null, newUnspecifiedField: null }],
    annotations: { [testAnnotationKey]: "test index" },
  }));
  ok2xx(await putManifest(pushIndex.digest, pushIndex.content, OCI_INDEX), "PUT index fails");
});
test(`${U} › Manifest Upload › Registry should accept a manifest upload with nested image index [OCI-Image v1.1]`, async () => {
  assert.ok(pushIndex);
  const nested = blobOf(marshal({
    schemaVersion: 2, mediaType: OCI_INDEX, artifactType: testRefArtifactTypeIndex,
    manifests: [{ mediaType: OCI_INDEX, size: pushIndex.content.length, digest: pushIndex.digest, data: null, newUnspecifiedField: null }],
    annotations: { [testAnnotationKey]: "test index" },
  }));
  ok2xx(await putManifest(nested.digest, nested.content, OCI_INDEX), "PUT index fails");
});
test(`${U} › Manifest Upload › Dangling subject [OCI-Image v1.1]`, async () => {
  // The suite's push workflow never uploads this manifest's layer (testRefBlobB), so a registry that checks
  // a manifest's blobs (berth, distribution) would refuse it for that; the check is about the subject.
  ok2xx(await pushBlob(testRefBlobB));
  const r = await putManifest(refsManifestCLayerArtifact.digest, refsManifestCLayerArtifact.content);
  ok2xx(r, "PUT manifest with 'dangling' subject fails, but must not");
  // The suite matches /^[a-f0-9]+:[a-f0-9]+$/, which no "sha256:" digest can (s and h are not hex): the digest grammar is meant.
  assert.match(r.headers.get("oci-subject") ?? "", /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]+$/, "PUT manifest with subject does not return a header 'OCI-Subject' with the subject digest");
  assert.equal(r.headers.get("oci-subject"), manifests[3].digest);
});

test(`${U} › Teardown › Delete manifest created in tests`, async () => {
  assert.equal((await del(`/v2/<name>/manifests/${manifests[1].digest}`)).status, 202);
  assert.equal((await del(`/v2/<name>/manifests/${testManifestConfigType.digest}`)).status, 202);
  assert.equal((await del(`/v2/<name>/manifests/${testManifestArtifactType.digest}`)).status, 202);
  assert.equal((await del(`/v2/<name>/manifests/${emptyLayerManifest.digest}`)).status, 202);
});
test(`${U} › Teardown › Delete config blob created in tests`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${configs[1].digest}`)).status, 202);
});
test(`${U} › Teardown › Delete layer blob created in setup`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${layer.digest}`)).status, 202);
  assert.equal((await del(`/v2/<name>/blobs/${emptyJSON.digest}`)).status, 202);
});

// ================================ 03 Content Discovery ================================
const D = "Content Discovery";
let numTags = 4;
let tagList: string[] = [];

test(`${D} › Setup › Populate registry with test blob`, async () => { ok2xx(await pushBlob(configs[2])); });
test(`${D} › Setup › Populate registry with test layer`, async () => { ok2xx(await pushBlob(layer)); });
test(`${D} › Setup › Populate registry with test tags`, async () => {
  for (let i = 0; i < numTags; i++) ok2xx(await putManifest(`test${i}`, manifests[2].content));
  tagList = tagsOf(await req("GET", "/v2/<name>/tags/list"));
});
test(`${D} › Setup › Populate registry with test tags (no push)`, (t) => { t.skip("the suite runs this only when OCI_TAG_LIST replaces the discovery setup"); });
test(`${D} › Setup › References setup`, async () => {
  const subject = (r: Res, want: string): void => { ok2xx(r); assert.equal(r.headers.get("oci-subject"), want); };
  ok2xx(await pushBlob(emptyJSON));
  ok2xx(await pushBlob(testRefBlobA)); // before the image manifest is pushed
  subject(await putManifest(refsManifestAConfigArtifact.digest, refsManifestAConfigArtifact.content), manifests[4].digest);
  subject(await putManifest(refsManifestALayerArtifact.digest, refsManifestALayerArtifact.content), manifests[4].digest);
  subject(await putManifest(refsIndexArtifact.digest, refsIndexArtifact.content, OCI_INDEX), manifests[4].digest);
  ok2xx(await pushBlob(configs[4]));
  ok2xx(await pushBlob(layer));
  ok2xx(await putManifest(testTagName, manifests[4].content));
  ok2xx(await pushBlob(testRefBlobB)); // after the image manifest is pushed
  subject(await putManifest(refsManifestBConfigArtifact.digest, refsManifestBConfigArtifact.content), manifests[4].digest);
  subject(await putManifest(refsManifestBLayerArtifact.digest, refsManifestBLayerArtifact.content), manifests[4].digest);
  subject(await putManifest(refsManifestCLayerArtifact.digest, refsManifestCLayerArtifact.content), manifests[3].digest);
});

test(`${D} › Test content discovery endpoints (listing tags) › GET request to list tags should yield 200 response`, async () => {
  const r = await req("GET", "/v2/<name>/tags/list");
  assert.equal(r.status, 200);
  tagList = tagsOf(r);
  numTags = tagList.length;
  assert.deepEqual(tagList, [testTagName, "test0", "test1", "test2", "test3"]);
  assert.equal(r.json<{ name: string }>().name, namespace);
});
test(`${D} › Test content discovery endpoints (listing tags) › GET number of tags should be limitable by \`n\` query parameter`, async () => {
  const n = Math.floor(numTags / 2);
  const r = await req("GET", "/v2/<name>/tags/list", { query: { n: String(n) } });
  assert.equal(r.status, 200);
  tagList = tagsOf(r);
  assert.equal(tagList.length, n);
  assert.equal(r.headers.get("link"), `</v2/${namespace}/tags/list?n=${n}&last=${tagList[n - 1]}>; rel="next"`);
});
test(`${D} › Test content discovery endpoints (listing tags) › GET start of tag is set by \`last\` query parameter`, async () => {
  const n = Math.floor(numTags / 2);
  const first = await req("GET", "/v2/<name>/tags/list", { query: { n: String(n) } });
  assert.equal(first.status, 200);
  const lastTag = tagsOf(first)[n - 1];
  const r = await req("GET", "/v2/<name>/tags/list", { query: { n: String(n), last: lastTag } });
  assert.equal(r.status, 200);
  const page = tagsOf(r);
  assert.ok(page.length <= n);
  assert.ok(!page.includes(lastTag));
  assert.ok(page.every((x) => x > lastTag));
});

type Index = { schemaVersion: number; mediaType: string; manifests: { digest: string; annotations?: Record<string, string>; artifactType?: string; mediaType: string; size: number }[] };
test(`${D} › Test content discovery endpoints (listing references) › GET request to nonexistent blob should result in empty 200 response`, async () => {
  const r = await req("GET", `/v2/<name>/referrers/${dummyDigest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), OCI_INDEX);
  assert.equal(r.json<Index>().manifests.length, 0);
});
test(`${D} › Test content discovery endpoints (listing references) › GET request to existing blob should yield 200`, async () => {
  const r = await req("GET", `/v2/<name>/referrers/${manifests[4].digest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), OCI_INDEX);
  const idx = r.json<Index>();
  assert.equal(idx.manifests.length, 5);
  assert.notEqual(idx.manifests[0].digest, idx.manifests[1].digest);
  for (const m of idx.manifests) {
    assert.equal(Object.keys(m.annotations ?? {}).length, 1);
    assert.equal(m.annotations![testAnnotationKey], testAnnotationValues[m.digest]);
  }
  assert.deepEqual(idx.manifests.map((m) => m.digest).sort(), [refsManifestAConfigArtifact, refsManifestALayerArtifact, refsIndexArtifact, refsManifestBConfigArtifact, refsManifestBLayerArtifact].map((m) => m.digest).sort());
});
test(`${D} › Test content discovery endpoints (listing references) › GET request to existing blob with filter should yield 200`, async () => {
  const r = await req("GET", `/v2/<name>/referrers/${manifests[4].digest}`, { query: { artifactType: testRefArtifactTypeA } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), OCI_INDEX);
  // berth filters (the suite would otherwise warn "filtering by artifact-type is not implemented").
  assert.equal(r.headers.get("oci-filters-applied"), "artifactType");
  const idx = r.json<Index>();
  assert.equal(idx.manifests.length, 2);
  for (const m of idx.manifests) {
    assert.equal(Object.keys(m.annotations ?? {}).length, 1);
    assert.equal(m.annotations![testAnnotationKey], testAnnotationValues[m.digest]);
    assert.equal(m.artifactType, testRefArtifactTypeA);
  }
});
test(`${D} › Test content discovery endpoints (listing references) › GET request to missing manifest should yield 200`, async () => {
  const r = await req("GET", `/v2/<name>/referrers/${manifests[3].digest}`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), OCI_INDEX);
  const idx = r.json<Index>();
  assert.equal(idx.manifests.length, 1);
  assert.equal(idx.manifests[0].digest, refsManifestCLayerArtifact.digest);
});

test(`${D} › Teardown › Delete created manifest & associated tags`, async () => {
  for (const m of [refsIndexArtifact, manifests[2], manifests[4], refsManifestAConfigArtifact, refsManifestALayerArtifact, refsManifestBConfigArtifact, refsManifestBLayerArtifact, refsManifestCLayerArtifact]) {
    assert.equal((await del(`/v2/<name>/manifests/${m.digest}`)).status, 202, m.digest);
  }
});
test(`${D} › Teardown › Delete config blob created in tests`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${configs[2].digest}`)).status, 202);
});
test(`${D} › Teardown › Delete layer blob created in setup`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${layer.digest}`)).status, 202);
});
test(`${D} › Teardown › References teardown`, async () => {
  for (const b of [configs[4], testRefBlobA, testRefBlobB, emptyJSON]) okDelete(await del(`/v2/<name>/blobs/${b.digest}`));
  // Every referrer is gone with its manifest.
  const r = await req("GET", `/v2/<name>/referrers/${manifests[4].digest}`);
  assert.equal(r.json<Index>().manifests.length, 0);
});

// ================================ 04 Content Management ================================
const M = "Content Management";
let tagToDelete = "";
let numTagsBefore = 0;
let blobDeleteAllowed = true;

test(`${M} › Setup › Populate registry with test config blob`, async () => { ok2xx(await pushBlob(configs[3])); });
test(`${M} › Setup › Populate registry with test layer`, async () => { ok2xx(await pushBlob(layer)); });
test(`${M} › Setup › Populate registry with test tag`, async () => {
  tagToDelete = "tagtest0";
  ok2xx(await putManifest(tagToDelete, manifests[3].content));
});
test(`${M} › Setup › Check how many tags there are before anything gets deleted`, async () => {
  const r = await req("GET", "/v2/<name>/tags/list");
  assert.equal(r.status, 200);
  numTagsBefore = tagsOf(r).length;
  assert.ok(numTagsBefore >= 1);
});

test(`${M} › Manifest delete › DELETE request to manifest tag should return 202, unless tag deletion is disallowed (400/405)`, async () => {
  const r = await del(`/v2/<name>/manifests/${tagToDelete}`);
  assert.equal(r.status, 202);
});
test(`${M} › Manifest delete › DELETE request to manifest (digest) should yield 202 response unless already deleted`, async () => {
  const r = await del(`/v2/<name>/manifests/${manifests[3].digest}`);
  assert.equal(r.status, 202, "deleting the tag leaves the manifest");
});
test(`${M} › Manifest delete › GET request to deleted manifest URL should yield 404 response, unless delete is disallowed`, async () => {
  const r = await req("GET", `/v2/<name>/manifests/${manifests[3].digest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "MANIFEST_UNKNOWN");
});
test(`${M} › Manifest delete › GET request to tags list should reflect manifest deletion`, async () => {
  const r = await req("GET", "/v2/<name>/tags/list");
  assert.equal(r.status, 200);
  const tags = tagsOf(r);
  assert.ok(tags.length < numTagsBefore);
  assert.ok(!tags.includes(tagToDelete));
});

test(`${M} › Blob delete › DELETE request to blob URL should yield 202 response`, async () => {
  assert.equal((await del(`/v2/<name>/blobs/${configs[3].digest}`)).status, 202);
  const r = await del(`/v2/<name>/blobs/${layer.digest}`);
  assert.equal(r.status, 202);
  blobDeleteAllowed = (r.status as number) !== 405;
});
test(`${M} › Blob delete › GET request to deleted blob URL should yield 404 response`, async (t) => {
  if (!blobDeleteAllowed) { t.skip("blob delete is disallowed"); return; }
  const r = await req("GET", `/v2/<name>/blobs/${configs[3].digest}`);
  assert.equal(r.status, 404);
  assert.equal(errorCode(r), "BLOB_UNKNOWN");
});

// ============ the chunked checks again, against a registry with a minimum chunk size ============
let minBase = "";
test("OCI-Chunk-Min-Length › a registry started with --chunk-min-length advertises it on POST", async () => {
  minBase = (await start(["--chunk-min-length", "1024"])).base;
  const r = await req("POST", "/v2/<name>/blobs/uploads/", { base: minBase, body: Buffer.alloc(0) });
  assert.equal(r.status, 202);
  assert.equal(r.headers.get("oci-chunk-min-length"), "1024");
  assert.equal((await req("POST", "/v2/<name>/blobs/uploads/", { body: Buffer.alloc(0) })).headers.get("oci-chunk-min-length"), null, "the default registry has no minimum");
});
chunked("OCI-Chunk-Min-Length › Push › Blob Upload Chunked", () => minBase);
test("OCI-Chunk-Min-Length › the chunked blob was rebuilt at the registry's minimum (2 × 1024 − 2 bytes)", () => {
  assert.equal(testBlobB.content.length, 2046);
  assert.equal(testBlobBChunk1.length, 1024);
});

// ============ beyond the suite: content negotiation, sha512, malformed digests, every error's JSON ============
const B = "Beyond the suite";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const neg = "beyond/negotiation";
const negCfg = blobOf(Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'));
const negOci = blobOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: negCfg.digest, size: negCfg.content.length }, layers: [] })));
const negDocker = blobOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: { mediaType: "application/vnd.docker.container.image.v1+json", digest: negCfg.digest, size: negCfg.content.length }, layers: [] })));
const negList = blobOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ mediaType: DOCKER_MANIFEST, digest: negDocker.digest, size: negDocker.content.length, platform: { os: "linux", architecture: "amd64" } }] })));
const negIndex = blobOf(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: negOci.digest, size: negOci.content.length, platform: { os: "linux", architecture: "amd64" } }] })));

test(`${B} › manifest content negotiation by Accept, as distribution (2.8.2, measured): OCI types only to clients that accept them; a Docker list by tag becomes its linux/amd64 manifest`, async () => {
  ok2xx(await pushBlob(negCfg, neg));
  for (const [ref, m, t] of [["oci", negOci, OCI_MANIFEST], ["docker", negDocker, DOCKER_MANIFEST], ["list", negList, DOCKER_LIST], ["index", negIndex, OCI_INDEX]] as const) {
    assert.equal((await req("PUT", `/v2/<name>/manifests/${ref}`, { name: neg, headers: { "Content-Type": t }, body: m.content })).status, 201, ref);
  }
  const get = (ref: string, accept?: string, method = "GET"): Promise<Res> => req(method, `/v2/<name>/manifests/${ref}`, { name: neg, headers: accept === undefined ? {} : { Accept: accept } });
  // An OCI manifest to a client that accepts only Docker's type: distribution's 404 and words (HEAD too).
  let r = await get("oci", DOCKER_MANIFEST);
  assert.equal(r.status, 404);
  assert.deepEqual(r.json<{ errors: { code: string; message: string }[] }>().errors.map((e) => [e.code, e.message]), [["MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI manifests"]]);
  assert.equal((await get("oci", DOCKER_MANIFEST, "HEAD")).status, 404);
  // One Accept header with a list, or the type among others: served as stored.
  r = await get("oci", `${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.9`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), OCI_MANIFEST);
  assert.deepEqual(r.body, negOci.content);
  // No Accept, or a wildcard (curl's */*), takes anything (distribution refuses these too; berth serves them).
  assert.equal((await get("oci")).status, 200);
  assert.equal((await get("oci", "*/*")).headers.get("content-type"), OCI_MANIFEST);
  // An OCI index to a client that accepts only manifests.
  r = await get("index", OCI_MANIFEST);
  assert.equal(r.status, 404);
  assert.equal(r.json<{ errors: { message: string }[] }>().errors[0].message, "OCI index found, but accept header does not support OCI indexes");
  // Docker schema2 is served as stored to a client asking for OCI only (distribution 3 does; 2.8 tried schema1 and failed).
  r = await get("docker", OCI_MANIFEST, "HEAD");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), DOCKER_MANIFEST);
  assert.equal(r.headers.get("docker-content-digest"), negDocker.digest);
  // A Docker manifest list by tag, to a client that takes no lists: its linux/amd64 manifest, with that digest.
  r = await get("list", DOCKER_MANIFEST);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), DOCKER_MANIFEST);
  assert.equal(r.headers.get("docker-content-digest"), negDocker.digest);
  assert.deepEqual(r.body, negDocker.content);
  // By digest it is the list (the digest names it), and so it is to a client that accepts lists.
  r = await get(negList.digest, DOCKER_MANIFEST);
  assert.equal(r.headers.get("content-type"), DOCKER_LIST);
  assert.equal(r.headers.get("docker-content-digest"), negList.digest);
  r = await get("list", `${DOCKER_MANIFEST},${DOCKER_LIST}`, "HEAD");
  assert.equal(r.headers.get("content-type"), DOCKER_LIST);
  assert.equal(r.headers.get("content-length"), String(negList.content.length));
});

const sha512 = (b: Buffer | string): string => "sha512:" + createHash("sha512").update(b).digest("hex");
test(`${B} › sha512 end to end: blobs (monolithic and chunked), a manifest of sha512 descriptors put and got by its sha512 digest, referrers of a sha512 subject`, async () => {
  const repo = "beyond/sha512";
  const cfg = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const lay = randomBytes(3000);
  let r = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo, query: { digest: sha512(cfg) }, body: cfg });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.headers.get("docker-content-digest"), sha512(cfg));
  const post = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo });
  const p1 = await req("PATCH", rel(post), { headers: { "Content-Range": `0-999` }, body: lay.subarray(0, 1000) });
  assert.equal(p1.status, 202);
  r = await req("PUT", rel(p1), { query: { digest: sha512(lay) }, headers: { "Content-Range": "1000-2999" }, body: lay.subarray(1000) });
  assert.equal(r.status, 201, r.body.toString());
  r = await req("HEAD", `/v2/<name>/blobs/${sha512(lay)}`, { name: repo });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-length"), "3000");
  assert.equal(r.headers.get("docker-content-digest"), sha512(lay));
  r = await req("GET", `/v2/<name>/blobs/${sha512(lay)}`, { name: repo, headers: { Range: "bytes=2990-" } });
  assert.equal(r.status, 206);
  assert.deepEqual(r.body, lay.subarray(2990));
  // A wrong sha512 is refused like a wrong sha256.
  r = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo, query: { digest: sha512("other") }, body: cfg });
  assert.equal(r.status, 400);
  assert.equal(errorCode(r), "DIGEST_INVALID");
  const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha512(cfg), size: cfg.length }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha512(lay), size: lay.length }] }));
  r = await req("PUT", `/v2/<name>/manifests/${sha512(m)}`, { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: m });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.headers.get("docker-content-digest"), sha512(m));
  assert.equal(r.location, `/v2/${repo}/manifests/${sha512(m)}`);
  r = await req("GET", `/v2/<name>/manifests/${sha512(m)}`, { name: repo, headers: { Accept: OCI_MANIFEST } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, m);
  assert.equal(r.headers.get("docker-content-digest"), sha512(m));
  // Its bytes under the sha256 digest are not a manifest of this repository.
  assert.equal((await req("GET", `/v2/<name>/manifests/${sha256(m)}`, { name: repo, headers: { Accept: OCI_MANIFEST } })).status, 404);
  const sig = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: "application/vnd.example.sig", config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha512("{}"), size: 2 }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha512(lay), size: lay.length }], subject: { mediaType: OCI_MANIFEST, digest: sha512(m), size: m.length } }));
  ok2xx(await req("POST", "/v2/<name>/blobs/uploads/", { name: repo, query: { digest: sha512("{}") }, body: Buffer.from("{}") }));
  r = await req("PUT", `/v2/<name>/manifests/${sha512(sig)}`, { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: sig });
  assert.equal(r.status, 201, r.body.toString());
  assert.equal(r.headers.get("oci-subject"), sha512(m));
  r = await req("GET", `/v2/<name>/referrers/${sha512(m)}`, { name: repo, query: { artifactType: "application/vnd.example.sig" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("oci-filters-applied"), "artifactType");
  assert.deepEqual(r.json<Index>().manifests, [{ mediaType: OCI_MANIFEST, digest: sha512(sig), size: sig.length, artifactType: "application/vnd.example.sig" }]);
  assert.equal((await req("DELETE", `/v2/<name>/manifests/${sha512(sig)}`, { name: repo })).status, 202);
  assert.equal((await req("GET", `/v2/<name>/referrers/${sha512(m)}`, { name: repo })).json<Index>().manifests.length, 0);
});

test(`${B} › a malformed digest is 400 DIGEST_INVALID (never 500, never 404) on every route that takes one`, async () => {
  const repo = "beyond/malformed";
  const post = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo });
  const bad = ["sha256:abc", "sha256:" + "Z".repeat(64), "md5:d41d8cd98f00b204e9800998ecf8427e", "nodigest:", "sha256:" + "a".repeat(63), "sha512:" + "a".repeat(64)];
  for (const d of bad) {
    const e = encodeURIComponent(d);
    const tries: [string, string, Record<string, string>?][] = [
      ["GET", `/v2/<name>/blobs/${e}`], ["HEAD", `/v2/<name>/blobs/${e}`], ["DELETE", `/v2/<name>/blobs/${e}`],
      ["GET", `/v2/<name>/manifests/${e}`], ["HEAD", `/v2/<name>/manifests/${e}`], ["DELETE", `/v2/<name>/manifests/${e}`], ["PUT", `/v2/<name>/manifests/${e}`],
      ["GET", `/v2/<name>/referrers/${e}`],
      ["POST", "/v2/<name>/blobs/uploads/", { digest: d }], ["POST", "/v2/<name>/blobs/uploads/", { mount: d, from: namespace }],
      ["PUT", rel(post), { digest: d }],
    ];
    for (const [method, path, query] of tries) {
      const r = await req(method, path, { name: repo, query, ...(method === "PUT" || method === "POST" ? { body: Buffer.from("{}") } : {}), headers: { "Content-Type": OCI_MANIFEST } });
      assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(query ?? {})} with ${d}: ${r.status} ${r.body.toString()}`);
      if (method !== "HEAD") assert.equal(errorCode(r), "DIGEST_INVALID", `${method} ${path} with ${d}`);
    }
  }
  // The session survived every refused PUT: it still takes the blob.
  const r = await req("PUT", rel(post), { query: { digest: sha256("ok") }, body: Buffer.from("ok") });
  assert.equal(r.status, 201, r.body.toString());
});

test(`${B} › every error is the spec's JSON ({"errors":[{code,message,detail}]}, application/json) with its status`, async () => {
  const repo = "beyond/errors";
  ok2xx(await pushBlob(negCfg, repo));
  const post = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo });
  const cases: { what: string; r: () => Promise<Res>; status: number; code: string }[] = [
    { what: "an unknown route", r: () => req("GET", "/v2/<name>/nothing/here", { name: repo }), status: 404, code: "UNSUPPORTED" },
    { what: "a method a route does not take", r: () => req("PATCH", `/v2/<name>/manifests/latest`, { name: repo, body: Buffer.from("x") }), status: 405, code: "UNSUPPORTED" },
    { what: "an invalid repository name", r: () => req("GET", "/v2/Upper/Case/tags/list"), status: 400, code: "NAME_INVALID" },
    { what: "tags of an unknown repository", r: () => req("GET", "/v2/beyond/nosuchrepo/tags/list"), status: 404, code: "NAME_UNKNOWN" },
    { what: "a manifest of an unknown repository", r: () => req("GET", "/v2/beyond/nosuchrepo/manifests/latest"), status: 404, code: "NAME_UNKNOWN" },
    { what: "an unknown tag", r: () => req("GET", "/v2/<name>/manifests/nosuchtag", { name: repo }), status: 404, code: "MANIFEST_UNKNOWN" },
    { what: "an unknown blob", r: () => req("GET", `/v2/<name>/blobs/${dummyDigest}`, { name: repo }), status: 404, code: "BLOB_UNKNOWN" },
    { what: "DELETE of an unknown blob", r: () => req("DELETE", `/v2/<name>/blobs/${dummyDigest}`, { name: repo }), status: 404, code: "BLOB_UNKNOWN" },
    { what: "an unknown upload session", r: () => req("GET", `/v2/<name>/blobs/uploads/${randomUUID()}`, { name: repo }), status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
    { what: "a session id that is no uuid", r: () => req("PATCH", `/v2/<name>/blobs/uploads/..%2F..%2Fetc`, { name: repo, body: Buffer.from("x") }), status: 404, code: "BLOB_UPLOAD_UNKNOWN" },
    { what: "a digest that does not match the content", r: () => req("PUT", rel(post), { query: { digest: sha256("not this") }, body: Buffer.from("this") }), status: 400, code: "DIGEST_INVALID" },
    { what: "finishing an upload without a digest", r: async () => { const p = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo }); return req("PUT", rel(p), { body: Buffer.from("x") }); }, status: 400, code: "DIGEST_INVALID" },
    { what: "a Content-Length that is not the Content-Range's", r: async () => { const p = await req("POST", "/v2/<name>/blobs/uploads/", { name: repo }); return req("PATCH", rel(p), { headers: { "Content-Range": "0-9" }, body: Buffer.from("abc") }); }, status: 416, code: "SIZE_INVALID" },
    { what: "an unsatisfiable Range", r: () => req("GET", `/v2/<name>/blobs/${negCfg.digest}`, { name: repo, headers: { Range: "bytes=9999-" } }), status: 416, code: "SIZE_INVALID" },
    { what: "a manifest that is not JSON", r: () => req("PUT", "/v2/<name>/manifests/bad", { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: Buffer.from("blablabla") }), status: 400, code: "MANIFEST_INVALID" },
    { what: "a manifest whose schemaVersion is not 2", r: () => req("PUT", "/v2/<name>/manifests/bad", { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: Buffer.from(JSON.stringify({ schemaVersion: 1, mediaType: OCI_MANIFEST, config: {}, layers: [] })) }), status: 400, code: "MANIFEST_INVALID" },
    { what: "a manifest of a blob the repository lacks", r: () => req("PUT", "/v2/<name>/manifests/bad", { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: "x", digest: dummyDigest, size: 11 }, layers: [] })) }), status: 400, code: "MANIFEST_BLOB_UNKNOWN" },
    { what: "a manifest put under a digest it does not have", r: () => req("PUT", `/v2/<name>/manifests/${dummyDigest}`, { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: negOci.content }), status: 400, code: "DIGEST_INVALID" },
    { what: "a tag that is no tag", r: () => req("PUT", "/v2/<name>/manifests/-bad-", { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: negOci.content }), status: 400, code: "TAG_INVALID" },
    { what: "a manifest larger than 4 MiB", r: () => req("PUT", "/v2/<name>/manifests/big", { name: repo, headers: { "Content-Type": OCI_MANIFEST }, body: Buffer.alloc(4 * 1024 * 1024 + 1, 32) }), status: 413, code: "SIZE_INVALID" },
  ];
  for (const c of cases) {
    const r = await c.r();
    assert.equal(r.status, c.status, `${c.what}: ${r.status} ${r.body.toString().slice(0, 300)}`);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/, c.what);
    const body = r.json<{ errors: { code: string; message: string; detail?: unknown }[] }>();
    assert.equal(body.errors.length, 1, c.what);
    assert.equal(body.errors[0].code, c.code, c.what);
    assert.ok(ERROR_CODES.includes(body.errors[0].code), c.what);
    assert.equal(typeof body.errors[0].message, "string", c.what);
    assert.ok("detail" in body.errors[0], c.what);
    assert.equal(r.headers.get("docker-distribution-api-version"), "registry/2.0", c.what);
  }
});

test(`${B} › --metrics-addr serves /metrics on an address of its own (plain, no auth) and not on the registry's; --help documents both ways`, async () => {
  const { spawnSync } = await import("node:child_process");
  const hp = spawnSync("htpasswd", ["-bBc", "-C", "4", join(work, "one.htpasswd"), "alice", "wonderland"], { encoding: "utf8" });
  assert.equal(hp.status, 0, hp.stderr);
  const r2 = await start(["--metrics-addr", "127.0.0.1:0", "--auth", "htpasswd", "--htpasswd", join(work, "one.htpasswd")]);
  const m = /"metricsAddr":"(127\.0\.0\.1:\d+)"/.exec(r2.out);
  assert.ok(m, r2.out);
  const own = await fetch(`http://${m[1]}/metrics`);
  assert.equal(own.status, 200);
  assert.match(own.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.match(await own.text(), /^berth_registry_storage_bytes \d+$/m);
  assert.equal((await fetch(`http://${m[1]}/v2/`)).status, 404, "the metrics address serves nothing else");
  const main = await fetch(`${r2.base}/metrics`);
  assert.equal(main.status, 404, "on the registry's address /metrics is no route now");
  await main.arrayBuffer();
  const help = spawnSync(BERTH, ["registry", "serve", "--help"], { encoding: "utf8" });
  assert.match(help.stdout, /--metrics-addr string\s+Serve \/metrics on this address/);
  assert.match(help.stdout, /behind auth \(htpasswd users, basic\) when auth is on/);
});
