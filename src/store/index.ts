/** The store: content blobs, unpacked layers, image metadata, under one data root. */
import { join } from "node:path";
import { ContentStore } from "./content.js";
import { Snapshotter } from "./snapshots.js";
import { ImageStore } from "./images.js";

export class Store {
  private constructor(readonly content: ContentStore, readonly snapshots: Snapshotter, readonly images: ImageStore) {}

  static async open(dataRoot: string): Promise<Store> {
    const content = new ContentStore(join(dataRoot, "content"));
    const snapshots = new Snapshotter(join(dataRoot, "snapshots"));
    const images = new ImageStore(dataRoot, content);
    await Promise.all([content.init(), snapshots.init(), images.load()]);
    return new Store(content, snapshots, images);
  }
}
