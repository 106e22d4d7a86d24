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

export interface DnsSettings {
  /** The embedded DNS server (user networks): the only nameserver. */
  embedded?: string;
  /** --dns: nameservers instead of the host's (on user networks the embedded server forwards to them). */
  servers?: string[];
  /** --dns-search, --dns-option: instead of the host's search and options lines. */
  search?: string[];
  options?: string[];
}

/** resolv.conf for a container: the host's, less loopback resolvers, with what the container was given instead. */
export async function containerResolv(dns: DnsSettings = {}, hostResolv = "/etc/resolv.conf"): Promise<string> {
  let text = "";
  try { text = await fsp.readFile(hostResolv, "utf8"); } catch { /* none */ }
  const lines = text.split("\n");
  let servers = dns.embedded ? [dns.embedded] : dns.servers?.length ? dns.servers
    : lines.map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1]).filter((x): x is string => !!x && !/^(127\.|::1$|localhost)/.test(x));
  if (!servers.length) servers = ["8.8.8.8", "8.8.4.4"];
  const search = dns.search?.length ? [`search ${dns.search.join(" ")}`] : lines.filter((l) => /^\s*(search|domain)\s/.test(l));
  const options = dns.options?.length ? [`options ${dns.options.join(" ")}`] : lines.filter((l) => /^\s*options\s/.test(l));
  return [...servers.map((x) => `nameserver ${x}`), ...search, ...options].join("\n") + "\n";
}

export async function writeEtcFiles(p: EtcPaths, hostname: string, ips: string[] = [], extraHosts: string[] = [], dns: DnsSettings = {}, domainname = ""): Promise<void> {
  // As Docker: with a domain name the address maps the FQDN first, then the short name.
  const names = domainname ? `${hostname}.${domainname} ${hostname}` : hostname;
  const hosts = [
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
    ...extraHosts.map((h) => { const i = h.indexOf(":"); return `${h.slice(i + 1)}\t${h.slice(0, i)}`; }),
    ...ips.map((ip) => `${ip}\t${names}`),
  ];
  // Regenerated at every start, so no fsync: a torn file is rewritten next time.
  await Promise.all([
    fsp.writeFile(p.hostname, hostname + "\n"),
    fsp.writeFile(p.hosts, hosts.join("\n") + "\n"),
    containerResolv(dns).then((r) => fsp.writeFile(p.resolv, r)),
  ]);
}
