/** Volumes as the API sees them: create, list (filters), inspect, remove (refused while in use), prune. */
import type { Store } from "../store/index.js";
import { ANON_LABEL, type VolumeDoc } from "../store/volumes.js";
import { BadParameterError, ConflictError, NotFoundError } from "../lib/errors.js";
import type { EventBus } from "./events.js";
import type { ContainerService } from "./containers.js";
import { boolFilter, checkFilters, exactMatch, invalidFilter, labelsMatch, pruneLabelsMatch, type Filters } from "./filters.js";

/** Go's filters.Match: a value is a regular expression; a bad one matches nothing. */
function safeRegexTest(pattern: string, s: string): boolean {
  try { return new RegExp(pattern).test(s); } catch { return false; }
}

export type VolumeView = Omit<VolumeDoc, "Populated"> & { UsageData?: { Size: number; RefCount: number } };

function view(d: VolumeDoc): VolumeView {
  const { Populated: _p, ...rest } = d;
  return rest;
}

export class VolumeService {
  constructor(private readonly store: Store, private readonly events: EventBus, private readonly containers: ContainerService) {}

  async create(body: { Name?: string; Driver?: string; DriverOpts?: Record<string, string>; Labels?: Record<string, string> }): Promise<VolumeView> {
    if (body.Driver && body.Driver !== "local") throw new NotFoundError(`plugin "${body.Driver}" not found`);
    if (body.Name) {
      // Docker's rule (two characters at least); a name is a directory name, so 255 at most.
      if (body.Name.length === 1 && /^[a-zA-Z0-9]$/.test(body.Name)) throw new BadParameterError(`create ${body.Name}: volume name is too short, names should be at least two alphanumeric characters`);
      if (body.Name.length > 255) throw new BadParameterError(`create ${body.Name.slice(0, 64)}...: volume name is too long (at most 255 characters)`);
    }
    const existed = body.Name ? this.store.volumes.get(body.Name) : undefined;
    const v = await this.store.volumes.create(body.Name, body.Labels ?? {}, body.DriverOpts ?? {});
    if (!existed) this.events.publish("volume", "create", v.Name, { driver: "local" });
    return view(v);
  }

  /** `GET /volumes`: Docker's keys (dangling, name, driver, label) and its check of dangling's value. */
  list(filters: Filters = {}): { Volumes: VolumeView[]; Warnings: string[] } {
    const f = checkFilters(filters, ["dangling", "name", "driver", "label"]);
    let dangling: boolean | undefined;
    if ("dangling" in f) {
      if (exactMatch(f, "dangling", "true") || exactMatch(f, "dangling", "1")) dangling = true;
      else if (exactMatch(f, "dangling", "false") || exactMatch(f, "dangling", "0")) dangling = false;
      else throw invalidFilter("dangling", f.dangling);
    }
    const used = this.containers.volumesInUse();
    const out = this.store.volumes.list().filter((v) => {
      if (dangling !== undefined && dangling !== !used.has(v.Name)) return false;
      if (f.name?.length && !f.name.some((n) => v.Name.includes(n) || safeRegexTest(n, v.Name))) return false;
      if (f.driver?.length && !f.driver.includes("local")) return false;
      if (!labelsMatch(v.Labels, f)) return false;
      return true;
    });
    return { Volumes: out.map(view), Warnings: [] };
  }

  inspect(name: string): VolumeView {
    const v = this.store.volumes.get(name);
    if (!v) throw new NotFoundError(`get ${name}: no such volume`);
    return view(v);
  }

  async remove(name: string, _force = false): Promise<void> {
    const v = this.store.volumes.get(name);
    if (!v) { if (_force) return; throw new NotFoundError(`get ${name}: no such volume`); }
    const users = this.containers.volumesInUse().get(name);
    if (users?.length) throw new ConflictError(`remove ${name}: volume is in use - [${users.join(", ")}]`);
    await this.store.volumes.remove(name);
    this.events.publish("volume", "destroy", name, { driver: "local" });
  }

  /** Unused volumes go; anonymous ones only, unless all (API ≥ 1.42 semantics, `volume prune -a`). */
  async prune(filters: Filters = {}): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    // Docker's keys (label, label!) and API 1.42's `all`.
    const f = checkFilters(filters, ["label", "label!", "all"]);
    const all = boolFilter(f, "all") ?? false;
    const used = this.containers.volumesInUse();
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.store.volumes.list()) {
      if (used.has(v.Name) || (!all && !(ANON_LABEL in v.Labels))) continue;
      if (!pruneLabelsMatch(v.Labels, f)) continue;
      space += await this.store.volumes.size(v.Name);
      await this.store.volumes.remove(v.Name);
      this.events.publish("volume", "destroy", v.Name, { driver: "local" });
      deleted.push(v.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }
}
