/**
 * Store integrity (`berth system check`): every blob is re-hashed against its
 * name; every image's manifest, config and layer blobs exist; every layer of
 * every image has its snapshot, whose directory exists.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import type { Store } from "./index.js";
import { chainIdOf } from "./snapshots.js";
import type { Manifest } from "../oci/image.js";

export interface CheckReport { Blobs: number; Snapshots: number; Images: number; Problems: string[] }

async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return "sha256:" + h.digest("hex");
}

export async function checkStore(store: Store): Promise<CheckReport> {
  const problems: string[] = [];
  const blobs = await store.content.list();
  for (const d of blobs) {
    const actual = await hashFile(store.content.path(d));
    if (actual !== d) problems.push(`blob ${d}: content hashes to ${actual}`);
  }
  const snaps = await store.snapshots.list();
  for (const s of snaps) {
    const dirs = await store.snapshots.lowerDirs(s.chainId).catch(() => []);
    if (!dirs.length || !existsSync(dirs[0])) problems.push(`snapshot ${s.chainId}: directory missing`);
    if (s.parent && !snaps.some((x) => x.chainId === s.parent)) problems.push(`snapshot ${s.chainId}: parent ${s.parent} missing`);
  }
  const images = store.images.list();
  for (const img of images) {
    const name = img.repoTags[0] ?? img.id;
    if (!(await store.content.has(img.manifestDigest))) { problems.push(`image ${name}: manifest ${img.manifestDigest} missing`); continue; }
    const m = await store.content.readJson<Manifest>(img.manifestDigest);
    if (!(await store.content.has(m.config.digest))) problems.push(`image ${name}: config ${m.config.digest} missing`);
    for (const l of m.layers) if (!(await store.content.has(l.digest))) problems.push(`image ${name}: layer blob ${l.digest} missing`);
    for (let i = 0; i < img.diffIds.length; i++) {
      const chain = chainIdOf(img.diffIds.slice(0, i + 1));
      if (!(await store.snapshots.has(chain))) problems.push(`image ${name}: layer ${i + 1} (${img.diffIds[i]}) is not unpacked`);
    }
  }
  return { Blobs: blobs.length, Snapshots: snaps.length, Images: images.length, Problems: problems };
}
