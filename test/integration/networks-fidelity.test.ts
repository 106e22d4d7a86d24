/**
 * Networks as Docker has them (issue 9): a subnet another interface holds is
 * never silently shared; Docker's status codes and messages; inspect's
 * fields; driver options; connect with --ip/--alias/--link/--link-local-ip
 * and name resolution right after a live connect; IPv6.
 *
 * Traffic goes only to loopback, the host's own bridge addresses and the
 * containers this test makes. The "stale" bridge standing in for another
 * daemon's is made and removed here.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { Daemon, api, sleep, bridgeOf, freePort } from "./harness.js";

const d = new Daemon();
const STALE = `bt9st${process.pid % 100000}`;
const NAMED_BR = `bt9br${process.pid % 100000}`;
const SUB_USER = "10.231.8.0/24";
const SUB_TAKEN = "10.231.7.0/24";

function sh(cmd: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  return { code: r.status ?? -1, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

function dok(args: string[]): string {
  const r = d.docker(args);
  assert.equal(r.code, 0, `docker ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

function ok(args: string[]): string {
  const r = d.berth(args);
  assert.equal(r.code, 0, `berth ${args.join(" ")}: ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

function ipInt(ip: string): number { return ip.split(".").reduce((a, b) => a * 256 + Number(b), 0); }
function overlaps(a: string, b: string): boolean {
  const [ia, pa] = a.split("/"), [ib, pb] = b.split("/");
  const p = Math.min(Number(pa), Number(pb));
  const m = (x: number) => Math.floor(x / 2 ** (32 - p));
  return m(ipInt(ia)) === m(ipInt(ib));
}

/** A free TCP port on the host (bound and released). */

/** GET over plain TCP (no proxy settings, no name lookup). */
function httpGet(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = "";
    const t = setTimeout(() => { s.destroy(); resolve("timeout"); }, timeoutMs);
    s.on("connect", () => s.write("GET / HTTP/1.0\r\n\r\n"));
    s.on("data", (x) => { buf += x; });
    s.on("error", (e) => { clearTimeout(t); resolve(`error ${e.message}`); });
    s.on("close", () => { clearTimeout(t); resolve(buf.split("\r\n\r\n").slice(1).join("\r\n\r\n")); });
  });
}

/** Polls until fn() gives what `good` accepts, or the deadline; returns the last value. */
async function until<T>(fn: () => T | Promise<T>, good: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await fn();
  while (!good(v) && Date.now() < deadline) { await sleep(100); v = await fn(); }
  return v;
}

const WEB = (text: string) => ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  sh("ip", ["link", "del", STALE]);
  sh("ip", ["link", "del", NAMED_BR]);
  await d.stop();
});

test("a subnet another interface now routes: the default bridge moves to a free one and works; a user network on it is refused with a clear error", async () => {
  const old = ok(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge"]);
  ok(["network", "create", "--subnet", SUB_USER, "held"]);
  // A bridge another daemon left, holding both subnets (not their gateways), while berthd was down.
  await d.stopDaemon();
  const [base, prefix] = old.split("/");
  const strange = base.replace(/\.0$/, ".200");
  assert.equal(sh("ip", ["link", "add", STALE, "type", "bridge"]).code, 0);
  sh("ip", ["addr", "add", `${strange}/${prefix}`, "dev", STALE]);
  sh("ip", ["addr", "add", "10.231.8.200/24", "dev", STALE]);
  sh("ip", ["link", "set", STALE, "up"]);
  await d.start();

  const moved = ok(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}}", "bridge"]);
  const [sub, gw] = moved.split(" ");
  assert.notEqual(sub, old);
  assert.ok(!overlaps(sub, old), `${sub} still overlaps ${old}`);
  assert.match(d.log, new RegExp(`default bridge network: subnet ${old.replace(/\./g, "\\.")} overlaps .* ${STALE}.*moved to ${sub.replace(/\./g, "\\.")}`));
  const br = ok(["network", "inspect", "-f", `{{index .Options "com.docker.network.bridge.name"}}`, "bridge"]);
  const addrs = sh("ip", ["-4", "-o", "addr", "show", "dev", br]).out;
  assert.match(addrs, new RegExp(`inet ${gw.replace(/\./g, "\\.")}/`));
  assert.doesNotMatch(addrs, new RegExp(`inet ${base.replace(/\.0$/, ".1").replace(/\./g, "\\.")}/`), "the old gateway address is gone");

  // Containers on it work both ways: the host answers the container (the reply must not leave by the stale bridge).
  const port = await freePort();
  const srv = net.createServer((s) => s.end("from-host\n")).listen(port, "0.0.0.0");
  await new Promise((r) => srv.once("listening", r));
  const r = await d.berthAsync(["run", "--rm", "busybox", "sh", "-c", `ip -4 -o addr show eth0; nc -w 3 ${gw} ${port} </dev/null`]);
  srv.close();
  assert.equal(r.code, 0, r.stderr);
  const ip = /inet (\S+)\//.exec(r.stdout)?.[1] ?? "";
  assert.ok(overlaps(`${ip}/32`, sub), `container address ${ip} is in ${sub}`);
  assert.match(r.stdout, /from-host/);

  // The user network is refused, with what collides and where; it can still be inspected and removed.
  const run = d.berth(["run", "--rm", "--network", "held", "busybox", "true"]);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, new RegExp(`network held is not available: its subnet 10\\.231\\.8\\.0/24 overlaps 10\\.231\\.8\\.0/24, routed on interface ${STALE}`));
  assert.equal(ok(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "held"]), SUB_USER);
  ok(["network", "rm", "held"]);

  // A new network asking for a subnet the host routes elsewhere: Docker's 403, saying which interface.
  sh("ip", ["addr", "add", "10.231.7.200/24", "dev", STALE]);
  const res = await api(d.sock, "POST", "/networks/create", JSON.stringify({ Name: "clash", IPAM: { Config: [{ Subnet: SUB_TAKEN }] } }));
  assert.equal(res.status, 403, res.body);
  assert.match(JSON.parse(res.body).message, new RegExp(`^Pool overlaps with other one on this address space: 10\\.231\\.7\\.0/24 overlaps 10\\.231\\.7\\.0/24, routed on interface ${STALE}`));
  assert.equal(d.berth(["network", "inspect", "clash"]).code, 1, "nothing was made");
  // Without --subnet, a free one is chosen around it.
  ok(["network", "create", "auto"]);
  const auto = ok(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "auto"]);
  for (const s of [old, SUB_USER, SUB_TAKEN, sub]) assert.ok(!overlaps(auto, s), `${auto} overlaps ${s}`);
  ok(["network", "rm", "auto"]);
  sh("ip", ["link", "del", STALE]);
});

test("Docker's answers: duplicates 409, overlapping pools and host/null/predefined 403, any non-blank name, inspect's fields", async () => {
  const post = async (body: unknown) => { const r = await api(d.sock, "POST", "/networks/create", JSON.stringify(body)); return { status: r.status, body: JSON.parse(r.body) as Record<string, string> }; };
  const first = await post({ Name: "dup", IPAM: { Config: [{ Subnet: "10.231.20.0/24" }] } });
  assert.equal(first.status, 201);
  for (const CheckDuplicate of [true, false, undefined]) {
    assert.deepEqual(await post({ Name: "dup", CheckDuplicate }), { status: 409, body: { message: "network with name dup already exists" } });
  }
  assert.deepEqual(await post({ Name: "over", IPAM: { Config: [{ Subnet: "10.231.0.0/16" }] } }), { status: 403, body: { message: "Pool overlaps with other one on this address space" } });
  assert.deepEqual(await post({ Name: "h2", Driver: "host" }), { status: 403, body: { message: `only one instance of "host" network is allowed` } });
  assert.deepEqual(await post({ Name: "n2", Driver: "null" }), { status: 403, body: { message: `only one instance of "null" network is allowed` } });
  for (const n of ["bridge", "host", "none", "default"]) assert.deepEqual(await post({ Name: n }), { status: 403, body: { message: `operation is not permitted on predefined ${n} network ` } });
  assert.deepEqual(await post({ Name: "nosuch", Driver: "nosuch" }), { status: 404, body: { message: `plugin "nosuch" not found` } });
  assert.deepEqual(await post({ Name: "aux", IPAM: { Config: [{ Subnet: "10.231.21.0/24", AuxiliaryAddresses: { x: "10.231.22.1" } }] } }),
    { status: 403, body: { message: "auxiliary address: (x:10.231.22.1) must belong to the master pool: 10.231.21.0/24" } });
  assert.equal((await post({ Name: "  " })).status, 400);
  assert.equal((await post({ Name: "sw", Scope: "swarm" })).status, 403);
  assert.equal((await post({ Name: "co", ConfigOnly: true })).status, 400);

  // Names dockerd takes: spaces, dots, a leading underscore. The docker CLI lists and removes them.
  for (const name of ["my net 1", "_x.y"]) {
    const r = await post({ Name: name });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const got = await api(d.sock, "GET", `/networks/${encodeURIComponent(name)}`);
    assert.equal(JSON.parse(got.body).Name, name);
  }
  assert.match(d.docker(["network", "ls", "--format", "{{.Name}}"]).stdout, /^my net 1$/m);
  assert.equal(d.docker(["network", "rm", "my net 1", "_x.y"]).code, 0);

  // Inspect carries every field of Docker's Network (API 1.47), with Docker's defaults.
  const r = await post({ Name: "fields", Labels: { a: "1" }, Options: { "com.docker.network.driver.mtu": "1400" }, IPAM: { Driver: "default", Options: { foo: "bar" }, Config: [{ Subnet: "10.231.23.0/24", IPRange: "10.231.23.0/25", AuxiliaryAddresses: { rsv: "10.231.23.2" } }] } });
  assert.equal(r.status, 201);
  const insp = JSON.parse((await api(d.sock, "GET", "/networks/fields")).body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(insp).sort(), ["Attachable", "ConfigFrom", "ConfigOnly", "Containers", "Created", "Driver", "EnableIPv6", "IPAM", "Id", "Ingress", "Internal", "Labels", "Name", "Options", "Scope"]);
  assert.deepEqual(insp.IPAM, { Driver: "default", Options: { foo: "bar" }, Config: [{ Subnet: "10.231.23.0/24", Gateway: "10.231.23.1", IPRange: "10.231.23.0/25", AuxiliaryAddresses: { rsv: "10.231.23.2" } }] });
  assert.deepEqual([insp.Scope, insp.EnableIPv6, insp.Internal, insp.Attachable, insp.Ingress, insp.ConfigOnly, insp.ConfigFrom, insp.Labels], ["local", false, false, false, false, false, { Network: "" }, { a: "1" }]);
  assert.equal((insp.Options as Record<string, string>)["com.docker.network.driver.mtu"], "1400");
  assert.match(String(insp.Created), /^\d{4}-\d\d-\d\dT/);
  // The auxiliary address is never handed out; the MTU reaches the container's interface; Containers has Docker's keys.
  ok(["run", "-d", "--name", "f1", "--network", "fields", "busybox", "sleep", "600"]);
  assert.equal(ok(["inspect", "-f", "{{.NetworkSettings.Networks.fields.IPAddress}}", "f1"]), "10.231.23.3");
  assert.match(ok(["exec", "f1", "ip", "link", "show", "eth0"]), /mtu 1400/);
  const withC = JSON.parse((await api(d.sock, "GET", "/networks/fields")).body) as { Containers: Record<string, Record<string, string>> };
  const c = Object.values(withC.Containers)[0];
  assert.deepEqual(Object.keys(c).sort(), ["EndpointID", "IPv4Address", "IPv6Address", "MacAddress", "Name"]);
  assert.deepEqual([c.Name, c.IPv4Address, c.IPv6Address, c.MacAddress], ["f1", "10.231.23.3/24", "", "02:42:0a:e7:17:03"]);
  ok(["rm", "-f", "f1"]);
  ok(["network", "rm", "fields", "dup"]);
});

test("driver options: the bridge takes com.docker.network.bridge.name; enable_ip_masquerade=false drops the masquerade; a device that exists is not taken over", async () => {
  ok(["network", "create", "--subnet", "10.231.30.0/24", "-o", `com.docker.network.bridge.name=${NAMED_BR}`, "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "named"]);
  assert.equal(sh("ip", ["-4", "-o", "addr", "show", "dev", NAMED_BR]).out.includes("inet 10.231.30.1/24"), true);
  const rules = sh("nft", ["list", "table", "ip", d.nftTable]).out;
  assert.doesNotMatch(rules, /ip saddr 10\.231\.30\.0\/24 oifname != .* masquerade/);
  assert.match(rules, /ip saddr 10\.231\.30\.0\/24 .*ct status dnat|oifname "bt9br\d+" ct status dnat ip saddr 10\.231\.30\.0\/24 masquerade/);
  const dup = d.berth(["network", "create", "-o", `com.docker.network.bridge.name=${NAMED_BR}`, "named2"]);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /bridge name .* is used by another network/);
  const bad = d.berth(["network", "create", "-o", "com.docker.network.bridge.enable_ip_masquerade=maybe", "named3"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /enable_ip_masquerade/);
  ok(["network", "rm", "named"]);
  assert.equal(sh("ip", ["link", "show", NAMED_BR]).code, 1, "the bridge went with the network");
  // A device of that name berth did not make is refused, and left alone.
  sh("ip", ["link", "add", NAMED_BR, "type", "bridge"]);
  const taken = d.berth(["network", "create", "-o", `com.docker.network.bridge.name=${NAMED_BR}`, "named4"]);
  assert.notEqual(taken.code, 0);
  assert.match(taken.stderr, /already used by an interface on the host/);
  assert.equal(sh("ip", ["link", "show", NAMED_BR]).code, 0);
  sh("ip", ["link", "del", NAMED_BR]);
});

test("network connect of a running container: --ip, --alias, --link, --link-local-ip; names resolve at once, also for a container that had no embedded DNS", async () => {
  ok(["network", "create", "--subnet", "10.231.40.0/24", "front"]);
  ok(["network", "create", "--subnet", "10.231.41.0/24", "back"]);
  ok(["run", "-d", "--name", "ca", "--network", "front", "busybox", ...WEB("hello-from-a")]);
  ok(["run", "-d", "--name", "cb", "--network", "back", "busybox", ...WEB("hello-from-b")]);
  ok(["run", "-d", "--name", "plain", "busybox", "sleep", "600"]);
  assert.doesNotMatch(ok(["exec", "plain", "cat", "/etc/resolv.conf"]), /10\.231\.40\.1/);

  // The docker CLI: it has every flag of network connect.
  const conn = d.docker(["network", "connect", "--ip", "10.231.40.77", "--alias", "zed", "--link", "ca:other", "--link-local-ip", "169.254.9.9", "front", "cb"]);
  assert.equal(conn.code, 0, conn.stderr);
  const ep = JSON.parse(ok(["inspect", "-f", "{{json .NetworkSettings.Networks.front}}", "cb"])) as Record<string, unknown>;
  assert.deepEqual(ep.IPAMConfig, { IPv4Address: "10.231.40.77", LinkLocalIPs: ["169.254.9.9"] });
  assert.deepEqual(ep.Links, ["ca:other"]);
  assert.deepEqual(ep.Aliases, ["zed"]);
  assert.equal(ep.IPAddress, "10.231.40.77");
  const ifs = ok(["exec", "cb", "ip", "-4", "-o", "addr"]);
  assert.match(ifs, /inet 10\.231\.40\.77\/24/);
  assert.match(ifs, /inet 169\.254\.9\.9\/16/);
  // ca reaches cb by its new alias; cb (whose resolv.conf points at back's DNS) reaches ca by name and by its link alias.
  assert.equal(ok(["exec", "ca", "wget", "-qO-", "http://zed/"]), "hello-from-b");
  assert.equal(ok(["exec", "cb", "wget", "-qO-", "http://ca/"]), "hello-from-a");
  assert.equal(ok(["exec", "cb", "wget", "-qO-", "http://other/"]), "hello-from-a");
  // The link alias is cb's alone.
  const notMine = d.berth(["exec", "ca", "nslookup", "other"]).stdout;
  assert.match(notMine, /NXDOMAIN/);
  assert.doesNotMatch(notMine, /Name:\s+other/);

  // run --link on a user network: the alias resolves through the embedded DNS, for that container.
  ok(["run", "-d", "--name", "cc", "--network", "front", "--link", "ca:dbalias", "busybox", "sleep", "600"]);
  assert.equal(ok(["exec", "cc", "wget", "-qO-", "http://dbalias/"]), "hello-from-a");
  ok(["rm", "-f", "cc"]);
  // A container on the default bridge only (host resolvers) gets the embedded DNS at once.
  ok(["network", "connect", "front", "plain"]);
  const resolv = await until(() => ok(["exec", "plain", "cat", "/etc/resolv.conf"]), (t) => t.includes("nameserver 10.231.40.1"));
  assert.match(resolv, /^nameserver 10\.231\.40\.1$/m);
  assert.equal(ok(["exec", "plain", "wget", "-qO-", "http://ca/"]), "hello-from-a");
  // An address in use: Docker's 403.
  const busy = await api(d.sock, "POST", "/networks/front/connect", JSON.stringify({ Container: "plain2", EndpointConfig: {} }));
  assert.equal(busy.status, 404);
  ok(["run", "-d", "--name", "plain2", "busybox", "sleep", "600"]);
  const inUse = await api(d.sock, "POST", "/networks/front/connect", JSON.stringify({ Container: "plain2", EndpointConfig: { IPAMConfig: { IPv4Address: "10.231.40.77" } } }));
  assert.deepEqual([inUse.status, JSON.parse(inUse.body).message], [403, "Address already in use"]);
  const again = await api(d.sock, "POST", "/networks/front/connect", JSON.stringify({ Container: "ca" }));
  assert.deepEqual([again.status, JSON.parse(again.body).message], [403, "endpoint with name ca already exists in network front"]);
  ok(["rm", "-f", "ca", "cb", "plain", "plain2"]);
  ok(["network", "rm", "front", "back"]);
});

test("IPv6: --ipv6 with a v6 subnet and --ip6: dual-stack addresses, default v6 route, AAAA from the embedded DNS; a published port answers on [::1]", async () => {
  dok(["network", "create", "--ipv6", "--subnet", "10.231.50.0/24", "--subnet", "fd62:7465:7374::/64", "--aux-address", "r6=fd62:7465:7374::2", "dual"]);
  const ipam = JSON.parse(ok(["network", "inspect", "-f", "{{json .IPAM.Config}}", "dual"])) as { Subnet: string; Gateway: string }[];
  assert.deepEqual(ipam.map((c) => c.Subnet), ["10.231.50.0/24", "fd62:7465:7374::/64"]);
  assert.equal(ok(["network", "inspect", "-f", "{{.EnableIPv6}}", "dual"]), "true");
  const port = await freePort();
  ok(["run", "-d", "--name", "s6", "--network", "dual", "--ip6", "fd62:7465:7374::50", "-p", `${port}:80`, "busybox", ...WEB("hello-v6")]);
  const ep = JSON.parse(ok(["inspect", "-f", "{{json .NetworkSettings.Networks.dual}}", "s6"])) as Record<string, unknown>;
  assert.deepEqual([ep.GlobalIPv6Address, ep.GlobalIPv6PrefixLen, ep.IPv6Gateway], ["fd62:7465:7374::50", 64, "fd62:7465:7374::1"]);
  assert.deepEqual((ep.IPAMConfig as Record<string, string>).IPv6Address, "fd62:7465:7374::50");
  // The bridge has the v6 gateway; the container the v6 default route.
  const br = bridgeOf(JSON.parse(ok(["network", "inspect", "-f", "{{json .}}", "dual"])));
  assert.equal(ok(["network", "inspect", "-f", "{{json .Options}}", "dual"]), "{}", "Options are what the user gave, as dockerd's");
  assert.match(sh("ip", ["-6", "-o", "addr", "show", "dev", br]).out, /inet6 fd62:7465:7374::1\/64/);
  assert.match(ok(["exec", "s6", "ip", "-6", "route"]), /default via fd62:7465:7374::1 dev eth0/);
  // Another container reaches it by its v6 address and learns it from the embedded DNS (AAAA).
  const c = await d.berthAsync(["run", "--rm", "--network", "dual", "busybox", "sh", "-c", "ip -6 -o addr show eth0 scope global; wget -qO- 'http://[fd62:7465:7374::50]/'; nslookup -type=aaaa s6"]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /inet6 fd62:7465:7374::\S+\/64/);
  assert.match(c.stdout, /hello-v6/);
  assert.match(c.stdout, /Address:\s+fd62:7465:7374::50/);
  // Network inspect lists the v6 address; the host reaches it directly and through a published port on ::1.
  const net6 = JSON.parse(ok(["network", "inspect", "-f", "{{json .Containers}}", "dual"])) as Record<string, { IPv6Address: string }>;
  assert.deepEqual(Object.values(net6).map((x) => x.IPv6Address), ["fd62:7465:7374::50/64"]);
  assert.equal(await until(() => httpGet("fd62:7465:7374::50", 80), (v) => v === "hello-v6\n"), "hello-v6\n");
  assert.equal(await httpGet("::1", port), "hello-v6\n");
  assert.equal(await httpGet("127.0.0.1", port), "hello-v6\n");
  // --ip6 outside the subnet, or on a network without IPv6: a 400 at create.
  const bad = d.berth(["create", "--network", "dual", "--ip6", "fd00:1::5", "busybox"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /not in the network's subnet fd62:7465:7374::\/64/);
  // -p [::]:port:80 (the docker CLI's form): the proxy listens on both families.
  const p2 = await freePort();
  dok(["run", "-d", "--name", "s7", "--network", "dual", "-p", `[::]:${p2}:80`, "busybox", ...WEB("hello-any")]);
  assert.match(dok(["port", "s7", "80"]), new RegExp(`:${p2}`));
  assert.equal(await until(() => httpGet("::1", p2), (v) => v === "hello-any\n"), "hello-any\n");
  assert.equal(await httpGet("127.0.0.1", p2), "hello-any\n");
  ok(["rm", "-f", "s7"]);
  ok(["rm", "-f", "s6"]);
  ok(["network", "rm", "dual"]);
  // --ipv6 without a v6 subnet: a unique local /64 is chosen.
  ok(["network", "create", "--ipv6", "auto6"]);
  assert.match(ok(["network", "inspect", "-f", "{{json .IPAM.Config}}", "auto6"]), /"Subnet":"fd[0-9a-f:]+::\/64"/);
  ok(["network", "rm", "auto6"]);
});
