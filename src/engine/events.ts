/**
 * Engine events (`/events`): every state change is published here. A bounded
 * history serves `since`; live subscribers get each event as it happens.
 */
import { EventEmitter } from "node:events";
import { exactMatch, fuzzyMatch, matchKVList, type Filters } from "./filters.js";

export interface EngineEvent {
  Type: "container" | "image" | "network" | "volume" | "daemon";
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: "local";
  time: number;
  timeNano: number;
  // Legacy fields docker still prints for containers
  status?: string;
  id?: string;
  from?: string;
}

export interface EventFilter {
  since?: number; // unix seconds
  until?: number;
  filters?: Record<string, string[]>;
}

/** As dockerd (daemon/events: eventsLimit): the last 256 events serve `since`. */
const HISTORY = 256;

export class EventBus {
  private history: EngineEvent[] = [];
  private emitter = new EventEmitter();

  constructor() { this.emitter.setMaxListeners(0); }

  /** How many `/events` streams are listening (Docker's NEventsListener). */
  get listeners(): number { return this.emitter.listenerCount("event"); }

  publish(type: EngineEvent["Type"], action: string, id: string, attributes: Record<string, string> = {}): void {
    const nowNs = BigInt(Date.now()) * 1_000_000n + process.hrtime.bigint() % 1_000_000n;
    const ev: EngineEvent = {
      Type: type, Action: action, Actor: { ID: id, Attributes: attributes }, scope: "local",
      time: Number(nowNs / 1_000_000_000n), timeNano: Number(nowNs),
    };
    if (type === "container") { ev.status = action; ev.id = id; if (attributes.image) ev.from = attributes.image; }
    this.history.push(ev);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
    this.emitter.emit("event", ev);
  }

  /** Past events matching the filter (for `since`). */
  past(f: EventFilter): EngineEvent[] {
    if (f.since === undefined) return [];
    return this.history.filter((e) => e.time >= f.since! && (f.until === undefined || e.time <= f.until) && matches(e, f.filters));
  }

  subscribe(f: EventFilter, cb: (e: EngineEvent) => void): () => void {
    const h = (e: EngineEvent) => { if (matches(e, f.filters)) cb(e); };
    this.emitter.on("event", h);
    return () => this.emitter.off("event", h);
  }
}

/**
 * Docker's event filter (moby daemon/events/filter.go): every key ANDs; the
 * values of one key OR, except `label`, whose values AND against the
 * actor's attributes. `container`, `volume`, `network`, `daemon` match the
 * actor of that type by ID or name prefix; `image` matches the image's ID or
 * name (or the container's `image` attribute), tag stripped or not; keys it
 * does not know are ignored, as dockerd's /events accepts them.
 */
export function matches(e: EngineEvent, filters?: Filters): boolean {
  if (!filters) return true;
  const f = filters;
  const fuzzyEvent = (f.event ?? []).some((v) => v === "health_status" || v === "exec_create" || v === "exec_start");
  if (!(fuzzyEvent ? fuzzyMatch(f, "event", e.Action) : exactMatch(f, "event", e.Action))) return false;
  if (!exactMatch(f, "type", e.Type)) return false;
  if (f.scope?.length && !exactMatch(f, "scope", e.scope)) return false;
  for (const t of ["daemon", "container", "plugin", "volume", "network", "service", "node", "secret", "config"]) {
    if (!(fuzzyMatch(f, t, e.Actor.ID) || fuzzyMatch(f, t, e.Actor.Attributes.name ?? ""))) return false;
  }
  const imageName = (e.Type === "image" ? e.Actor.Attributes.name : e.Actor.Attributes.image) ?? "";
  if (!(exactMatch(f, "image", e.Actor.ID) || exactMatch(f, "image", imageName) || exactMatch(f, "image", stripTag(e.Actor.ID)) || exactMatch(f, "image", stripTag(imageName)))) return false;
  return matchKVList(f, "label", e.Actor.Attributes);
}

/** reference.FamiliarName: the repository without tag or digest (unparsable: as given). */
function stripTag(image: string): string {
  let s = image;
  const at = s.indexOf("@");
  if (at >= 0) s = s.slice(0, at);
  const colon = s.lastIndexOf(":");
  if (colon > s.lastIndexOf("/")) s = s.slice(0, colon);
  if (s.startsWith("docker.io/")) s = s.slice("docker.io/".length);
  if (s.startsWith("library/") && s.split("/").length === 2) s = s.slice("library/".length);
  return s;
}
