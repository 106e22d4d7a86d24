/** Network commands: network create, ls, inspect, rm, prune, connect, disconnect. */
import { ExitError, type Command, type Ctx } from "./command.js";
import { UsageError, filterMap, filtersQuery } from "../lib/args.js";
import { ApiError } from "../api/client.js";
import { inspectEach } from "./inspect.js";
import { formatRows } from "../lib/template.js";

import type { Network, NetworkCreateResponse, NetworkPruneResponse } from "../api/types.js";

type Net = Network;

/** Go's time.Time String() of an RFC 3339 time ("2026-12-01 19:41:21.849847252 +0000 UTC"), as network ls prints CreatedAt. */
function goTimeString(rfc3339: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d(?:\.\d+)?)Z$/.exec(rfc3339 ?? "");
  return m ? `${m[1]} ${m[2]} +0000 UTC` : rfc3339;
}

function kv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((x) => { const i = x.indexOf("="); return i < 0 ? [x, ""] : [x.slice(0, i), x.slice(i + 1)]; }));
}

/** An IPv4 or IPv6 address or CIDR as bytes (16 for v6), or undefined when it is neither. */
function addrBytes(a: string): number[] | undefined {
  const ip = a.split("/")[0];
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ip)) { const b = ip.split(".").map(Number); return b.every((x) => x <= 255) ? b : undefined; }
  if (!ip.includes(":")) return undefined;
  const [head, tail] = ip.split("::");
  if (ip.split("::").length > 2) return undefined;
  const words = (p: string) => (p ? p.split(":") : []);
  const h = words(head), t = tail === undefined ? [] : words(tail);
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill("0");
  const all = [...h, ...fill, ...t];
  if (all.length !== 8 || !all.every((w) => /^[0-9a-fA-F]{1,4}$/.test(w))) return undefined;
  return all.flatMap((w) => { const n = parseInt(w, 16); return [n >> 8, n & 255]; });
}

/** Does the CIDR `subnet` contain the address `ip`? */
function contains(subnet: string, ip: string): boolean {
  const s = addrBytes(subnet), a = addrBytes(ip);
  const bits = Number(subnet.split("/")[1] ?? (s?.length === 4 ? 32 : 128));
  if (!s || !a || s.length !== a.length) return false;
  for (let i = 0; i < bits; i++) {
    const m = 0x80 >> (i % 8);
    if ((s[i >> 3] & m) !== (a[i >> 3] & m)) return false;
  }
  return true;
}

/**
 * The docker CLI's consolidateIpam: every --ip-range, --gateway and --aux-address goes to the --subnet that
 * contains it (v4 and v6 alike); one that fits no subnet, or a second gateway for a subnet, is its error.
 */
export function ipamPools(subnets: string[], ranges: string[], gateways: string[], aux: string[]): { Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }[] {
  if (subnets.length < ranges.length || subnets.length < gateways.length) throw new ExitError("every ip-range or gateway must have a corresponding subnet", 1);
  const pools = subnets.map((s) => ({ Subnet: s } as { Subnet: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: Record<string, string> }));
  for (let i = 0; i < subnets.length; i++) for (let j = i + 1; j < subnets.length; j++) {
    if (contains(subnets[i], subnets[j].split("/")[0]) || contains(subnets[j], subnets[i].split("/")[0])) throw new ExitError("multiple overlapping subnet configuration is not supported", 1);
  }
  for (const r of ranges) {
    const p = pools.find((x) => contains(x.Subnet, r.split("/")[0]));
    if (!p) throw new ExitError(`no matching subnet for range ${r}`, 1);
    if (p.IPRange) throw new ExitError(`cannot configure multiple ranges (${r}, ${p.IPRange}) on the same subnet (${p.Subnet})`, 1);
    p.IPRange = r;
  }
  for (const g of gateways) {
    const p = pools.find((x) => contains(x.Subnet, g));
    if (!p) throw new ExitError(`no matching subnet for gateway ${g}`, 1);
    if (p.Gateway) throw new ExitError(`cannot configure multiple gateways (${g}, ${p.Gateway}) for the same subnet (${p.Subnet})`, 1);
    p.Gateway = g;
  }
  for (const [k, v] of Object.entries(kv(aux))) {
    const p = pools.find((x) => contains(x.Subnet, v));
    if (!p) throw new ExitError(`no matching subnet for aux-address ${v}`, 1);
    (p.AuxiliaryAddresses ??= {})[k] = v;
  }
  return pools;
}

function daemonError(c: Ctx, e: unknown): void {
  c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`);
}

export const networkCommands: Command[] = [
  {
    name: "network create", usage: "network create [OPTIONS] NETWORK", desc: "Create a network",
    flags: [
      { long: "driver", short: "d", type: "string", default: "bridge", desc: "Driver to manage the Network" },
      { long: "subnet", type: "list", desc: "Subnet in CIDR format that represents a network segment" },
      { long: "gateway", type: "list", desc: "IPv4 Gateway for the master subnet" },
      { long: "ip-range", type: "list", desc: "Allocate container ip from a sub-range" },
      { long: "internal", type: "bool", desc: "Restrict external access to the network" },
      { long: "attachable", type: "bool", desc: "Enable manual container attachment" },
      { long: "ipv6", type: "bool", desc: "Enable IPv6 networking" },
      { long: "label", type: "list", desc: "Set metadata on a network" },
      { long: "opt", short: "o", type: "list", desc: "Set driver specific options" },
      { long: "aux-address", type: "list", desc: "Auxiliary IPv4 or IPv6 addresses used by Network driver" },
      { long: "ipam-driver", type: "string", default: "default", desc: "IP Address Management Driver" },
      { long: "ipam-opt", type: "list", desc: "Set IPAM driver specific options" },
    ],
    run: async (c, f, a) => {
      if (a.length !== 1) throw new UsageError(`"network create" requires exactly 1 argument.`);
      const config = ipamPools(f.subnet as string[], f["ip-range"] as string[], f.gateway as string[], f["aux-address"] as string[]);
      const r = await c.api.json<NetworkCreateResponse>("POST", "/networks/create", {
        body: {
          Name: a[0], Driver: f.driver, Internal: !!f.internal, Attachable: !!f.attachable, EnableIPv6: !!f.ipv6, CheckDuplicate: true,
          IPAM: { Driver: (f["ipam-driver"] as string) || "default", Config: config, Options: kv(f["ipam-opt"] as string[]) }, Options: kv(f.opt as string[]), Labels: kv(f.label as string[]),
        },
      });
      c.out(r.Id + "\n");
      return 0;
    },
  },
  {
    name: "network ls", usage: "network ls [OPTIONS]", desc: "List networks",
    flags: [
      { long: "quiet", short: "q", type: "bool", desc: "Only display network IDs" },
      { long: "filter", short: "f", type: "list", desc: "Provide filter values (e.g. \"driver=bridge\")" },
      { long: "format", type: "string", desc: "Format output using a custom template" },
      { long: "no-trunc", type: "bool", desc: "Do not truncate the output" },
    ],
    run: async (c, f) => {
      const nets = (await c.api.json<Net[]>("GET", "/networks", { query: { filters: filtersQuery(f.filter as string[]) } }))
        .sort((x, y) => x.Name.localeCompare(y.Name));
      const id = (n: Net) => (f["no-trunc"] ? n.Id : n.Id.slice(0, 12));
      if (f.quiet) { c.out(nets.map((n) => id(n) + "\n").join("")); return 0; }
      // The docker CLI's networkContext: these placeholders only (so `{{json .}}` prints what docker's does).
      const rows = nets.map((n) => ({
        ID: id(n), Name: n.Name, Driver: n.Driver, Scope: n.Scope, IPv4: String(!!n.EnableIPv4), IPv6: String(n.EnableIPv6), Internal: String(n.Internal), CreatedAt: goTimeString(n.Created),
        Labels: Object.entries(n.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(","), Label: (k: string) => n.Labels?.[k] ?? "",
      }));
      c.out(formatRows((f.format as string) ?? "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", rows,
        { ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE", IPv4: "IPV4", IPv6: "IPV6", Internal: "INTERNAL", Labels: "LABELS", CreatedAt: "CREATED AT" }));
      return 0;
    },
  },
  {
    name: "network inspect", usage: "network inspect [OPTIONS] NETWORK [NETWORK...]", desc: "Display detailed information on one or more networks",
    flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }, { long: "verbose", short: "v", type: "bool", desc: "Verbose output for diagnostics" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"network inspect" requires at least 1 argument.`);
      return inspectEach(c, f, a, (n) => `/networks/${n}`);
    },
  },
  {
    name: "network rm", usage: "network rm NETWORK [NETWORK...]", desc: "Remove one or more networks",
    flags: [{ long: "force", short: "f", type: "bool", desc: "Do not error if the network does not exist" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"network rm" requires at least 1 argument.`);
      let failed = 0;
      for (const n of a) {
        try { await c.api.request("DELETE", `/networks/${encodeURIComponent(n)}`); c.out(n + "\n"); }
        catch (e) { if (f.force && e instanceof ApiError && e.status === 404) continue; failed++; daemonError(c, e); }
      }
      return failed ? 1 : 0;
    },
  },
  {
    name: "network prune", usage: "network prune [OPTIONS]", desc: "Remove all unused networks",
    flags: [{ long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" }, { long: "filter", type: "list", desc: "Provide filter values (e.g. \"until=<timestamp>\")" }],
    run: async (c, f) => {
      const r = await c.api.json<NetworkPruneResponse>("POST", "/networks/prune", { query: { filters: JSON.stringify(filterMap(f.filter as string[])) } });
      if (r.NetworksDeleted?.length) c.out(`Deleted Networks:\n${r.NetworksDeleted.join("\n")}\n`);
      return 0;
    },
  },
  {
    name: "network connect", usage: "network connect [OPTIONS] NETWORK CONTAINER", desc: "Connect a container to a network",
    flags: [
      { long: "alias", type: "list", desc: "Add network-scoped alias for the container" },
      { long: "driver-opt", type: "list", desc: "driver options for the network" },
      { long: "ip", type: "string", desc: "IPv4 address (e.g., \"172.30.100.104\")" },
      { long: "ip6", type: "string", desc: "IPv6 address (e.g., \"2001:db8::33\")" },
      { long: "link", type: "list", desc: "Add link to another container" },
      { long: "link-local-ip", type: "list", desc: "Add a link-local address for the container" },
    ],
    run: async (c, f, a) => {
      if (a.length !== 2) throw new UsageError(`"network connect" requires exactly 2 arguments.`);
      const aliases = f.alias as string[], links = f.link as string[];
      const ipam: Record<string, unknown> = {};
      if (f.ip) ipam.IPv4Address = f.ip;
      if (f.ip6) ipam.IPv6Address = f.ip6;
      if ((f["link-local-ip"] as string[]).length) ipam.LinkLocalIPs = f["link-local-ip"];
      await c.api.request("POST", `/networks/${encodeURIComponent(a[0])}/connect`, {
        body: {
          Container: a[1],
          EndpointConfig: {
            IPAMConfig: Object.keys(ipam).length ? ipam : undefined, Links: links.length ? links : undefined, Aliases: aliases.length ? aliases : undefined,
            DriverOpts: (f["driver-opt"] as string[]).length ? kv(f["driver-opt"] as string[]) : undefined,
          },
        },
      });
      return 0;
    },
  },
  {
    name: "network disconnect", usage: "network disconnect [OPTIONS] NETWORK CONTAINER", desc: "Disconnect a container from a network",
    flags: [{ long: "force", short: "f", type: "bool", desc: "Force the container to disconnect from a network" }],
    run: async (c, f, a) => {
      if (a.length !== 2) throw new UsageError(`"network disconnect" requires exactly 2 arguments.`);
      await c.api.request("POST", `/networks/${encodeURIComponent(a[0])}/disconnect`, { body: { Container: a[1], Force: !!f.force } });
      return 0;
    },
  },
];
