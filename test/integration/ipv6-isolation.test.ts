/**
 * Dual-stack networks keep the isolation the IPv4 rules give: a container on
 * one --ipv6 network cannot reach a container on another by its IPv6
 * address, nor can one on an --internal network get out, while containers on
 * the same network talk over v6 (berth's ip6 table holds the forward rules).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon } from "./harness.js";

const d = new Daemon();
before(async () => { await d.start(); await d.bootstrap(); });
after(async () => { await d.stop(); });

function ok(args: string[]): string {
  const r = d.berth(args);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}
const v6of = (name: string, net: string) => ok(["inspect", "-f", `{{(index .NetworkSettings.Networks "${net}").GlobalIPv6Address}}`, name]);
/** An HTTP GET (nc: this busybox's wget crashes on IPv6 literals) from a new container on `net` to [ip]:80; true when it answered. */
const reaches = (net: string, ip: string) => d.berth(["run", "--rm", "--network", net, "busybox", "sh", "-c", `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 80`]).stdout.includes("v6-ok");
/** Polls (with a deadline) until a container on `net` gets the page at [ip]: the server is up. */
async function waitServing(net: string, ip: string): Promise<boolean> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline;) { if (reaches(net, ip)) return true; await new Promise((r) => setTimeout(r, 200)); }
  return false;
}

test("IPv6: the same network talks, another network and an --internal one do not", async () => {
  ok(["network", "create", "--ipv6", "--subnet", "10.232.1.0/24", "--subnet", "fd62:7465:7375:1::/64", "v6a"]);
  ok(["network", "create", "--ipv6", "--subnet", "10.232.2.0/24", "--subnet", "fd62:7465:7375:2::/64", "v6b"]);
  ok(["network", "create", "--ipv6", "--internal", "--subnet", "10.232.3.0/24", "--subnet", "fd62:7465:7375:3::/64", "v6i"]);
  try {
    ok(["run", "-d", "--name", "web6a", "--network", "v6a", "busybox", "sh", "-c", "mkdir -p /w && echo v6-ok > /w/index.html && exec httpd -f -p 80 -h /w"]);
    ok(["run", "-d", "--name", "web6b", "--network", "v6b", "busybox", "sh", "-c", "mkdir -p /w && echo v6-ok > /w/index.html && exec httpd -f -p 80 -h /w"]);
    const a = v6of("web6a", "v6a"), b = v6of("web6b", "v6b");
    assert.match(a, /^fd62:7465:7375:1:/);
    assert.equal(await waitServing("v6a", a), true, "same network over v6");
    assert.equal(await waitServing("v6b", b), true, "same network over v6 (b)");
    assert.equal(reaches("v6b", a), false, "another network must not reach v6a over v6");
    assert.equal(reaches("v6a", b), false, "nor the other way");
    assert.equal(reaches("v6i", a), false, "an --internal network has no way out over v6");
  } finally {
    d.berth(["rm", "-f", "web6a", "web6b"]);
    d.berth(["network", "rm", "v6a", "v6b", "v6i"]);
  }
});
