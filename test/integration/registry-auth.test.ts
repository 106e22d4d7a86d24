/**
 * `berth registry serve` with auth, TLS and a pull-through cache, as users run it (bin/berth registry serve),
 * with real clients: berth login/push/pull through a real berthd, the docker CLI on berthd and on dockerd
 * (docker login), skopeo and curl over HTTPS with a self-signed certificate, and headless Chromium on the
 * HTML page. Every registry here listens on 127.0.0.1 only.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, copyFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, PrivateDockerd, DOCKER_CLI_DEBIAN, BERTH, sleep } from "./harness.js";

const src = new Daemon();
/** Docker's own registry client (docker login/push/pull on a dockerd): a dockerd of this test's. */
const dockerd = new PrivateDockerd();
let work: string;
const regs: { proc: ChildProcess; out: () => string }[] = [];

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; registries said:\n${regs.map((r) => r.out().slice(-1500)).join("\n---\n")}`);
    await sleep(50);
  }
}

async function serve(args: string[]): Promise<{ port: number; out: () => string }> {
  const proc = spawn(BERTH, ["registry", "serve", "--addr", "127.0.0.1:0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout!.on("data", (d) => { out += d; });
  proc.stderr!.on("data", (d) => { out += d; });
  const r = { proc, out: () => out };
  regs.push(r);
  const port = await until("the registry to listen", () => {
    if (proc.exitCode !== null) throw new Error(`berth registry serve exited ${proc.exitCode}: ${out}`);
    const m = /"msg":"listening","addr":"127\.0\.0\.1:(\d+)"/.exec(out);
    return m ? Number(m[1]) : undefined;
  });
  return { port, out: r.out };
}

let basicReg: { port: number; out: () => string };
let tokenReg: { port: number; out: () => string };
let tlsReg: { port: number; out: () => string };
let certDir: string;
const dockerCfg = (): Record<string, string> => ({ DOCKER_CONFIG: join(work, "berth-config") });

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-registry-auth-it-"));
  const htpasswd = join(work, "htpasswd");
  for (const [u, p, c] of [["alice", "wonderland", "-c"], ["bob", "builder", ""]]) {
    const r = spawnSync("htpasswd", ["-bB", "-C", "4", ...(c ? [c] : []), htpasswd, u, p], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  // alice may do anything under team/; bob may only pull there; anyone may pull public/.
  writeFileSync(join(work, "auth.yml"), [
    "auth:", `  htpasswd: ${htpasswd}`,
    "  access:",
    "    - { users: [alice], repositories: [\"**\"], actions: [\"*\"] }",
    "    - { users: [bob], repositories: [\"team/**\"], actions: [pull] }",
    "    - { anonymous: true, repositories: [\"public/**\"], actions: [pull] }",
  ].join("\n") + "\n");
  // A self-signed certificate for 127.0.0.1 (the CA is the certificate itself).
  certDir = join(work, "certs");
  mkdirSync(certDir);
  const ssl = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(work, "key.pem"), "-out", join(work, "cert.pem")], { encoding: "utf8" });
  assert.equal(ssl.status, 0, ssl.stderr);
  copyFileSync(join(work, "cert.pem"), join(certDir, "ca.crt"));
  [basicReg, tokenReg, tlsReg] = await Promise.all([
    serve(["--root", join(work, "basic"), "--config", join(work, "auth.yml"), "--auth", "htpasswd"]),
    serve(["--root", join(work, "token"), "--config", join(work, "auth.yml"), "--auth", "token"]),
    serve(["--root", join(work, "tls"), "--config", join(work, "auth.yml"), "--auth", "token", "--tls-cert", join(work, "cert.pem"), "--tls-key", join(work, "key.pem")]),
  ]);
  await Promise.all([src.start().then(() => src.bootstrap()), dockerd.start()]);
  dockerd.loadFrom(src, "busybox:latest");
});

after(async () => {
  for (const r of regs) if (r.proc.exitCode === null) r.proc.kill("SIGTERM");
  try {
    await until("the registries to exit", () => regs.every((r) => r.proc.exitCode !== null) || undefined);
  } catch (e) {
    const stuck = regs.filter((r) => r.proc.exitCode === null);
    const conns = stuck.map((r) => spawnSync("ss", ["-tnp"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.includes(`pid=${r.proc.pid},`)).join("\n"));
    for (const r of stuck) r.proc.kill("SIGKILL");
    throw new Error(`${(e as Error).message}\nconnections:\n${conns.join("\n")}`);
  } finally {
    await dockerd.stop();
    await src.stop();
    rmSync(work, { recursive: true, force: true });
  }
});

/** Waits for a line in a registry's log (the registry writes asynchronously; spawnSync held this process). */
const logged = (r: { out: () => string }, re: RegExp): Promise<true> => until(`${re} in the log`, () => re.test(r.out()) || undefined);

test("htpasswd: berth login refuses a wrong password; push and pull after login; anonymous push is refused; anonymous pull of public/", async () => {
  const host = `127.0.0.1:${basicReg.port}`;
  const bad = src.berth(["login", "-u", "alice", "--password-stdin", host], { input: "nope\n", env: dockerCfg() });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /unauthorized/i);
  const anon = src.berth(["tag", "busybox", `${host}/team/bb:1`]);
  assert.equal(anon.code, 0);
  const refused = src.berth(["push", `${host}/team/bb:1`], { env: dockerCfg() });
  assert.notEqual(refused.code, 0, "no credentials, no push");
  await logged(basicReg, /"path":"\/v2\/team\/bb\/blobs\/[^"]*","status":401/);
  const ok = src.berth(["login", "-u", "alice", "--password-stdin", host], { input: "wonderland\n", env: dockerCfg() });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /Login Succeeded/);
  const push = src.berth(["push", `${host}/team/bb:1`], { env: dockerCfg() });
  assert.equal(push.code, 0, push.stderr + basicReg.out().slice(-2000));
  await logged(basicReg, /"method":"PUT","path":"\/v2\/team\/bb\/manifests\/1","status":201,"user":"alice"/);
  assert.equal(src.berth(["tag", "busybox", `${host}/public/bb:1`]).code, 0);
  assert.equal(src.berth(["push", `${host}/public/bb:1`], { env: dockerCfg() }).code, 0);
  assert.equal(src.berth(["rmi", `${host}/team/bb:1`, `${host}/public/bb:1`]).code, 0);
  const pull = src.berth(["pull", `${host}/team/bb:1`], { env: dockerCfg() });
  assert.equal(pull.code, 0, pull.stderr);
  // Without credentials (another config dir): public/ pulls, team/ does not.
  const noCreds = { DOCKER_CONFIG: join(work, "empty-config") };
  assert.equal(src.berth(["pull", `${host}/public/bb:1`], { env: noCreds }).code, 0);
  const denied = src.berth(["pull", `${host}/team/bb:1`], { env: noCreds });
  assert.notEqual(denied.code, 0);
  assert.equal(src.berth(["rmi", `${host}/team/bb:1`, `${host}/public/bb:1`]).code, 0);
  // The docker CLI against dockerd: login, push, pull with basic auth.
  const ocfg = join(work, "docker-basic");
  const owrong = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "login", "-u", "bob", "--password-stdin", host], { input: "nope\n", encoding: "utf8" });
  assert.notEqual(owrong.status, 0);
  assert.match(owrong.stderr, /unauthorized/i);
  const ologin = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "login", "-u", "alice", "--password-stdin", host], { input: "wonderland\n", encoding: "utf8" });
  assert.equal(ologin.status, 0, ologin.stderr);
  const ref = `${host}/team/basic-dockerd:1`;
  assert.equal(spawnSync(DOCKER_CLI_DEBIAN, ["-H", dockerd.host, "tag", "busybox:latest", ref]).status, 0);
  const opush = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "push", ref], { encoding: "utf8" });
  assert.equal(opush.status, 0, opush.stderr + basicReg.out().slice(-2000));
  assert.equal(spawnSync(DOCKER_CLI_DEBIAN, ["-H", dockerd.host, "rmi", ref]).status, 0);
  const dpull = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "pull", ref], { encoding: "utf8" });
  assert.equal(dpull.status, 0, dpull.stderr);
  await logged(basicReg, /"method":"PUT","path":"\/v2\/team\/basic-dockerd\/manifests\/1","status":201,"user":"alice"/);
});

test("token: berth login and docker login (on berthd and on dockerd) get tokens from /token; push and pull; bob may pull but not push", async () => {
  const host = `127.0.0.1:${tokenReg.port}`;
  const login = src.berth(["login", "-u", "alice", "--password-stdin", host], { input: "wonderland\n", env: dockerCfg() });
  assert.equal(login.code, 0, login.stderr + tokenReg.out().slice(-2000));
  await logged(tokenReg, /"method":"GET","path":"\/token\?[^"]*","status":200,"user":"alice"/);
  assert.equal(src.berth(["tag", "busybox", `${host}/team/app:1`]).code, 0);
  const push = src.berth(["push", `${host}/team/app:1`], { env: dockerCfg() });
  assert.equal(push.code, 0, push.stderr + tokenReg.out().slice(-2000));
  await logged(tokenReg, /"method":"PUT","path":"\/v2\/team\/app\/manifests\/1","status":201,"user":"alice"/);
  assert.equal(src.berth(["rmi", `${host}/team/app:1`]).code, 0);
  assert.equal(src.berth(["run", "--rm", `${host}/team/app:1`, "echo", "pulled with a token"], { env: dockerCfg() }).stdout, "pulled with a token\n");
  // The docker CLI on berthd: its own config dir, its own login.
  const dcfg = join(work, "docker-on-berthd");
  const dlogin = spawnSync("/usr/local/bin/docker", ["--config", dcfg, "-H", src.host, "login", "-u", "bob", "--password-stdin", host], { input: "builder\n", encoding: "utf8" });
  assert.equal(dlogin.status, 0, dlogin.stderr);
  assert.equal(src.berth(["rmi", `${host}/team/app:1`]).code, 0);
  const dpull = spawnSync("/usr/local/bin/docker", ["--config", dcfg, "-H", src.host, "pull", `${host}/team/app:1`], { encoding: "utf8" });
  assert.equal(dpull.status, 0, dpull.stderr);
  assert.equal(src.berth(["tag", "busybox", `${host}/team/bobs:1`]).code, 0);
  const dpush = spawnSync("/usr/local/bin/docker", ["--config", dcfg, "-H", src.host, "push", `${host}/team/bobs:1`], { encoding: "utf8" });
  assert.notEqual(dpush.status, 0, "bob may not push");
  await logged(tokenReg, /"path":"\/v2\/team\/bobs\/blobs\/uploads\/[^"]*","status":403,"user":"bob"/);
  assert.equal(src.berth(["rmi", `${host}/team/app:1`, `${host}/team/bobs:1`]).code, 0);
  // dockerd: docker login, push, pull.
  const ocfg = join(work, "docker-on-dockerd");
  const ologin = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "login", "-u", "alice", "--password-stdin", host], { input: "wonderland\n", encoding: "utf8" });
  assert.equal(ologin.status, 0, ologin.stderr + tokenReg.out().slice(-2000));
  const ref = `${host}/team/from-dockerd:1`;
  assert.equal(spawnSync(DOCKER_CLI_DEBIAN, ["-H", dockerd.host, "tag", "busybox:latest", ref]).status, 0);
  const opush = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "push", ref], { encoding: "utf8" });
  assert.equal(opush.status, 0, opush.stderr + tokenReg.out().slice(-2000));
  assert.equal(spawnSync(DOCKER_CLI_DEBIAN, ["-H", dockerd.host, "rmi", ref]).status, 0);
  const opull = spawnSync(DOCKER_CLI_DEBIAN, ["--config", ocfg, "-H", dockerd.host, "pull", ref], { encoding: "utf8" });
  assert.equal(opull.status, 0, opull.stderr);
  const wrong = spawnSync(DOCKER_CLI_DEBIAN, ["--config", join(work, "docker-wrong"), "-H", dockerd.host, "login", "-u", "alice", "--password-stdin", host], { input: "nope\n", encoding: "utf8" });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /unauthorized|incorrect username or password/i);
});

test("TLS: curl --cacert and skopeo with a cert dir talk HTTPS with a token; plain HTTP to it is refused; skopeo without the CA fails verification", () => {
  const host = `127.0.0.1:${tlsReg.port}`;
  const v2 = spawnSync("curl", ["-sS", "--cacert", join(work, "cert.pem"), "-i", `https://${host}/v2/`], { encoding: "utf8" });
  assert.equal(v2.status, 0, v2.stderr);
  assert.match(v2.stdout, /^HTTP\/1\.1 401/);
  assert.match(v2.stdout, new RegExp(`www-authenticate: Bearer realm="https://${host.replace(/\./g, "\\.")}/token",service="berth-registry"`, "i"));
  const tok = spawnSync("curl", ["-sS", "--cacert", join(work, "cert.pem"), "-u", "alice:wonderland", `https://${host}/token?service=berth-registry&scope=repository:team/x:pull`], { encoding: "utf8" });
  assert.equal(tok.status, 0, tok.stderr);
  const t = (JSON.parse(tok.stdout) as { token: string }).token;
  const ok = spawnSync("curl", ["-sS", "--cacert", join(work, "cert.pem"), "-o", "/dev/null", "-w", "%{http_code}", "-H", `Authorization: Bearer ${t}`, `https://${host}/v2/`], { encoding: "utf8" });
  assert.equal(ok.stdout, "200");
  const plain = spawnSync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", `http://${host}/v2/`], { encoding: "utf8" });
  assert.notEqual(plain.stdout, "200");
  const unverified = spawnSync("curl", ["-sS", `https://${host}/v2/`], { encoding: "utf8" });
  assert.notEqual(unverified.status, 0, "curl without the CA does not trust it");
  // skopeo: copy an image in (cert dir and credentials) and inspect it back.
  const archive = join(work, "bb.tar");
  const save = src.berth(["save", "-o", archive, "busybox"]);
  assert.equal(save.code, 0, save.stderr);
  const copy = spawnSync("skopeo", ["copy", "--quiet", "--dest-cert-dir", certDir, "--dest-creds", "alice:wonderland", `docker-archive:${archive}`, `docker://${host}/team/tls:1`], { encoding: "utf8" });
  assert.equal(copy.status, 0, copy.stderr + tlsReg.out().slice(-2000));
  const insp = spawnSync("skopeo", ["inspect", "--cert-dir", certDir, "--creds", "bob:builder", `docker://${host}/team/tls:1`], { encoding: "utf8" });
  assert.equal(insp.status, 0, insp.stderr);
  assert.equal((JSON.parse(insp.stdout) as { Layers: string[] }).Layers.length, 1);
  const noCa = spawnSync("skopeo", ["inspect", "--creds", "bob:builder", `docker://${host}/team/tls:1`], { encoding: "utf8" });
  assert.notEqual(noCa.status, 0);
  assert.match(noCa.stderr, /certificate/i);
  const insecure = spawnSync("skopeo", ["inspect", "--tls-verify=false", "--creds", "bob:builder", `docker://${host}/team/tls:1`], { encoding: "utf8" });
  assert.equal(insecure.status, 0, insecure.stderr);
});

test("pull-through cache of the token registry (credentials in its config): berth pulls and runs through it; blobs are cached; the HTML page in headless Chromium lists it", async () => {
  const up = `127.0.0.1:${tokenReg.port}`;
  // team/app:1 was pushed by the token test; push it here too so this test stands alone.
  assert.equal(src.berth(["tag", "busybox", `${up}/team/app:2`]).code, 0);
  assert.equal(src.berth(["push", `${up}/team/app:2`], { env: dockerCfg() }).code, 0);
  assert.equal(src.berth(["rmi", `${up}/team/app:2`]).code, 0);
  writeFileSync(join(work, "proxy.yml"), `proxy:\n  - { name: up, url: "http://${up}", username: bob, password: builder }\n`);
  const cache = await serve(["--root", join(work, "cache"), "--config", join(work, "proxy.yml")]);
  const ref = `127.0.0.1:${cache.port}/up/team/app:2`;
  const run = src.berth(["run", "--rm", ref, "echo", "through the cache"]);
  assert.equal(run.stdout, "through the cache\n", run.stderr + cache.out().slice(-2000));
  // berthd had busybox's layer already; skopeo fetches every blob through the cache.
  const copy = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${join(work, "via-cache")}:2`], { encoding: "utf8" });
  assert.equal(copy.status, 0, copy.stderr);
  await logged(cache, /"proxy":true,"cached":"blob","repository":"up\/team\/app"/);
  assert.ok(readdirSync(join(work, "cache", "blobs", "sha256")).length >= 3, "manifest, config and layer are in the cache's store");
  const again = spawnSync("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${join(work, "via-cache2")}:2`], { encoding: "utf8" });
  assert.equal(again.status, 0, again.stderr);
  const push = src.berth(["push", ref]);
  assert.notEqual(push.code, 0, "a proxied repository takes no pushes");
  assert.equal(src.berth(["rmi", ref]).code, 0);

  const profile = mkdtempSync(join(work, "chromium-"));
  const chrome = spawnSync("chromium", ["--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--dump-dom", `http://127.0.0.1:${cache.port}/`], { encoding: "utf8", timeout: 60_000 });
  assert.equal(chrome.status, 0, chrome.stderr);
  assert.match(chrome.stdout, /<title>berth registry<\/title>/);
  assert.match(chrome.stdout, /<td class="repo">up\/team\/app<\/td><td>1<\/td>/);
  assert.match(chrome.stdout, /<code class="tag">2<\/code>/);
  assert.match(chrome.stdout, /Pull-through caches: <code>up\/…<\/code>/);
  // With auth the page needs the visitor's credentials: anonymous sees public/ only.
  const anon = spawnSync("chromium", ["--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--dump-dom", `http://127.0.0.1:${basicReg.port}/`], { encoding: "utf8", timeout: 60_000 });
  assert.equal(anon.status, 0, anon.stderr);
  assert.match(anon.stdout, /public\/bb/);
  assert.doesNotMatch(anon.stdout, /team\/bb/);
  assert.ok(existsSync(profile));
});
