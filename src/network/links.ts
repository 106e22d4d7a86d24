/**
 * Links: Linux bridges and the veth pairs that plug a container's network
 * namespace into them. Each step is one `ip -batch`, run by the daemon's
 * helper (src/lib/mounter.ts: one request to plug a container in, the host
 * side then the inside of its namespace); without the helper, spawned (two
 * processes to plug a container in: one on the host side, one inside its
 * namespace via nsenter).
 * A container's end lives in its namespace, so when the namespace goes the
 * kernel removes the pair: with the container's last process, or, for a
 * namespace kept on a file (engine/containers.ts), when berthd lets the file
 * go at exit (or, after a crash of the daemon, at its next start).
 */
import { existsSync, writeFileSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import { randomBytes } from "node:crypto";
import { run } from "../lib/proc.js";
import { SystemError } from "../lib/errors.js";
import { ipBatches, MountError } from "../lib/mounter.js";

/** Each step's lines in turn, through the helper; false when it is not there (nothing was done). */
async function viaHelper(steps: { netns?: string; lines: string[] }[]): Promise<boolean> {
  const p = ipBatches(steps);
  if (!p) return false;
  try { await p; return true; } catch (e) {
    if (e instanceof MountError) throw new SystemError(e.message);
    return false; // the helper died before it answered: spawn ip instead
  }
}

async function ipBatch(lines: string[], netnsPath?: string): Promise<void> {
  if (await viaHelper([{ netns: netnsPath, lines }])) return;
  const input = lines.join("\n") + "\n";
  const r = netnsPath
    ? await run("nsenter", [`--net=${netnsPath}`, "ip", "-batch", "-"], { input })
    : await run("ip", ["-batch", "-"], { input });
  if (r.code !== 0) throw new SystemError(`ip: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join("; ")}`);
}

export function linkExists(name: string): boolean { return existsSync(`/sys/class/net/${name}`); }

/** The bridge a link is a port of (no process spawned). */
export function masterOf(name: string): string | undefined {
  try { return basename(readlinkSync(`/sys/class/net/${name}/master`)); } catch { return undefined; }
}

export async function attachToBridge(hostIf: string, bridge: string): Promise<void> {
  await ipBatch([`link set ${hostIf} master ${bridge} up`, `link set dev ${hostIf} type bridge_slave hairpin on`]);
}

function writeSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, "utf8").trim() === value) return;
    writeFileSync(path, value);
  } catch { /* not available here (read-only /proc/sys, say): the rule still works for remote clients */ }
}

/**
 * Creates (or re-addresses) a bridge and brings it up: its gateway addresses
 * (IPv4, and IPv6 on a dual-stack network, without duplicate address
 * detection so it answers at once). route_localnet lets 127.0.0.1 reach
 * published ports by DNAT.
 */
export async function ensureBridge(name: string, gatewayCidrs: string | string[], opts: { forward: boolean; mtu?: number; ipv6?: boolean }): Promise<void> {
  const lines: string[] = [];
  const fresh = !linkExists(name);
  if (fresh) lines.push(`link add name ${name}${opts.mtu ? ` mtu ${opts.mtu}` : ""} type bridge`);
  if (lines.length) await ipBatch(lines);
  if (opts.ipv6) writeSysctl(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "0");
  const addrs = typeof gatewayCidrs === "string" ? [gatewayCidrs] : gatewayCidrs;
  await ipBatch([...addrs.map((a) => `addr replace ${a} dev ${name}${a.includes(":") ? " nodad" : ""}`), `link set ${name} up`]);
  writeSysctl(`/proc/sys/net/ipv4/conf/${name}/route_localnet`, "1");
  // Forwarding only once a network that reaches out exists.
  if (opts.forward) writeSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  if (opts.forward && opts.ipv6) writeSysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1");
}

/** Removes every address of a link (a bridge moving to another subnet). */
export async function flushAddresses(name: string): Promise<void> {
  if (!linkExists(name)) return;
  await ipBatch([`addr flush dev ${name}`]);
}

export async function deleteBridge(name: string): Promise<void> {
  if (!linkExists(name)) return;
  await ipBatch([`link del ${name}`]);
}

export interface VethPlan {
  bridge: string;
  /** Interface name inside the container: eth0, eth1, ... */
  ifName: string;
  mac: string;
  /** address/prefix */
  cidr: string;
  /** Default route via this gateway (the first network that has one). */
  gateway?: string;
  /** IPv6 address/prefix on a dual-stack network, and the default IPv6 route via its gateway. */
  cidr6?: string;
  gateway6?: string;
  /** More addresses (--link-local-ip), address/prefix. */
  extra?: string[];
  mtu?: number;
}

/** A host-side veth name: unique per plug, so a restart never waits for the kernel to free the previous pair. */
export function hostVethName(): string { return "veth" + randomBytes(4).toString("hex"); }

/**
 * Plugs a network namespace (a process's, by pid, or one kept at a path) into a bridge: the pair is made with
 * its container end directly inside the namespace, the host end joins the
 * bridge (hairpin on, so a container reaches its own published ports), then
 * the container end gets its MAC, address and default route.
 */
export async function plug(ns: number | string, plan: VethPlan, hostIf: string, firstInNs: boolean): Promise<void> {
  const mtu = plan.mtu ? ` mtu ${plan.mtu}` : "";
  const host = [
    `link add ${hostIf}${mtu} type veth peer name ${plan.ifName}${mtu} netns ${ns}`,
    `link set ${hostIf} master ${plan.bridge} up`,
    `link set dev ${hostIf} type bridge_slave hairpin on`,
  ];
  const inside = [
    ...(firstInNs ? ["link set lo up"] : []),
    `link set ${plan.ifName} address ${plan.mac}`,
    `addr add ${plan.cidr} dev ${plan.ifName}`,
    ...(plan.cidr6 ? [`addr add ${plan.cidr6} dev ${plan.ifName} nodad`] : []),
    ...(plan.extra ?? []).map((a) => `addr add ${a} dev ${plan.ifName}${a.includes(":") ? " nodad" : ""}`),
    `link set ${plan.ifName} up`,
    ...(plan.gateway ? [`route add default via ${plan.gateway} dev ${plan.ifName}`] : []),
    ...(plan.gateway6 ? [`route add default via ${plan.gateway6} dev ${plan.ifName}`] : []),
  ];
  const netns = typeof ns === "number" ? `/proc/${ns}/ns/net` : ns;
  try {
    if (await viaHelper([{ lines: host }, { netns, lines: inside }])) return;
  } catch (e) {
    // The host side may have been made before the inside failed.
    if (linkExists(hostIf)) await ipBatch([`link del ${hostIf}`]).catch(() => {});
    throw e;
  }
  await ipBatch(host);
  try {
    await ipBatch(inside, netns);
  } catch (e) {
    await ipBatch([`link del ${hostIf}`]).catch(() => {});
    throw e;
  }
}

/** Removes a container's interface (network disconnect of a running container); its host end goes with it. */
export async function unplug(pid: number, ifName: string): Promise<void> {
  await ipBatch([`link del ${ifName}`], `/proc/${pid}/ns/net`);
}
