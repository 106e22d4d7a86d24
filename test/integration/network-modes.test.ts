/** --network none, host and container:<name> (bridge and user networks: networks.test.ts). */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, sleep, apiJson } from "./harness.js";

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

test("container:<name> takes that container's hostname, /etc/hosts and resolv.conf, as dockerd; what would change them is refused with dockerd's words", async () => {
  try {
    assert.equal(d.berth(["network", "create", "nm-net"]).code, 0);
    assert.equal(d.berth(["run", "-d", "--name", "duo", "--hostname", "duo", "--network", "nm-net", "busybox", "sleep", "300"]).code, 0);
    assert.equal(d.berth(["run", "-d", "--name", "nm-peer", "--network", "nm-net", "busybox", "sleep", "300"]).code, 0);
    // dockerd: hostname and /etc/hostname say duo; the names of duo's network resolve (its embedded DNS).
    const r = d.berth(["run", "--name", "joined", "--network", "container:duo", "busybox", "sh", "-c", "hostname; cat /etc/hostname; nslookup nm-peer >/dev/null 2>&1 && echo resolved"]);
    assert.equal(r.stdout, "duo\nduo\nresolved\n", r.stderr);
    const [joined, duo] = ["joined", "duo"].map((n) => JSON.parse(d.berth(["inspect", n]).stdout)[0] as { Config: { Hostname: string }; HostnamePath: string; HostsPath: string; ResolvConfPath: string });
    assert.equal(joined.Config.Hostname, "duo");
    assert.deepEqual([joined.HostnamePath, joined.HostsPath, joined.ResolvConfPath], [duo.HostnamePath, duo.HostsPath, duo.ResolvConfPath]);
    for (const [flags, message] of [
      [["--dns", "1.1.1.1"], "conflicting options: dns and the network mode"],
      [["--add-host", "a:1.2.3.4"], "conflicting options: custom host-to-IP mapping and the network mode"],
      [["--mac-address", "02:42:ac:11:00:09"], "conflicting options: mac-address and the network mode"],
      [["--expose", "80"], "conflicting options: port exposing and the container type network mode"],
      [["-P"], "conflicting options: port publishing and the container type network mode"],
      [["--hostname", "x"], "conflicting options: hostname and the network mode"],
    ] as const) {
      // `docker create` exits 1 on a daemon's refusal (run: 125).
      const c = d.berth(["create", "--network", "container:duo", ...flags, "busybox", "true"]);
      assert.equal(c.code, 1, flags.join(" "));
      assert.match(c.stderr, new RegExp(message), flags.join(" "));
    }
    const linked = await apiJson(d.sock, "POST", "/containers/create", { Image: "busybox", HostConfig: { NetworkMode: "container:duo", Links: ["nm-peer:z"] } });
    assert.deepEqual([linked.status, linked.body.message], [400, "conflicting options: container type network can't be used with links. This would result in undefined behavior"]);
    // The other modes keep their own: --dns-search is allowed with container mode, as dockerd allows it.
    assert.equal(d.berth(["create", "--name", "nm-search", "--network", "container:duo", "--dns-search", "x.com", "busybox", "true"]).code, 0);
  } finally {
    d.berth(["rm", "-f", "joined", "duo", "nm-peer", "nm-search"]);
    d.berth(["network", "rm", "nm-net"]);
  }
});
