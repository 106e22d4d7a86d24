/**
 * Testcontainers for Node (npm testcontainers 11.14.0: the newest release that
 * runs on Node 20; 12.0 needs undici 8 and so Node >= 22.19, 12.1 declares
 * Node >= 22.22) against a real berthd, its resource reaper disabled
 * (TESTCONTAINERS_RYUK_DISABLED=true). A GenericContainer on busybox with the
 * log-message, listening-port (the default) and HTTP wait strategies, exec and
 * logs through it, and two containers on a Network talking by alias.
 * CLIENTS_DOCKERD=1 runs the same file against the machine's dockerd.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon } from "../integration/harness.js";
import { httpGet } from "./helpers.js";

const AGAINST_DOCKERD = process.env.CLIENTS_DOCKERD === "1";
const d = new Daemon();
let tc: typeof import("testcontainers");
const started: { stop(): Promise<unknown> }[] = [];
const HTTPD = ["sh", "-c", "mkdir -p /w && echo hello-tc > /w/index.html && exec httpd -f -p 8080 -h /w"];

before(async () => {
  if (!AGAINST_DOCKERD) { await d.start(); await d.bootstrap(); }
  // Testcontainers reads these when it first makes its client: set them before importing it.
  process.env.DOCKER_HOST = AGAINST_DOCKERD ? "unix:///var/run/docker.sock" : d.host;
  process.env.TESTCONTAINERS_RYUK_DISABLED = "true";
  process.env.TESTCONTAINERS_HOST_OVERRIDE = "127.0.0.1";
  tc = await import("testcontainers");
});

after(async () => {
  for (const c of started.reverse()) await c.stop().catch(() => {});
  if (!AGAINST_DOCKERD) await d.stop();
});

async function keep<T extends { stop(): Promise<unknown> }>(p: Promise<T>): Promise<T> {
  const c = await p;
  started.push(c);
  return c;
}

test("testcontainers: GenericContainer with the log-message wait strategy; exec and logs", async () => {
  const c = await keep(new tc.GenericContainer("busybox:latest")
    .withCommand(["sh", "-c", "echo starting; echo ready to serve; exec sleep 300"])
    .withWaitStrategy(tc.Wait.forLogMessage("ready to serve"))
    .withStartupTimeout(30_000)
    .withLabels({ suite: "tc" })
    .start());
  const r = await c.exec(["sh", "-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(r.exitCode, 3);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  const lines: string[] = [];
  const logs = await c.logs();
  await new Promise<void>((res) => { logs.on("data", (l: string) => { lines.push(String(l)); if (lines.join("").includes("ready to serve")) res(); }); });
  logs.destroy();
  assert.match(lines.join(""), /starting\n/);
  const stopped = await c.stop();
  started.splice(started.indexOf(c), 1);
  assert.ok(stopped);
});

test("testcontainers: the default wait strategy (listening port) on busybox httpd, reached through the mapped port", async () => {
  const c = await keep(new tc.GenericContainer("busybox:latest").withCommand(HTTPD).withExposedPorts(8080).withStartupTimeout(30_000).start());
  const port = c.getMappedPort(8080);
  assert.ok(port > 0);
  assert.equal(await httpGet(port), "hello-tc\n");
  assert.equal(c.getHost(), "127.0.0.1");
  await c.stop();
  started.splice(started.indexOf(c), 1);
});

test("testcontainers: the HTTP wait strategy", async () => {
  const c = await keep(new tc.GenericContainer("busybox:latest").withCommand(HTTPD).withExposedPorts(8080)
    .withWaitStrategy(tc.Wait.forHttp("/index.html", 8080).forStatusCode(200).forResponsePredicate((b) => b === "hello-tc\n"))
    .withStartupTimeout(30_000).start());
  assert.equal(await httpGet(c.getMappedPort(8080), "/index.html"), "hello-tc\n");
  await c.stop();
  started.splice(started.indexOf(c), 1);
});

test("testcontainers: two containers on a Network talk by alias", async () => {
  const net = await keep(new tc.Network().start());
  const srv = await keep(new tc.GenericContainer("busybox:latest").withCommand(HTTPD).withNetwork(net).withNetworkAliases("web").withExposedPorts(8080).withStartupTimeout(30_000).start());
  const cli = await keep(new tc.GenericContainer("busybox:latest").withCommand(["sleep", "300"]).withNetwork(net).withStartupTimeout(30_000).start());
  const r = await cli.exec(["wget", "-qO-", "http://web:8080/"]);
  assert.equal(r.exitCode, 0, r.output);
  assert.equal(r.stdout, "hello-tc\n");
  // With aliases Testcontainers creates on the default bridge, then connects; dockerd (Go's encoding/json) writes map keys sorted.
  assert.deepEqual(srv.getNetworkNames(), [net.getName(), "bridge"].sort(), "NetworkSettings.Networks keys in dockerd's (sorted) order");
  for (const c of [cli, srv, net]) { await c.stop(); started.splice(started.indexOf(c), 1); }
});
