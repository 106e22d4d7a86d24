/**
 * IPv4 address management: CIDR parsing, choosing a subnet that collides with
 * nothing routed on the host, and per-network address pools.
 */
import { readFileSync } from "node:fs";
import { BadParameterError, ConflictError } from "../lib/errors.js";

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

/** IPv4 destinations routed on the host (from /proc/net/route, no process spawned), less the default route. */
export function hostRoutes(): Cidr[] {
  let text = "";
  try { text = readFileSync("/proc/net/route", "utf8"); } catch { return []; }
  const out: Cidr[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const le = (h: string) => { const n = parseInt(h, 16); return (((n & 255) << 24) | (((n >>> 8) & 255) << 16) | (((n >>> 16) & 255) << 8) | (n >>> 24)) >>> 0; };
    const dest = le(f[1]), m = le(f[7]);
    if (m === 0) continue;
    let prefix = 0;
    while (prefix < 32 && (m & (0x80000000 >>> prefix))) prefix++;
    out.push({ base: dest, prefix });
  }
  return out;
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

  constructor(readonly subnet: Cidr, readonly gateway: number, range?: Cidr) {
    const r = range ?? subnet;
    const size = 2 ** (32 - r.prefix);
    // Skip the network and broadcast addresses of the subnet.
    this.first = Math.max(r.base, subnet.base + 1);
    this.last = Math.min(r.base + size - 1, subnet.base + 2 ** (32 - subnet.prefix) - 2);
    this.next = this.first;
    this.used.add(gateway);
  }

  /** A specific address (--ip) or the next free one, round-robin so a released address is not reused at once. */
  allocate(preferred?: string): string {
    if (preferred) {
      const n = ipToInt(preferred);
      if (!contains(this.subnet, n)) throw new BadParameterError(`invalid IP address ${preferred}: not in the network's subnet ${cidrString(this.subnet)}`);
      if (this.used.has(n)) throw new ConflictError(`Address already in use: ${preferred}`);
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
    if (n !== this.gateway) this.used.delete(n);
  }

  inUse(): number { return this.used.size - 1; }
}

/** A MAC from the address, as Docker does (02:42 + the four IPv4 bytes). */
export function macFor(ip: string): string {
  const n = ipToInt(ip);
  return ["02", "42", ...[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}
