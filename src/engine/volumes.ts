/** Volumes as the API sees them: create, list (filters), inspect, remove (refused while in use), prune. */
import type { Store } from "../store/index.js";
import { ANON_LABEL, type VolumeDoc } from "../store/volumes.js";
import { BadParameterError, ConflictError, NotFoundError } from "../lib/errors.js";
import type { EventBus } from "./events.js";
import type { ContainerService } from "./containers.js";

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

  list(filters: Record<string, string[]> = {}): { Volumes: VolumeView[]; Warnings: string[] } {
    const used = this.containers.volumesInUse();
    const out = this.store.volumes.list().filter((v) => Object.entries(filters).every(([k, vals]) => vals.every((f) => {
      switch (k) {
        case "name": return v.Name.includes(f);
        case "driver": return f === "local";
        case "dangling": return (f === "true" || f === "1") === !used.has(v.Name);
        case "label": { const i = f.indexOf("="); return i < 0 ? f in v.Labels : v.Labels[f.slice(0, i)] === f.slice(i + 1); }
        default: throw new BadParameterError(`invalid filter '${k}'`);
      }
    })));
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
  async prune(filters: Record<string, string[]> = {}): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const all = filters.all?.some((x) => x === "true" || x === "1") ?? false;
    const used = this.containers.volumesInUse();
    const deleted: string[] = [];
    let space = 0;
    for (const v of this.store.volumes.list()) {
      if (used.has(v.Name) || (!all && !(ANON_LABEL in v.Labels))) continue;
      if (filters.label && !filters.label.every((f) => { const i = f.indexOf("="); return i < 0 ? f in v.Labels : v.Labels[f.slice(0, i)] === f.slice(i + 1); })) continue;
      space += await this.store.volumes.size(v.Name);
      await this.store.volumes.remove(v.Name);
      this.events.publish("volume", "destroy", v.Name, { driver: "local" });
      deleted.push(v.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: space };
  }
}
