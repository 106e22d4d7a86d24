/**
 * Network documents: <data-root>/networks/<id>.json, Docker's network inspect
 * shape (less the live Containers map, which the engine fills in), written
 * atomically. The kernel objects (bridge, firewall table) are rebuilt from
 * these documents when the daemon starts.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { atomicWrite, readJsonIfExists } from "../lib/fsutil.js";

export interface IpamConfig { Subnet: string; Gateway: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }

export interface NetworkDoc {
  Name: string;
  Id: string;
  Created: string;
  Scope: "local";
  Driver: "bridge" | "host" | "null";
  EnableIPv6: boolean;
  IPAM: { Driver: "default"; Options: Record<string, string> | null; Config: IpamConfig[] };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string };
  ConfigOnly: boolean;
  Options: Record<string, string>;
  Labels: Record<string, string>;
  /** berth: the Linux bridge of a bridge network. */
  Bridge?: string;
}

export class NetworkStore {
  private docs = new Map<string, NetworkDoc>();
  constructor(private readonly root: string) {}

  async load(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o700 });
    for (const f of await fsp.readdir(this.root)) {
      if (!f.endsWith(".json")) continue;
      const doc = await readJsonIfExists<NetworkDoc>(join(this.root, f)).catch(() => undefined);
      if (doc && doc.Id + ".json" === f) this.docs.set(doc.Id, doc);
    }
  }

  list(): NetworkDoc[] { return [...this.docs.values()]; }
  get(id: string): NetworkDoc | undefined { return this.docs.get(id); }

  async put(doc: NetworkDoc): Promise<void> {
    await atomicWrite(join(this.root, doc.Id + ".json"), JSON.stringify(doc, null, 1));
    this.docs.set(doc.Id, doc);
  }

  async remove(id: string): Promise<void> {
    this.docs.delete(id);
    await fsp.rm(join(this.root, id + ".json"), { force: true });
  }
}
