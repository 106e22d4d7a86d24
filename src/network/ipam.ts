/**
 * Address management: IPv4 and IPv6 CIDR parsing, choosing a subnet that
 * collides with nothing routed on the host, and per-network address pools
 * (gateway and auxiliary addresses reserved, never handed out).
 */
import { readFileSync } from "node:fs";
import { BadParameterError, BerthError, ConflictError } from "../lib/errors.js";

export interface Cidr { base: number; prefix: number }

export function ipToInt(ip: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) throw new BadParameterError(`invalid IPv4 address: ${ip}`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw new BadParameterError(`invalid IPv4 address: ${ip}`);
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function mask(prefix: number): number { return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0; }

/** "10.88.0.0/16" → {base, prefix}; the host bits must be zero, as Docker requires. */
export function parseCidr(s: string, strict = true): Cidr {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m || Number(m[2]) > 32) throw new BadParameterError(`invalid CIDR address: ${s}`);
  const prefix = Number(m[2]);
  const ip = ipToInt(m[1]);
  const base = (ip & mask(prefix)) >>> 0;
  if (strict && base !== ip) throw new BadParameterError(`invalid subnet ${s}: it should be ${intToIp(base)}/${prefix}`);
  return { base, prefix };
}

export function cidrString(c: Cidr): string { return `${intToIp(c.base)}/${c.prefix}`; }

export function contains(c: Cidr, ip: number): boolean { return ((ip & mask(c.prefix)) >>> 0) === c.base; }

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** A route on the host: its destination and the interface it goes out of. */
export interface HostRoute extends Cidr { dev: string }

/** IPv4 destinations routed on the host (from /proc/net/route, no process spawned), less the default route. */
export function hostRoutes(): HostRoute[] {
  let text = "";
  try { text = readFileSync("/proc/net/route", "utf8"); } catch { return []; }
  const out: HostRoute[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (h: string) => { const n = parseInt(h, 16); return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0; };
    const dest = le(f[1]), m = le(f[7]);
    if (m === 0) continue;
    let prefix = 0;
    while (prefix < 32 && (m & (0x80000000 >>> prefix))) prefix++;
    out.push({ base: dest, prefix, dev: f[0] });
  }
  return out;
}

/**
 * The first host route that overlaps `subnet` on an interface other than
 * `ownDevice` (the network's own bridge): a subnet that a stale bridge,
 * a VPN or another daemon holds cannot be shared without losing traffic.
 */
export function routeConflict(subnet: Cidr, ownDevice: string | undefined, routes: HostRoute[] = hostRoutes()): HostRoute | undefined {
  return routes.find((r) => r.dev !== ownDevice && overlaps(r, subnet));
}

/** The first candidate that overlaps nothing taken. */
export function chooseSubnet(candidates: Iterable<Cidr>, taken: Cidr[]): Cidr | undefined {
  for (const c of candidates) if (!taken.some((t) => overlaps(c, t))) return c;
  return undefined;
}

/** Candidates for the default bridge: 10.88.0.0/16 (as Podman), then other /16s of 10/8 and 172.16/12 that Docker does not use first. */
export function* defaultBridgeCandidates(): Generator<Cidr> {
  for (let b = 88; b >= 60; b--) yield { base: ipToInt(`10.${b}.0.0`), prefix: 16 };
  for (let b = 31; b >= 24; b--) yield { base: ipToInt(`172.${b}.0.0`), prefix: 16 };
}

/** Candidates for user networks: 10.89.0.0/24, 10.89.1.0/24, ... (as Podman), then 10.90.x.0/24 ... */
export function* userNetworkCandidates(): Generator<Cidr> {
  for (let b = 89; b <= 99; b++) for (let c = 0; c < 256; c++) yield { base: ipToInt(`10.${b}.${c}.0`), prefix: 24 };
}

/** Addresses of one network: the gateway and, within the optional ip-range, the containers'. */
export class IpPool {
  private used = new Set<number>();
  private next: number;
  private readonly first: number;
  private readonly last: number;

  constructor(readonly subnet: Cidr, readonly gateway: number, range?: Cidr, reserved: number[] = []) {
    const r = range ?? subnet;
    const size = 2 ** (32 - r.prefix);
    // Skip the network and broadcast addresses of the subnet.
    this.first = Math.max(r.base, subnet.base + 1);
    this.last = Math.min(r.base + size - 1, subnet.base + 2 ** (32 - subnet.prefix) - 2);
    this.next = this.first;
    this.used.add(gateway);
    for (const r of reserved) this.used.add(r);
    this.fixed = new Set([gateway, ...reserved]);
  }
  /** The gateway and auxiliary addresses: never released. */
  private readonly fixed: Set<number>;

  /** A specific address (--ip) or the next free one, round-robin so a released address is not reused at once. */
  allocate(preferred?: string): string {
    if (preferred) {
      const n = ipToInt(preferred);
      if (!contains(this.subnet, n)) throw new BadParameterError(`invalid IP address ${preferred}: not in the network's subnet ${cidrString(this.subnet)}`);
      if (this.used.has(n)) throw new BerthError(`Address already in use`, 403);
      this.used.add(n);
      return preferred;
    }
    const span = this.last - this.first + 1;
    for (let i = 0; i < span; i++) {
      const n = this.first + ((this.next - this.first + i) % span);
      if (!this.used.has(n)) {
        this.used.add(n);
        this.next = n + 1 > this.last ? this.first : n + 1;
        return intToIp(n);
      }
    }
    throw new ConflictError(`no available IPv4 addresses on this network's address pools: ${cidrString(this.subnet)}`);
  }

  /** Marks an address taken (re-adoption after a daemon restart). */
  reserve(ip: string): void { this.used.add(ipToInt(ip)); }

  release(ip: string): void {
    const n = ipToInt(ip);
    if (!this.fixed.has(n)) this.used.delete(n);
  }

  inUse(): number { return this.used.size - this.fixed.size; }
}

/** A MAC from the address, as Docker does (02:42 + the four IPv4 bytes). */
export function macFor(ip: string): string {
  const n = ipToInt(ip);
  return ["02", "42", ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

// ---------------------------------------------------------------- IPv6

export interface Cidr6 { base: bigint; prefix: number }

const ALL6 = (1n << 128n) - 1n;

export function mask6(prefix: number): bigint { return prefix === 0 ? 0n : (ALL6 << BigInt(128 - prefix)) & ALL6; }

/** "fd42::1" → 128-bit integer (an embedded IPv4 tail "::ffff:1.2.3.4" too). */
export function ip6ToBig(ip: string): bigint {
  let s = ip.trim();
  const bad = () => new BadParameterError(`invalid IPv6 address: ${ip}`);
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(":")) throw bad();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) { const n = ipToInt(v4[1]); s = s.slice(0, -v4[1].length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`; }
  const halves = s.split("::");
  if (halves.length > 2) throw bad();
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 1 && fill !== 0) || (halves.length === 2 && fill < 1)) throw bad();
  const groups = [...head, ...Array(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw bad();
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

/** 128-bit integer → the canonical text form (RFC 5952: lower case, longest zero run as ::). */
export function bigToIp6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

export function isIpv6(s: string): boolean { return s.includes(":"); }

/** "fd42:9::/64" → {base, prefix}; host bits must be zero (strict), as for IPv4. */
export function parseCidr6(s: string, strict = true): Cidr6 {
  const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(s.trim());
  if (!m || Number(m[2]) > 128) throw new BadParameterError(`invalid CIDR address: ${s}`);
  const prefix = Number(m[2]);
  const ip = ip6ToBig(m[1]);
  const base = ip & mask6(prefix);
  if (strict && base !== ip) throw new BadParameterError(`invalid subnet ${s}: it should be ${bigToIp6(base)}/${prefix}`);
  return { base, prefix };
}

export function cidr6String(c: Cidr6): string { return `${bigToIp6(c.base)}/${c.prefix}`; }
export function contains6(c: Cidr6, ip: bigint): boolean { return (ip & mask6(c.prefix)) === c.base; }
export function overlaps6(a: Cidr6, b: Cidr6): boolean {
  const m = mask6(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

/** IPv6 destinations routed on the host (from /proc/net/ipv6_route), less default, link-local, multicast and host routes. */
export function hostRoutes6(): (Cidr6 & { dev: string })[] {
  let text = "";
  try { text = readFileSync("/proc/net/ipv6_route", "utf8"); } catch { return []; }
  const out: (Cidr6 & { dev: string })[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const prefix = parseInt(f[1], 16);
    const base = BigInt("0x" + f[0]);
    if (prefix === 0 || prefix === 128 || f[9] === "lo") continue;
    if ((base >> 118n) === 0x3fan || (base >> 120n) === 0xffn) continue; // fe80::/10, ff00::/8
    out.push({ base, prefix, dev: f[9] });
  }
  return out;
}

/** Candidates for networks with --ipv6 and no v6 subnet given: unique local /64s of one berth /48. */
export function* ipv6Candidates(): Generator<Cidr6> {
  const base = ip6ToBig("fd62:6572:7468::");
  for (let n = 0n; n < 65536n; n++) yield { base: base | (n << 64n), prefix: 64 };
}

/** IPv6 addresses of one network: the gateway, then sequentially (a /64 does not run out). */
export class IpPool6 {
  private used = new Set<bigint>();
  private next: bigint;

  constructor(readonly subnet: Cidr6, readonly gateway: bigint, reserved: bigint[] = []) {
    this.used.add(gateway);
    for (const r of reserved) this.used.add(r);
    this.fixed = new Set([gateway, ...reserved]);
    this.next = subnet.base + 1n;
  }
  private readonly fixed: Set<bigint>;

  private get last(): bigint { return this.subnet.base + (1n << BigInt(128 - this.subnet.prefix)) - 1n; }

  allocate(preferred?: string): string {
    if (preferred) {
      const n = ip6ToBig(preferred);
      if (!contains6(this.subnet, n)) throw new BadParameterError(`invalid IPv6 address ${preferred}: not in the network's subnet ${cidr6String(this.subnet)}`);
      if (this.used.has(n)) throw new BerthError(`Address already in use`, 403);
      this.used.add(n);
      return bigToIp6(n);
    }
    const first = this.subnet.base + 1n;
    for (let i = 0; i < 65536; i++) {
      let n = this.next;
      if (n > this.last) n = first;
      this.next = n + 1n;
      if (!this.used.has(n)) { this.used.add(n); return bigToIp6(n); }
    }
    throw new ConflictError(`no available IPv6 addresses on this network's address pools: ${cidr6String(this.subnet)}`);
  }

  reserve(ip: string): void { this.used.add(ip6ToBig(ip)); }
  release(ip: string): void { const n = ip6ToBig(ip); if (!this.fixed.has(n)) this.used.delete(n); }
}
