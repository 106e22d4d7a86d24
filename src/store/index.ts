/** The store: content blobs, unpacked layers, image metadata, volumes and networks, under one data root. */
import { join } from "node:path";
import { ContentStore } from "./content.js";
import { Snapshotter } from "./snapshots.js";
import { ImageStore } from "./images.js";
import { VolumeStore } from "./volumes.js";
import { NetworkStore } from "./networks.js";

export class Store {
  private constructor(readonly content: ContentStore, readonly snapshots: Snapshotter, readonly images: ImageStore, readonly volumes: VolumeStore, readonly networks: NetworkStore) {}

  static async open(dataRoot: string): Promise<Store> {
    const content = new ContentStore(join(dataRoot, "content"));
    const snapshots = new Snapshotter(join(dataRoot, "snapshots"));
    const images = new ImageStore(dataRoot, content);
    const volumes = new VolumeStore(join(dataRoot, "volumes"));
    const networks = new NetworkStore(join(dataRoot, "networks"));
    await Promise.all([content.init(), snapshots.init(), images.load(), volumes.load(), networks.load()]);
    return new Store(content, snapshots, images, volumes, networks);
  }
}
