/**
 * IPAM: IPv6 text forms, pools that never hand out the gateway or auxiliary
 * addresses, and the route check that keeps a bridge off another
 * interface's subnet.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  IpPool, IpPool6, parseCidr, parseCidr6, ip6ToBig, bigToIp6, cidr6String, overlaps6, routeConflict, ipToInt, type HostRoute,
} from "../../src/network/ipam.js";

test("IPv6 addresses parse and print in the canonical form Docker shows", () => {
  for (const [text, canon] of [
    ["fd42:9::2", "fd42:9::2"], ["FD42:0009:0000:0000:0000:0000:0000:0002", "fd42:9::2"], ["::", "::"], ["::1", "::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], ["fe80::1", "fe80::1"], ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["::ffff:10.0.0.1", "::ffff:a00:1"],
  ]) assert.equal(bigToIp6(ip6ToBig(text)), canon, text);
  for (const bad of ["1::2::3", "fd42:9", "12345::", "g::1", "1.2.3.4"]) assert.throws(() => ip6ToBig(bad), /invalid IPv6 address/, bad);
  assert.equal(cidr6String(parseCidr6("fd42:9::/64")), "fd42:9::/64");
  assert.throws(() => parseCidr6("fd42:9::1/64"), /it should be fd42:9::\/64/);
  assert.ok(overlaps6(parseCidr6("fd42::/16"), parseCidr6("fd42:9::/64")));
  assert.ok(!overlaps6(parseCidr6("fd42:8::/64"), parseCidr6("fd42:9::/64")));
});

test("pools skip the gateway and auxiliary addresses, and never free them", () => {
  const sub = parseCidr("10.202.0.0/24");
  const pool = new IpPool(sub, ipToInt("10.202.0.1"), undefined, [ipToInt("10.202.0.2")]);
  assert.equal(pool.allocate(), "10.202.0.3");
  assert.throws(() => pool.allocate("10.202.0.2"), /Address already in use/);
  pool.release("10.202.0.2");
  pool.release("10.202.0.1");
  assert.throws(() => pool.allocate("10.202.0.2"), /Address already in use/);
  assert.throws(() => pool.allocate("10.202.0.1"), /Address already in use/);

  const s6 = parseCidr6("fd42:9::/64");
  const p6 = new IpPool6(s6, ip6ToBig("fd42:9::1"), [ip6ToBig("fd42:9::2")]);
  assert.equal(p6.allocate(), "fd42:9::3");
  assert.equal(p6.allocate("fd42:9::50"), "fd42:9::50");
  assert.throws(() => p6.allocate("fd42:9::50"), /Address already in use/);
  assert.throws(() => p6.allocate("fd43::5"), /not in the network's subnet/);
  p6.release("fd42:9::50");
  assert.equal(p6.allocate("fd42:9::50"), "fd42:9::50");
});

test("a subnet another interface routes is a conflict; the network's own bridge is not", () => {
  const routes: HostRoute[] = [
    { ...parseCidr("10.88.0.0/16"), dev: "berth0" },
    { ...parseCidr("10.231.4.0/24"), dev: "stale0" },
  ];
  assert.equal(routeConflict(parseCidr("10.88.0.0/16"), "berth0", routes), undefined);
  assert.equal(routeConflict(parseCidr("10.88.0.0/16"), "br-other", routes)?.dev, "berth0");
  assert.equal(routeConflict(parseCidr("10.231.0.0/16"), "berth0", routes)?.dev, "stale0");
  assert.equal(routeConflict(parseCidr("10.232.0.0/16"), "berth0", routes), undefined);
});
