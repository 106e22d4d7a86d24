/**
 * Published ports: parsing Docker's port keys and holding host ports.
 *
 * The kernel (DNAT in the firewall table) carries the traffic. The daemon
 * still binds every published host port, as Docker does: that reserves it
 * (another program cannot take it, and one already taken gives Docker's
 * error before anything is set up) and picks random ports. The TCP listener
 * is also a small proxy for what DNAT cannot serve: IPv6 clients (curl
 * localhost trying ::1 first).
 */
import net from "node:net";
import dgram from "node:dgram";
import { BadParameterError, SystemError } from "../lib/errors.js";

export type Proto = "tcp" | "udp";

/** "80/tcp" → {port: 80, proto: "tcp"}; Docker's default protocol is tcp. */
export function parsePortKey(key: string): { port: number; proto: Proto } {
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(key);
  if (!m) throw new BadParameterError(`invalid port specification: "${key}"`);
  const port = Number(m[1]);
  if (port < 1 || port > 65535) throw new BadParameterError(`invalid port specification: "${key}"`);
  const proto = (m[2] ?? "tcp").toLowerCase();
  if (proto === "sctp") throw new BadParameterError("sctp ports are not supported");
  return { port, proto: proto as Proto };
}

/** "" → [0] (any); "8080" → [8080]; "8000-8010" → each, tried in order. */
export function parseHostPorts(s: string): number[] {
  if (!s) return [0];
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new BadParameterError(`invalid hostPort: ${s}`);
  const a = Number(m[1]), b = m[2] ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new BadParameterError(`invalid hostPort: ${s}`);
  return Array.from({ length: b - a + 1 }, (_, i) => a + i);
}

interface Held { owner: string; proto: Proto; ip: string; port: number; close: () => void }

export class PortHolder {
  private held: Held[] = [];

  private conflict(proto: Proto, ip: string, port: number): Held | undefined {
    const any = (x: string) => x === "0.0.0.0" || x === "::";
    return this.held.find((h) => h.proto === proto && h.port === port && (h.ip === ip || any(h.ip) || any(ip)));
  }

  /**
   * Binds hostIp:hostPort (0: a random port) for `owner` and returns the port.
   * `target` gives where the proxy sends a connection the kernel did not DNAT.
   */
  async reserve(owner: string, proto: Proto, hostIp: string, candidates: number[], target: { ip: string; port: number }): Promise<number> {
    const ip = hostIp || "0.0.0.0";
    let lastErr: Error | undefined;
    for (const want of candidates) {
      if (want && this.conflict(proto, ip, want)) {
        lastErr = new SystemError(`Bind for ${ip}:${want} failed: port is already allocated`);
        continue;
      }
      try {
        const { port, close } = proto === "tcp" ? await listenTcp(ip, want, target) : await bindUdp(ip, want);
        if (this.conflict(proto, ip, port)) { close(); lastErr = new SystemError(`Bind for ${ip}:${port} failed: port is already allocated`); continue; }
        this.held.push({ owner, proto, ip, port, close });
        return port;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        lastErr = new SystemError(`Error starting userland proxy: listen ${proto}${ip.includes(":") ? "6" : "4"} ${ip.includes(":") ? `[${ip}]` : ip}:${want}: bind: ${code === "EADDRINUSE" ? "address already in use" : code === "EADDRNOTAVAIL" ? "cannot assign requested address" : (e as Error).message}`);
      }
    }
    throw lastErr ?? new SystemError("no host port to bind");
  }

  release(owner: string): void {
    const keep: Held[] = [];
    for (const h of this.held) { if (h.owner === owner) h.close(); else keep.push(h); }
    this.held = keep;
  }

  releaseAll(): void { for (const h of this.held) h.close(); this.held = []; }
}

function proxy(sock: net.Socket, target: { ip: string; port: number }): void {
  const up = net.connect(target.port, target.ip);
  sock.on("error", () => up.destroy());
  up.on("error", () => sock.destroy());
  sock.pipe(up).pipe(sock);
}

function listenTcp(ip: string, port: number, target: { ip: string; port: number }): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => proxy(s, target));
    srv.once("error", reject);
    srv.listen({ host: ip, port, ipv6Only: false, exclusive: true }, () => {
      srv.removeListener("error", reject);
      srv.on("error", () => {});
      const got = (srv.address() as net.AddressInfo).port;
      // IPv6 clients (::1) cannot be DNATed to an IPv4 container: the proxy serves them.
      let v6: net.Server | undefined;
      if (ip === "0.0.0.0") {
        v6 = net.createServer((s) => proxy(s, target));
        v6.on("error", () => {});
        v6.listen({ host: "::", port: got, ipv6Only: true, exclusive: true });
      }
      resolve({ port: got, close: () => { srv.close(); v6?.close(); } });
    });
  });
}

function bindUdp(ip: string, port: number): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket({ type: ip.includes(":") ? "udp6" : "udp4", reuseAddr: false });
    s.once("error", reject);
    s.on("message", () => {});
    s.bind({ address: ip, port, exclusive: true }, () => {
      s.removeListener("error", reject);
      s.on("error", () => {});
      resolve({ port: s.address().port, close: () => { try { s.close(); } catch { /* closed */ } } });
    });
  });
}
