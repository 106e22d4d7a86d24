/** The store: content blobs, unpacked layers, image metadata, volumes and networks, under one data root; and the lock that keeps garbage collection off writes in flight. */
import { join } from "node:path";
import { ContentStore } from "./content.js";
import { Snapshotter } from "./snapshots.js";
import { ImageStore } from "./images.js";
import { VolumeStore } from "./volumes.js";
import { NetworkStore } from "./networks.js";
import { GcGuard } from "./gc.js";

export class Store {
  readonly gc = new GcGuard();
  private constructor(readonly content: ContentStore, readonly snapshots: Snapshotter, readonly images: ImageStore, readonly volumes: VolumeStore, readonly networks: NetworkStore) {}

  static async open(dataRoot: string): Promise<Store> {
    const content = new ContentStore(join(dataRoot, "content"));
    const snapshots = new Snapshotter(join(dataRoot, "snapshots"));
    const images = new ImageStore(dataRoot, content);
    const volumes = new VolumeStore(join(dataRoot, "volumes"));
    const networks = new NetworkStore(join(dataRoot, "networks"));
    await Promise.all([content.init(), snapshots.init(), volumes.load(), networks.load()]);
    await images.load(); // after content.init: records of older berths are filled from their blobs
    return new Store(content, snapshots, images, volumes, networks);
  }

  /** Waits for metadata writes in flight and closes the journal. */
  async close(): Promise<void> { await this.images.close(); await this.snapshots.close(); }
}
