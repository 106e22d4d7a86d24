import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { promises as dnsPromises } from "node:dns";
import { readFileSync } from "node:fs";
import dnsPacket from "dns-packet";
import { EmbeddedDns, nameserversFromResolvConf, parseUpstream } from "../../src/network/dns.js";

// Loopback only: the server under test on 127.0.0.77, fake upstreams on 127.0.0.78.
const SERVER = "127.0.0.77";
const UPSTREAM = "127.0.0.78";

const NAMES: Record<string, string[]> = {
  web: ["10.89.1.2", "10.89.1.3"],
  db: ["10.89.1.4"],
  many: Array.from({ length: 100 }, (_, i) => `10.89.2.${i + 1}`),
};
const lookup = (name: string): string[] | undefined => NAMES[name];

let nextId = 1;
function query(name: string, type: dnsPacket.RecordType = "A"): Buffer {
  return dnsPacket.encode({
    type: "query", id: nextId++ & 0xffff, flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
  });
}

/** Send one datagram, wait for one reply. */
function udpAsk(port: number, msg: Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket("udp4");
    const timer = setTimeout(() => { sock.close(); reject(new Error("udp query timed out")); }, timeoutMs);
    sock.on("error", (e) => { clearTimeout(timer); sock.close(); reject(e); });
    sock.on("message", (reply) => { clearTimeout(timer); sock.close(); resolve(reply); });
    sock.send(msg, port, SERVER);
  });
}

/** One framed query over a new TCP connection. */
function tcpAsk(port: number, msg: Buffer, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect({ host: SERVER, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { c.destroy(); reject(new Error("tcp query timed out")); }, timeoutMs);
    c.on("error", (e) => { clearTimeout(timer); reject(e); });
    c.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      c.write(Buffer.concat([len, msg]));
    });
    c.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer);
        c.destroy();
        resolve(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      }
    });
    c.on("close", () => { clearTimeout(timer); reject(new Error("connection closed without a reply")); });
  });
}

interface FakeUpstream {
  port: number;
  udpQueries: number;
  tcpQueries: number;
  lastReply: Buffer | undefined;
  close(): Promise<void>;
}

/**
 * A tiny DNS server on 127.0.0.78 (UDP and TCP on one port). `answer` builds
 * the reply for a query; undefined means stay silent.
 */
async function fakeUpstream(
  answer: (q: dnsPacket.DecodedPacket, tcp: boolean) => dnsPacket.Packet | undefined,
): Promise<FakeUpstream> {
  for (;;) {
    const udp = dgram.createSocket("udp4");
    await new Promise<void>((resolve) => udp.bind(0, UPSTREAM, () => resolve()));
    const port = udp.address().port;
    const conns = new Set<net.Socket>();
    const tcp = net.createServer((c) => {
      conns.add(c);
      c.on("close", () => conns.delete(c));
      c.on("error", () => {});
      let buf = Buffer.alloc(0);
      c.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          fake.tcpQueries++;
          const r = answer(dnsPacket.decode(msg), true);
          if (r) {
            const out = dnsPacket.encode(r);
            fake.lastReply = out;
            const len = Buffer.alloc(2);
            len.writeUInt16BE(out.length);
            c.write(Buffer.concat([len, out]));
          }
        }
      });
    });
    const ok = await new Promise<boolean>((resolve) => {
      tcp.once("error", () => resolve(false));
      tcp.listen(port, UPSTREAM, () => resolve(true));
    });
    if (!ok) { udp.close(); continue; }
    const fake: FakeUpstream = {
      port, udpQueries: 0, tcpQueries: 0, lastReply: undefined,
      close: async () => {
        for (const c of conns) c.destroy();
        await Promise.all([
          new Promise<void>((r) => udp.close(() => r())),
          new Promise<void>((r) => tcp.close(() => r())),
        ]);
      },
    };
    udp.on("message", (msg, rinfo) => {
      fake.udpQueries++;
      const r = answer(dnsPacket.decode(msg), false);
      if (r) {
        const out = dnsPacket.encode(r);
        fake.lastReply = out;
        udp.send(out, rinfo.port, rinfo.address);
      }
    });
    return fake;
  }
}

/** The outside world as the fake upstream sees it. */
function world(q: dnsPacket.DecodedPacket, tcp: boolean): dnsPacket.Packet | undefined {
  const question = q.questions![0]!;
  const base = { type: "response" as const, id: q.id, questions: q.questions };
  if (question.name === "example.test") {
    return {
      ...base, flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED,
      answers: [{ type: "A", name: "example.test", ttl: 123, data: "192.0.2.10" }],
    };
  }
  if (question.name === "big.test") {
    if (!tcp) return { ...base, flags: dnsPacket.TRUNCATED_RESPONSE | dnsPacket.RECURSION_AVAILABLE, answers: [] };
    const answers: dnsPacket.Answer[] = [];
    for (let i = 1; i <= 60; i++) answers.push({ type: "A", name: "big.test", ttl: 60, data: `198.51.100.${i}` });
    return { ...base, flags: dnsPacket.RECURSION_AVAILABLE, answers };
  }
  return { ...base, flags: dnsPacket.RECURSION_AVAILABLE | 3 /* NXDOMAIN */ };
}

/** A UDP port on 127.0.0.78 that swallows queries and never answers. */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sock = dgram.createSocket("udp4");
  sock.on("message", () => {});
  await new Promise<void>((resolve) => sock.bind(0, UPSTREAM, () => resolve()));
  return { port: sock.address().port, close: () => new Promise<void>((r) => sock.close(() => r())) };
}

/** A UDP port on 127.0.0.78 with nothing behind it (ICMP port unreachable). */
async function deadPort(): Promise<number> {
  const b = await blackHole();
  await b.close();
  return b.port;
}

async function withServer(
  opts: { upstreams?: string[]; timeoutMs?: number },
  fn: (port: number, server: EmbeddedDns) => Promise<void>,
): Promise<void> {
  const server = new EmbeddedDns({
    address: SERVER, port: 0, lookup,
    upstreams: () => opts.upstreams ?? [], timeoutMs: opts.timeoutMs ?? 300,
  });
  await server.start();
  try {
    await fn(server.port, server);
  } finally {
    await server.close();
  }
}

test("known name: A answers every address, authoritative, ID and question echoed", async () => {
  await withServer({}, async (port) => {
    const q = query("web");
    const r = dnsPacket.decode(await udpAsk(port, q));
    assert.equal(r.id, q.readUInt16BE(0));
    assert.equal(r.type, "response");
    assert.equal((r as unknown as { rcode: string }).rcode, "NOERROR");
    assert.ok(r.flag_aa, "AA");
    assert.ok(r.flag_ra, "RA");
    assert.ok(r.flag_rd, "RD copied");
    assert.deepEqual(r.questions, [{ name: "web", type: "A", class: "IN" }]);
    assert.deepEqual(r.answers!.map((a) => a.type === "A" && a.data).sort(), ["10.89.1.2", "10.89.1.3"]);
    for (const a of r.answers!) {
      assert.equal(a.name, "web");
      assert.equal(a.type === "A" && a.ttl, 600);
    }
  });
});

test("known name: AAAA and other types get NOERROR with no answers", async () => {
  await withServer({ upstreams: [`${UPSTREAM}:1`] }, async (port) => {
    for (const type of ["AAAA", "MX", "TXT"] as const) {
      const r = dnsPacket.decode(await udpAsk(port, query("db", type)));
      assert.equal((r as unknown as { rcode: string }).rcode, "NOERROR", type);
      assert.equal(r.answers!.length, 0, type);
      assert.ok(r.flag_aa, type);
      assert.deepEqual(r.questions, [{ name: "db", type, class: "IN" }]);
    }
  });
});

test("names match case-insensitively, with or without the trailing dot", async () => {
  await withServer({}, async (port) => {
    const r = dnsPacket.decode(await udpAsk(port, query("WeB.")));
    assert.equal(r.answers!.length, 2);
    assert.equal(r.questions![0]!.name, "WeB", "question echoed as asked");
    // A real stub resolver (c-ares) agrees.
    const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`${SERVER}:${port}`]);
    assert.deepEqual((await resolver.resolve4("DB")).sort(), ["10.89.1.4"]);
    await assert.rejects(resolver.resolve6("db"), { code: "ENODATA" });
  });
});

test("large local answers: truncated with TC over UDP (512, or the EDNS size), whole over TCP", async () => {
  await withServer({}, async (port) => {
    const plain = await udpAsk(port, query("many"));
    assert.ok(plain.length <= 512);
    const p = dnsPacket.decode(plain);
    assert.ok(p.flag_tc);
    assert.ok(p.answers!.length > 0 && p.answers!.length < 100);

    const edns = dnsPacket.encode({
      type: "query", id: 4242, flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name: "many", class: "IN" }],
      additionals: [{ type: "OPT", name: ".", udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    });
    const e = await udpAsk(port, edns);
    assert.ok(e.length > 512 && e.length <= 1232);
    const ed = dnsPacket.decode(e);
    assert.ok(ed.additionals!.some((a) => a.type === "OPT"), "EDNS answered with OPT");

    const whole = dnsPacket.decode(await tcpAsk(port, query("many")));
    assert.ok(!whole.flag_tc);
    assert.equal(whole.answers!.length, 100);
  });
});

test("unknown names are forwarded and the upstream reply relayed verbatim", async () => {
  const up = await fakeUpstream(world);
  try {
    await withServer({ upstreams: [`${UPSTREAM}:${up.port}`] }, async (port) => {
      const q = query("example.test");
      const raw = await udpAsk(port, q);
      assert.deepEqual(raw, up.lastReply, "byte for byte");
      const r = dnsPacket.decode(raw);
      assert.equal(r.id, q.readUInt16BE(0));
      assert.deepEqual(r.answers!.map((a) => a.type === "A" && [a.data, a.ttl]), [["192.0.2.10", 123]]);
      const nx = dnsPacket.decode(await udpAsk(port, query("nowhere.test")));
      assert.equal((nx as unknown as { rcode: string }).rcode, "NXDOMAIN");
      assert.equal(up.udpQueries, 2);
    });
  } finally {
    await up.close();
  }
});

test("a silent upstream is skipped after the timeout; the next one answers", async () => {
  const hole = await blackHole();
  const up = await fakeUpstream(world);
  try {
    await withServer({ upstreams: [`${UPSTREAM}:${hole.port}`, `${UPSTREAM}:${up.port}`], timeoutMs: 200 }, async (port) => {
      const r = dnsPacket.decode(await udpAsk(port, query("example.test")));
      assert.equal(r.answers!.length, 1);
      assert.equal(up.udpQueries, 1);
    });
  } finally {
    await hole.close();
    await up.close();
  }
});

test("all upstreams dead: SERVFAIL, within a bounded time; none at all: SERVFAIL at once", async () => {
  const hole = await blackHole();
  const dead = await deadPort();
  try {
    await withServer({ upstreams: [`${UPSTREAM}:${hole.port}`, `${UPSTREAM}:${dead}`, "not-an-ip", "::1"], timeoutMs: 200 }, async (port) => {
      const q = query("example.test");
      const started = Date.now();
      const r = dnsPacket.decode(await udpAsk(port, q));
      assert.ok(Date.now() - started < 4000, "answered before the client gave up");
      assert.equal(r.id, q.readUInt16BE(0));
      assert.equal((r as unknown as { rcode: string }).rcode, "SERVFAIL");
      assert.deepEqual(r.questions, [{ name: "example.test", type: "A", class: "IN" }]);
    });
    await withServer({ upstreams: [], timeoutMs: 60_000 }, async (port) => {
      const r = dnsPacket.decode(await udpAsk(port, query("example.test"), 2000));
      assert.equal((r as unknown as { rcode: string }).rcode, "SERVFAIL");
      const t = dnsPacket.decode(await tcpAsk(port, query("example.test"), 2000));
      assert.equal((t as unknown as { rcode: string }).rcode, "SERVFAIL");
    });
  } finally {
    await hole.close();
  }
});

test("TCP: local names answered; forwarded over TCP so replies over 512 bytes work", async () => {
  const up = await fakeUpstream(world);
  try {
    await withServer({ upstreams: [`${UPSTREAM}:${up.port}`] }, async (port) => {
      const local = dnsPacket.decode(await tcpAsk(port, query("web")));
      assert.equal(local.answers!.length, 2);
      assert.ok(local.flag_aa);

      // Over UDP the upstream truncates; the TC bit is relayed so the client retries over TCP.
      const udpReply = dnsPacket.decode(await udpAsk(port, query("big.test")));
      assert.ok(udpReply.flag_tc);
      const raw = await tcpAsk(port, query("big.test"));
      assert.ok(raw.length > 512);
      assert.equal(dnsPacket.decode(raw).answers!.length, 60);
      assert.equal(up.tcpQueries, 1);

      // A real resolver does the UDP-then-TCP dance through us.
      const resolver = new dnsPromises.Resolver({ timeout: 2000, tries: 1 });
      resolver.setServers([`${SERVER}:${port}`]);
      assert.equal((await resolver.resolve4("big.test")).length, 60);
    });
  } finally {
    await up.close();
  }
});

test("malformed packets are ignored (UDP) or close the connection (TCP); the server keeps answering", async () => {
  await withServer({}, async (port) => {
    const sock = dgram.createSocket("udp4");
    const garbage = [
      Buffer.from([1, 2, 3]),
      Buffer.alloc(12, 0xff),
      Buffer.concat([query("web").subarray(0, 14)]), // question cut short
      dnsPacket.encode({ type: "response", id: 7, questions: [{ type: "A", name: "web" }] }), // not a query
      Buffer.from("this is not dns at all, not even close"),
    ];
    let replies = 0;
    sock.on("message", () => { replies++; });
    for (const g of garbage) await new Promise<void>((r) => sock.send(g, port, SERVER, () => r()));
    const r = dnsPacket.decode(await udpAsk(port, query("web")));
    assert.equal(r.answers!.length, 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(replies, 0, "garbage got no reply");
    sock.close();

    // A query with no question gets FORMERR rather than silence.
    const empty = dnsPacket.encode({ type: "query", id: 99, questions: [] });
    const fe = dnsPacket.decode(await udpAsk(port, empty));
    assert.equal(fe.id, 99);
    assert.equal((fe as unknown as { rcode: string }).rcode, "FORMERR");

    // TCP: a bad frame closes the connection...
    const closed = await new Promise<boolean>((resolve) => {
      const c = net.connect({ host: SERVER, port }, () => c.write(Buffer.from([0, 5, 1, 2, 3, 4, 5])));
      c.on("error", () => {});
      c.on("data", () => resolve(false));
      c.on("close", () => resolve(true));
    });
    assert.ok(closed);
    // ...and the server still answers on both transports.
    assert.equal(dnsPacket.decode(await tcpAsk(port, query("db"))).answers!.length, 1);
    assert.equal(dnsPacket.decode(await udpAsk(port, query("db"))).answers!.length, 1);
  });
});

test("TCP: pipelined queries on one connection are all answered", async () => {
  await withServer({}, async (port) => {
    const qs = [query("web"), query("db"), query("web", "AAAA")];
    const ids = new Set(qs.map((q) => q.readUInt16BE(0)));
    const got = await new Promise<number[]>((resolve, reject) => {
      const c = net.connect({ host: SERVER, port });
      const seen: number[] = [];
      let buf = Buffer.alloc(0);
      c.on("error", reject);
      c.on("connect", () => {
        const framed = Buffer.concat(qs.map((q) => { const l = Buffer.alloc(2); l.writeUInt16BE(q.length); return Buffer.concat([l, q]); }));
        // Split mid-frame to exercise reassembly.
        c.write(framed.subarray(0, 5));
        setTimeout(() => c.write(framed.subarray(5)), 20);
      });
      c.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          seen.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).id!);
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (seen.length === qs.length) { c.destroy(); resolve(seen); }
      });
    });
    assert.deepEqual(new Set(got), ids);
  });
});

test("close() releases the port and is idempotent; start() reports bind failures", async () => {
  const first = new EmbeddedDns({ address: SERVER, port: 0, lookup, upstreams: () => [] });
  await first.start();
  const port = first.port;
  assert.ok(port > 0);

  // The port is taken while the first server runs.
  const clash = new EmbeddedDns({ address: SERVER, port, lookup, upstreams: () => [] });
  await assert.rejects(clash.start(), /embedded DNS: cannot listen on 127\.0\.0\.77:\d+/);

  await first.close();
  await first.close();
  await assert.rejects(first.start(), /after close/);

  const second = new EmbeddedDns({ address: SERVER, port, lookup, upstreams: () => [] });
  await second.start();
  try {
    assert.equal(dnsPacket.decode(await udpAsk(port, query("web"))).answers!.length, 2);
    assert.equal(dnsPacket.decode(await tcpAsk(port, query("web"))).answers!.length, 2);
  } finally {
    await second.close();
  }

  // An address that is not on this host cannot be bound (TEST-NET-1, never sent to),
  // unless the host allows non-local binds.
  if (readFileSync("/proc/sys/net/ipv4/ip_nonlocal_bind", "utf8").trim() !== "0") return;
  const away = new EmbeddedDns({ address: "192.0.2.1", port, lookup, upstreams: () => [] });
  await assert.rejects(away.start(), /embedded DNS: cannot listen on 192\.0\.2\.1:\d+ \(udp\): .*EADDRNOTAVAIL/);
});

test("close() cancels upstream exchanges in flight", async () => {
  const hole = await blackHole();
  try {
    const server = new EmbeddedDns({
      address: SERVER, port: 0, lookup, upstreams: () => [`${UPSTREAM}:${hole.port}`], timeoutMs: 60_000,
    });
    await server.start();
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.send(query("example.test"), server.port, SERVER, () => r()));
    await new Promise((r) => setTimeout(r, 50));
    await server.close(); // must not wait for the 60 s timeout, nor leave a socket open
    sock.close();
  } finally {
    await hole.close();
  }
});

test("helpers: upstream parsing and resolv.conf nameservers", () => {
  assert.deepEqual(parseUpstream("1.1.1.1"), { host: "1.1.1.1", port: 53 });
  assert.deepEqual(parseUpstream("127.0.0.53:5353"), { host: "127.0.0.53", port: 5353 });
  for (const bad of ["", "::1", "1.1.1", "1.1.1.1:0", "1.1.1.1:70000", "999.1.1.1", "dns.google"]) {
    assert.equal(parseUpstream(bad), undefined, bad);
  }
  const conf = "# comment\nnameserver 10.0.0.2\nnameserver fe80::1\nsearch example.com\n nameserver 127.0.0.53 \noptions edns0\n";
  assert.deepEqual(nameserversFromResolvConf(conf), ["10.0.0.2", "127.0.0.53"]);
});
