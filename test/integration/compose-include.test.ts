/**
 * A project put together from several files as people write them (issue 11): `include` of another
 * directory's compose file (its relative paths its own), `extends` of a service in another file, and
 * `profiles` — up and down against a real berthd, checked from the containers berthd runs.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { Daemon, BERTH, type Result } from "./harness.js";

const d = new Daemon();
const dir = mkdtempSync(join(tmpdir(), "bcinc-"));
const P = `cinc${process.pid}`;

function compose(args: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", "-p", P, ...args], { cwd: dir, encoding: "utf8", timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
const names = (): string[] => d.berth(["ps", "--format", "{{.Names}}", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim().split("\n").filter(Boolean).sort();
const envOf = (name: string): string[] => JSON.parse(d.berth(["inspect", "-f", "{{json .Config.Env}}", name]).stdout);

before(async () => {
  await d.start();
  await d.bootstrap();
  mkdirSync(join(dir, "db"));
  // The included project: its env_file is relative to its own directory.
  writeFileSync(join(dir, "db", "compose.yaml"), `
services:
  db:
    image: busybox
    command: ["sleep", "300"]
    env_file: [db.env]
`);
  writeFileSync(join(dir, "db", "db.env"), "DB_ROLE=primary\n");
  writeFileSync(join(dir, "common.yaml"), `
services:
  base:
    image: busybox
    environment: { LOG_LEVEL: info, TIER: base }
    labels: { team: core }
`);
  writeFileSync(join(dir, "compose.yaml"), `
include:
  - db/compose.yaml
services:
  web:
    extends: { file: common.yaml, service: base }
    command: ["sleep", "300"]
    environment: { TIER: web }
    depends_on: [db]
  debug:
    extends: { file: common.yaml, service: base }
    profiles: [tools]
    command: ["sleep", "300"]
`);
});

after(async () => {
  compose(["--profile", "tools", "down", "-t", "1", "--remove-orphans"]);
  try { await d.stop(); } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("include + extends + profiles: up runs the included and extended services, a profile adds its own, down removes them all", () => {
  let r = compose(["up", "-d"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(), [`${P}-db-1`, `${P}-web-1`]);
  // extends: the base's environment and labels, with the extending service's TIER over them.
  const web = envOf(`${P}-web-1`);
  assert.ok(web.includes("LOG_LEVEL=info") && web.includes("TIER=web"), web.join(" "));
  assert.equal(d.berth(["inspect", "-f", '{{index .Config.Labels "team"}}', `${P}-web-1`]).stdout.trim(), "core");
  // include: the included file's env_file, read relative to its own directory.
  assert.ok(envOf(`${P}-db-1`).includes("DB_ROLE=primary"));
  // profiles: COMPOSE_PROFILES enables debug (extended too).
  r = compose(["up", "-d"], { COMPOSE_PROFILES: "tools" });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(), [`${P}-db-1`, `${P}-debug-1`, `${P}-web-1`]);
  assert.ok(envOf(`${P}-debug-1`).includes("TIER=base"));
  r = compose(["--profile", "tools", "down", "-t", "1"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(names(), []);
  assert.equal(d.berth(["ps", "-aq", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim(), "");
  assert.equal(d.berth(["network", "ls", "-q", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim(), "");
});
