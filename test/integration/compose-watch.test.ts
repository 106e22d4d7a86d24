/**
 * `berth compose watch` against a real berthd: `develop.watch` rules of a
 * built service. An edited file is synced into the running container
 * (polled for with a deadline), an ignored one is not, a deleted one goes;
 * a Dockerfile change rebuilds the image and recreates the container.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, sleep, type Result } from "./harness.js";

const d = new Daemon();
const dir = mkdtempSync(join(tmpdir(), "bcwatch-"));
const P = `cwatch${process.pid}`;
let watcher: ChildProcess | undefined;
let watchErr = "";

function compose(args: string[]): Result {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, ...args], { cwd: dir, encoding: "utf8", timeout: 90_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
const cat = (path: string) => compose(["exec", "-T", "web", "cat", path]);
const idOf = () => d.berth(["inspect", "-f", "{{.Id}}", `${P}-web-1`]).stdout.trim();

async function until(what: string, ms: number, f: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms\n--- watch said ---\n${watchErr}`);
    await sleep(100);
  }
}

before(async () => {
  await d.start();
  await d.bootstrap();
  mkdirSync(join(dir, "app", "static"), { recursive: true });
  writeFileSync(join(dir, "app", "static", "a.txt"), "one\n");
  writeFileSync(join(dir, "app", "Dockerfile"), "FROM busybox\nCOPY static /www/static\nCMD [\"sleep\", \"3600\"]\n");
  writeFileSync(join(dir, "compose.yaml"), `
services:
  web:
    build: ./app
    init: true
    develop:
      watch:
        - action: sync
          path: ./app/static
          target: /www/static
          ignore: ["*.tmp"]
        - action: rebuild
          path: ./app/Dockerfile
`);
});

after(async () => {
  if (watcher && watcher.exitCode === null) { watcher.kill("SIGKILL"); await new Promise((r) => watcher!.once("close", r)); }
  compose(["down", "-t", "1", "--rmi", "local"]);
  try { await d.stop(); } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("watch: up, then an edited file is synced into the running service; ignored files are not; deletions follow", async (t) => {
  watcher = spawn(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, "watch"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  watcher.stderr!.on("data", (x) => { watchErr += x; });
  watcher.stdout!.on("data", (x) => { watchErr += x; });
  await until("watch enabled", 90_000, () => /Watch enabled/.test(watchErr));
  assert.equal(cat("/www/static/a.txt").stdout, "one\n", "the image's copy before any edit");
  const t0 = Date.now();
  writeFileSync(join(dir, "app", "static", "a.txt"), "two\n");
  await until("edit synced", 10_000, () => cat("/www/static/a.txt").stdout === "two\n");
  t.diagnostic(`edit visible in the container after ${Date.now() - t0} ms (including the polling exec's own time)`);
  mkdirSync(join(dir, "app", "static", "sub"), { recursive: true });
  writeFileSync(join(dir, "app", "static", "skip.tmp"), "ignored\n");
  writeFileSync(join(dir, "app", "static", "sub", "new.txt"), "new\n");
  await until("new file in a new directory synced", 10_000, () => cat("/www/static/sub/new.txt").stdout === "new\n");
  assert.notEqual(cat("/www/static/skip.tmp").code, 0, "an ignored file is not synced");
  rmSync(join(dir, "app", "static", "a.txt"));
  await until("deletion synced", 10_000, () => cat("/www/static/a.txt").code !== 0);
});

test("watch: a Dockerfile change rebuilds the image and recreates the container", async () => {
  const before = idOf();
  writeFileSync(join(dir, "app", "Dockerfile"), "FROM busybox\nCOPY static /www/static\nRUN echo v2 > /version\nCMD [\"sleep\", \"3600\"]\n");
  await until("rebuilt and recreated", 90_000, () => { const id = idOf(); return !!id && id !== before && cat("/version").stdout === "v2\n"; });
  watcher!.kill("SIGINT");
  const code = await new Promise<number | null>((r) => watcher!.once("close", (c) => r(c)));
  assert.equal(code, 0, watchErr);
});
