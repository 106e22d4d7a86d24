// berth registry auth: htpasswd basic and bearer tokens from the built-in /token endpoint, per-repository
// rules, the spec's 401 (with its WWW-Authenticate challenge) and 403 bodies, the access log's user,
// and the read-only HTML page. In-process servers on loopback, htpasswd files made by Apache's htpasswd -B.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { RegistryStorage } from "../../src/registry/storage.js";
import { createRegistryServer, type RegistryServer } from "../../src/registry/server.js";
import { RegistryAuth, DEFAULT_AUTH, Rules, type AuthConfig } from "../../src/registry/auth.js";
import { renderPage } from "../../src/registry/html.js";

const sha256 = (b: Buffer | string): string => "sha256:" + createHash("sha256").update(b).digest("hex");
const basic = (u: string, p: string): string => "Basic " + Buffer.from(`${u}:${p}`).toString("base64");

interface Running { url: string; root: string; reg: RegistryServer; auth: RegistryAuth; logs: string[]; stop: () => Promise<void> }

const work = mkdtempSync(join(tmpdir(), "berth-registry-auth-"));
const htpasswd = join(work, "htpasswd");

async function start(cfg: Partial<AuthConfig>): Promise<Running> {
  const root = mkdtempSync(join(work, "root-"));
  const storage = new RegistryStorage(root);
  await storage.init();
  const auth = new RegistryAuth({ ...DEFAULT_AUTH, htpasswd, ...cfg }, root);
  await auth.init();
  const logs: string[] = [];
  const reg = createRegistryServer({ storage, auth, log: (l) => logs.push(l) });
  await new Promise<void>((r) => reg.server.listen(0, "127.0.0.1", r));
  const port = (reg.server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, root, reg, auth, logs, stop: () => reg.close() };
}

async function errors(r: Response): Promise<{ code: string; message: string; detail: unknown }[]> {
  const j = (await r.json()) as { errors: { code: string; message: string; detail: unknown }[] };
  assert.ok(Array.isArray(j.errors) && j.errors.length > 0, "an errors list");
  return j.errors;
}

/** Pushes a one-layer image to name:tag with the given Authorization; returns the manifest's status. */
async function pushImage(url: string, name: string, tag: string, authz: () => Promise<string | undefined>, seed = name): Promise<number> {
  const layer = Buffer.from(`layer of ${seed}`);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", seed }));
  for (const b of [layer, config]) {
    const a = await authz();
    const r = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${sha256(b)}`, { method: "POST", body: b, headers: a ? { Authorization: a } : {} });
    await r.arrayBuffer();
    if (r.status !== 201) return r.status;
  }
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: sha256(layer), size: layer.length }],
  });
  const a = await authz();
  const r = await fetch(`${url}/v2/${name}/manifests/${tag}`, { method: "PUT", body: manifest, headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json", ...(a ? { Authorization: a } : {}) } });
  await r.arrayBuffer();
  return r.status;
}

const RULES: Partial<AuthConfig> = {
  groups: { devs: ["alice", "bob"] },
  access: [
    { users: ["alice"], repositories: ["alice/**"], actions: ["*"] },
    { groups: ["devs"], repositories: ["team/*"], actions: ["pull", "push"] },
    { users: ["bob"], repositories: ["alice/shared"], actions: ["pull"] },
    { anonymous: true, repositories: ["public/**"], actions: ["pull"] },
    { users: ["alice"], repositories: ["public/**"], actions: ["push"] },
  ],
};

before(() => {
  for (const [u, p] of [["alice", "wonderland"], ["bob", "builder"]]) {
    const r = spawnSync("htpasswd", ["-bB", "-C", "4", ...(u === "alice" ? ["-c"] : []), htpasswd, u, p], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  assert.match(readFileSync(htpasswd, "utf8"), /^alice:\$2y\$04\$/m);
});
after(() => rmSync(work, { recursive: true, force: true }));

test("rules: users, groups and anonymous; * within a component, ** across; no rules = any user everything", () => {
  const r = new Rules(RULES as AuthConfig);
  assert.deepEqual([...r.allowed("alice", "alice/x/y")].sort(), ["delete", "pull", "push"]);
  assert.deepEqual([...r.allowed("bob", "team/app")].sort(), ["pull", "push"]);
  assert.deepEqual([...r.allowed("bob", "team/app/sub")], []);
  assert.deepEqual([...r.allowed("bob", "alice/shared")], ["pull"]);
  assert.deepEqual([...r.allowed("bob", "alice/private")], []);
  assert.deepEqual([...r.allowed(undefined, "public/a/b")], ["pull"]);
  assert.deepEqual([...r.allowed("carol", "public/a")], ["pull"], "anonymous rules apply to every user");
  assert.deepEqual([...r.allowed(undefined, "team/app")], []);
  const open = new Rules({ groups: {} });
  assert.deepEqual([...open.allowed("anyone", "x")].sort(), ["delete", "pull", "push"]);
  assert.deepEqual([...open.allowed(undefined, "x")], []);
});

describe("htpasswd (basic)", () => {
  let s: Running;
  before(async () => { s = await start({ type: "htpasswd", ...RULES }); });
  after(async () => { await s.stop(); });

  test("/v2/ without credentials or with a wrong password is 401 UNAUTHORIZED with a Basic challenge; right ones 200", async () => {
    const none = await fetch(`${s.url}/v2/`);
    assert.equal(none.status, 401);
    assert.equal(none.headers.get("www-authenticate"), 'Basic realm="berth-registry"');
    assert.equal((await errors(none))[0].code, "UNAUTHORIZED");
    const wrong = await fetch(`${s.url}/v2/`, { headers: { Authorization: basic("alice", "nope") } });
    assert.equal(wrong.status, 401);
    assert.equal((await errors(wrong))[0].code, "UNAUTHORIZED");
    const unknown = await fetch(`${s.url}/v2/`, { headers: { Authorization: basic("mallory", "wonderland") } });
    assert.equal(unknown.status, 401);
    await unknown.arrayBuffer();
    const ok = await fetch(`${s.url}/v2/`, { headers: { Authorization: basic("alice", "wonderland") } });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
  });

  test("per-repository rights: push where allowed, 403 DENIED where not, anonymous pull of public/, 401 for anonymous push", async () => {
    const alice = async () => basic("alice", "wonderland");
    const bob = async () => basic("bob", "builder");
    assert.equal(await pushImage(s.url, "alice/app", "1", alice), 201);
    assert.equal(await pushImage(s.url, "team/app", "1", bob), 201);
    assert.equal(await pushImage(s.url, "public/tool", "1", alice), 201);
    const denied = await fetch(`${s.url}/v2/alice/app/blobs/uploads/`, { method: "POST", headers: { Authorization: await bob() } });
    assert.equal(denied.status, 403);
    const e = (await errors(denied))[0];
    assert.equal(e.code, "DENIED");
    assert.deepEqual(e.detail, [{ Type: "repository", Name: "alice/app", Action: "pull,push" }]);
    const bobPull = await fetch(`${s.url}/v2/alice/app/manifests/1`, { headers: { Authorization: await bob() } });
    assert.equal(bobPull.status, 403);
    await bobPull.arrayBuffer();
    const anonPull = await fetch(`${s.url}/v2/public/tool/manifests/1`);
    assert.equal(anonPull.status, 200);
    await anonPull.arrayBuffer();
    const anonPush = await fetch(`${s.url}/v2/public/tool/blobs/uploads/`, { method: "POST" });
    assert.equal(anonPush.status, 401);
    assert.equal(anonPush.headers.get("www-authenticate"), 'Basic realm="berth-registry"');
    assert.equal((await errors(anonPush))[0].code, "UNAUTHORIZED");
    const bobDelete = await fetch(`${s.url}/v2/team/app/manifests/1`, { method: "DELETE", headers: { Authorization: await bob() } });
    assert.equal(bobDelete.status, 403, "devs may pull and push team/*, not delete");
    await bobDelete.arrayBuffer();
  });

  test("the catalog lists only what the caller may pull; a mount from a repository the caller cannot read is an upload", async () => {
    const cat = async (a?: string) => ((await (await fetch(`${s.url}/v2/_catalog`, { headers: a ? { Authorization: a } : {} })).json()) as { repositories: string[] }).repositories;
    assert.deepEqual(await cat(basic("alice", "wonderland")), ["alice/app", "public/tool", "team/app"], "alice is in devs");
    assert.deepEqual(await cat(basic("bob", "builder")), ["public/tool", "team/app"]);
    assert.deepEqual(await cat(), ["public/tool"]);
    const layer = sha256("layer of alice/app");
    const mount = await fetch(`${s.url}/v2/team/app/blobs/uploads/?mount=${layer}&from=alice/app`, { method: "POST", headers: { Authorization: basic("bob", "builder") } });
    assert.equal(mount.status, 202, "bob may not read alice/app: no mount");
    await mount.arrayBuffer();
    const head = await fetch(`${s.url}/v2/team/app/blobs/${layer}`, { method: "HEAD", headers: { Authorization: basic("bob", "builder") } });
    assert.equal(head.status, 404);
    const ok = await fetch(`${s.url}/v2/alice/other/blobs/uploads/?mount=${layer}&from=alice/app`, { method: "POST", headers: { Authorization: basic("alice", "wonderland") } });
    assert.equal(ok.status, 201);
    await ok.arrayBuffer();
  });

  test("the access log names the authenticated user", () => {
    const lines = s.logs.map((l) => JSON.parse(l) as { user?: string; method?: string; path?: string; status?: number });
    assert.ok(lines.some((l) => l.user === "bob" && l.status === 403 && l.path === "/v2/alice/app/blobs/uploads/"), s.logs.slice(-5).join("\n"));
    assert.ok(lines.some((l) => l.user === "alice" && l.method === "PUT" && l.status === 201));
    assert.ok(lines.some((l) => l.user === undefined && l.path === "/v2/public/tool/manifests/1" && l.status === 200));
  });

  test("the HTML page shows a visitor what they may pull; anonymous sees public/ only", async () => {
    const anon = await (await fetch(`${s.url}/`)).text();
    assert.match(anon, /public\/tool/);
    assert.doesNotMatch(anon, /alice\/app|team\/app/);
    const r = await fetch(`${s.url}/`, { headers: { Authorization: basic("alice", "wonderland") } });
    assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
    const page = await r.text();
    assert.match(page, /alice\/app/);
    assert.match(page, /Signed in as <b>alice<\/b>/);
    const bobs = await (await fetch(`${s.url}/`, { headers: { Authorization: basic("bob", "builder") } })).text();
    assert.match(bobs, /team\/app/);
    assert.doesNotMatch(bobs, /alice\/app/);
    const wrong = await fetch(`${s.url}/`, { headers: { Authorization: basic("bob", "nope") } });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get("www-authenticate"), 'Basic realm="berth-registry"');
    await wrong.arrayBuffer();
  });
});

describe("token (bearer, Docker Hub's flow)", () => {
  let s: Running;
  before(async () => { s = await start({ type: "token", ...RULES }); });
  after(async () => { await s.stop(); });

  const token = async (scope: string | string[], who?: [string, string]): Promise<Response> => {
    const u = new URL(`${s.url}/token`);
    u.searchParams.set("service", "berth-registry");
    for (const sc of [scope].flat()) u.searchParams.append("scope", sc);
    return fetch(u, { headers: who ? { Authorization: basic(...who) } : {} });
  };
  const bearer = async (scope: string, who?: [string, string]): Promise<string> => {
    const r = await token(scope, who);
    assert.equal(r.status, 200);
    return `Bearer ${((await r.json()) as { token: string }).token}`;
  };

  test("a request without a token is 401 with the Bearer challenge naming the realm, service and scope", async () => {
    const v2 = await fetch(`${s.url}/v2/`);
    assert.equal(v2.status, 401);
    assert.equal(v2.headers.get("www-authenticate"), `Bearer realm="${s.url}/token",service="berth-registry"`);
    assert.equal((await errors(v2))[0].code, "UNAUTHORIZED");
    const m = await fetch(`${s.url}/v2/team/app/manifests/1`);
    assert.equal(m.headers.get("www-authenticate"), `Bearer realm="${s.url}/token",service="berth-registry",scope="repository:team/app:pull"`);
    await m.arrayBuffer();
    const up = await fetch(`${s.url}/v2/team/app/blobs/uploads/`, { method: "POST" });
    assert.equal(up.headers.get("www-authenticate"), `Bearer realm="${s.url}/token",service="berth-registry",scope="repository:team/app:pull,push"`);
    await up.arrayBuffer();
    const cat = await fetch(`${s.url}/v2/_catalog`);
    assert.match(cat.headers.get("www-authenticate") ?? "", /scope="registry:catalog:\*"/);
    await cat.arrayBuffer();
  });

  test("GET /token answers token, access_token, expires_in, issued_at; a JWT granting what the rules allow of the scope", async () => {
    const r = await token(["repository:team/app:pull,push,delete", "repository:alice/app:pull"], ["bob", "builder"]);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    assert.equal(j.access_token, j.token);
    assert.equal(j.expires_in, 300);
    assert.ok(Math.abs(Date.parse(j.issued_at) - Date.now()) < 120_000, j.issued_at);
    const [h, c] = j.token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>);
    assert.equal(h.alg, "HS256");
    assert.equal(c.sub, "bob");
    assert.equal(c.aud, "berth-registry");
    assert.deepEqual(c.access, [{ type: "repository", name: "team/app", actions: ["pull", "push"] }, { type: "repository", name: "alice/app", actions: [] }]);
    const bad = await token("repository:team/app:pull", ["bob", "wrong"]);
    assert.equal(bad.status, 401);
    assert.equal((await errors(bad))[0].code, "UNAUTHORIZED");
    const anon = (await (await token("repository:public/tool:pull,push")).json()) as { token: string };
    assert.deepEqual((JSON.parse(Buffer.from(anon.token.split(".")[1], "base64url").toString()) as { access: unknown }).access, [{ type: "repository", name: "public/tool", actions: ["pull"] }]);
  });

  test("push and pull with tokens; a pull-only token pushing is 401 insufficient_scope; a right the rules deny is 403 DENIED", async () => {
    assert.equal(await pushImage(s.url, "team/app", "1", () => bearer("repository:team/app:pull,push", ["bob", "builder"])), 201);
    const pullTok = await bearer("repository:team/app:pull", ["bob", "builder"]);
    const get = await fetch(`${s.url}/v2/team/app/manifests/1`, { headers: { Authorization: pullTok, Accept: "application/vnd.oci.image.manifest.v1+json" } });
    assert.equal(get.status, 200);
    await get.arrayBuffer();
    const push = await fetch(`${s.url}/v2/team/app/blobs/uploads/`, { method: "POST", headers: { Authorization: pullTok } });
    assert.equal(push.status, 401);
    assert.equal(push.headers.get("www-authenticate"), `Bearer realm="${s.url}/token",service="berth-registry",scope="repository:team/app:pull,push",error="insufficient_scope"`);
    await push.arrayBuffer();
    const del = await fetch(`${s.url}/v2/team/app/manifests/1`, { method: "DELETE", headers: { Authorization: await bearer("repository:team/app:delete", ["bob", "builder"]) } });
    assert.equal(del.status, 403);
    assert.equal((await errors(del))[0].code, "DENIED");
    // Another repository's token does not open this one.
    const other = await fetch(`${s.url}/v2/team/app/manifests/1`, { headers: { Authorization: await bearer("repository:team/other:pull", ["bob", "builder"]) } });
    assert.equal(other.status, 401);
    await other.arrayBuffer();
    // Anonymous tokens pull public/ (pushed by alice, who has push there).
    assert.equal(await pushImage(s.url, "public/tool", "1", () => bearer("repository:public/tool:pull,push", ["alice", "wonderland"])), 201);
    const anon = await fetch(`${s.url}/v2/public/tool/manifests/1`, { headers: { Authorization: await bearer("repository:public/tool:pull") } });
    assert.equal(anon.status, 200);
    await anon.arrayBuffer();
    const line = s.logs.map((l) => JSON.parse(l) as { user?: string; method?: string; path?: string; status?: number }).find((l) => l.method === "PUT" && l.path === "/v2/team/app/manifests/1");
    assert.equal(line?.user, "bob");
  });

  test("POST /token (OAuth2 password grant, as containerd sends) answers an access_token; a wrong password is 401; other grants 400", async () => {
    const post = (form: Record<string, string>): Promise<Response> => fetch(`${s.url}/token`, { method: "POST", body: new URLSearchParams(form), headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    const r = await post({ grant_type: "password", username: "bob", password: "builder", service: "berth-registry", scope: "repository:team/app:pull", client_id: "containerd" });
    assert.equal(r.status, 200);
    const j = (await r.json()) as { access_token: string; expires_in: number };
    assert.equal(j.expires_in, 300);
    const get = await fetch(`${s.url}/v2/team/app/tags/list`, { headers: { Authorization: `Bearer ${j.access_token}` } });
    assert.equal(get.status, 200, "the token carries the posted scope");
    await get.arrayBuffer();
    const bad = await post({ grant_type: "password", username: "bob", password: "nope", scope: "repository:team/app:pull" });
    assert.equal(bad.status, 401);
    assert.equal((await errors(bad))[0].code, "UNAUTHORIZED");
    const refresh = await post({ grant_type: "refresh_token", refresh_token: "x" });
    assert.equal(refresh.status, 400);
    await refresh.arrayBuffer();
  });

  test("the registry checks the token's signature, expiry and audience", async () => {
    const good = await bearer("repository:team/app:pull", ["bob", "builder"]);
    const [h, c, sig] = good.slice(7).split(".");
    const claims = JSON.parse(Buffer.from(c, "base64url").toString()) as Record<string, unknown>;
    const key = readFileSync(join(s.root, "_auth", "token.key"));
    const forge = (patch: Record<string, unknown>, k: Buffer = key): string => {
      const body = `${h}.${Buffer.from(JSON.stringify({ ...claims, ...patch })).toString("base64url")}`;
      return `Bearer ${body}.${createHmac("sha256", k).update(body).digest("base64url")}`;
    };
    const tryTok = async (t: string): Promise<Response> => fetch(`${s.url}/v2/team/app/manifests/1`, { headers: { Authorization: t } });
    const ok = await tryTok(forge({}));
    assert.equal(ok.status, 200, "re-signing the same claims with the key is accepted (the forge is faithful)");
    await ok.arrayBuffer();
    for (const [what, t] of [
      ["a changed claim under the old signature", `Bearer ${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "alice" })).toString("base64url")}.${sig}`],
      ["another key", forge({}, Buffer.from("another key, not the registry's"))],
      ["expired", forge({ exp: Math.floor(Date.now() / 1000) - 10 })],
      ["another audience", forge({ aud: "some-other-registry" })],
      ["another issuer", forge({ iss: "someone" })],
      ["garbage", "Bearer not.a.jwt"],
    ] as const) {
      const r = await tryTok(t);
      assert.equal(r.status, 401, what);
      assert.match(r.headers.get("www-authenticate") ?? "", /error="invalid_token"/, what);
      assert.equal((await errors(r))[0].code, "UNAUTHORIZED", what);
    }
  });

  test("catalog needs registry:catalog:* and lists what the token's user may pull", async () => {
    const t = await bearer("registry:catalog:*", ["bob", "builder"]);
    const r = await fetch(`${s.url}/v2/_catalog`, { headers: { Authorization: t } });
    assert.equal(r.status, 200);
    // What bob may pull, though his catalog token carries no repository scope.
    assert.deepEqual(((await r.json()) as { repositories: string[] }).repositories, ["public/tool", "team/app"]);
    const anon = await fetch(`${s.url}/v2/_catalog`, { headers: { Authorization: await bearer("registry:catalog:*") } });
    assert.deepEqual(((await anon.json()) as { repositories: string[] }).repositories, ["public/tool"]);
  });
});

test("the HTML page escapes names", () => {
  const html = renderPage([{ name: "a<b>", tags: [{ tag: "x\"y", digest: "sha256:" + "0".repeat(64) }] }]);
  assert.match(html, /a&#60;b&#62;/);
  assert.doesNotMatch(html, /a<b>/);
});

test("the htpasswd file is re-read when it changes: a user added while serving logs in, a removed one no longer", async () => {
  const file = join(work, "htpasswd-live");
  assert.equal(spawnSync("htpasswd", ["-cbB", "-C", "4", file, "carol", "one"]).status, 0);
  const s = await start({ type: "htpasswd", htpasswd: file });
  try {
    const status = async (u: string, p: string): Promise<number> => { const r = await fetch(`${s.url}/v2/`, { headers: { Authorization: basic(u, p) } }); await r.arrayBuffer(); return r.status; };
    assert.equal(await status("carol", "one"), 200);
    assert.equal(await status("dave", "two"), 401);
    assert.equal(spawnSync("htpasswd", ["-bB", "-C", "4", file, "dave", "two"]).status, 0);
    assert.equal(spawnSync("htpasswd", ["-D", file, "carol"]).status, 0);
    const deadline = Date.now() + 10_000;
    while ((await status("dave", "two")) !== 200) {
      assert.ok(Date.now() < deadline, "dave can log in once the file changed");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await status("carol", "one"), 401, "carol was removed (her remembered password is forgotten with the old file)");
  } finally { await s.stop(); }
});

test("a missing htpasswd file fails at start", async () => {
  const a = new RegistryAuth({ ...DEFAULT_AUTH, type: "htpasswd", htpasswd: join(work, "nope") }, work);
  await assert.rejects(a.init(), /htpasswd file/);
});

test("/metrics is behind auth when auth is on: the spec's 401 with a Basic challenge without credentials (anonymous rules do not open it), 200 for an htpasswd user in both modes", async () => {
  for (const type of ["htpasswd", "token"] as const) {
    const s = await start({ type, ...RULES });
    try {
      const none = await fetch(`${s.url}/metrics`);
      assert.equal(none.status, 401, type);
      assert.equal(none.headers.get("www-authenticate"), `Basic realm="${DEFAULT_AUTH.service}"`, type);
      assert.equal((await errors(none))[0].code, "UNAUTHORIZED");
      const wrong = await fetch(`${s.url}/metrics`, { headers: { Authorization: basic("alice", "nope") } });
      assert.equal(wrong.status, 401, type);
      await wrong.arrayBuffer();
      const ok = await fetch(`${s.url}/metrics`, { headers: { Authorization: basic("bob", "builder") } });
      assert.equal(ok.status, 200, type);
      assert.match(await ok.text(), /^berth_registry_requests_total\{method="GET",status="401"\} 2$/m, type);
      assert.ok(s.logs.some((l) => l.includes('"path":"/metrics"') && l.includes('"user":"bob"')), "the access log names the scraper");
    } finally { await s.stop(); }
  }
  // Without auth it is open, as before.
  const root = mkdtempSync(join(work, "root-"));
  const storage = new RegistryStorage(root);
  await storage.init();
  const reg = createRegistryServer({ storage });
  await new Promise<void>((r) => reg.server.listen(0, "127.0.0.1", r));
  try {
    const r = await fetch(`http://127.0.0.1:${(reg.server.address() as AddressInfo).port}/metrics`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  } finally { await reg.close(); }
});
