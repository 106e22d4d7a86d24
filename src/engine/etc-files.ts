/**
 * Per-container /etc/hostname, /etc/hosts and /etc/resolv.conf, written into
 * the container's directory and bind-mounted into its rootfs, as Docker does.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";


export interface EtcPaths { hostname: string; hosts: string; resolv: string }

export function etcPaths(dir: string): EtcPaths {
  return { hostname: join(dir, "hostname"), hosts: join(dir, "hosts"), resolv: join(dir, "resolv.conf") };
}

/** The host's resolv.conf, less loopback resolvers a container cannot reach; Google's as a fallback like Docker. */
export async function containerResolvConf(hostResolv = "/etc/resolv.conf"): Promise<string> {
  let text = "";
  try { text = await fsp.readFile(hostResolv, "utf8"); } catch { /* none */ }
  const lines = text.split("\n").filter((l) => !/^\s*nameserver\s+(127\.|::1\b|localhost)/.test(l));
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) lines.push("nameserver 8.8.8.8", "nameserver 8.8.4.4");
  return lines.join("\n").replace(/\n*$/, "\n");
}

/** On a user network: the network's embedded DNS server, keeping the host's search and options lines. */
export async function embeddedResolvConf(nameserver: string, hostResolv = "/etc/resolv.conf"): Promise<string> {
  let text = "";
  try { text = await fsp.readFile(hostResolv, "utf8"); } catch { /* none */ }
  const keep = text.split("\n").filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return [`nameserver ${nameserver}`, ...keep].join("\n") + "\n";
}

export async function writeEtcFiles(p: EtcPaths, hostname: string, ips: string[] = [], extraHosts: string[] = [], nameserver?: string): Promise<void> {
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    ...extraHosts.map((h) => { const i = h.indexOf(":"); return `${h.slice(i + 1)}\t${h.slice(0, i)}`; }),
    ...ips.map((ip) => `${ip}\t${hostname}`),
  ];
  // Regenerated at every start, so no fsync: a torn file is rewritten next time.
  await Promise.all([
    fsp.writeFile(p.hostname, hostname + "\n"),
    fsp.writeFile(p.hosts, hosts.join("\n") + "\n"),
    (nameserver ? embeddedResolvConf(nameserver) : containerResolvConf()).then((r) => fsp.writeFile(p.resolv, r)),
  ]);
}
