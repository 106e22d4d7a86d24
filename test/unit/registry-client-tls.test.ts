// The registry client's per-registry TLS (src/distribution/tls.ts), as dockerd's certs.d: CAs (*.crt)
// trusted besides the system's, a client certificate (NAME.cert + NAME.key) presented, Docker's errors
// for half a pair, and the directory re-read when it changes. An HTTPS server on loopback that demands
// a client certificate signed by this test's CA.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, copyFileSync, unlinkSync } from "node:fs";
import { createServer } from "node:https";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { dispatcherFor, hasCertsDir, setCertsDirs, certsDirs } from "../../src/distribution/tls.js";

const work = mkdtempSync(join(tmpdir(), "berth-client-tls-"));
after(() => { setCertsDirs([]); rmSync(work, { recursive: true, force: true }); });

function openssl(args: string[]): void {
  const r = spawnSync("openssl", args, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
}
const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

test("certs.d: the CA is trusted, the client certificate is presented; half a pair is Docker's error; changes are seen", async () => {
  openssl(["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=berth client-tls CA", "-keyout", join(work, "ca.key"), "-out", join(work, "ca.crt")]);
  writeFileSync(join(work, "srv.ext"), "subjectAltName=IP:127.0.0.1\n");
  for (const [name, cn, ext] of [["srv", "127.0.0.1", ["-extfile", join(work, "srv.ext")]], ["client", "berth-client", []]] as const) {
    openssl(["req", ...ec, "-subj", `/CN=${cn}`, "-keyout", join(work, `${name}.key`), "-out", join(work, `${name}.csr`)]);
    openssl(["x509", "-req", "-in", join(work, `${name}.csr`), "-CA", join(work, "ca.crt"), "-CAkey", join(work, "ca.key"), "-CAcreateserial", "-days", "2", ...ext, "-out", join(work, `${name}.crt`)]);
  }
  const server = createServer({ cert: readFileSync(join(work, "srv.crt")), key: readFileSync(join(work, "srv.key")), ca: readFileSync(join(work, "ca.crt")), requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.end(JSON.stringify({ authorized: (req.socket as TLSSocket).authorized, cn: peer?.subject?.CN ?? null }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  after(() => { server.close(); server.closeAllConnections(); });
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = join(work, "certs.d");
  setCertsDirs([join(work, "nothing-here"), dir]);
  assert.deepEqual(certsDirs(), [join(work, "nothing-here"), dir]);
  const { fetch: ufetch } = await import("undici");
  const get = async (): Promise<{ authorized: boolean; cn: string | null }> => {
    const dispatcher = await dispatcherFor(host);
    assert.ok(dispatcher, "a dispatcher for a host with a directory");
    return (await (await ufetch(`https://${host}/`, { dispatcher })).json()) as { authorized: boolean; cn: string | null };
  };
  assert.equal(hasCertsDir(host), false);
  assert.equal(await dispatcherFor(host), undefined, "no directory: Node's own trust and pool");
  mkdirSync(join(dir, host), { recursive: true });
  assert.equal(hasCertsDir(host), true);
  copyFileSync(join(work, "ca.crt"), join(dir, host, "ca.crt"));
  assert.deepEqual(await get(), { authorized: false, cn: null }, "the CA alone: verified server, no client certificate");
  copyFileSync(join(work, "client.crt"), join(dir, host, "client.cert"));
  await assert.rejects(dispatcherFor(host), /^BerthError: missing key client\.key for client certificate client\.cert$|missing key client\.key for client certificate client\.cert/);
  copyFileSync(join(work, "client.key"), join(dir, host, "client.key"));
  assert.deepEqual(await get(), { authorized: true, cn: "berth-client" }, "the directory was re-read: the client certificate is presented");
  const same = await dispatcherFor(host);
  assert.equal(await dispatcherFor(host), same, "an unchanged directory keeps its pool");
  unlinkSync(join(dir, host, "client.cert"));
  await assert.rejects(dispatcherFor(host), /missing client certificate client\.cert for key client\.key/);
  unlinkSync(join(dir, host, "client.key"));
  // A CA that did not sign the server's certificate: the fetch fails verification.
  openssl(["req", "-x509", ...ec, "-days", "2", "-subj", "/CN=another CA", "-keyout", join(work, "other.key"), "-out", join(dir, host, "ca.crt")]);
  const d2 = await dispatcherFor(host);
  await assert.rejects(ufetch(`https://${host}/`, { dispatcher: d2 }), (e: Error & { cause?: { code?: string } }) => /UNABLE_TO_VERIFY|SELF_SIGNED|unable to (verify|get)/i.test(`${e.cause?.code} ${e.cause}`));
  // A reference cannot climb out of the directory.
  assert.equal(hasCertsDir(".."), false);
  assert.equal(await dispatcherFor("../certs.d"), undefined);
});
