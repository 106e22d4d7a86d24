/**
 * `berth compose` replicas against a real berthd: `--scale web=3` behind one
 * published port range (each replica gets one port of it, all answer over
 * loopback), containers numbered -1..-3 with com.docker.compose.container-number,
 * `port --index`, scaling down removing the highest numbers; deploy.replicas;
 * secrets (file and environment sources) and configs (file, environment, content) readable where
 * the spec mounts them, read-only; and the smaller commands (top, images,
 * kill, pause/unpause, ls, cp, wait, events --json), and push to a loopback `berth registry serve`.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { Daemon, BERTH, sleep, type Result } from "./harness.js";

const d = new Daemon();
const dir = mkdtempSync(join(tmpdir(), "bcscale-"));
const P = `cscale${process.pid}`;
const BASE = 18700 + (process.pid % 200) * 3;
const runtime = mkdtempSync(join(tmpdir(), "bcscale-run-"));

function compose(args: string[], o: { timeout?: number; env?: Record<string, string> } = {}): Result {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, ...args], { cwd: dir, encoding: "utf8", timeout: o.timeout ?? 90_000, env: { ...process.env, XDG_RUNTIME_DIR: runtime, SECRET_FROM_ENV: "from-env", ...o.env } });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
function ok(r: Result, what: string): Result { assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`); return r; }
const inspect = (id: string) => JSON.parse(d.berth(["inspect", id]).stdout)[0];

function httpGet(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const t = setTimeout(() => { s.destroy(); resolve("timeout"); }, 5000);
    s.on("connect", () => s.write("GET / HTTP/1.0\r\n\r\n"));
    s.on("data", (x) => { buf += x; });
    s.on("error", (e) => { clearTimeout(t); resolve(`error ${e.message}`); });
    s.on("close", () => { clearTimeout(t); resolve(buf.split("\r\n\r\n").slice(1).join("\r\n\r\n")); });
  });
}

before(async () => {
  await d.start();
  await d.bootstrap();
  writeFileSync(join(dir, "token.txt"), "file-secret\n");
  writeFileSync(join(dir, "app.conf"), "listen=80\n");
  writeFileSync(join(dir, "compose.yaml"), `
services:
  web:
    image: busybox
    init: true
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && httpd -f -p 80 -h /www"]
    ports: ["${BASE}-${BASE + 2}:80"]
  worker:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    deploy: { replicas: 2 }
    secrets:
      - token
      - source: envsecret
        target: custom/env
    configs:
      - app_conf
      - source: inline_conf
        target: /etc/app/inline.conf
      - source: env_conf
        target: env.conf
secrets:
  token: { file: ./token.txt }
  envsecret: { environment: SECRET_FROM_ENV }
configs:
  app_conf: { file: ./app.conf }
  inline_conf: { content: "inline-\${SECRET_FROM_ENV}" }
  env_conf: { environment: SECRET_FROM_ENV }
`);
});

after(async () => {
  compose(["down", "-t", "1", "--remove-orphans"]);
  try { await d.stop(); } finally { rmSync(dir, { recursive: true, force: true }); rmSync(runtime, { recursive: true, force: true }); }
});

test("--scale web=3 behind one published port range: three numbered replicas, one port each, all answering", async () => {
  ok(compose(["up", "-d", "--scale", "web=3"]), "up --scale");
  const names = compose(["ps", "--format", "{{.Name}}", "web"]).stdout.trim().split("\n");
  assert.deepEqual(names, [`${P}-web-1`, `${P}-web-2`, `${P}-web-3`]);
  const ports = new Set<number>();
  for (const [i, n] of names.entries()) {
    const info = inspect(n);
    assert.equal(info.Config.Labels["com.docker.compose.container-number"], String(i + 1));
    const b = info.NetworkSettings.Ports["80/tcp"].find((x: { HostIp: string }) => x.HostIp === "0.0.0.0");
    ports.add(Number(b.HostPort));
    assert.equal(ok(compose(["port", "--index", String(i + 1), "web", "80"]), "port").stdout.trim(), `0.0.0.0:${b.HostPort}`);
  }
  assert.deepEqual([...ports].sort(), [BASE, BASE + 1, BASE + 2], "each replica has its own port of the range");
  // Each port answers with its own replica's hostname (polling: httpd takes a moment to listen).
  const hosts = new Set<string>();
  for (const p of ports) {
    const deadline = Date.now() + 10_000;
    let body = "";
    while (Date.now() < deadline) { body = (await httpGet(p)).trim(); if (body && !body.startsWith("error") && body !== "timeout") break; await sleep(100); }
    assert.match(body, /^[0-9a-f]{12}$/, `port ${p}: ${body}`);
    hosts.add(body);
  }
  assert.equal(hosts.size, 3);
  // deploy.replicas: two workers.
  assert.deepEqual(compose(["ps", "--format", "{{.Name}}", "worker"]).stdout.trim().split("\n"), [`${P}-worker-1`, `${P}-worker-2`]);
});

test("secrets at /run/secrets (file, environment) and configs at /<name> or their target (file, environment, content), read-only", () => {
  const cat = (path: string) => compose(["exec", "-T", "--index", "2", "worker", "cat", path]);
  assert.equal(ok(cat("/run/secrets/token"), "file secret").stdout, "file-secret\n");
  assert.equal(ok(cat("/run/secrets/custom/env"), "environment secret").stdout, "from-env");
  assert.equal(ok(cat("/app_conf"), "file config").stdout, "listen=80\n");
  assert.equal(ok(cat("/etc/app/inline.conf"), "content config (interpolated)").stdout, "inline-from-env");
  assert.equal(ok(cat("/env.conf"), "environment config").stdout, "from-env");
  const w = compose(["exec", "-T", "worker", "sh", "-c", "echo x > /run/secrets/token"]);
  assert.notEqual(w.code, 0, "a secret is read-only");
  assert.equal(readFileSync(join(runtime, "berth-compose", P, "configs", "inline_conf"), "utf8"), "inline-from-env", "content sources are files in the project's runtime dir");
});

test("top, images, pause/unpause, kill, ls, cp, events --json, wait", async () => {
  const top = ok(compose(["top", "worker"]), "top").stdout;
  assert.match(top, new RegExp(`^${P}-worker-1\\n`, "m"));
  assert.match(top, /PID/);
  assert.match(top, /sleep 3600/);
  const images = ok(compose(["images"]), "images").stdout;
  assert.match(images, /^CONTAINER +REPOSITORY +TAG +IMAGE ID +SIZE/);
  assert.match(images, new RegExp(`${P}-web-1 +busybox +latest`));
  const ls = ok(compose(["ls", "--format", "json"]), "ls").stdout;
  const mine = (JSON.parse(ls) as { Name: string; Status: string }[]).find((x) => x.Name === P);
  assert.equal(mine?.Status, "running(5)");
  // cp both ways.
  writeFileSync(join(dir, "in.txt"), "copied-in\n");
  ok(compose(["cp", "in.txt", "worker:/tmp/in.txt"]), "cp to");
  assert.equal(ok(compose(["exec", "-T", "worker", "cat", "/tmp/in.txt"]), "cat").stdout, "copied-in\n");
  mkdirSync(join(dir, "out"), { recursive: true });
  ok(compose(["cp", "worker:/tmp/in.txt", join(dir, "out", "back.txt")]), "cp from");
  assert.equal(readFileSync(join(dir, "out", "back.txt"), "utf8"), "copied-in\n");
  // events --json sees the pause; pause and unpause change the state.
  const ev = spawn(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, "events", "--json"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
  let evOut = "";
  ev.stdout.on("data", (x) => { evOut += x; });
  try {
    // (The stream is useful only once subscribed: a pause it missed is simply done again below.)
    const deadline = Date.now() + 15_000;
    ok(compose(["pause", "worker"]), "pause");
    assert.equal(inspect(`${P}-worker-1`).State.Status, "paused");
    ok(compose(["unpause", "worker"]), "unpause");
    assert.equal(inspect(`${P}-worker-1`).State.Status, "running");
    while (!/"action":"pause"/.test(evOut) && Date.now() < deadline) { await sleep(100); if (!/"action":"pause"/.test(evOut)) { compose(["pause", "worker"]); compose(["unpause", "worker"]); } }
    const line = evOut.split("\n").find((l) => l.includes('"action":"pause"'))!;
    const e = JSON.parse(line);
    assert.equal(e.service, "worker");
    assert.equal(e.type, "container");
    assert.match(e.id, /^[0-9a-f]{64}$/);
  } finally { ev.kill("SIGTERM"); }
  // kill -s and wait: wait answers the container's exit code.
  const waiter = new Promise<Result>((resolve) => {
    const p = spawn(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, "wait", "web"], { cwd: dir, env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
    p.on("close", (code) => resolve({ code: code ?? -1, stdout: "", stderr: "" }));
  });
  // (A wait that subscribes after the kill answers the same exit code.)
  ok(compose(["kill", "-s", "SIGKILL", "web"]), "kill");
  assert.equal((await waiter).code, 137);
  assert.equal(inspect(`${P}-web-1`).State.Running, false);
});

test("push: a service's image goes to its registry (berth registry serve on loopback)", async () => {
  const root = mkdtempSync(join(tmpdir(), "bcscale-reg-"));
  const reg = spawn(BERTH, ["registry", "serve", "--addr", "127.0.0.1:0", "--root", root], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  reg.stdout!.on("data", (x) => { out += x; });
  reg.stderr!.on("data", (x) => { out += x; });
  try {
    const deadline = Date.now() + 15_000;
    let port = 0;
    while (!port) {
      const m = /"msg":"listening","addr":"127\.0\.0\.1:(\d+)"/.exec(out);
      if (m) port = Number(m[1]);
      else { assert.ok(Date.now() < deadline && reg.exitCode === null, `registry: ${out}`); await sleep(50); }
    }
    mkdirSync(join(dir, "pushed"), { recursive: true });
    writeFileSync(join(dir, "pushed", "Dockerfile"), "FROM busybox\nRUN echo pushed > /p\n");
    writeFileSync(join(dir, "push.yaml"), `services:\n  app:\n    build: ./pushed\n    image: 127.0.0.1:${port}/team/app:1\n  plain:\n    image: busybox\n`);
    ok(compose(["-f", "push.yaml", "build"]), "build");
    const r = ok(compose(["-f", "push.yaml", "push", "app"]), "push");
    assert.match(r.stderr, /app Pushed/);
    const tags = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host: "127.0.0.1", port }, () => s.write(`GET /v2/team/app/tags/list HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
      let b = ""; s.on("data", (x) => { b += x; }); s.on("end", () => resolve(b.split("\r\n\r\n").slice(1).join(""))); s.on("error", reject);
    });
    assert.deepEqual(JSON.parse(tags).tags, ["1"]);
    d.berth(["rmi", `127.0.0.1:${port}/team/app:1`]);
  } finally {
    reg.kill("SIGTERM");
    if (reg.exitCode === null) await new Promise((r) => reg.once("close", r));
    rmSync(root, { recursive: true, force: true });
  }
});

test("scaling down removes the highest numbers; down removes the project's runtime dir", () => {
  ok(compose(["up", "-d", "--scale", "web=1", "--scale", "worker=1"]), "scale down");
  assert.deepEqual(compose(["ps", "-a", "--format", "{{.Name}}"]).stdout.trim().split("\n"), [`${P}-web-1`, `${P}-worker-1`]);
  ok(compose(["down", "-t", "1"]), "down");
  assert.equal(existsSync(join(runtime, "berth-compose", P)), false);
});
