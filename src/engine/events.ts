/**
 * Engine events (`/events`): every state change is published here. A bounded
 * history serves `since`; live subscribers get each event as it happens.
 */
import { EventEmitter } from "node:events";

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

const HISTORY = 1000;

export class EventBus {
  private history: EngineEvent[] = [];
  private emitter = new EventEmitter();

  constructor() { this.emitter.setMaxListeners(0); }

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

export function matches(e: EngineEvent, filters?: Record<string, string[]>): boolean {
  if (!filters) return true;
  for (const [key, values] of Object.entries(filters)) {
    if (!values.length) continue;
    const ok = values.some((v) => {
      switch (key) {
        case "type": return e.Type === v;
        case "event": return e.Action === v || e.Action.startsWith(v + ":");
        case "container": return e.Type === "container" && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v);
        case "image": return e.Actor.Attributes.image === v || (e.Type === "image" && e.Actor.ID === v);
        case "label": {
          const [k, val] = v.split("=", 2);
          return val === undefined ? k in e.Actor.Attributes : e.Actor.Attributes[k] === val;
        }
        default: return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}
