/**
 * docker-compose 1.29 (Debian's, the Python one) against a real berthd: the
 * seed's Flask + Redis application (a web service built from a Dockerfile that
 * counts visits in Redis, reached by service name, Redis data in a named
 * volume) through up -d --build, ps, logs, a second up, down, down -v.
 *
 * No registry here: the base image (Debian bookworm with python3-flask,
 * python3-redis and redis-server from Debian's packages) is made by mmdebstrap
 * and imported; the seed's `pip install -r requirements.txt` step is therefore
 * replaced by those Debian packages, and `redis:7-alpine` by redis-server from
 * the same base. Everything else is the seed's compose file and app.py.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Daemon, REPO, type Result } from "../integration/harness.js";
import { ok, poll, freePort, scratch, httpGet } from "./helpers.js";

const d = new Daemon();
const work = scratch("berth-dc-");
const dir = join(work, "flaskapp");
const project = `seed${process.pid}`;
const BASE = "berth-clients/pyflask:bookworm";
let port = 0;

function compose(args: string[], timeout = 180_000): Result {
  const r = spawnSync("docker-compose", ["-p", project, ...args], { cwd: dir, encoding: "utf8", env: { ...process.env, DOCKER_HOST: d.host, COMPOSE_INTERACTIVE_NO_CLI: "1", WEB_PORT: String(port) }, timeout });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
const docker = (args: string[]) => d.docker(args, { timeout: 120_000 });

before(async () => {
  const v = spawnSync("docker-compose", ["version", "--short"], { encoding: "utf8" });
  assert.equal(v.status, 0, `docker-compose is not installed (scripts/setup.sh installs it): ${v.stderr}`);
  await d.start();
  port = await freePort();
  // The base image, from Debian's packages (what `berth image bootstrap debian:bookworm` does, plus three packages).
  const mirror = process.env.BERTH_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
  const mm = spawnSync("mmdebstrap", ["--variant=minbase", "--mode=root", "--format=tar", "--quiet", "--include=python3-flask,python3-redis,redis-server",
    ...["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*"].map((p) => `--dpkgopt=path-exclude=${p}`), "bookworm", join(work, "base.tar"), mirror], { encoding: "utf8", timeout: 300_000 });
  assert.equal(mm.status, 0, `mmdebstrap: ${mm.stderr}`);
  ok(docker(["import", join(work, "base.tar"), BASE]), "import the base");
  rmSync(join(work, "base.tar"));
  mkdirSync(dir, { recursive: true });
  // The seed's app (lecture 003: the Flask app extended with a Redis counter), as make demo runs it.
  copyFileSync(join(REPO, "scripts/seed-app/app.py"), join(dir, "app.py"));
  writeFileSync(join(dir, "requirements.txt"), "flask==3.1.*\nredis==5.*\n");
  writeFileSync(join(dir, "Dockerfile"), `FROM ${BASE}
WORKDIR /app
COPY requirements.txt .
# The seed runs pip install -r requirements.txt here; the base has them from Debian.
COPY . .
EXPOSE 5000
CMD ["python3", "app.py"]
`);
  writeFileSync(join(dir, "docker-compose.yml"), `version: "3.8"
services:
  web:
    build: .
    ports:
      - "127.0.0.1:\${WEB_PORT}:5000"
    environment:
      - REDIS_HOST=redis
      - PYTHONUNBUFFERED=1
    depends_on:
      - redis
  redis:
    image: ${BASE}
    command: ["redis-server", "--protected-mode", "no", "--dir", "/data", "--save", "1", "1"]
    volumes:
      - redis-data:/data
volumes:
  redis-data:
`);
});

after(async () => {
  compose(["down", "-v", "--rmi", "local"]);
  docker(["rmi", BASE]);
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

test("docker-compose up -d --build: both services start, web reaches redis by name", async () => {
  const up = compose(["up", "-d", "--build"]);
  ok(up, "up");
  assert.match(up.stderr, new RegExp(`Creating ${project}_redis_1 \\.\\.\\. done`));
  assert.match(up.stderr, new RegExp(`Creating ${project}_web_1 +\\.\\.\\. done`));
  const first = await poll(() => httpGet(port).then((b) => b.startsWith("Hello!") ? b : ""), 30_000);
  assert.equal(first, "Hello! This page has been viewed 1 time(s).\n");
  assert.equal(await httpGet(port), "Hello! This page has been viewed 2 time(s).\n");
});

test("docker-compose ps lists both services Up, with the published port", () => {
  const ps = ok(compose(["ps"]), "ps").stdout.split("\n");
  const web = ps.find((l) => l.startsWith(`${project}_web_1`));
  const redis = ps.find((l) => l.startsWith(`${project}_redis_1`));
  assert.ok(web && /\bUp\b/.test(web), ps.join("\n"));
  assert.ok(redis && /\bUp\b/.test(redis), ps.join("\n"));
  assert.match(web!, new RegExp(`127\\.0\\.0\\.1:${port}->5000/tcp`));
  assert.deepEqual(ok(compose(["ps", "--services"]), "ps --services").stdout.split("\n").filter(Boolean).sort(), ["redis", "web"]);
  assert.equal(ok(compose(["ps", "-q"]), "ps -q").stdout.split("\n").filter(Boolean).length, 2);
});

test("docker-compose logs shows each service's output, prefixed by its container", async () => {
  const logs = await poll(() => { const l = compose(["logs", "--no-color"]).stdout; return /Ready to accept connections/.test(l) && /GET \/ HTTP/.test(l) ? l : ""; });
  assert.match(logs, new RegExp(`web_1 +\\| .*Running on http://`));
  assert.match(logs, new RegExp(`web_1 +\\| .*"GET / HTTP/1\\.1" 200`));
  assert.match(logs, new RegExp(`redis_1 +\\| .*Ready to accept connections`));
  const web = compose(["logs", "--no-color", "web"]).stdout;
  assert.ok(!web.includes("redis_1"), "logs web shows only web");
});

test("docker-compose up again changes nothing; down keeps the volume (the count survives); down -v removes it", async () => {
  const again = ok(compose(["up", "-d"]), "up again");
  assert.match(again.stderr, new RegExp(`${project}_redis_1 is up-to-date`));
  assert.match(again.stderr, new RegExp(`${project}_web_1 is up-to-date`));
  assert.doesNotMatch(again.stderr, /_2\b/, "compose numbers containers _2 when label filters do not AND");
  // Redis writes its snapshot when it stops: the count survives down/up through the named volume.
  const down = ok(compose(["down"]), "down");
  assert.match(down.stderr, new RegExp(`Removing network ${project}_default`));
  assert.equal(docker(["ps", "-aq"]).stdout, "");
  assert.equal(docker(["network", "ls", "-q", "--filter", `name=${project}_default`]).stdout, "");
  assert.equal(docker(["volume", "ls", "-q"]).stdout.trim(), `${project}_redis-data`);
  ok(compose(["up", "-d"]), "up after down");
  const third = await poll(() => httpGet(port).then((b) => b.startsWith("Hello!") ? b : ""), 30_000);
  assert.equal(third, "Hello! This page has been viewed 3 time(s).\n");
  ok(compose(["down", "-v"]), "down -v");
  assert.equal(docker(["volume", "ls", "-q"]).stdout, "");
  assert.equal(docker(["ps", "-aq"]).stdout, "");
});
