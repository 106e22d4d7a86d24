import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { interpolate, InterpolationError } from "../../src/compose/interpolate.js";
import { parseDotEnv } from "../../src/compose/dotenv.js";
import { loadProject, normalizeProjectName, shellSplit, dependencyOrder, ComposeError } from "../../src/compose/loader.js";
import { Orchestrator, configHash } from "../../src/compose/orchestrator.js";
import type { ApiClient } from "../../src/api/client.js";

const doc = (content: string, path = "/proj/compose.yaml") => ({ path, content });
const load = (content: string | string[], env: Record<string, string> = {}, projectName?: string) =>
  loadProject({ documents: (Array.isArray(content) ? content : [content]).map((c, i) => doc(c, `/nonexistent-proj/c${i}.yaml`)), env, projectName });

test("interpolation: forms, defaults, errors and $$", () => {
  const env = { A: "a", E: "" };
  assert.equal(interpolate("$A ${A} x${A}y", env), "a a xay");
  assert.equal(interpolate("${E:-d} ${E-d} ${U:-d} ${U-d}", env), "d  d d");
  assert.equal(interpolate("${A:+alt} ${E:+alt} ${E+alt} ${U+alt}", env), "alt  alt ");
  assert.equal(interpolate("$$A $${A} cost: $$5", env), "$A ${A} cost: $5");
  assert.equal(interpolate("${U:-${A}-nested}", env), "a-nested");
  assert.equal(interpolate("${U}", env), "");
  assert.equal(interpolate("100$", env), "100$");
  assert.throws(() => interpolate("${U:?must be set}", env, "services.x.image"), (e: Error) => e instanceof InterpolationError && e.message === "error while interpolating services.x.image: required variable U is missing a value: must be set");
  assert.throws(() => interpolate("${E:?}", env), /required variable E/);
  assert.equal(interpolate("${E?}", env), "");
  assert.throws(() => interpolate("${A", env), (e: Error) => e.message === 'Invalid template: "${A"');
  assert.throws(() => interpolate("x ${1A}", env, "services.web.image"), (e: Error) => e.message === "invalid interpolation format for services.web.image.\nYou may need to escape any $ with another $.\nx ${1A}");
});

test(".env parsing", () => {
  assert.deepEqual(parseDotEnv("# c\nA=1\nexport B = two \nC=\"q \\\"x\\\"\"\nD='$raw'\nE=v # comment\n"), { A: "1", B: "two", C: 'q "x"', D: "$raw", E: "v" });
  assert.throws(() => parseDotEnv("A=1\nbad line\n"), /line 2: key cannot contain a space/);
});

test("project names and shell words", () => {
  assert.equal(normalizeProjectName("My.App Dir_1-x"), "myappdir_1-x");
  assert.equal(normalizeProjectName("_x"), "x");
  assert.deepEqual(shellSplit(`sh -c 'echo "hi there"' a\\ b "c d"`), ["sh", "-c", 'echo "hi there"', "a b", "c d"]);
  assert.throws(() => shellSplit("echo 'x"), /unterminated quote/);
});

test("short and long syntax normalize to the same model", () => {
  const p = load(`
services:
  web:
    image: busybox
    command: httpd -f -p 80
    entrypoint: ["/bin/sh", "-c"]
    environment: [A=1, B]
    ports: ["8080:80", "127.0.0.1:8081:81/udp", 9000, "3000-3001:4000-4001", {target: 82, published: "8082", host_ip: 127.0.0.1, protocol: tcp}]
    volumes: ["data:/data:ro", "./rel:/rel", "/abs:/abs:rw", "/anon", {type: volume, source: data, target: /d2, read_only: true}, {type: tmpfs, target: /t}]
    networks: {front: {aliases: [www]}, default: null}
    depends_on: [db]
    labels: {x: 1}
    tmpfs: /run
    expose: [81]
    restart: on-failure:3
    init: true
    read_only: "true"
  db:
    image: busybox
    networks: [default]
networks: {front: {internal: true}, ext: {external: true, name: outside}}
volumes: {data: {}}
`, { B: "from-env" }, "demo");
  const w = p.services.web;
  assert.equal(p.name, "demo");
  assert.deepEqual(w.command, ["httpd", "-f", "-p", "80"]);
  assert.deepEqual(w.entrypoint, ["/bin/sh", "-c"]);
  assert.deepEqual(w.environment, { A: "1", B: "from-env" });
  assert.deepEqual(w.ports, [
    { target: 80, published: "8080", protocol: "tcp" },
    { target: 81, published: "8081", host_ip: "127.0.0.1", protocol: "udp" },
    { target: 9000, protocol: "tcp" },
    { target: 4000, published: "3000", protocol: "tcp" },
    { target: 4001, published: "3001", protocol: "tcp" },
    { target: 82, published: "8082", host_ip: "127.0.0.1", protocol: "tcp" },
  ]);
  assert.deepEqual(w.volumes, [
    { type: "volume", source: "data", target: "/data", read_only: true },
    { type: "bind", source: "/nonexistent-proj/rel", target: "/rel", read_only: false },
    { type: "bind", source: "/abs", target: "/abs", read_only: false },
    { type: "volume", target: "/anon", read_only: false },
    { type: "volume", source: "data", target: "/d2", read_only: true },
    { type: "tmpfs", target: "/t", read_only: false },
  ]);
  assert.deepEqual(w.networks, { front: { aliases: ["www"] }, default: { aliases: [] } });
  assert.deepEqual(w.depends_on, { db: { condition: "service_started", required: true } });
  assert.deepEqual(w.labels, { x: "1" });
  assert.deepEqual(w.tmpfs, ["/run"]);
  assert.equal(w.read_only, true);
  assert.deepEqual(p.networks.front, { name: "demo_front", driver: "bridge", internal: true, external: false, labels: {} });
  assert.equal(p.networks.ext.name, "outside");
  assert.equal(p.networks.default.name, "demo_default");
  assert.equal(p.volumes.data.name, "demo_data");
  assert.deepEqual(dependencyOrder(p.services), ["db", "web"]);
});

test("the create body carries compose labels, aliases, ports and mounts", () => {
  const p = load(`
services:
  web:
    build: {context: ./app, args: {V: "1"}}
    ports: ["127.0.0.1:18080:80"]
    volumes: ["data:/data:ro"]
    networks: {default: {aliases: [www]}, back: null}
networks: {back: {}}
volumes: {data: {}}
`, {}, "p1");
  const o = new Orchestrator(undefined as unknown as ApiClient, p, { progress: () => {}, out: () => {} });
  const b = o.createBody(p.services.web, "sha256:abc") as Record<string, any>;
  assert.equal(b.Image, "p1-web");
  assert.equal(o.containerName(p.services.web), "p1-web-1");
  assert.equal(b.Labels["com.docker.compose.project"], "p1");
  assert.equal(b.Labels["com.docker.compose.service"], "web");
  assert.equal(b.Labels["com.docker.compose.oneoff"], "False");
  assert.equal(b.Labels["com.docker.compose.container-number"], "1");
  assert.equal(b.Labels["com.docker.compose.config-hash"], configHash(p.services.web));
  assert.deepEqual(b.HostConfig.PortBindings, { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "18080" }] });
  assert.deepEqual(b.HostConfig.Binds, ["p1_data:/data:ro"]);
  assert.equal(b.HostConfig.NetworkMode, "p1_default");
  assert.deepEqual(b.NetworkingConfig.EndpointsConfig.p1_default.Aliases, ["web", "www"]);
  assert.deepEqual(b._extraNetworks, [{ name: "p1_back", config: { Aliases: ["web"] } }]);
  assert.equal(p.services.web.build!.context, "/nonexistent-proj/app");
  assert.deepEqual(p.services.web.build!.args, { V: "1" });
});

test("merging two files: later overrides, maps merge, ports append, volumes by target", () => {
  const p = load([`
services:
  web:
    image: busybox:1
    command: ["a"]
    environment: {A: "1", B: "1"}
    labels: [l1=x]
    ports: ["8080:80"]
    volumes: ["/h1:/data", "/h2:/other"]
  db:
    image: busybox
`, `
services:
  web:
    image: busybox:2
    command: b c
    environment: [B=2, C=3]
    labels: {l2: y}
    ports: ["8443:443"]
    volumes: ["/h3:/data"]
`], {}, "m");
  const w = p.services.web;
  assert.equal(w.image, "busybox:2");
  assert.deepEqual(w.command, ["b", "c"]);
  assert.deepEqual(w.environment, { A: "1", B: "2", C: "3" });
  assert.deepEqual(w.labels, { l1: "x", l2: "y" });
  assert.deepEqual(w.ports.map((x) => x.target), [80, 443]);
  // compose-go: the later mount of /data takes the earlier one's place.
  assert.deepEqual(w.volumes.map((v) => `${v.source}:${v.target}`), ["/h3:/data", "/h2:/other"]);
  assert.ok(p.services.db);
});

test("files on disk: default file name, .env, process env wins, env_file, project name from the directory", () => {
  const dir = mkdtempSync(join(tmpdir(), "compose-unit-"));
  try {
    const proj = join(dir, "My_Project.1");
    mkdirSync(proj);
    writeFileSync(join(proj, "docker-compose.yml"), "services:\n  app:\n    image: ${IMG:-busybox}:${TAG}\n    env_file: app.env\n    environment: {X: $X}\n");
    writeFileSync(join(proj, ".env"), "TAG=1.36\nX=from-dotenv\nIMG=dot\n");
    writeFileSync(join(proj, "app.env"), "FROM_FILE=yes\nX=overridden\n");
    const p = loadProject({ cwd: proj, env: { IMG: "proc" } });
    assert.equal(p.name, "my_project1");
    assert.equal(p.services.app.image, "proc:1.36");
    assert.deepEqual(p.services.app.environment, { FROM_FILE: "yes", X: "from-dotenv" });
    assert.throws(() => loadProject({ cwd: dir, env: {} }), /no configuration file provided/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("errors name the service and the key", () => {
  const err = (y: string, re: RegExp) => assert.throws(() => load(y, {}, "e"), (e: Error) => e instanceof ComposeError && re.test(e.message), re.source);
  err("services:\n  web:\n    image: busybox\n    imgae: x\n", /validating \/nonexistent-proj\/c0\.yaml: services\.web additional properties 'imgae' not allowed/);
  err("services:\n  web:\n    image: busybox\n    ports: \"80\"\n", /validating .*: services\.web\.ports must be a list/);
  err("services:\n  web:\n    image: [busybox]\n", /validating .*: services\.web\.image must be a string/);
  err("services:\n  web:\n    image: busybox\n    ports: [\"a:b\"]\n", /services\.web\.ports\[0\]: invalid port/);
  err("services:\n  web:\n    image: busybox\n    read_only: maybe\n", /^error while interpolating services\.web\.read_only: failed to cast to expected type: invalid boolean: maybe$/);
  err("services:\n  web:\n    command: x\n", /^service "web" has neither an image nor a build context specified: invalid compose project$/);
  err("services:\n  web:\n    image: x\n    healthcheck: {test: [curl, x]}\n", /^healthcheck\.test must start either by "CMD", "CMD-SHELL" or "NONE"$/);
  err("services:\n  web:\n    image: x\n    network_mode: host\n    networks: [default]\n", /^service web declares mutually exclusive `network_mode` and `networks`: invalid compose project$/);
  err("services:\n  web:\n    image: busybox\n    depends_on: [nope]\n", /service "web" depends on undefined service "nope"/);
  err("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n", /dependency cycle/);
  err("services:\n  web:\n    image: busybox\n    volumes: [\"nope:/x\"]\n", /service "web" refers to undefined volume nope/);
  err("services:\n  web:\n    image: busybox\n    networks: [nope]\n", /service "web" refers to undefined network nope/);
  err("services:\n  web:\n    image: busybox\n    depends_on: {db: {condition: sometime}}\n  db:\n    image: x\n", /services\.web\.depends_on\.db\.condition must be one of "service_started", "service_healthy", "service_completed_successfully"/);
  err("services:\n  web:\n    image: ${NOPE:?set NOPE}\n", /^error while interpolating services\.web\.image: required variable NOPE is missing a value: set NOPE$/);
  err("servics: {}\n", /\(root\) additional properties 'servics' not allowed/);
  assert.throws(() => load("services: {}\n", {}, "Bad Name"), /invalid project name/);
  // Valid-but-unsupported keys are accepted with a warning.
  const p = load("services:\n  web:\n    image: busybox\n    ulimits: {nofile: 1024}\n", {}, "w");
  assert.match(p.warnings.join("\n"), /services\.web\.ulimits is not supported by berth/);
});
