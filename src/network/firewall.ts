/**
 * Firewall: every rule berth needs lives in one nftables table of its own
 * (`ip berth`, or a per-data-root name; an `ip6` table of the same name holds
 * the forward rules for dual-stack networks), rendered whole from the current
 * networks and port mappings and replaced in a single `nft -f` transaction,
 * so it is never half-applied and always matches the state after a restart.
 *
 *   prerouting/output (nat): traffic to a local address and a published port
 *                 is DNATed to the container (127.0.0.1 too, via route_localnet)
 *   postrouting (nat): masquerade out of non-internal bridges; masquerade
 *                 hairpin (container → own network via a published port) and
 *                 loopback-sourced DNATed traffic
 *   forward (filter): same-bridge traffic passes; internal networks have no
 *                 way out; traffic between two berth networks is dropped
 *   input (filter): a network's DNS server answers only its own network
 *
 * One thing cannot live in our table: an `accept` in our chain does not
 * override a DROP policy of another table's forward chain (dockerd sets the
 * iptables FORWARD policy to DROP). When such a chain exists, berth adds
 * accept rules of its own for its bridges there (through `iptables`, which
 * dockerd itself requires), marked with a comment, and removes them with the
 * network; it never touches rules it did not create.
 */
import { run, runOk } from "../lib/proc.js";

export interface FwNetwork {
  bridge: string; subnet: string; gateway: string; internal: boolean; dns: boolean;
  /** com.docker.network.bridge.enable_ip_masquerade (default true): masquerade traffic leaving the host. */
  masquerade?: boolean;
  /** com.docker.network.bridge.enable_icc (default true): containers of the network reach each other. */
  icc?: boolean;
}
export interface FwPort { proto: "tcp" | "udp"; hostIp: string; hostPort: number; containerIp: string; containerPort: number }

const q = (s: string) => JSON.stringify(s);

export function renderRuleset(table: string, nets: FwNetwork[], ports: FwPort[]): string {
  const bridges = nets.map((n) => q(n.bridge));
  const portRules = ports.map((p) => {
    const dst = p.hostIp && p.hostIp !== "0.0.0.0" ? `ip daddr ${p.hostIp} ` : "";
    return `    ${dst}${p.proto} dport ${p.hostPort} dnat to ${p.containerIp}:${p.containerPort}`;
  });
  const post: string[] = [];
  const fwd: string[] = [];
  const input: string[] = [];
  for (const n of nets) {
    const br = q(n.bridge);
    if (!n.internal && n.masquerade !== false) post.push(`    ip saddr ${n.subnet} oifname != ${br} masquerade`);
    post.push(`    oifname ${br} ct status dnat ip saddr ${n.subnet} masquerade`);
    post.push(`    oifname ${br} ct status dnat ip saddr 127.0.0.0/8 masquerade`);
    fwd.push(n.icc === false ? `    iifname ${br} oifname ${br} ct status != dnat drop` : `    iifname ${br} oifname ${br} accept`);
    if (n.internal) fwd.push(`    iifname ${br} drop`, `    oifname ${br} drop`);
    if (n.dns) input.push(`    ip daddr ${n.gateway} iifname != ${br} meta l4proto { tcp, udp } th dport 53 drop`);
  }
  // Published ports are reachable from every network (DNATed traffic), other cross-network traffic is not.
  if (bridges.length > 1) fwd.push(`    ct status dnat accept`);
  if (bridges.length > 1) fwd.push(`    iifname { ${bridges.join(", ")} } oifname { ${bridges.join(", ")} } drop`);
  return [
    `table ip ${table} {}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    `  chain ports {`, ...portRules, `  }`,
    `  chain prerouting {`, `    type nat hook prerouting priority dstnat; policy accept;`, `    fib daddr type local jump ports`, `  }`,
    `  chain output {`, `    type nat hook output priority -100; policy accept;`, `    fib daddr type local jump ports`, `  }`,
    `  chain postrouting {`, `    type nat hook postrouting priority srcnat; policy accept;`, ...post, `  }`,
    `  chain forward {`, `    type filter hook forward priority filter; policy accept;`, ...fwd, `  }`,
    `  chain input {`, `    type filter hook input priority filter; policy accept;`, ...input, `  }`,
    `}`,
    // The same forward rules for IPv6 (dual-stack networks): isolation between networks, --internal, icc.
    // Published ports reach IPv6 clients through the port proxy, and v6 is not masqueraded (as dockerd without ip6tables).
    `table ip6 ${table} {}`,
    `delete table ip6 ${table}`,
    `table ip6 ${table} {`,
    `  chain forward {`, `    type filter hook forward priority filter; policy accept;`, ...fwd, `  }`,
    `}`,
  ].join("\n") + "\n";
}

export async function applyRuleset(text: string): Promise<void> {
  await runOk("nft", ["-f", "-"], { input: text });
}

export async function deleteTable(table: string): Promise<void> {
  await run("nft", ["delete", "table", "ip", table]);
  await run("nft", ["delete", "table", "ip6", table]);
}

// ---------------------------------------------------------------- the foreign FORWARD chain

const COMMENT_PREFIX = "berth:";

/** True when iptables' filter FORWARD chain exists (dockerd or another firewall made it); only then are accept rules needed there. */
async function foreignForwardChain(): Promise<boolean> {
  const r = await run("nft", ["list", "chain", "ip", "filter", "FORWARD"]);
  return r.code === 0;
}

async function haveIptables(): Promise<boolean> {
  const r = await run("iptables", ["-V"]).catch(() => null);
  return !!r && r.code === 0;
}

function acceptRules(bridge: string): string[][] {
  const c = ["-m", "comment", "--comment", COMMENT_PREFIX + bridge];
  return [["-i", bridge, ...c, "-j", "ACCEPT"], ["-o", bridge, ...c, "-j", "ACCEPT"]];
}

/** Adds our bridges' accept rules to a foreign FORWARD chain when one exists (idempotent). */
export async function ensureForwardAccept(bridges: string[]): Promise<void> {
  if (!bridges.length || !(await foreignForwardChain()) || !(await haveIptables())) return;
  for (const b of bridges) for (const rule of acceptRules(b)) {
    const check = await run("iptables", ["-w", "-C", "FORWARD", ...rule]);
    if (check.code !== 0) await runOk("iptables", ["-w", "-I", "FORWARD", ...rule]);
  }
}

/** Removes the accept rules berth added for a bridge (only those: matched by their comment). */
export async function removeForwardAccept(bridge: string): Promise<void> {
  if (!(await foreignForwardChain()) || !(await haveIptables())) return;
  for (const rule of acceptRules(bridge)) {
    for (let i = 0; i < 8; i++) if ((await run("iptables", ["-w", "-D", "FORWARD", ...rule])).code !== 0) break;
  }
}
