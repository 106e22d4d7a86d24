/** --network none, host and container:<name> (bridge and user networks: networks.test.ts). */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, sleep } from "./harness.js";

const d = new Daemon();
before(async () => { await d.start(); await d.bootstrap(); });
after(async () => { await d.stop(); });

const links = (out: string) => out.split("\n").filter((l) => /^\d+:/.test(l)).map((l) => l.split(":")[1].trim().split("@")[0]);

test("none: only loopback; host: the host's interfaces", () => {
  assert.deepEqual(links(d.berth(["run", "--rm", "--network", "none", "busybox", "ip", "link"]).stdout), ["lo"]);
  const host = links(d.berth(["run", "--rm", "--network", "host", "busybox", "ip", "link"]).stdout);
  assert.ok(host.length > 1 && host.includes("lo"), host.join(","));
});

test("container:<name> shares that container's network namespace; others do not see it", async () => {
  d.berth(["run", "-d", "--name", "srv", "busybox", "httpd", "-f", "-p", "8081", "-h", "/etc"]);
  await sleep(300);
  const id = d.berth(["inspect", "-f", "{{.Id}}", "srv"]).stdout.trim();
  assert.equal(d.berth(["run", "--rm", "--network", "container:srv", "busybox", "wget", "-qO-", "http://127.0.0.1:8081/hostname"]).stdout, `${id.slice(0, 12)}\n`);
  const alone = d.berth(["run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo | nc -w 1 127.0.0.1 8081 && echo reached || echo refused"]);
  assert.equal(alone.stdout.trim(), "refused");
  d.berth(["stop", "-t", "0", "srv"]);
  const stopped = d.berth(["run", "--rm", "--network", "container:srv", "busybox", "true"]);
  assert.notEqual(stopped.code, 0);
  assert.match(stopped.stderr, /cannot join network namespace of a non running container/);
  d.berth(["rm", "srv"]);
  const missing = d.berth(["run", "--rm", "--network", "container:nosuch", "busybox", "true"]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /No such container: nosuch/);
  const ports = d.berth(["run", "--rm", "--network", "none", "-p", "8080:80", "busybox", "true"]);
  assert.equal(ports.code, 125);
  assert.match(ports.stderr, /conflicting options: port publishing and the container type network mode/);
  const hostPorts = d.berth(["run", "--rm", "--network", "host", "-p", "8080:80", "busybox", "true"]);
  assert.equal(hostPorts.code, 0);
  assert.match(hostPorts.stderr, /WARNING: Published ports are discarded when using host network mode/);
  const bad = d.berth(["run", "--rm", "--network", "nosuchnet", "busybox", "true"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /network nosuchnet not found/);
});
