/**
 * berthd trusts a registry's CA from its certs.d directory, as dockerd does with
 * /etc/docker/certs.d/<host:port>/ca.crt: a `berth registry serve` with TLS (a certificate signed by a
 * CA of this test's) on 127.0.0.1, a berthd started with `--certs-dir` on a temp dir (its defaults are
 * /etc/docker/certs.d then /etc/berth/certs.d; the machine's own are never touched). Without the CA the
 * push fails; with ca.crt dropped into DIR/127.0.0.1:PORT/ while berthd runs, push and pull work over
 * HTTPS (the directory makes even a loopback registry a TLS one); a wrong CA there is refused again.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, sleep } from "./harness.js";

const work = mkdtempSync(join(tmpdir(), "berth-registry-tls-"));
const certsDir = join(work, "certs.d");
const d = new Daemon();
d.extraArgs = ["--certs-dir", certsDir];
let reg: ChildProcess;
let out = "";
let port = 0;

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}

before(async () => {
  mkdirSync(certsDir);
  // A CA of this test's, a server certificate for 127.0.0.1 signed by it, and a second CA that signed nothing.
  for (const ca of ["ca", "other-ca"]) {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", `/CN=berth test ${ca}`, "-keyout", join(work, `${ca}.key`), "-out", join(work, `${ca}.crt`)]);
  }
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", join(work, "srv.key"), "-out", join(work, "srv.csr")]);
  writeFileSync(join(work, "ext"), "subjectAltName=IP:127.0.0.1\n");
  openssl(["x509", "-req", "-in", join(work, "srv.csr"), "-CA", join(work, "ca.crt"), "-CAkey", join(work, "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", join(work, "ext"), "-out", join(work, "srv.crt")]);
  reg = spawn(BERTH, ["registry", "serve", "--addr", "127.0.0.1:0", "--root", join(work, "root"), "--tls-cert", join(work, "srv.crt"), "--tls-key", join(work, "srv.key")], { stdio: ["ignore", "pipe", "pipe"] });
  reg.stdout!.on("data", (b) => { out += b; });
  reg.stderr!.on("data", (b) => { out += b; });
  const deadline = Date.now() + 20_000;
  while (!port) {
    const m = /"msg":"listening","addr":"127\.0\.0\.1:(\d+)"/.exec(out);
    if (m) port = Number(m[1]);
    else if (reg.exitCode !== null || Date.now() > deadline) throw new Error(`the registry did not start: ${out}`);
    else await sleep(25);
  }
  await d.start();
  await d.bootstrap();
});

after(async () => {
  if (reg && reg.exitCode === null) {
    reg.kill("SIGTERM");
    const deadline = Date.now() + 20_000;
    while (reg.exitCode === null && Date.now() < deadline) await sleep(25);
  }
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

test("berthd pushes to and pulls from a TLS registry once its CA is in certs.d/<host:port>/ca.crt (read per push, no restart); a wrong CA is refused", async () => {
  const host = `127.0.0.1:${port}`;
  const ref = `${host}/trust/busybox:1`;
  assert.equal(d.berth(["tag", "busybox", ref]).code, 0);
  // No directory for the host: berth reaches a loopback registry over plain HTTP, which this TLS one refuses.
  const before = d.berth(["push", ref]);
  assert.notEqual(before.code, 0, before.stdout);
  // A directory with a CA that did not sign the registry's certificate: HTTPS, and verification fails.
  mkdirSync(join(certsDir, host));
  copyFileSync(join(work, "other-ca.crt"), join(certsDir, host, "ca.crt"));
  const wrong = d.berth(["push", ref]);
  assert.notEqual(wrong.code, 0, wrong.stdout);
  assert.match(wrong.stderr, /certificate|UNABLE_TO_VERIFY|self.signed|unable to get/i);
  // The registry's CA: push, then pull back after removing the image.
  copyFileSync(join(work, "ca.crt"), join(certsDir, host, "ca.crt"));
  const push = d.berth(["push", ref]);
  assert.equal(push.code, 0, push.stderr + out.slice(-2000));
  assert.match(push.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
  // (berth runs synchronously: the registry's access log arrives once this test waits.)
  const deadline = Date.now() + 10_000;
  while (!out.includes(`"method":"PUT","path":"/v2/trust/busybox/manifests/1","status":201`) && Date.now() < deadline) await sleep(25);
  assert.ok(out.includes(`"method":"PUT","path":"/v2/trust/busybox/manifests/1","status":201`), `the manifest went to the TLS registry: ${out.slice(-2000)}`);
  assert.equal(d.berth(["rmi", ref]).code, 0);
  const pull = d.berth(["pull", ref]);
  assert.equal(pull.code, 0, pull.stderr);
  assert.equal(d.berth(["run", "--rm", ref, "echo", "over tls"]).stdout, "over tls\n");
  assert.equal(d.berth(["rmi", ref]).code, 0);
});
