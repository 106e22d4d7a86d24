/**
 * Plain HTTP only for loopback registries and the daemon's insecure
 * registries (flag or daemon.json), as Docker. The registry listens on an
 * address of a bridge this test makes (not loopback, never leaves
 * the machine).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, sleep } from "./harness.js";

const ADDR = "198.18.77.1";
const LINK = `btreg${process.pid % 10000}`;
const d = new Daemon();
let work: string;
let registry: ChildProcess | undefined;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-insecure-"));
  assert.equal(spawnSync("ip", ["link", "add", LINK, "type", "bridge"]).status, 0);
  spawnSync("ip", ["addr", "add", `${ADDR}/32`, "dev", LINK]);
  spawnSync("ip", ["link", "set", LINK, "up"]);
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\nhttp:\n  addr: ${ADDR}:5000\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  for (let i = 0; i < 100; i++) {
    if (await fetch(`http://${ADDR}:5000/v2/`).then((r) => r.ok, () => false)) break;
    await sleep(100);
  }
  // Insecure through daemon.json (CIDR form); the flag form is the same list.
  writeFileSync(join(work, "daemon.json"), JSON.stringify({ "insecure-registries": ["198.18.77.0/24"] }));
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
  registry?.kill();
  spawnSync("ip", ["link", "del", LINK]);
  rmSync(work, { recursive: true, force: true });
});

test("a registry not on loopback: HTTPS unless listed as insecure; listed, push and pull work over HTTP", async () => {
  assert.equal(d.berth(["tag", "busybox", `${ADDR}:5000/team/bb:1`]).code, 0);
  const refused = d.berth(["push", `${ADDR}:5000/team/bb:1`]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /https:\/\/198\.18\.77\.1:5000\/v2\/.*server gave HTTP response to HTTPS client/);

  await d.stopDaemon();
  d.extraArgs = ["--config-file", join(work, "daemon.json")];
  await d.start();
  const info = JSON.parse(d.berth(["info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}"]).stdout) as string[];
  assert.ok(info.includes("198.18.77.0/24"), info.join(","));
  const pushed = d.berth(["push", `${ADDR}:5000/team/bb:1`]);
  assert.equal(pushed.code, 0, pushed.stderr);
  assert.equal(d.berth(["rmi", `${ADDR}:5000/team/bb:1`]).code, 0);
  const pulled = d.berth(["pull", `${ADDR}:5000/team/bb:1`]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.equal(d.berth(["run", "--rm", "--network", "none", `${ADDR}:5000/team/bb:1`, "echo", "over http"]).stdout, "over http\n");

  const bad = join(work, "bad.json");
  writeFileSync(bad, "{ not json");
  const r = spawnSync(process.execPath, [join(import.meta.dirname, "../../bin/berthd"), "--config-file", bad, "--data-root", join(work, "x")], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unable to configure the daemon from .*bad\.json/);
});
