/**
 * Issue 14's round trip with the seed application itself (seeds/003: a Flask page counting its visits in
 * Redis, both images FROM debian:bookworm-slim with apt in RUN): `berth compose kube --push` to a
 * `berth registry serve` on loopback → the local images removed → `berth kube play` of that output →
 * the counter answers on the published port and counts; `kube play --down` leaves nothing of the play.
 * Needs the Debian mirror (the bootstrap and apt), as `make demo` does. Traffic only to loopback.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, cpSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, REPO, until, freePort, type Result } from "./harness.js";

const d = new Daemon();
const work = mkdtempSync(join(tmpdir(), "berth-kube-seed-"));

before(async () => {
  await d.start();
  await d.bootstrap();
  const deb = d.berth(["image", "bootstrap", "debian:bookworm-slim"], { timeout: 600_000 });
  assert.equal(deb.code, 0, deb.stderr);
});
after(async () => { try { await d.stop(); } finally { rmSync(work, { recursive: true, force: true }); } });

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

async function httpGet(port: number): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    return r.ok ? await r.text() : undefined;
  } catch { return undefined; }
}


test("the seed Flask + Redis project: compose kube --push to a local registry, kube play of the output serves the counter on the published port, --down leaves nothing", async () => {
  const dir = join(work, "seed");
  // The seed application as `make demo` runs it (scripts/seed-app: compose.yaml, app.py, its Dockerfile, redis/Dockerfile),
  // its page published on WEB_PORT.
  cpSync(join(REPO, "scripts/seed-app"), dir, { recursive: true });
  const [regPort, webPort] = [await freePort(), await freePort()];
  const project = "seedapp";
  const out = join(dir, "k8s.yaml");
  let reg: ChildProcess | undefined;
  let played = false;
  try {
    reg = spawn(process.execPath, [BERTH, "registry", "serve", "--addr", `127.0.0.1:${regPort}`, "--root", join(work, "registry")], { stdio: "ignore" });
    await until("the registry", async () => (await fetch(`http://127.0.0.1:${regPort}/v2/`).catch(() => undefined))?.status === 200, 15_000);
    const g = ok(d.berth(["compose", "-f", join(dir, "compose.yaml"), "kube", "--push", `127.0.0.1:${regPort}`, "-o", out], { timeout: 600_000, env: { WEB_PORT: String(webPort) } }), "compose kube --push");
    for (const s of ["web", "redis"]) assert.match(g.stderr, new RegExp(`Pushed 127\\.0\\.0\\.1:${regPort}/${project}-${s}@sha256:[0-9a-f]{64}`));
    const yaml = readFileSync(out, "utf8");
    for (const s of ["web", "redis"]) assert.match(yaml, new RegExp(`image: 127\\.0\\.0\\.1:${regPort}/${project}-${s}@sha256:[0-9a-f]{64}`));
    assert.match(yaml, /kind: StatefulSet/, "redis keeps its data in a claim");
    assert.match(yaml, /kind: PersistentVolumeClaim/);
    // What the cluster has: only the registry (the images built here go).
    for (const s of ["web", "redis"]) ok(d.berth(["rmi", `127.0.0.1:${regPort}/${project}-${s}:latest`, `${project}-${s}`]), `rmi ${s}`);
    ok(d.berth(["kube", "play", out], { timeout: 300_000 }), "kube play");
    played = true;
    const first = await until("the counter on its published port", () => httpGet(webPort), 120_000);
    const n = Number(/viewed (\d+) time\(s\)/.exec(first)?.[1]);
    assert.ok(n >= 1, first);
    assert.equal(await httpGet(webPort), `Hello! This page has been viewed ${n + 1} time(s).\n`);
  } finally {
    if (played) ok(d.berth(["kube", "play", "--down", out], { timeout: 120_000 }), "kube play --down");
    reg?.kill();
  }
  const f = "label=io.berth.kube.play=k8s";
  const left = [
    ...d.berth(["ps", "-a", "--filter", f, "--format", "{{.Names}}"]).stdout.split("\n"),
    ...d.berth(["volume", "ls", "--filter", f, "--format", "{{.Name}}"]).stdout.split("\n"),
    ...d.berth(["network", "ls", "--filter", f, "--format", "{{.Name}}"]).stdout.split("\n"),
  ].filter(Boolean);
  assert.deepEqual(left, []);
});
