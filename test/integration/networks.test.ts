/**
 * Bridge and user networks, embedded DNS, published ports (issue 4).
 * Traffic goes only to loopback, the host's own addresses, and namespaces
 * and bridges this test makes; the embedded DNS forwards to a resolver this
 * test runs on 127.0.0.153.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { networkInterfaces } from "node:os";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { Daemon, REPO, sleep, veths, masterOf, bridgeOf } from "./harness.js";

const d = new Daemon();
const UPSTREAM = "127.0.0.153";
let upstream: ChildProcess;
const REMOTE_NS = `bt-remote-${process.pid}`;

function sh(cmd: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  return { code: r.status ?? -1, out: (r.stdout ?? "") + (r.stderr ?? "") };
}

/** GET over plain TCP from the host (no proxy settings, no name lookup). */
function httpGet(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = "";
    const t = setTimeout(() => { s.destroy(); resolve(`timeout`); }, timeoutMs);
    s.on("connect", () => s.write("GET / HTTP/1.0\r\n\r\n"));
    s.on("data", (x) => { buf += x; });
    s.on("error", (e) => { clearTimeout(t); resolve(`error ${e.message}`); });
    s.on("close", () => { clearTimeout(t); resolve(buf.split("\r\n\r\n").slice(1).join("\r\n\r\n")); });
  });
}

function hostAddress(): string {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === "IPv4" && !a.internal && !a.address.startsWith("10.8") && !a.address.startsWith("172.17.")) return a.address;
  throw new Error("no non-loopback IPv4 address on this host");
}

const WEB = (text: string) => ["sh", "-c", `mkdir -p /www && echo ${text} > /www/index.html && exec httpd -f -p 80 -h /www`];

before(async () => {
  // A resolver on loopback standing in for the host's: it knows one outside name. In its own process:
  // this one blocks in spawnSync while the containers ask.
  upstream = spawn(process.execPath, ["--input-type=module", "-e", `
        import * as dnsPacket from "dns-packet";
    const s = dgram.createSocket("udp4");
    s.on("message", (msg, rinfo) => {
      const q = dnsPacket.decode(msg);
      const name = q.questions?.[0]?.name ?? "";
      const answers = name === "outside.example" && q.questions[0].type === "A" ? [{ type: "A", name, ttl: 60, data: "203.0.113.7" }] : [];
      s.send(dnsPacket.encode({ id: q.id, type: "response", flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (answers.length ? 0 : 3), questions: q.questions, answers }), rinfo.port, rinfo.address);
    });
    s.bind(53, "${UPSTREAM}", () => console.log("ready"));
  `], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((r) => upstream.stdout!.once("data", () => r()));
  d.extraArgs = ["--dns", UPSTREAM];
  await d.start();
  await d.bootstrap();
});

after(async () => {
  sh("ip", ["netns", "del", REMOTE_NS]);
  sh("ip", ["link", "del", "btrem0"]);
  await d.stop();
  upstream.kill();
});

test("default bridge: address, route, /etc/hosts; ps and inspect show published ports; -p answers on 127.0.0.1, the host's address and from another host", async () => {
  const r = d.berth(["run", "-d", "--name", "web", "-p", "18080:80", "busybox", ...WEB("hello-bridge")]);
  assert.equal(r.code, 0, r.stderr);
  const ip = d.berth(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]).stdout.trim();
  const gw = d.berth(["inspect", "-f", "{{.NetworkSettings.Networks.bridge.Gateway}}", "web"]).stdout.trim();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.match(d.berth(["exec", "web", "ip", "route"]).stdout, new RegExp(`default via ${gw.replace(/\./g, "\\.")}`));
  assert.match(d.berth(["exec", "web", "cat", "/etc/hosts"]).stdout, new RegExp(`${ip.replace(/\./g, "\\.")}\\s`));
  assert.match(d.berth(["ps", "--format", "{{.Ports}}", "-f", "name=web"]).stdout, /0\.0\.0\.0:18080->80\/tcp/);
  // As dockerd on a host with IPv6: the port is bound on both families, and listed twice (docker 20.10's words; docker 28 writes [::]).
  assert.equal(d.berth(["port", "web"]).stdout, "80/tcp -> 0.0.0.0:18080\n80/tcp -> :::18080\n");
  assert.equal(d.berth(["port", "web", "80"]).stdout, "0.0.0.0:18080\n:::18080\n");
  assert.equal(d.docker(["port", "web", "80/tcp"]).stdout.trim(), "0.0.0.0:18080\n[::]:18080");
  assert.match(d.berth(["ps", "--format", "{{.Ports}}", "-f", "name=web"]).stdout, /^0\.0\.0\.0:18080->80\/tcp, :::18080->80\/tcp$/m);
  await sleep(200);
  assert.equal(await httpGet("127.0.0.1", 18080), "hello-bridge\n");
  assert.equal(await httpGet(hostAddress(), 18080), "hello-bridge\n");
  assert.equal(await httpGet(ip, 80), "hello-bridge\n");
  // IPv6 loopback (curl localhost tries ::1 first): the proxy serves what DNAT cannot.
  assert.equal(await httpGet("::1", 18080), "hello-bridge\n");
  // Another container reaches it through the host's address (hairpin NAT).
  const viaHost = d.berth(["run", "--rm", "busybox", "wget", "-qO-", `http://${hostAddress()}:18080/`]);
  assert.equal(viaHost.stdout, "hello-bridge\n", viaHost.stderr);

  // A namespace acting as a remote host, linked to the host by a veth.
  assert.equal(sh("ip", ["netns", "add", REMOTE_NS]).code, 0);
  assert.equal(sh("ip", ["link", "add", "btrem0", "type", "veth", "peer", "name", "eth0", "netns", REMOTE_NS]).code, 0);
  sh("ip", ["addr", "add", "198.51.100.1/30", "dev", "btrem0"]);
  sh("ip", ["link", "set", "btrem0", "up"]);
  sh("ip", ["-n", REMOTE_NS, "addr", "add", "198.51.100.2/30", "dev", "eth0"]);
  sh("ip", ["-n", REMOTE_NS, "link", "set", "eth0", "up"]);
  sh("ip", ["-n", REMOTE_NS, "link", "set", "lo", "up"]);
  const remote = sh("ip", ["netns", "exec", REMOTE_NS, "curl", "-s", "--noproxy", "*", "-m", "5", "http://198.51.100.1:18080/"]);
  assert.equal(remote.out, "hello-bridge\n");
  // Outbound: a container reaches the remote host, which sees the host's address (masquerade) and can answer.
  const echo = spawn("ip", ["netns", "exec", REMOTE_NS, process.execPath, "-e", "require('net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(9000, '0.0.0.0', () => console.log('up'))"], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((r) => echo.stdout!.once("data", r));
  const out = await d.berthAsync(["run", "--rm", "busybox", "sh", "-c", "nc -w 3 198.51.100.2 9000 </dev/null"]);
  echo.kill();
  assert.equal(out.stdout, "198.51.100.1\n", out.stderr);
  sh("ip", ["netns", "del", REMOTE_NS]);
  sh("ip", ["link", "del", "btrem0"]);
});

test("a host port already in use: Docker's error, nothing half made", async () => {
  const busy = d.berth(["run", "-d", "--name", "second", "-p", "18080:80", "busybox", "sleep", "30"]);
  assert.equal(busy.code, 125);
  assert.match(busy.stderr, /Bind for 0\.0\.0\.0:18080 failed: port is already allocated/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "second"]).stdout.trim(), "created");
  d.berth(["rm", "second"]);
  // Held by another program.
  const srv = net.createServer().listen(18090, "0.0.0.0");
  await new Promise((r) => srv.once("listening", r));
  const vBefore = new Set(veths());
  const taken = d.berth(["run", "--rm", "-p", "18090:80", "busybox", "true"]);
  srv.close();
  assert.equal(taken.code, 125);
  assert.match(taken.stderr, /address already in use/);
  const ourBridge = bridgeOf(JSON.parse(d.berth(["network", "inspect", "-f", "{{json .}}", "bridge"]).stdout));
  assert.deepEqual(veths().filter((v) => !vBefore.has(v) && [ourBridge, undefined].includes(masterOf(v))), [], "no veth was made");
  assert.doesNotMatch(sh("nft", ["list", "table", "ip", d.nftTable]).out, /dport 18090/);
  // The first container is untouched.
  assert.equal(await httpGet("127.0.0.1", 18080), "hello-bridge\n");
});

test("-P publishes EXPOSEd ports on random host ports; -p ip:: and ranges", async () => {
  const r = d.berth(["run", "-d", "--name", "rand", "--expose", "80", "-P", "-p", "127.0.0.1::81", "-p", "18100-18101:90-91/udp", "busybox", ...WEB("hello-random")]);
  assert.equal(r.code, 0, r.stderr);
  const ports = JSON.parse(d.berth(["inspect", "-f", "{{json .NetworkSettings.Ports}}", "rand"]).stdout) as Record<string, { HostIp: string; HostPort: string }[]>;
  const hp = Number(ports["80/tcp"][0].HostPort);
  assert.ok(hp >= 1024, JSON.stringify(ports));
  assert.equal(ports["81/tcp"][0].HostIp, "127.0.0.1");
  assert.deepEqual(ports["90/udp"], [{ HostIp: "0.0.0.0", HostPort: "18100" }]);
  assert.deepEqual(ports["91/udp"], [{ HostIp: "0.0.0.0", HostPort: "18101" }]);
  await sleep(200);
  assert.equal(await httpGet("127.0.0.1", hp), "hello-random\n");
  d.berth(["rm", "-f", "rand"]);
  assert.doesNotMatch(sh("nft", ["list", "table", "ip", d.nftTable]).out, new RegExp(`dport ${hp}\\b`));
});

test("user networks: names, aliases and short IDs resolve; other names go to the forwarder; networks are isolated; --internal has no way out", async () => {
  assert.equal(d.berth(["network", "create", "front"]).code, 0);
  assert.equal(d.docker(["network", "create", "--subnet", "10.199.7.0/24", "--gateway", "10.199.7.254", "--label", "tier=back", "back"]).code, 0);
  assert.equal(d.berth(["network", "create", "--internal", "sealed"]).code, 0);
  const dup = d.berth(["network", "create", "front"]);
  assert.notEqual(dup.code, 0);
  assert.match(dup.stderr, /network with name front already exists/);
  assert.match(d.berth(["network", "ls"]).stdout, /NETWORK ID\s+NAME\s+DRIVER\s+SCOPE[\s\S]*front\s+bridge\s+local/);
  assert.equal(d.berth(["network", "ls", "-f", "label=tier=back", "--format", "{{.Name}}"]).stdout, "back\n");
  assert.equal(d.berth(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "back"]).stdout.trim(), "10.199.7.254");

  assert.equal(d.berth(["run", "-d", "--name", "api", "--network", "front", "--network-alias", "service", "busybox", ...WEB("hello-api")]).code, 0);
  assert.equal(d.berth(["run", "-d", "--name", "db", "--network", "back", "--ip", "10.199.7.9", "busybox", ...WEB("hello-db")]).code, 0);
  const apiId = d.berth(["inspect", "-f", "{{.Id}}", "api"]).stdout.trim().slice(0, 12);
  assert.equal(d.berth(["inspect", "-f", "{{.NetworkSettings.Networks.back.IPAddress}}", "db"]).stdout.trim(), "10.199.7.9");
  await sleep(200);
  for (const name of ["api", "service", apiId, "API"]) {
    const r = d.berth(["run", "--rm", "--network", "front", "busybox", "wget", "-qO-", `http://${name}/`]);
    assert.equal(r.stdout, "hello-api\n", `${name}: ${r.stderr}`);
  }
  const resolv = d.berth(["run", "--rm", "--network", "front", "busybox", "cat", "/etc/resolv.conf"]).stdout;
  const frontGw = d.berth(["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "front"]).stdout.trim();
  assert.match(resolv, new RegExp(`^nameserver ${frontGw.replace(/\./g, "\\.")}$`, "m"));
  const outside = d.berth(["run", "--rm", "--network", "front", "busybox", "nslookup", "outside.example"]);
  assert.match(outside.stdout, /203\.0\.113\.7/, outside.stdout + outside.stderr);
  const unknown = d.berth(["run", "--rm", "--network", "front", "busybox", "nslookup", "nosuch.example"]);
  assert.match(unknown.stdout + unknown.stderr, /NXDOMAIN|can't find/);

  // Different networks: no name, no route through.
  const byName = d.berth(["run", "--rm", "--network", "back", "busybox", "nslookup", "api"]);
  assert.doesNotMatch(byName.stdout, /Name:\s+api/);
  const apiIp = d.berth(["inspect", "-f", "{{.NetworkSettings.Networks.front.IPAddress}}", "api"]).stdout.trim();
  const cross = d.berth(["run", "--rm", "--network", "back", "busybox", "sh", "-c", `echo | nc -w 2 ${apiIp} 80 && echo reached || echo blocked`]);
  assert.equal(cross.stdout.trim(), "blocked");
  // Internal: no default route, cannot reach the bridge network's gateway or a published port.
  const sealed = d.berth(["run", "--rm", "--network", "sealed", "busybox", "sh", "-c", "ip route; echo | nc -w 2 10.199.7.9 80 && echo reached || echo blocked"]);
  assert.doesNotMatch(sealed.stdout, /default/);
  assert.match(sealed.stdout, /blocked/);

  // connect / disconnect a running container.
  assert.equal(d.berth(["network", "connect", "--alias", "database", "front", "db"]).code, 0);
  assert.match(d.berth(["exec", "db", "ip", "-4", "addr"]).stdout, /eth1/);
  assert.equal(d.berth(["run", "--rm", "--network", "front", "busybox", "wget", "-qO-", "http://database/"]).stdout, "hello-db\n");
  assert.match(JSON.stringify(JSON.parse(d.berth(["network", "inspect", "front"]).stdout)[0].Containers), /"Name":"db"/);
  const inUse = d.berth(["network", "rm", "front"]);
  assert.notEqual(inUse.code, 0);
  assert.match(inUse.stderr, /has active endpoints/);
  assert.equal(d.berth(["network", "disconnect", "front", "db"]).code, 0);
  assert.doesNotMatch(d.berth(["exec", "db", "ip", "-4", "addr"]).stdout, /eth1/);
  const gone = d.berth(["run", "--rm", "--network", "front", "busybox", "nslookup", "database"]);
  assert.doesNotMatch(gone.stdout, /Name:\s+database/);

  const pre = d.berth(["network", "rm", "bridge"]);
  assert.match(pre.stderr, /bridge is a pre-defined network and cannot be removed/);
  d.berth(["rm", "-f", "api", "db"]);
  assert.equal(d.berth(["network", "rm", "front", "back"]).stdout, "front\nback\n");
  assert.equal(d.berth(["network", "prune", "-f"]).stdout, "Deleted Networks:\nsealed\n");
  assert.equal(d.berth(["network", "ls", "--format", "{{.Name}}"]).stdout, "bridge\nhost\nnone\n");
});

test("--dns, --dns-search, --dns-option: in resolv.conf on the bridge; on a user network the embedded DNS forwards to the container's --dns", () => {
  const bridge = d.berth(["run", "--rm", "--dns", "192.0.2.53", "--dns-search", "corp.example", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf"]);
  assert.equal(bridge.stdout, "nameserver 192.0.2.53\nsearch corp.example\noptions ndots:2\n");
  const bad = d.berth(["run", "--rm", "--dns", "not-an-ip", "busybox", "true"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /not-an-ip is not an ip address/);
  assert.equal(d.berth(["network", "create", "dnsnet"]).code, 0);
  const gw = d.berth(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "dnsnet"]).stdout.trim();
  const user = d.berth(["run", "--rm", "--network", "dnsnet", "--dns-search", "corp.example", "busybox", "cat", "/etc/resolv.conf"]);
  assert.equal(user.stdout, `nameserver ${gw}\nsearch corp.example\n`);
  // The daemon's upstream (127.0.0.153) knows outside.example; a container pointed at a dead resolver does not get it.
  assert.match(d.berth(["run", "--rm", "--network", "dnsnet", "busybox", "nslookup", "outside.example"]).stdout, /203\.0\.113\.7/);
  const own = d.berth(["run", "--rm", "--network", "dnsnet", "--dns", "127.0.0.154", "busybox", "nslookup", "outside.example"]);
  assert.doesNotMatch(own.stdout, /203\.0\.113\.7/);
  assert.equal(d.berth(["network", "rm", "dnsnet"]).code, 0);
});

test("kill -9 of berthd: ports, DNS and addresses come back; what exited meanwhile leaves nothing", async () => {
  assert.equal(d.berth(["network", "create", "life"]).code, 0);
  assert.equal(d.berth(["run", "-d", "--name", "keeper", "--network", "life", "-p", "18200:80", "busybox", ...WEB("still-here")]).code, 0);
  assert.equal(d.berth(["run", "-d", "--name", "leaver", "--network", "life", "-p", "18201:80", "busybox", "sleep", "2"]).code, 0);
  const keeperIp = d.berth(["inspect", "-f", "{{.NetworkSettings.Networks.life.IPAddress}}", "keeper"]).stdout.trim();
  await d.crash();
  await sleep(2500); // leaver exits while no daemon runs
  await d.start();
  assert.equal(await httpGet("127.0.0.1", 18200), "still-here\n");
  assert.doesNotMatch(sh("nft", ["list", "table", "ip", d.nftTable]).out, /dport 18201/);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "leaver"]).stdout.trim(), "exited");
  // DNS answers for the survivor; a new container gets a different address.
  assert.equal(d.berth(["run", "--rm", "--network", "life", "busybox", "wget", "-qO-", "http://keeper/"]).stdout, "still-here\n");
  const fresh = d.berth(["run", "--rm", "--network", "life", "busybox", "sh", "-c", "ip -4 -o addr show eth0"]).stdout;
  assert.doesNotMatch(fresh, new RegExp(`${keeperIp.replace(/\./g, "\\.")}/`));
  // The port of the container that left is free again.
  assert.equal(d.berth(["run", "-d", "--name", "taker", "-p", "18201:80", "busybox", "sleep", "30"]).code, 0);
  d.berth(["rm", "-f", "keeper", "leaver", "taker"]);
  assert.equal(d.berth(["network", "rm", "life"]).code, 0);
});

test("leak: 200 create/start/rm cycles on a user network leave no veth, address, rule or DNS record", async () => {
  // A /28 holds 13 containers: 200 cycles pass only if every address is given back.
  assert.equal(d.berth(["network", "create", "--subnet", "10.199.9.0/28", "churn"]).code, 0);
  const bridge = bridgeOf(JSON.parse(d.berth(["network", "inspect", "-f", "{{json .}}", "churn"]).stdout));
  const ports = () => sh("ip", ["-o", "link", "show", "master", bridge]).out.trim();
  const vBefore = new Set(veths());
  const rulesBefore = sh("nft", ["list", "table", "ip", d.nftTable]).out.split("\n").length;
  for (let i = 0; i < 200; i++) {
    const r = await d.berthAsync(["run", "--rm", "--name", `cycle${i}`, "--network", "churn", "-p", "18300:80", "busybox", "true"]);
    assert.equal(r.code, 0, `cycle ${i}: ${r.stderr}`);
  }
  // The kernel frees a pair with its namespace shortly after the container exits: poll for it.
  // Only veths of this network or of none count (other daemons may run side by side).
  const left = () => veths().filter((v) => !vBefore.has(v) && [bridge, undefined].includes(masterOf(v)));
  for (const deadline = Date.now() + 10_000; (ports() !== "" || left().length) && Date.now() < deadline;) await sleep(100);
  assert.equal(ports(), "");
  assert.deepEqual(left(), [], "veths left");
  assert.equal(sh("nft", ["list", "table", "ip", d.nftTable]).out.split("\n").length, rulesBefore);
  assert.deepEqual(JSON.parse(d.berth(["network", "inspect", "churn"]).stdout)[0].Containers, {});
  const q = d.berth(["run", "--rm", "--network", "churn", "busybox", "nslookup", "cycle199"]);
  assert.doesNotMatch(q.stdout, /Name:\s+cycle199/);
  const ip = d.berth(["run", "--rm", "--network", "churn", "busybox", "sh", "-c", "ip -4 -o addr show eth0"]).stdout;
  assert.match(ip, /inet 10\.199\.9\.\d+\/28/);
  assert.equal(d.berth(["network", "rm", "churn"]).code, 0);
});

test("system prune asks first, then removes stopped containers, unused networks and dangling images", () => {
  assert.equal(d.berth(["run", "--name", "gone", "busybox", "true"]).code, 0);
  assert.equal(d.berth(["network", "create", "unused"]).code, 0);
  assert.equal(spawnSync("tar", ["-cf", `${d.root}/h.tar`, "-C", "/etc", "hostname"]).status, 0);
  const dangling = d.berth(["import", `${d.root}/h.tar`]).stdout.trim();
  assert.match(dangling, /^sha256:/);
  const no = d.berth(["system", "prune"], { input: "n\n" });
  assert.match(no.stdout, /Are you sure you want to continue\? \[y\/N\]/);
  assert.match(d.berth(["ps", "-a", "--format", "{{.Names}}"]).stdout, /gone/);
  const yes = d.berth(["system", "prune", "-f"]);
  assert.equal(yes.code, 0, yes.stderr);
  assert.match(yes.stdout, /Deleted Containers:\n[0-9a-f]{64}\n/);
  assert.match(yes.stdout, /Deleted Networks:\nunused\n/);
  assert.match(yes.stdout, new RegExp(`deleted: ${dangling}`));
  assert.doesNotMatch(d.berth(["ps", "-a", "--format", "{{.Names}}"]).stdout, /gone/);
  assert.equal(d.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).code, 0, "tagged images stay without -a");
});
