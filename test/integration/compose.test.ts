/**
 * `berth compose` against a real berthd: a built web service and a client
 * that reaches it by service name, .env interpolation, a named volume across
 * down/up, recreation on config change, ps/logs/exec/config, attached up,
 * and down leaving nothing of the project. Traffic only to loopback.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, basename } from "node:path";
import net from "node:net";
import { Daemon, BERTH, sleep, type Result } from "./harness.js";

const d = new Daemon();
const base = mkdtempSync(join(tmpdir(), "bcomp-"));
const dir = join(base, `Proj.${process.pid}`);
const project = `proj${process.pid}`; // the directory name, normalized
const PORT = 18580;

function compose(args: string[], o: { env?: Record<string, string>; cwd?: string; timeout?: number } = {}): Result {
  const r = spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", ...args], { cwd: o.cwd ?? dir, encoding: "utf8", env: { ...process.env, ...o.env }, timeout: o.timeout ?? 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

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

const ids = (service: string) => compose(["ps", "-a", "-q", service]).stdout.trim();

before(async () => {
  await d.start();
  await d.bootstrap();
  mkdirSync(join(dir, "web"), { recursive: true });
  writeFileSync(join(dir, "web", "Dockerfile"), "FROM busybox\nARG MSG=none\nRUN mkdir /www && echo \"hello from web ($MSG)\" > /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n");
  writeFileSync(join(dir, ".env"), `WEB_PORT=${PORT}\nGREETING=hello-from-dotenv\n`);
  writeFileSync(join(dir, "compose.yaml"), `
services:
  web:
    build:
      context: ./web
      args: { MSG: built }
    init: true
    ports: ["\${WEB_PORT}:80"]
  client:
    image: busybox
    depends_on:
      web: { condition: service_started }
    environment:
      GREETING: \${GREETING:-unset}
      PRICE: "$$5"
    volumes: ["data:/data"]
    command: ["sh", "-c", "trap 'exit 0' TERM; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://web/ && break; sleep 1; done; echo CLIENT-DONE $$GREETING; while true; do sleep 1; done"]
volumes:
  data: {}
`);
});

after(async () => {
  compose(["down", "-v", "--rmi", "local"]);
  compose(["-f", "oneshot.yaml", "down"]);
  try { await d.stop(); } finally { rmSync(base, { recursive: true, force: true }); }
});

test("config prints the resolved model; the process environment beats .env", () => {
  const r = ok(compose(["config"]), "config");
  assert.match(r.stdout, new RegExp(`^name: ${project}$`, "m"));
  assert.match(r.stdout, /GREETING: hello-from-dotenv/);
  assert.match(r.stdout, /PRICE: \$5/);
  assert.match(r.stdout, new RegExp(`published: "${PORT}"`));
  assert.match(ok(compose(["config"], { env: { GREETING: "from-process" } }), "config").stdout, /GREETING: from-process/);
  assert.equal(ok(compose(["config", "--services"]), "config --services").stdout, "client\nweb\n");
  const bad = compose(["config"], { cwd: base });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no configuration file provided/);
});

test("up -d builds, creates the network and volume, starts in order; services reach each other by name", async () => {
  const r = ok(compose(["up", "-d"]), "up -d");
  assert.match(r.stderr, new RegExp(`Network ${project}_default  Created`));
  assert.match(r.stderr, new RegExp(`Volume "${project}_data"  Created`));
  assert.ok(r.stderr.indexOf(`Container ${project}-web-1  Started`) < r.stderr.indexOf(`Container ${project}-client-1  Started`), r.stderr);
  // The published port, from the host over loopback.
  let body = "";
  for (let i = 0; i < 20 && !body.includes("hello from web"); i++) { body = await httpGet(PORT); if (!body.includes("hello")) await sleep(250); }
  assert.equal(body, "hello from web (built)\n");
  // The client fetched http://web/ through the embedded DNS.
  let logs = "";
  for (let i = 0; i < 40 && !logs.includes("CLIENT-DONE"); i++) { logs = ok(compose(["logs", "client"]), "logs").stdout; if (!logs.includes("CLIENT-DONE")) await sleep(250); }
  assert.match(logs, /^client-1  \| hello from web \(built\)$/m);
  assert.match(logs, /^client-1  \| CLIENT-DONE hello-from-dotenv$/m);
  assert.equal(ok(compose(["exec", "-T", "client", "wget", "-qO-", "http://web/"]), "exec").stdout, "hello from web (built)\n");
  const ex = compose(["exec", "-T", "client", "sh", "-c", "exit 3"]);
  assert.equal(ex.code, 3);
  // Docker Compose's labels, so docker compose would find the same project.
  const labels = JSON.parse(d.berth(["inspect", "-f", "{{json .Config.Labels}}", `${project}-client-1`]).stdout) as Record<string, string>;
  assert.equal(labels["com.docker.compose.project"], project);
  assert.equal(labels["com.docker.compose.service"], "client");
  assert.equal(labels["com.docker.compose.container-number"], "1");
  assert.equal(labels["com.docker.compose.oneoff"], "False");
  assert.equal(labels["com.docker.compose.project.config_files"], join(dir, "compose.yaml"));
  assert.match(labels["com.docker.compose.config-hash"], /^[0-9a-f]{64}$/);
});

test("ps lists the project's containers", () => {
  const r = ok(compose(["ps"]), "ps");
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0], /^NAME\s+IMAGE\s+COMMAND\s+SERVICE\s+CREATED\s+STATUS\s+PORTS$/);
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[1], new RegExp(`^${project}-client-1\\s+busybox\\s+.*\\s+client\\s+.*Up`));
  assert.match(lines[2], new RegExp(`^${project}-web-1\\s+${project}-web\\s+.*\\s+web\\s+.*Up.*0\\.0\\.0\\.0:${PORT}->80/tcp`));
  const json = ok(compose(["ps", "--format", "json"]), "ps json").stdout.trim().split("\n").map((l) => JSON.parse(l) as { Service: string; State: string });
  assert.deepEqual(json.map((x) => [x.Service, x.State]), [["client", "running"], ["web", "running"]]);
  assert.equal(ok(compose(["ps", "--format", "{{.Service}}"]), "ps fmt").stdout, "client\nweb\n");
});

test("up again keeps unchanged containers and recreates a changed service", () => {
  const web = ids("web"), client = ids("client");
  const r = ok(compose(["up", "-d"]), "up -d again");
  assert.match(r.stderr, /Container .*-web-1  Running/);
  assert.equal(ids("web"), web);
  assert.equal(ids("client"), client);
  const r2 = ok(compose(["up", "-d"], { env: { GREETING: "changed" } }), "up -d changed");
  assert.match(r2.stderr, /client-1  Recreate/);
  assert.equal(ids("web"), web);
  assert.notEqual(ids("client"), client);
  assert.match(d.berth(["inspect", "-f", "{{json .Config.Env}}", `${project}-client-1`]).stdout, /GREETING=changed/);
});

test("stop, start, restart", () => {
  ok(compose(["stop", "client"]), "stop");
  assert.match(ok(compose(["ps", "-a", "--format", "{{.Service}} {{.State}}"]), "ps").stdout, /client exited/);
  ok(compose(["start"]), "start");
  assert.match(ok(compose(["ps", "--format", "{{.Service}} {{.State}}"]), "ps").stdout, /client running/);
  ok(compose(["restart", "web"]), "restart");
  assert.match(ok(compose(["ps", "--format", "{{.Service}} {{.State}}"]), "ps").stdout, /web running/);
});

test("named volume survives down and up, down -v removes it; down leaves no containers or networks", () => {
  ok(compose(["exec", "-T", "client", "sh", "-c", "echo persisted > /data/f"]), "write");
  const down = ok(compose(["down"]), "down");
  assert.match(down.stderr, new RegExp(`Network ${project}_default  Removed`));
  assert.doesNotMatch(d.berth(["ps", "-a", "--format", "{{.Names}}"]).stdout, new RegExp(project));
  assert.doesNotMatch(d.berth(["network", "ls", "--format", "{{.Name}}"]).stdout, new RegExp(project));
  assert.match(d.berth(["volume", "ls", "--format", "{{.Name}}"]).stdout, new RegExp(`^${project}_data$`, "m"));
  ok(compose(["up", "-d", "client"]), "up client"); // brings up web as its dependency
  assert.equal(ok(compose(["exec", "-T", "client", "cat", "/data/f"]), "read").stdout, "persisted\n");
  assert.equal(ids("web").length > 0, true);
  ok(compose(["down", "-v", "--rmi", "local"]), "down -v");
  assert.doesNotMatch(d.berth(["ps", "-a", "--format", "{{.Names}}"]).stdout, new RegExp(project));
  assert.doesNotMatch(d.berth(["network", "ls", "--format", "{{.Name}}"]).stdout, new RegExp(project));
  assert.doesNotMatch(d.berth(["volume", "ls", "--format", "{{.Name}}"]).stdout, new RegExp(project));
  assert.doesNotMatch(d.berth(["images", "--format", "{{.Repository}}"]).stdout, new RegExp(`${project}-web`));
});

test("up without -d prints prefixed logs and returns when the containers exit; Ctrl-C stops them", async () => {
  writeFileSync(join(dir, "oneshot.yaml"), `
services:
  one:
    image: busybox
    command: ["sh", "-c", "echo first line; echo second line"]
  looper:
    image: busybox
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; echo looping; while true; do sleep 1; done"]
`);
  const r = ok(compose(["-f", "oneshot.yaml", "-p", "oneshot", "up", "one"]), "up attached");
  assert.match(r.stdout, /^one-1  \| first line$/m);
  assert.match(r.stdout, /^one-1  \| second line$/m);
  assert.match(r.stdout, /^one-1 exited with code 0$/m);
  // Ctrl-C: graceful stop.
  const p = spawn(process.execPath, [BERTH, "-H", d.host, "compose", "-f", "oneshot.yaml", "-p", "oneshot", "up", "looper"], { cwd: dir });
  let out = "", err = "";
  p.stdout.on("data", (x) => { out += x; });
  p.stderr.on("data", (x) => { err += x; });
  for (let i = 0; i < 80 && !out.includes("looping"); i++) await sleep(100);
  assert.match(out, /looper-1  \| looping/, err);
  p.kill("SIGINT");
  const code = await new Promise<number | null>((res) => p.on("close", res));
  assert.match(err, /Gracefully stopping/);
  assert.match(out, /looper-1  \| got TERM/);
  assert.equal(code, 130);
  assert.match(ok(compose(["-p", "oneshot", "ps", "-a", "--format", "{{.Service}} {{.State}}"], { cwd: base }), "ps -p").stdout, /looper exited/);
  // down by project name alone, without the file.
  ok(compose(["-p", "oneshot", "down"], { cwd: base }), "down -p");
  assert.doesNotMatch(d.berth(["ps", "-a", "--format", "{{.Names}}"]).stdout, /oneshot/);
  assert.doesNotMatch(d.berth(["network", "ls", "--format", "{{.Name}}"]).stdout, /oneshot/);
  assert.equal(basename(dir).length > 0, true);
});

test("healthcheck and depends_on service_healthy: the dependent starts only once its dependency is healthy", () => {
  const file = join(dir, "health.yaml");
  writeFileSync(file, [
    "services:",
    "  db:",
    "    image: busybox",
    "    command: [\"sh\", \"-c\", \"sleep 1 && touch /tmp/ready && sleep 60\"]",
    "    healthcheck:",
    "      test: [\"CMD\", \"test\", \"-e\", \"/tmp/ready\"]",
    "      interval: 200ms",
    "      retries: 20",
    "  app:",
    "    image: busybox",
    "    command: [\"sleep\", \"60\"]",
    "    depends_on:",
    "      db:",
    "        condition: service_healthy",
    "",
  ].join("\n"));
  ok(compose(["-f", file, "-p", "healthproj", "up", "-d"]), "up -d");
  const health = d.berth(["inspect", "-f", "{{.State.Health.Status}}", "healthproj-db-1"]).stdout.trim();
  assert.equal(health, "healthy");
  const dbHealthyAt = Date.parse(JSON.parse(d.berth(["inspect", "-f", "{{json .State.Health.Log}}", "healthproj-db-1"]).stdout).find((l: { ExitCode: number }) => l.ExitCode === 0).End);
  const appStarted = Date.parse(d.berth(["inspect", "-f", "{{.State.StartedAt}}", "healthproj-app-1"]).stdout.trim());
  assert.ok(appStarted >= dbHealthyAt, "app started after db was healthy");
  assert.match(compose(["-f", file, "-p", "healthproj", "ps"]).stdout, /\(healthy\)/);
  ok(compose(["-f", file, "-p", "healthproj", "down"]), "down");
});
