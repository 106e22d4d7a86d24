/**
 * Local volumes: <data-root>/volumes/<name>/_data holds the data and
 * <data-root>/volumes/<name>/volume.json the document (labels, options,
 * whether the data was filled from an image yet), written atomically.
 * A volume with driver options type/device/o (as `docker volume create -o`)
 * is mounted on _data while containers use it.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { atomicWrite, readJsonIfExists } from "../lib/fsutil.js";
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import { runOk, run } from "../lib/proc.js";
import { isMountPoint } from "./snapshots.js";

export interface VolumeDoc {
  Name: string;
  Driver: "local";
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  Scope: "local";
  /** berth: image content was copied in (or the volume was used), so it is never filled again. */
  Populated?: boolean;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
export const ANON_LABEL = "com.docker.volume.anonymous";

export class VolumeStore {
  private docs = new Map<string, VolumeDoc>();
  /** A remapped daemon's root (--userns-remap): new volumes' _data belong to it, as dockerd's local driver makes them. */
  rootOwner: { uid: number; gid: number } | undefined;
  constructor(private readonly root: string) {}

  async load(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true, mode: 0o701 });
    for (const name of await fsp.readdir(this.root)) {
      const doc = await readJsonIfExists<VolumeDoc>(join(this.root, name, "volume.json")).catch(() => undefined);
      if (doc) this.docs.set(name, doc);
      else await fsp.rm(join(this.root, name), { recursive: true, force: true }); // half-created
    }
  }

  list(): VolumeDoc[] { return [...this.docs.values()]; }
  get(name: string): VolumeDoc | undefined { return this.docs.get(name); }

  /** Creates a volume (a random 64-hex name when none is given); an existing name returns the existing volume. */
  async create(name: string | undefined, labels: Record<string, string> = {}, options: Record<string, string> = {}): Promise<VolumeDoc> {
    if (name !== undefined && name !== "" && !NAME_RE.test(name)) {
      throw new BadParameterError(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    for (const k of Object.keys(options)) if (!["type", "device", "o"].includes(k)) throw new BadParameterError(`invalid option key: "${k}"`);
    const n = name || randomBytes(32).toString("hex");
    const have = this.docs.get(n);
    if (have) return have;
    const dir = join(this.root, n);
    const doc: VolumeDoc = { Name: n, Driver: "local", Mountpoint: join(dir, "_data"), CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z"), Labels: labels, Options: options, Scope: "local" };
    await fsp.mkdir(doc.Mountpoint, { recursive: true, mode: 0o755 });
    if (this.rootOwner) await fsp.chown(doc.Mountpoint, this.rootOwner.uid, this.rootOwner.gid);
    await atomicWrite(join(dir, "volume.json"), JSON.stringify(doc, null, 1));
    this.docs.set(n, doc);
    return doc;
  }

  async markPopulated(name: string): Promise<void> {
    const d = this.docs.get(name);
    if (!d || d.Populated) return;
    d.Populated = true;
    await atomicWrite(join(this.root, name, "volume.json"), JSON.stringify(d, null, 1));
  }

  /** Mounts a volume with driver options on its _data (no-op for plain volumes). */
  async activate(name: string): Promise<void> {
    const d = this.docs.get(name);
    if (!d || !d.Options.type || isMountPoint(d.Mountpoint)) return;
    const args = ["-t", d.Options.type];
    if (d.Options.o) args.push("-o", d.Options.o);
    await runOk("mount", [...args, d.Options.device || d.Options.type, d.Mountpoint]);
  }

  async deactivate(name: string): Promise<void> {
    const d = this.docs.get(name);
    if (d && isMountPoint(d.Mountpoint)) await run("umount", [d.Mountpoint]);
  }

  async remove(name: string): Promise<void> {
    const d = this.docs.get(name);
    if (!d) throw new NotFoundError(`get ${name}: no such volume`);
    await this.deactivate(name);
    this.docs.delete(name);
    await fsp.rm(join(this.root, name), { recursive: true, force: true });
  }

  /** Bytes used under a volume's data (for `system df` and inspect --size). */
  async size(name: string): Promise<number> {
    const d = this.docs.get(name);
    if (!d) return 0;
    const r = await run("du", ["-sb", d.Mountpoint]);
    return Number(r.stdout.split("\t")[0]) || 0;
  }
}
