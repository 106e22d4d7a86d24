// berth registry: configuration (flags over the YAML file over the defaults) and deletes turned off.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { resolveConfig } from "../../src/registry/cli.js";
import { RegistryStorage } from "../../src/registry/storage.js";
import { createRegistryServer } from "../../src/registry/server.js";
import { UsageError } from "../../src/lib/args.js";

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), "berth-registry-"));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("config: defaults; the YAML file's keys are the flags' names; flags win", async (t) => {
  const { auth, proxies, ...d } = await resolveConfig({});
  assert.equal(auth.type, "none");
  assert.deepEqual(proxies, []);
  assert.deepEqual(d, { addr: "0.0.0.0:5000", root: "/var/lib/berth-registry", chunkMinLength: 0, gcIntervalMs: 0, gcLeaseMs: 600_000, uploadTtlMs: 86_400_000, deleteEnabled: true, allowSparseIndex: false });
  const dir = tmp(t);
  const file = join(dir, "r.yml");
  writeFileSync(file, "addr: 127.0.0.1:5001\nroot: /srv/reg\ngc-interval: 1h\ngc-lease: 90s\ndelete-enabled: false\nallow-sparse-index: true\nchunk-min-length: 4096\n");
  const { auth: _a, proxies: _p, ...f } = await resolveConfig({ config: file });
  assert.deepEqual(f, { addr: "127.0.0.1:5001", root: "/srv/reg", chunkMinLength: 4096, gcIntervalMs: 3_600_000, gcLeaseMs: 90_000, uploadTtlMs: 86_400_000, deleteEnabled: false, allowSparseIndex: true });
  const w = await resolveConfig({ config: file, addr: "127.0.0.1:6000", "gc-lease": "5m", "delete-enabled": "true" });
  assert.equal(w.addr, "127.0.0.1:6000");
  assert.equal(w.gcLeaseMs, 300_000);
  assert.equal(w.deleteEnabled, true);
  assert.equal(w.root, "/srv/reg");
  writeFileSync(file, "adr: typo\n");
  await assert.rejects(resolveConfig({ config: file }), (e: unknown) => e instanceof UsageError && /unknown key "adr"/.test(e.message));
  await assert.rejects(resolveConfig({ "gc-lease": "soon" }), UsageError);
  await assert.rejects(resolveConfig({ "delete-enabled": "maybe" }), UsageError);
  await assert.rejects(resolveConfig({ "chunk-min-length": "big" }), UsageError);
});

test("delete-enabled false: DELETE of manifests and blobs is 405 UNSUPPORTED and removes nothing", async (t) => {
  const root = tmp(t);
  const storage = new RegistryStorage(root);
  await storage.init();
  const reg = createRegistryServer({ storage, deleteEnabled: false });
  await new Promise<void>((r) => reg.server.listen(0, "127.0.0.1", r));
  t.after(() => reg.close());
  const url = `http://127.0.0.1:${(reg.server.address() as AddressInfo).port}`;
  const data = "some blob";
  const d = "sha256:" + createHash("sha256").update(data).digest("hex");
  assert.equal((await fetch(`${url}/v2/x/blobs/uploads/?digest=${d}`, { method: "POST", body: data })).status, 201);
  const del = await fetch(`${url}/v2/x/blobs/${d}`, { method: "DELETE" });
  assert.equal(del.status, 405);
  assert.equal(((await del.json()) as { errors: { code: string }[] }).errors[0].code, "UNSUPPORTED");
  assert.equal((await fetch(`${url}/v2/x/blobs/${d}`, { method: "HEAD" })).status, 200);
  const m = await fetch(`${url}/v2/x/manifests/latest`, { method: "DELETE" });
  assert.equal(m.status, 405);
});

test("config: auth (type, htpasswd, groups, access rules), tls and proxies from the file; flags win; bad values are usage errors", async (t) => {
  const dir = tmp(t);
  const file = join(dir, "r.yml");
  writeFileSync(file, [
    "tls-cert: /etc/reg/cert.pem", "tls-key: /etc/reg/key.pem",
    "proxy:", "  - hub=http://127.0.0.1:5001/", "  - { name: q, url: https://quay.example, username: u, password: p }",
    "auth:", "  type: token", "  htpasswd: /etc/reg/htpasswd", "  token-expiry: 10m", "  service: reg.example",
    "  groups: { devs: [alice, bob] }",
    "  access:", "    - { groups: [devs], repositories: [\"team/*\"], actions: [pull, push] }", "    - { anonymous: true, repositories: [\"public/**\"], actions: [pull] }",
  ].join("\n") + "\n");
  const c = await resolveConfig({ config: file });
  assert.deepEqual(c.tls, { cert: "/etc/reg/cert.pem", key: "/etc/reg/key.pem" });
  assert.deepEqual(c.proxies, [{ name: "hub", url: "http://127.0.0.1:5001" }, { name: "q", url: "https://quay.example", username: "u", password: "p" }]);
  assert.equal(c.auth.type, "token");
  assert.equal(c.auth.htpasswd, "/etc/reg/htpasswd");
  assert.equal(c.auth.tokenExpirySec, 600);
  assert.equal(c.auth.service, "reg.example");
  assert.deepEqual(c.auth.groups, { devs: ["alice", "bob"] });
  assert.deepEqual(c.auth.access, [
    { users: [], groups: ["devs"], anonymous: false, repositories: ["team/*"], actions: ["pull", "push"] },
    { users: [], groups: [], anonymous: true, repositories: ["public/**"], actions: ["pull"] },
  ]);
  const w = await resolveConfig({ config: file, auth: "htpasswd", htpasswd: "/other", proxy: ["x=http://127.0.0.1:9"] });
  assert.equal(w.auth.type, "htpasswd");
  assert.equal(w.auth.htpasswd, "/other");
  assert.deepEqual(w.proxies, [{ name: "x", url: "http://127.0.0.1:9" }]);
  const bad = async (flags: Record<string, string | string[]>, re: RegExp): Promise<void> => {
    await assert.rejects(resolveConfig(flags), (e: unknown) => e instanceof UsageError && re.test(e.message), String(re));
  };
  await bad({ auth: "ldap" }, /invalid auth type "ldap"/);
  await bad({ auth: "htpasswd" }, /needs an htpasswd file/);
  await bad({ "tls-cert": "/c.pem" }, /--tls-cert and --tls-key go together/);
  await bad({ proxy: ["nourl"] } as never, /want NAME=URL/);
  await bad({ proxy: ["Hub=http://x"] } as never, /invalid proxy name/);
  await bad({ proxy: ["a=ftp://x"] } as never, /want http/);
  writeFileSync(file, "auth:\n  access:\n    - { users: [a], repositories: [x], actions: [pull, fly] }\n");
  await assert.rejects(resolveConfig({ config: file }), (e: unknown) => e instanceof UsageError && /unknown action "fly"/.test(e.message));
  writeFileSync(file, "auth:\n  tpye: token\n");
  await assert.rejects(resolveConfig({ config: file }), (e: unknown) => e instanceof UsageError && /auth: unknown key "tpye"/.test(e.message));
});
