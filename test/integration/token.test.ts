/**
 * The bearer-token flow (as Docker Hub does it): a registry that answers 401 with
 * WWW-Authenticate: Bearer realm/service/scope, and a token server on 127.0.0.1 that
 * signs JWTs the registry trusts (x5c chain to its root certificate).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import { createSign, randomBytes } from "node:crypto";
import { Daemon, sleep, freePort } from "./harness.js";

const d = new Daemon();
let work: string;
let registry: ChildProcess | undefined;
let tokens: http.Server | undefined;
let regPort = 0;
const scopesAsked: string[] = [];

const b64u = (v: Buffer | string) => Buffer.from(v).toString("base64url");

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-token-"));
  const key = join(work, "key.pem"), cert = join(work, "cert.pem");
  assert.equal(spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=berth-test-token"], { stdio: "ignore" }).status, 0);
  const der = Buffer.from(readFileSync(cert, "utf8").replace(/-----[^-]+-----|\s/g, ""), "base64");
  const tokenPort = await freePort();
  tokens = http.createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const scope = u.searchParams.get("scope") ?? "";
    scopesAsked.push(scope);
    const [, name, actions] = scope.split(":");
    const now = Math.floor(Date.now() / 1000);
    const header = b64u(JSON.stringify({ typ: "JWT", alg: "RS256", x5c: [der.toString("base64")] }));
    const claims = b64u(JSON.stringify({ iss: "berth-test-issuer", sub: "", aud: "berth-test", exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString("hex"), access: name ? [{ type: "repository", name, actions: (actions ?? "").split(",") }] : [] }));
    const sig = createSign("RSA-SHA256").update(`${header}.${claims}`).sign(readFileSync(key));
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ token: `${header}.${claims}.${b64u(sig)}` }));
  });
  await new Promise<void>((r) => tokens!.listen(tokenPort, "127.0.0.1", r));
  regPort = await freePort();
  writeFileSync(join(work, "reg.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\nauth:\n  token:\n    realm: http://127.0.0.1:${tokenPort}/token\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: ${cert}\nhttp:\n  addr: 127.0.0.1:${regPort}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "reg.yml")], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`http://127.0.0.1:${regPort}/v2/`).then((r) => r.status, () => 0)) === 401) break;
    await sleep(100);
  }
  await d.start();
  await d.bootstrap();
});

after(async () => {
  registry?.kill("SIGTERM");
  tokens?.close();
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

test("push and pull through the bearer-token flow", async () => {
  // The token server lives in this process: the CLI runs asynchronously so it can answer.
  const ref = `127.0.0.1:${regPort}/tok/bb:1`;
  d.berth(["tag", "busybox", ref]);
  const push = await d.berthAsync(["push", ref]);
  assert.equal(push.code, 0, push.stderr + push.stdout);
  assert.ok(scopesAsked.includes("repository:tok/bb:pull,push"), scopesAsked.join(" "));
  d.berth(["rmi", ref]);
  const pull = await d.berthAsync(["pull", ref]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.ok(scopesAsked.includes("repository:tok/bb:pull"));
  assert.equal((await d.berthAsync(["run", "--rm", ref, "echo", "token ok"])).stdout, "token ok\n");
});
