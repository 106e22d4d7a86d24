/** Volume commands: volume create, ls, inspect, rm, prune. */
import type { Command } from "./command.js";
import { UsageError, filterMap, filtersQuery } from "../lib/args.js";
import { ApiError } from "../api/client.js";
import { inspectEach } from "./inspect.js";
import { formatRows } from "../lib/template.js";
import { humanSize } from "../lib/format.js";

import type { Volume, VolumeListResponse, VolumePruneResponse } from "../api/types.js";

function kv(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((x) => { const i = x.indexOf("="); return i < 0 ? [x, ""] : [x.slice(0, i), x.slice(i + 1)]; }));
}

export const volumeCommands: Command[] = [
  {
    name: "volume create", usage: "volume create [OPTIONS] [VOLUME]", desc: "Create a volume",
    flags: [{ long: "driver", short: "d", type: "string", default: "local", desc: "Specify volume driver name" }, { long: "label", type: "list", desc: "Set metadata for a volume" }, { long: "opt", short: "o", type: "list", desc: "Set driver specific options" }, { long: "name", type: "string", hidden: true }],
    run: async (c, f, a) => {
      if (a.length > 1) throw new UsageError(`"volume create" requires at most 1 argument.`);
      const v = await c.api.json<Volume>("POST", "/volumes/create", { body: { Name: a[0] ?? f.name ?? "", Driver: f.driver, Labels: kv(f.label as string[]), DriverOpts: kv(f.opt as string[]) } });
      c.out(v.Name + "\n");
      return 0;
    },
  },
  {
    name: "volume ls", usage: "volume ls [OPTIONS]", desc: "List volumes",
    flags: [{ long: "quiet", short: "q", type: "bool", desc: "Only display volume names" }, { long: "filter", short: "f", type: "list", desc: "Provide filter values" }, { long: "format", type: "string", desc: "Format output using a custom template" }],
    run: async (c, f) => {
      const r = await c.api.json<VolumeListResponse>("GET", "/volumes", { query: { filters: filtersQuery(f.filter as string[]) } });
      const vols = (r.Volumes ?? []).sort((x, y) => x.Name.localeCompare(y.Name));
      if (f.quiet) { c.out(vols.map((v) => v.Name + "\n").join("")); return 0; }
      // The docker CLI's volumeContext: these placeholders only (so `{{json .}}` prints what docker's does).
      const rows = vols.map((v) => ({
        Name: v.Name, Driver: v.Driver, Scope: v.Scope, Mountpoint: v.Mountpoint, Links: "N/A", Size: "N/A", Availability: "N/A", Group: "N/A", Status: "N/A",
        Labels: Object.entries(v.Labels ?? {}).map(([k, x]) => `${k}=${x}`).join(","), Label: (k: string) => v.Labels?.[k] ?? "",
      }));
      c.out(formatRows((f.format as string) ?? "table {{.Driver}}\t{{.Name}}", rows, { Driver: "DRIVER", Name: "VOLUME NAME", Mountpoint: "MOUNTPOINT", Labels: "LABELS", Scope: "SCOPE" }));
      return 0;
    },
  },
  {
    name: "volume inspect", usage: "volume inspect [OPTIONS] VOLUME [VOLUME...]", desc: "Display detailed information on one or more volumes",
    flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"volume inspect" requires at least 1 argument.`);
      return inspectEach(c, f, a, (n) => `/volumes/${n}`);
    },
  },
  {
    name: "volume rm", usage: "volume rm [OPTIONS] VOLUME [VOLUME...]", desc: "Remove one or more volumes",
    flags: [{ long: "force", short: "f", type: "bool", desc: "Force the removal of one or more volumes" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"volume rm" requires at least 1 argument.`);
      let failed = 0;
      for (const n of a) {
        try { await c.api.request("DELETE", `/volumes/${encodeURIComponent(n)}`, { query: { force: !!f.force } }); c.out(n + "\n"); }
        catch (e) { failed++; c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`); }
      }
      return failed ? 1 : 0;
    },
  },
  {
    name: "volume prune", usage: "volume prune [OPTIONS]", desc: "Remove unused local volumes",
    flags: [{ long: "all", short: "a", type: "bool", desc: "Remove all unused volumes, not just anonymous ones" }, { long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" }, { long: "filter", type: "list", desc: "Provide filter values" }],
    run: async (c, f) => {
      const filters = filterMap(f.filter as string[]);
      if (f.all) filters.all = ["true"];
      const r = await c.api.json<VolumePruneResponse>("POST", "/volumes/prune", { query: { filters: JSON.stringify(filters) } });
      if (r.VolumesDeleted?.length) c.out(`Deleted Volumes:\n${r.VolumesDeleted.join("\n")}\n\n`);
      c.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
      return 0;
    },
  },
];
