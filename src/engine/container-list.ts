/**
 * `docker ps`: the rows (Docker's ContainerSummary), the filters Docker
 * accepts and checks, and the status words and ports of a row.
 */
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import { humanDuration } from "../lib/human.js";
import { familiarString, parseReference } from "../oci/reference.js";
import { checkFilters, exactMatch, invalidFilter, labelsMatch, type Filters } from "./filters.js";
import { publicMounts, type MountPoint } from "./mounts.js";
import type { FindContainer } from "./launch-spec.js";
import type { ContainerRecord } from "./types.js";

/** Go's zero time.Time, as Docker writes a time that is not set. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

export interface ListOptions { all?: boolean; limit?: number; filters?: Record<string, string[]>; imageName: (id: string) => string }

/** `docker ps` rows (Docker's ContainerSummary). */
export function listContainers(all: ContainerRecord[], opts: ListOptions, find: FindContainer): Record<string, unknown>[] {
  const f = checkFilters(opts.filters, PS_FILTERS);
  const ctx = psContext(f, find);
  let list = all.sort((a, b) => b.Created.localeCompare(a.Created));
  const showAll = opts.all || (opts.limit !== undefined && opts.limit > 0) || (f.status?.length ?? 0) > 0 || (f.exited?.length ?? 0) > 0;
  if (!showAll) list = list.filter((c) => c.State.Running);
  list = list.filter((c) => matchFilters(c, f, ctx, opts.imageName));
  if (opts.limit !== undefined && opts.limit > 0) list = list.slice(0, opts.limit);
  return list.map((c) => ({
    Id: c.Id,
    Names: [c.Name],
    Image: c.Config.Image || opts.imageName(c.Image),
    ImageID: c.Image,
    Command: [c.Path, ...c.Args].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(" "),
    Created: Math.floor(Date.parse(c.Created) / 1000),
    Ports: summaryPorts(c),
    Labels: c.Config.Labels ?? {},
    State: c.State.Status,
    Status: statusText(c),
    HostConfig: { NetworkMode: c.HostConfig.NetworkMode },
    NetworkSettings: { Networks: sortedKeys(c.NetworkSettings.Networks as Record<string, unknown> | undefined) ?? {} },
    Mounts: publicMounts(c.Mounts as MountPoint[]),
  }));
}

/** Docker's ContainerSummary.Ports: one entry per host binding, or the bare exposed port. */
export function summaryPorts(c: ContainerRecord): { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] {
  const out: { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }[] = [];
  const ports = (c.NetworkSettings.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
  for (const [k, list] of Object.entries(ports)) {
    const [p, proto = "tcp"] = k.split("/");
    if (!list?.length) out.push({ PrivatePort: Number(p), Type: proto });
    else for (const b of list) out.push({ IP: b.HostIp || "0.0.0.0", PrivatePort: Number(p), PublicPort: Number(b.HostPort), Type: proto });
  }
  return out;
}

export function statusText(c: ContainerRecord): string {
  const s = c.State;
  if (s.Status === "removing") return "Removal In Progress";
  if (s.Running) {
    const up = `Up ${humanDuration(Date.now() - Date.parse(s.StartedAt))}`;
    if (s.Paused) return `${up} (Paused)`;
    if (s.Health) return `${up} (${s.Health.Status === "starting" ? "health: starting" : s.Health.Status})`;
    return up;
  }
  if (s.Status === "created") return "Created";
  if (s.Status === "restarting") return `Restarting (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
  if (s.Status === "dead") return "Dead";
  if (s.FinishedAt === ZERO_TIME) return "Created";
  return `Exited (${s.ExitCode}) ${humanDuration(Date.now() - Date.parse(s.FinishedAt))} ago`;
}


/** Docker's accepted `docker ps` filter keys (daemon/list.go acceptedPsFilterTags). */
const PS_FILTERS = ["ancestor", "before", "exited", "health", "id", "label", "name", "status", "since", "volume", "network", "is-task", "publish", "expose"];
const STATUSES = ["created", "restarting", "running", "removing", "paused", "exited", "dead"];
const HEALTH = ["starting", "healthy", "unhealthy", "none"];

interface PsContext { before?: string; since?: string; publish?: Set<string>; expose?: Set<string> }

/** publish / expose values (`80`, `80/udp`, `8000-8080/tcp`) as a set of `port/proto`, with Docker's errors. */
function portSet(f: Filters, key: "publish" | "expose"): Set<string> | undefined {
  const vals = f[key];
  if (!vals?.length) return undefined;
  const out = new Set<string>();
  for (const v of vals) {
    const fail = (why: string) => new BadParameterError(`error while looking up for ${key} ${v}: ${why}`);
    if (v === "") throw fail("Empty string specified for ports.");
    const [range, proto = "tcp"] = v.split("/", 2);
    const [a, b = a] = range.split("-", 2);
    for (const x of [a, b]) if (!/^[0-9]+$/.test(x) || Number(x) > 65535) throw fail(`strconv.ParseUint: parsing ${JSON.stringify(x)}: invalid syntax`);
    if (Number(b) < Number(a)) throw fail(`invalid range specified for port: ${range}`);
    for (let p = Number(a); p <= Number(b) && out.size < 70_000; p++) out.add(`${p}/${proto.toLowerCase()}`);
  }
  return out;
}

function matchFilters(c: ContainerRecord, f: Filters, ctx: PsContext, imageName: (id: string) => string): boolean {
  if (ctx.before !== undefined && c.Created >= ctx.before) return false;
  if (ctx.since !== undefined && c.Created <= ctx.since) return false;
  if (ctx.publish || ctx.expose) {
    const ports = summaryPorts(c);
    const hit = ports.some((p) => (p.PublicPort !== undefined && ctx.publish?.has(`${p.PublicPort}/${p.Type}`)) || ctx.expose?.has(`${p.PrivatePort}/${p.Type}`));
    if (!hit) return false;
  }
  for (const [key, values] of Object.entries(f)) {
    if (!values.length) continue;
    // label values AND (Docker's MatchKVList); every other key ORs its values.
    if (key === "label") { if (!labelsMatch(c.Config.Labels, f)) return false; continue; }
    const ok = values.some((v) => {
      switch (key) {
        case "id": return c.Id.startsWith(v);
        case "name": { try { if (new RegExp(v).test(c.Name.slice(1))) return true; } catch { /* as Go's filters.Match: a bad pattern matches nothing */ } return c.Name.slice(1).includes(v); }
        case "label": {
          const i = v.indexOf("=");
          return i < 0 ? v in (c.Config.Labels ?? {}) : c.Config.Labels?.[v.slice(0, i)] === v.slice(i + 1);
        }
        case "status": return c.State.Status === v;
        case "health": return (c.State.Health?.Status ?? "none") === v;
        case "exited": return !c.State.Running && c.State.Status === "exited" && String(c.State.ExitCode) === v;
        case "ancestor": {
          if (c.Image === v || c.Image.replace("sha256:", "").startsWith(v.replace("sha256:", ""))) return true;
          try { return familiarString(parseReference(v)) === familiarString(parseReference(c.Config.Image || imageName(c.Image))); } catch { return false; }
        }
        case "before": case "since": case "publish": case "expose": return true;
        case "volume": return (c.Mounts as MountPoint[]).some((m) => m.Name === v || m.Source === v || m.Destination === v);
        case "network": return c.HostConfig.NetworkMode === v || Object.entries((c.NetworkSettings.Networks ?? {}) as Record<string, { NetworkID: string }>).some(([n, e]) => n === v || e.NetworkID === v);
        case "is-task": return v === "false";
        default: throw invalidFilter(key);
      }
    });
    if (!ok) return false;
  }
  return true;
}

/** The values of `docker ps` filters that Docker checks before it lists anything (Docker's foldFilter). */
function psContext(f: Filters, find: FindContainer): PsContext {
  for (const v of f.status ?? []) if (!STATUSES.includes(v)) throw invalidFilter("status", v);
  for (const v of f.health ?? []) if (!HEALTH.includes(v)) throw new BadParameterError(`Unrecognised filter value for health: ${v}`);
  const isTask = f["is-task"];
  if (isTask?.length && !(exactMatch(f, "is-task", "true") || exactMatch(f, "is-task", "false"))) throw invalidFilter("is-task", isTask);
  for (const v of f.exited ?? []) if (!/^[+-]?[0-9]+$/.test(v)) throw new BadParameterError(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
  const ref = (k: "before" | "since") => {
    let t: string | undefined;
    for (const v of f[k] ?? []) {
      const c = find(v);
      if (!c) throw new NotFoundError(`no such container ${v}`);
      t = c.Created;
    }
    return t;
  };
  return { before: ref("before"), since: ref("since"), publish: portSet(f, "publish"), expose: portSet(f, "expose") };
}

/** A map as Go's encoding/json writes it: keys in sorted order (clients such as Testcontainers take the first network). */
export function sortedKeys<T>(m: Record<string, T> | null | undefined): Record<string, T> | null | undefined {
  if (!m) return m;
  return Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]]));
}
