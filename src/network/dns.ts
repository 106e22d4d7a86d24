/**
 * Embedded DNS server for user-defined bridge networks (Docker's embedded DNS,
 * Podman's aardvark-dns).
 *
 * berthd runs in the host network namespace and starts one `EmbeddedDns` per
 * user network, bound to the network's gateway address (say 10.89.1.1) on port
 * 53, UDP and TCP. Containers on that network get `nameserver <gateway>` in
 * their resolv.conf, so every name they resolve comes here first:
 *
 * - A name the network knows (container name, alias, short ID; matched
 *   case-insensitively through `lookup`, which is told the asking client's
 *   address so it can answer as that container sees the world) is answered
 *   authoritatively: type A gets every IPv4 address, AAAA every IPv6 one, ANY
 *   both, with TTL 600; any other type (or AAAA of a name with no IPv6
 *   address) gets NOERROR with no answers (NODATA), so a resolver asking AAAA
 *   first does not fall through to the outside world with a container's name.
 * - Any other name is forwarded: the query bytes go unchanged to each upstream
 *   in turn (`upstreams()` is read per query, since the host's resolv.conf may
 *   change), each given `timeoutMs`, and the first reply is relayed verbatim.
 *   UDP queries are forwarded over UDP on a fresh connected socket per query
 *   (an ICMP "port unreachable" moves on to the next upstream at once); TCP
 *   queries are forwarded over TCP, so replies larger than 512 bytes work
 *   (a truncated UDP reply is relayed as is, and the client retries over TCP).
 *   No upstream, or none answering, yields SERVFAIL.
 * - Malformed datagrams are dropped; a malformed TCP frame closes that
 *   connection. Nothing here logs per query, throws out of an event handler or
 *   leaves a promise rejection unhandled: a hostile container cannot take the
 *   daemon down through its DNS server.
 *
 * Packets are decoded and encoded with `dns-packet`; a local answer echoes the
 * question section byte for byte (case, class and all) from the query.
 */
import dgram from "node:dgram";
import net from "node:net";
import dnsPacket from "dns-packet";
import { SystemError, errorMessage } from "../lib/errors.js";

export interface DnsServerOptions {
  address: string;            // IPv4 to bind, e.g. "10.89.1.1"
  port?: number;              // default 53
  /** Addresses (IPv4 and IPv6) of a name known on this network (container name, alias, short ID), or undefined if unknown. Name is lower-cased, without trailing dot; `client` is the asker's address. */
  lookup: (name: string, client?: string) => string[] | undefined;
  /** Upstream resolvers "ip" or "ip:port" (IPv4) for a query from `client` (its --dns), read at each query (the host's resolv.conf may change). */
  upstreams: (client?: string) => string[];
  /** ms before trying the next upstream; default 2000 */
  timeoutMs?: number;
}

/** TTL of local answers (Docker's embedded DNS uses 600 too). */
export const LOCAL_TTL = 600;

const QR = 1 << 15;
const RCODE_FORMERR = 1;
const RCODE_SERVFAIL = 2;
const RCODE_NOTIMP = 4;
const HEADER_LEN = 12;
/** Upstream exchanges in flight at once; beyond this, queries get SERVFAIL. */
const MAX_FORWARDS = 1024;
/** Concurrent TCP client connections; beyond this, new ones are closed. */
const MAX_TCP_CONNECTIONS = 256;
/** A TCP client connection with nothing pending is closed after this long. */
const TCP_IDLE_MS = 10_000;

/** What the server needs to know about one query. */
interface Query {
  raw: Buffer;
  id: number;
  flags: number;
  /** Offset just past the (single) question; 12 when there is none. */
  questionEnd: number;
  /** Set when the query is well formed enough to answer but not to serve. */
  rcode?: number;
  /** Lower-cased, no trailing dot. */
  name: string;
  /** The name as the client wrote it (kept for the answer's owner name). */
  rawName: string;
  type: string;
  klass: string;
  /** EDNS UDP payload size the client advertised, 0 without EDNS. */
  ednsSize: number;
}

/** An upstream resolver, parsed. */
export interface Upstream { host: string; port: number }

/** Parse "ip" or "ip:port" (IPv4); undefined when it is neither. */
export function parseUpstream(s: string): Upstream | undefined {
  const m = /^\s*(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?\s*$/.exec(s);
  if (!m || !net.isIPv4(m[1]!)) return undefined;
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (!(port > 0 && port < 65536)) return undefined;
  return { host: m[1]!, port };
}

/**
 * The IPv4 `nameserver` entries of a resolv.conf text, in order; a convenience
 * for building `upstreams`. IPv6 entries are skipped (the server forwards over
 * IPv4 only).
 */
export function nameserversFromResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[0] === "nameserver" && f[1] !== undefined && net.isIPv4(f[1])) out.push(f[1]);
  }
  return out;
}

/** Offset just past the name starting at `off`, or -1 if it runs off the end. */
function skipName(buf: Buffer, off: number): number {
  for (let i = 0; i < 128; i++) {
    if (off >= buf.length) return -1;
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= buf.length ? off + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    off += 1 + len;
  }
  return -1;
}

/** Decode a query; undefined for anything that is not a well-formed query. */
export function parseQuery(raw: Buffer): Query | undefined {
  if (raw.length < HEADER_LEN || raw.length > 65535) return undefined;
  const flags = raw.readUInt16BE(2);
  if (flags & QR) return undefined; // a response: never answer those (loops)
  let pkt: dnsPacket.DecodedPacket;
  try {
    pkt = dnsPacket.decode(raw);
  } catch {
    return undefined;
  }
  const q: Query = {
    raw, id: raw.readUInt16BE(0), flags, questionEnd: HEADER_LEN,
    name: "", rawName: "", type: "", klass: "", ednsSize: 0,
  };
  const opt = (pkt.additionals ?? []).find((a) => a.type === "OPT");
  if (opt && opt.type === "OPT") q.ednsSize = opt.udpPayloadSize;
  const questions = pkt.questions ?? [];
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) {
    q.rcode = RCODE_NOTIMP;
  } else if (questions.length !== 1) {
    q.rcode = RCODE_FORMERR;
  }
  if (questions.length === 1) {
    const end = skipName(raw, HEADER_LEN);
    if (end < 0 || end + 4 > raw.length) return undefined;
    q.questionEnd = end + 4;
    const question = questions[0]!;
    q.rawName = question.name;
    q.name = question.name.toLowerCase().replace(/\.$/, "");
    q.type = String(question.type);
    q.klass = String(question.class ?? "IN");
  }
  return q;
}

/**
 * A response to `q`: header flags from the query (opcode, RD, CD), QR and RA
 * set, `extraFlags` and `rcode` added, the question copied verbatim, then
 * `answers` (truncated with TC when over `limit` bytes) and `additionals`.
 */
function buildResponse(
  q: Query, rcode: number, extraFlags: number,
  answers: dnsPacket.Answer[], additionals: dnsPacket.Answer[], limit: number,
): Buffer {
  const question = q.raw.subarray(HEADER_LEN, q.questionEnd);
  let flags = (q.flags & (0xf << 11 | dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED))
    | dnsPacket.RECURSION_AVAILABLE | extraFlags | (rcode & 0xf);
  let list = answers;
  for (;;) {
    const body = dnsPacket.encode({
      type: "response", id: q.id, flags, questions: [], answers: list, additionals,
    });
    if (body.length + question.length <= limit || list.length === 0) {
      const out = Buffer.concat([body.subarray(0, HEADER_LEN), question, body.subarray(HEADER_LEN)]);
      out.writeUInt16BE(q.questionEnd > HEADER_LEN ? 1 : 0, 4);
      return out;
    }
    list = list.slice(0, -1);
    flags |= dnsPacket.TRUNCATED_RESPONSE;
  }
}

/** An error response (SERVFAIL, FORMERR...) to `q`, question echoed, no records. */
export function errorResponse(q: Query, rcode: number): Buffer {
  return buildResponse(q, rcode, 0, [], [], 65535);
}

/**
 * The authoritative answer for a name this network knows: its addresses for
 * A/ANY in class IN/ANY, NODATA for everything else.
 */
function localResponse(q: Query, ips: string[], udp: boolean): Buffer {
  const inClass = q.klass === "IN" || q.klass === "ANY";
  const wantsA = (q.type === "A" || q.type === "ANY") && inClass;
  const wantsAAAA = (q.type === "AAAA" || q.type === "ANY") && inClass;
  const answers: dnsPacket.Answer[] = [
    ...(wantsA ? ips.filter((ip) => net.isIPv4(ip)).map((ip): dnsPacket.Answer => ({ type: "A", name: q.rawName, class: "IN", ttl: LOCAL_TTL, data: ip })) : []),
    ...(wantsAAAA ? ips.filter((ip) => net.isIPv6(ip)).map((ip): dnsPacket.Answer => ({ type: "AAAA", name: q.rawName, class: "IN", ttl: LOCAL_TTL, data: ip })) : []),
  ];
  const additionals: dnsPacket.Answer[] = q.ednsSize > 0
    ? [{
      type: "OPT", name: ".", udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0,
      flags: 0, flag_do: false, options: [],
    }]
    : [];
  const limit = udp ? Math.max(512, Math.min(q.ednsSize, 1232)) : 65535;
  return buildResponse(q, 0, dnsPacket.AUTHORITATIVE_ANSWER, answers, additionals, limit);
}

/** True when `reply` is a response to the query with this ID. */
function isReplyTo(reply: Buffer, id: number): boolean {
  return reply.length >= HEADER_LEN && reply.readUInt16BE(0) === id && (reply.readUInt16BE(2) & QR) !== 0;
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

export class EmbeddedDns {
  private readonly address: string;
  private requestedPort: number;
  private readonly lookup: (name: string, client?: string) => string[] | undefined;
  private readonly getUpstreams: (client?: string) => string[];
  private readonly timeoutMs: number;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly conns = new Set<net.Socket>();
  /** Cancels every upstream exchange in flight (close() calls them). */
  private readonly inflight = new Set<() => void>();
  private started = false;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(opts: DnsServerOptions) {
    if (!net.isIPv4(opts.address)) throw new SystemError(`embedded DNS: not an IPv4 address: ${opts.address}`);
    this.address = opts.address;
    this.requestedPort = opts.port ?? 53;
    this.lookup = opts.lookup;
    this.getUpstreams = opts.upstreams;
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** The port the server listens on (the chosen one after start() with port 0). */
  get port(): number {
    return this.requestedPort;
  }

  /** Bind UDP and TCP on address:port. With port 0, both share one free port. */
  async start(): Promise<void> {
    if (this.started || this.closed) throw new SystemError("embedded DNS: start() called twice or after close()");
    this.started = true;
    const ephemeral = this.requestedPort === 0;
    for (let attempt = 0; ; attempt++) {
      let udp: dgram.Socket | undefined;
      let tcp: net.Server | undefined;
      try {
        udp = await this.bindUdp(ephemeral ? 0 : this.requestedPort);
        tcp = await this.listenTcp(udp.address().port);
        if (this.closed) throw new Error("closed while starting");
        this.requestedPort = udp.address().port;
        this.udp = udp;
        this.tcp = tcp;
        return;
      } catch (e) {
        try { udp?.close(); } catch { /* not running */ }
        tcp?.close();
        const inUse = (e as NodeJS.ErrnoException).code === "EADDRINUSE";
        if (ephemeral && inUse && udp && attempt < 8 && !this.closed) continue; // TCP port taken: pick another
        await this.close();
        throw new SystemError(`embedded DNS: cannot listen on ${this.address}:${this.requestedPort} (${udp ? "tcp" : "udp"}): ${errorMessage(e)}`);
      }
    }
  }

  /** Close the sockets, client connections and upstream exchanges in flight. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.closed = true;
    for (const cancel of [...this.inflight]) cancel();
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    await Promise.all([
      udp && new Promise<void>((resolve) => {
        try { udp.close(() => resolve()); } catch { resolve(); }
      }),
      tcp && new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]);
  }

  private bindUdp(port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: "udp4" });
      const onError = (e: Error): void => {
        try { sock.close(); } catch { /* never bound */ }
        reject(e);
      };
      sock.once("error", onError);
      sock.bind({ address: this.address, port, exclusive: true }, () => {
        sock.off("error", onError);
        sock.on("error", () => { /* send errors surface here; nothing to do */ });
        sock.on("message", (msg, rinfo) => this.onDatagram(sock, msg, rinfo));
        resolve(sock);
      });
    });
  }

  private listenTcp(port: number): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((c) => this.onConnection(c));
      server.once("error", reject);
      server.listen({ host: this.address, port, exclusive: true }, () => {
        server.off("error", reject);
        server.on("error", () => { /* accept errors (EMFILE...): keep serving */ });
        resolve(server);
      });
    });
  }

  private onDatagram(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const q = parseQuery(msg);
    if (!q) return;
    this.answer(q, true, rinfo.address).then((reply) => {
      if (!reply || this.closed) return;
      try {
        sock.send(reply, rinfo.port, rinfo.address, () => { /* best effort */ });
      } catch { /* socket closed meanwhile */ }
    }, () => { /* answer() does not reject; belt and braces */ });
  }

  private onConnection(c: net.Socket): void {
    c.on("error", () => { /* reset by peer etc.: 'close' follows */ });
    if (this.closed || this.conns.size >= MAX_TCP_CONNECTIONS) {
      c.destroy();
      return;
    }
    this.conns.add(c);
    c.on("close", () => this.conns.delete(c));
    let pending = 0;
    let buf: Buffer = Buffer.alloc(0);
    c.setTimeout(TCP_IDLE_MS, () => {
      if (pending === 0) c.destroy();
    });
    c.on("data", (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const q = parseQuery(msg);
        if (!q) {
          c.destroy();
          return;
        }
        pending++;
        this.answer(q, false, c.remoteAddress?.replace(/^::ffff:/, "")).then((reply) => {
          pending--;
          if (reply && !c.destroyed && c.writable) c.write(frame(reply));
        }, () => { pending--; });
      }
    });
  }

  /** The reply for a query: local, forwarded or an error. Never rejects. */
  private async answer(q: Query, udp: boolean, client?: string): Promise<Buffer | undefined> {
    try {
      if (q.rcode !== undefined) return errorResponse(q, q.rcode);
      let ips: string[] | undefined;
      try {
        ips = this.lookup(q.name, client);
      } catch {
        return errorResponse(q, RCODE_SERVFAIL);
      }
      if (ips !== undefined) return localResponse(q, ips, udp);
      const reply = await this.forward(q, udp, client);
      if (this.closed) return undefined;
      return reply ?? errorResponse(q, RCODE_SERVFAIL);
    } catch {
      return undefined;
    }
  }

  /** The upstreams to use now: parsed, invalid ones and ourselves left out. */
  private upstreams(client?: string): Upstream[] {
    let list: string[];
    try {
      list = this.getUpstreams(client);
    } catch {
      return [];
    }
    const out: Upstream[] = [];
    for (const s of list) {
      const u = parseUpstream(s);
      if (u && !(u.host === this.address && u.port === this.requestedPort)) out.push(u);
    }
    return out;
  }

  /** Try each upstream in order; the first reply, or undefined. */
  private async forward(q: Query, udp: boolean, client?: string): Promise<Buffer | undefined> {
    if (this.inflight.size >= MAX_FORWARDS) return undefined;
    for (const u of this.upstreams(client)) {
      if (this.closed) return undefined;
      const reply = udp ? await this.exchangeUdp(q, u) : await this.exchangeTcp(q, u);
      if (reply) return reply;
    }
    return undefined;
  }

  /** One query over a fresh connected UDP socket; the reply or undefined. */
  private exchangeUdp(q: Query, u: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = dgram.createSocket({ type: "udp4" });
      let done = false;
      const finish = (reply: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inflight.delete(cancel);
        try { sock.close(); } catch { /* already closed */ }
        resolve(reply);
      };
      const cancel = (): void => finish(undefined);
      const timer = setTimeout(cancel, this.timeoutMs);
      this.inflight.add(cancel);
      sock.on("error", cancel); // includes ECONNREFUSED from an ICMP port unreachable
      sock.on("message", (msg) => {
        if (isReplyTo(msg, q.id)) finish(msg);
      });
      sock.connect(u.port, u.host, () => {
        if (done) return;
        sock.send(q.raw, (err) => { if (err) cancel(); });
      });
    });
  }

  /** One query over a fresh TCP connection; the reply or undefined. */
  private exchangeTcp(q: Query, u: Upstream): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      let done = false;
      let buf: Buffer = Buffer.alloc(0);
      const sock = net.connect({ host: u.host, port: u.port });
      const finish = (reply: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.inflight.delete(cancel);
        sock.destroy();
        resolve(reply);
      };
      const cancel = (): void => finish(undefined);
      const timer = setTimeout(cancel, this.timeoutMs);
      this.inflight.add(cancel);
      sock.on("error", cancel);
      sock.on("close", cancel);
      sock.on("connect", () => sock.write(frame(q.raw)));
      sock.on("data", (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        while (buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) return;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          if (isReplyTo(msg, q.id)) {
            finish(Buffer.from(msg));
            return;
          }
        }
      });
    });
  }
}
