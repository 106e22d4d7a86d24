/** Network commands: network create, ls, inspect, rm, prune, connect, disconnect. */
import type { Command, Ctx } from "./command.js";
import { UsageError, filterMap, filtersQuery } from "../lib/args.js";
import { ApiError } from "../api/client.js";
import { inspectEach } from "./inspect.js";
import { formatRows } from "../lib/template.js";

type Net = { Name: string; Id: string; Driver: string; Scope: string; Internal: boolean; EnableIPv6: boolean; Created: string; Labels: Record<string, string> | null };

function kv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((x) => { const i = x.indexOf("="); return i < 0 ? [x, ""] : [x.slice(0, i), x.slice(i + 1)]; }));
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
    ],
    run: async (c, f, a) => {
      if (a.length !== 1) throw new UsageError(`"network create" requires exactly 1 argument.`);
      const subnets = f.subnet as string[], gws = f.gateway as string[], ranges = f["ip-range"] as string[];
      if (gws.length > subnets.length) throw new UsageError("every gateway needs a subnet (--subnet)");
      if (ranges.length > subnets.length) throw new UsageError("every ip-range needs a subnet (--subnet)");
      const config = subnets.map((s, i) => ({ Subnet: s, ...(gws[i] ? { Gateway: gws[i] } : {}), ...(ranges[i] ? { IPRange: ranges[i] } : {}) }));
      const r = await c.api.json<{ Id: string }>("POST", "/networks/create", {
        body: {
          Name: a[0], Driver: f.driver, Internal: !!f.internal, Attachable: !!f.attachable, EnableIPv6: !!f.ipv6, CheckDuplicate: true,
          IPAM: { Driver: "default", Config: config, Options: {} }, Options: kv(f.opt as string[]), Labels: kv(f.label as string[]),
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
      const rows = nets.map((n) => ({
        ...n, ID: id(n), IPv6: String(n.EnableIPv6), Internal: String(n.Internal), CreatedAt: n.Created,
        Labels: Object.entries(n.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(","), Label: (k: string) => n.Labels?.[k] ?? "",
      }));
      c.out(formatRows((f.format as string) ?? "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", rows,
        { ID: "NETWORK ID", Name: "NAME", Driver: "DRIVER", Scope: "SCOPE", IPv6: "IPV6", Internal: "INTERNAL", Labels: "LABELS", CreatedAt: "CREATED AT" }));
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
      const r = await c.api.json<{ NetworksDeleted: string[] | null }>("POST", "/networks/prune", { query: { filters: JSON.stringify(filterMap(f.filter as string[])) } });
      if (r.NetworksDeleted?.length) c.out(`Deleted Networks:\n${r.NetworksDeleted.join("\n")}\n`);
      return 0;
    },
  },
  {
    name: "network connect", usage: "network connect [OPTIONS] NETWORK CONTAINER", desc: "Connect a container to a network",
    flags: [{ long: "alias", type: "list", desc: "Add network-scoped alias for the container" }, { long: "ip", type: "string", desc: "IPv4 address (e.g., \"172.30.100.104\")" }],
    run: async (c, f, a) => {
      if (a.length !== 2) throw new UsageError(`"network connect" requires exactly 2 arguments.`);
      const aliases = f.alias as string[];
      await c.api.request("POST", `/networks/${encodeURIComponent(a[0])}/connect`, {
        body: { Container: a[1], EndpointConfig: { Aliases: aliases.length ? aliases : undefined, IPAMConfig: f.ip ? { IPv4Address: f.ip } : undefined } },
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
