/**
 * `berth compose` orchestration against a real berthd: one-off `run`
 * (--rm, exit code, naming, -e), `up --wait`, `--abort-on-container-exit`
 * and `--exit-code-from`, the fast failure of a service_healthy dependency
 * that exits, recreating only what changed (config hash, image id,
 * --force-recreate, --no-recreate), orphans kept with a warning unless
 * --remove-orphans, log prefixes from container_name. As docker compose v2.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, type Result } from "./harness.js";

const d = new Daemon();
const dir = mkdtempSync(join(tmpdir(), "bcrun-"));
const P = `crun${process.pid}`;

function compose(args: string[], o: { file?: string; timeout?: number; project?: string } = {}): Result {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", "-p", o.project ?? P, "-f", join(dir, o.file ?? "compose.yaml"), ...args], { cwd: dir, encoding: "utf8", timeout: o.timeout ?? 90_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
function ok(r: Result, what: string): Result { assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`); return r; }
const inspect = (id: string) => JSON.parse(d.berth(["inspect", id]).stdout)[0];
const idOf = (name: string) => d.berth(["inspect", "-f", "{{.Id}}", name]).stdout.trim();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  for (const f of ["compose.yaml", "wait.yaml", "abort.yaml", "healthy.yaml", "recreate.yaml", "orphans.yaml", "restart.yaml", "external.yaml", "profiles.yaml"]) compose(["down", "-v", "--remove-orphans", "-t", "1"], { file: f });
  try { await d.stop(); } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("run --rm: the one-off's exit code and output, -e over the service's environment, the container removed", () => {
  writeFileSync(join(dir, "compose.yaml"), `
services:
  job:
    image: busybox
    environment: { FOO: from-file, KEEP: kept }
    ports: ["80"]
    command: ["sh", "-c", "exit 0"]
`);
  const r = compose(["run", "--rm", "-T", "-e", "FOO=from-flag", "job", "sh", "-c", "echo out-$FOO-$KEEP; exit 7"]);
  assert.equal(r.code, 7, r.stderr);
  assert.match(r.stdout, /out-from-flag-kept/);
  const left = d.berth(["ps", "-a", "-q", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim();
  assert.equal(left, "", "run --rm removes its container");
});

test("profiles: up starts only the active ones; a service named on the command line (up, run) runs although its profile is off", () => {
  writeFileSync(join(dir, "profiles.yaml"), `
services:
  web:
    image: busybox
    command: ["sleep", "300"]
  debug:
    image: busybox
    profiles: [tools]
    command: ["sleep", "300"]
`);
  ok(compose(["up", "-d"], { file: "profiles.yaml" }), "up");
  const names = () => d.berth(["ps", "--format", "{{.Names}}", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim().split("\n").filter(Boolean).sort();
  assert.deepEqual(names(), [`${P}-web-1`]);
  ok(compose(["up", "-d", "debug"], { file: "profiles.yaml" }), "up debug");
  assert.deepEqual(names(), [`${P}-debug-1`, `${P}-web-1`]);
  const r = compose(["run", "--rm", "-T", "debug", "sh", "-c", "echo in-debug"], { file: "profiles.yaml" });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /in-debug/);
  ok(compose(["down", "--remove-orphans", "-t", "1"], { file: "profiles.yaml" }), "down");
  assert.deepEqual(names(), []);
});

test("run without --rm: named <project>-<service>-run-<hex>, labelled oneoff, no published ports; ps -a lists it, down removes it", () => {
  const r = compose(["run", "-T", "job", "true"]);
  assert.equal(r.code, 0, r.stderr);
  const names = d.berth(["ps", "-a", "--format", "{{.Names}}", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim().split("\n");
  assert.equal(names.length, 1, names.join(","));
  assert.match(names[0], new RegExp(`^${P}-job-run-[0-9a-f]{12}$`));
  const info = inspect(names[0]);
  assert.equal(info.Config.Labels["com.docker.compose.oneoff"], "True");
  assert.equal(info.Config.Labels["com.docker.compose.service"], "job");
  assert.deepEqual(info.HostConfig.PortBindings ?? {}, {}, "no service ports without --service-ports");
  assert.equal(compose(["ps", "-q"]).stdout.trim(), "", "plain ps leaves one-off containers out");
  assert.match(compose(["ps", "-a", "--format", "{{.Name}}"]).stdout, new RegExp(`${P}-job-run-`));
  ok(compose(["down"]), "down");
  assert.equal(d.berth(["ps", "-a", "-q", "--filter", `label=com.docker.compose.project=${P}`]).stdout.trim(), "");
});

test("up --wait returns once the services are healthy; a service that exits makes it fail with its exit code", () => {
  writeFileSync(join(dir, "wait.yaml"), `
services:
  slow:
    image: busybox
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1; touch /ready; while true; do sleep 1; done"]
    healthcheck: { test: ["CMD", "test", "-f", "/ready"], interval: 300ms, retries: 50 }
`);
  const r = ok(compose(["up", "--wait"], { file: "wait.yaml" }), "up --wait");
  assert.match(r.stderr, /Healthy/);
  assert.equal(inspect(`${P}-slow-1`).State.Health.Status, "healthy", "healthy when up --wait returns");
  ok(compose(["down", "-t", "1"], { file: "wait.yaml" }), "down");
  writeFileSync(join(dir, "wait.yaml"), `
services:
  broken:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; exit 3"]
    healthcheck: { test: ["CMD", "true"], interval: 1h, start_period: 1h }
`);
  const f = compose(["up", "--wait"], { file: "wait.yaml" });
  assert.equal(f.code, 1, f.stderr);
  assert.match(f.stderr, new RegExp(`container ${P}-broken-1 exited \\(3\\)`));
  ok(compose(["down"], { file: "wait.yaml" }), "down");
});

test("--abort-on-container-exit stops the others and answers the first exit code; --exit-code-from picks the service", () => {
  writeFileSync(join(dir, "abort.yaml"), `
services:
  long:
    image: busybox
    command: ["sh", "-c", "trap 'exit 4' TERM; while true; do sleep 0.2; done"]
  short:
    image: busybox
    command: ["sh", "-c", "sleep 1; echo short-done; exit 5"]
`);
  const r = compose(["up", "--abort-on-container-exit"], { file: "abort.yaml" });
  assert.equal(r.code, 5, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /short-1 +\| short-done/);
  assert.match(r.stderr, /Aborting on container exit/);
  assert.equal(inspect(`${P}-long-1`).State.Running, false, "the other container was stopped");
  const e = compose(["up", "--exit-code-from", "long"], { file: "abort.yaml" });
  assert.equal(e.code, 4, `${e.stdout}\n${e.stderr}`);
  ok(compose(["down", "-t", "1"], { file: "abort.yaml" }), "down");
});

test("service_healthy: a dependency that exits fails the up at once, as compose v2 words it; required: false only skips", () => {
  writeFileSync(join(dir, "healthy.yaml"), `
services:
  db:
    image: busybox
    command: ["sh", "-c", "sleep 0.5; exit 2"]
    healthcheck: { test: ["CMD", "true"], interval: 1h, start_period: 1h }
  web:
    image: busybox
    command: ["sleep", "60"]
    depends_on:
      db: { condition: service_healthy }
`);
  // The old code polled for 120 s: the spawn's own 60 s timeout would kill it first.
  const r = compose(["up", "-d"], { file: "healthy.yaml", timeout: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`dependency failed to start: container ${P}-db-1 exited \\(2\\)`));
  assert.equal(inspect(`${P}-web-1`).State.Running, false, "the dependent was not started");
  // --no-deps: the dependency is neither started nor waited for.
  ok(compose(["down"], { file: "healthy.yaml" }), "down");
  ok(compose(["up", "-d", "--no-deps", "web"], { file: "healthy.yaml", timeout: 60_000 }), "up --no-deps");
  assert.equal(inspect(`${P}-web-1`).State.Running, true);
  assert.equal(d.berth(["inspect", `${P}-db-1`]).code, 1, "--no-deps creates no dependency");
  ok(compose(["down", "-t", "1"], { file: "healthy.yaml" }), "down");
  writeFileSync(join(dir, "healthy.yaml"), `
services:
  db:
    image: busybox
    command: ["sh", "-c", "exit 2"]
    healthcheck: { test: ["CMD", "true"], interval: 1h, start_period: 1h }
  web:
    image: busybox
    command: ["sleep", "60"]
    depends_on:
      db: { condition: service_healthy, required: false }
`);
  ok(compose(["up", "-d"], { file: "healthy.yaml", timeout: 60_000 }), "up with an optional dependency");
  assert.equal(inspect(`${P}-web-1`).State.Running, true);
  ok(compose(["down", "-t", "1"], { file: "healthy.yaml" }), "down");
});

test("up recreates only what changed (config hash, rebuilt image), --force-recreate / --no-recreate, orphans need --remove-orphans", () => {
  mkdirSync(join(dir, "b"), { recursive: true });
  writeFileSync(join(dir, "b", "Dockerfile"), "FROM busybox\nRUN echo one > /v\nCMD [\"sleep\", \"3600\"]\n");
  const file = (env: string, extra = "") => writeFileSync(join(dir, "recreate.yaml"), `
services:
  a:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    environment: { V: "${env}" }
  b:
    build: ./b
    init: true
    container_name: ${P}-custom-b
${extra}`);
  file("1", `  c:\n    image: busybox\n    init: true\n    command: ["sleep", "3600"]\n`);
  ok(compose(["up", "-d"], { file: "recreate.yaml" }), "up");
  const a1 = idOf(`${P}-a-1`), b1 = idOf(`${P}-custom-b`);
  assert.equal(inspect(a1).Config.Labels["com.docker.compose.container-number"], "1");
  assert.match(inspect(a1).Config.Labels["com.docker.compose.config-hash"], /^[0-9a-f]{64}$/);
  // Unchanged: nothing recreated.
  const same = ok(compose(["up", "-d"], { file: "recreate.yaml" }), "up again");
  assert.equal(idOf(`${P}-a-1`), a1);
  assert.equal(idOf(`${P}-custom-b`), b1);
  assert.match(same.stderr, /a-1 +Running/);
  // c left the file: an orphan, warned about and kept.
  file("2");
  const w = ok(compose(["up", "-d", "--no-recreate"], { file: "recreate.yaml" }), "up --no-recreate");
  assert.match(w.stderr, /Found orphan containers \(\[.*c-1\]\) for this project/);
  assert.ok(idOf(`${P}-c-1`), "the orphan is still there without --remove-orphans");
  assert.equal(idOf(`${P}-a-1`), a1, "--no-recreate keeps the changed service's container");
  ok(compose(["up", "-d", "--remove-orphans"], { file: "recreate.yaml" }), "up --remove-orphans");
  const a2 = idOf(`${P}-a-1`);
  assert.notEqual(a2, a1, "the changed service is recreated");
  assert.equal(idOf(`${P}-custom-b`), b1, "the unchanged one is kept");
  assert.equal(d.berth(["inspect", `${P}-c-1`]).code, 1, "the orphan is gone with --remove-orphans");
  // A rebuilt image (same compose file) recreates its service.
  writeFileSync(join(dir, "b", "Dockerfile"), "FROM busybox\nRUN echo two > /v\nCMD [\"sleep\", \"3600\"]\n");
  ok(compose(["build", "b"], { file: "recreate.yaml" }), "build");
  ok(compose(["up", "-d"], { file: "recreate.yaml" }), "up after build");
  const b2 = idOf(`${P}-custom-b`);
  assert.notEqual(b2, b1, "a new image id recreates the container");
  assert.equal(idOf(`${P}-a-1`), a2);
  ok(compose(["up", "-d", "--force-recreate", "a"], { file: "recreate.yaml" }), "--force-recreate");
  assert.notEqual(idOf(`${P}-a-1`), a2);
  assert.equal(idOf(`${P}-custom-b`), b2);
  // Log prefixes: the container_name as it is, the default name less the project.
  ok(d.berth(["exec", `${P}-custom-b`, "sh", "-c", "cat /v > /proc/1/fd/1"]), "exec");
  const logs = compose(["logs", "--no-color"], { file: "recreate.yaml" });
  assert.match(logs.stdout, new RegExp(`^${P}-custom-b +\\| two$`, "m"));
  assert.doesNotMatch(compose(["logs"], { file: "recreate.yaml" }).stdout, /\x1b\[/, "no colour when stdout is not a terminal");
  const coloured = compose(["--ansi", "always", "logs"], { file: "recreate.yaml" }).stdout;
  assert.match(coloured, new RegExp(`\x1b\\[3[0-9](;1)?m${P}-custom-b +\\| \x1b\\[0mtwo`), "a coloured prefix per service, as docker compose prints it");
  ok(compose(["down", "-t", "1", "--rmi", "local"], { file: "recreate.yaml" }), "down");
});

test("down keeps orphans (a warning; their network stays in use) unless --remove-orphans", () => {
  const file = (both: boolean) => writeFileSync(join(dir, "orphans.yaml"), `
services:
  x:
    image: busybox
    init: true
    command: ["sleep", "3600"]
${both ? `  y:\n    image: busybox\n    init: true\n    command: ["sleep", "3600"]\n` : ""}`);
  file(true);
  ok(compose(["up", "-d"], { file: "orphans.yaml" }), "up");
  file(false);
  const r = ok(compose(["down", "-t", "1"], { file: "orphans.yaml" }), "down with an orphan");
  assert.match(r.stderr, /Found orphan containers \(\[.*-y-1\]\)/);
  assert.match(r.stderr, new RegExp(`Network ${P}_default +Resource is still in use`));
  assert.equal(d.berth(["inspect", `${P}-x-1`]).code, 1, "the file's service is removed");
  assert.equal(inspect(`${P}-y-1`).State.Running, true, "the orphan is kept");
  const r2 = ok(compose(["down", "-t", "1", "--remove-orphans"], { file: "orphans.yaml" }), "down --remove-orphans");
  assert.match(r2.stderr, new RegExp(`Network ${P}_default +Removed`));
  assert.equal(d.berth(["inspect", `${P}-y-1`]).code, 1);
});

test("depends_on restart: true: restarting or recreating the dependency restarts the dependent; service_completed_successfully", () => {
  const file = (v: string) => writeFileSync(join(dir, "restart.yaml"), `
services:
  init:
    image: busybox
    command: ["sh", "-c", "echo migrated"]
  db:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    environment: { V: "${v}" }
  app:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    depends_on:
      init: { condition: service_completed_successfully }
      db: { condition: service_started, restart: true }
  other:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    depends_on: [db]
`);
  file("1");
  ok(compose(["up", "-d"], { file: "restart.yaml" }), "up");
  assert.equal(inspect(`${P}-init-1`).State.ExitCode, 0);
  assert.equal(inspect(`${P}-app-1`).State.Running, true, "app started once init completed");
  assert.equal(inspect(`${P}-app-1`).Config.Labels["com.docker.compose.depends_on"].split(",").sort().join(","), "db:service_started:true,init:service_completed_successfully:false");
  const started = (n: string) => inspect(`${P}-${n}-1`).State.StartedAt as string;
  const [app0, other0] = [started("app"), started("other")];
  ok(compose(["restart", "-t", "1", "db"], { file: "restart.yaml" }), "restart db");
  assert.notEqual(started("app"), app0, "restart: true restarts the dependent");
  assert.equal(started("other"), other0, "a plain dependent is left alone");
  const app1 = started("app");
  file("2");
  ok(compose(["up", "-d"], { file: "restart.yaml" }), "up with db changed");
  assert.notEqual(started("app"), app1, "recreating db restarts app");
  assert.equal(started("other"), other0);
  ok(compose(["down", "-t", "1"], { file: "restart.yaml" }), "down");
});

test("external networks and volumes must exist (compose's errors), are used as they are, and down leaves them", () => {
  writeFileSync(join(dir, "external.yaml"), `
services:
  s:
    image: busybox
    init: true
    command: ["sleep", "3600"]
    networks: [outside]
    volumes: ["shared:/shared"]
networks:
  outside: { external: true, name: ${P}-extnet }
volumes:
  shared: { external: true, name: ${P}-extvol }
`);
  const n = compose(["up", "-d"], { file: "external.yaml" });
  assert.equal(n.code, 1);
  assert.match(n.stderr, new RegExp(`network ${P}-extnet declared as external, but could not be found`));
  ok(d.berth(["network", "create", `${P}-extnet`]), "network create");
  const v = compose(["up", "-d"], { file: "external.yaml" });
  assert.equal(v.code, 1);
  assert.match(v.stderr, new RegExp(`external volume "${P}-extvol" not found`));
  ok(d.berth(["volume", "create", `${P}-extvol`]), "volume create");
  ok(compose(["up", "-d"], { file: "external.yaml" }), "up");
  const info = inspect(`${P}-s-1`);
  assert.ok(info.NetworkSettings.Networks[`${P}-extnet`], "on the external network");
  assert.ok(info.Mounts.some((m: { Name?: string }) => m.Name === `${P}-extvol`), "the external volume mounted");
  ok(compose(["down", "-v", "-t", "1"], { file: "external.yaml" }), "down -v");
  assert.equal(d.berth(["network", "inspect", `${P}-extnet`]).code, 0, "an external network is not removed");
  assert.equal(d.berth(["volume", "inspect", `${P}-extvol`]).code, 0, "an external volume is not removed");
  ok(d.berth(["network", "rm", `${P}-extnet`]), "network rm");
  ok(d.berth(["volume", "rm", `${P}-extvol`]), "volume rm");
});
