/**
 * Store integrity (`berth system check`): the metadata files read cleanly;
 * every blob is re-hashed against its name; every snapshot's directory and
 * parent exist; every image's manifest, config and layer blobs exist and
 * parse; every layer of every image has its snapshot.
 *
 * With `repair` (`system check --repair`), run while the collector's lock is
 * held (GcGuard.exclusive) so nothing is written meanwhile: a blob whose bytes
 * do not match its name is deleted; a snapshot whose directory or parent is
 * gone is dropped with its descendants; an image whose layer is not unpacked
 * is unpacked again from its blob when the blob is there; an image whose
 * manifest, config or layer blobs are gone is dropped; damaged metadata files
 * are rewritten from what could be read. What nothing references any more is
 * the collector's to remove (the engine runs it after this).
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import type { Store } from "./index.js";
import { chainIdOf } from "./snapshots.js";
import type { ImageConfig, Manifest } from "../oci/image.js";
import type { ImageRecord } from "./images.js";

export interface CheckReport {
  Blobs: number; Snapshots: number; Images: number; Problems: string[];
  /** What --repair did (empty without it). */
  Repaired: string[];
}

async function hashFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return "sha256:" + h.digest("hex");
}

async function readJson<T>(store: Store, digest: string): Promise<T | string> {
  let b: Buffer;
  try { b = await store.content.readBytes(digest); } catch { return "missing"; }
  try { return JSON.parse(b.toString("utf8")) as T; } catch { return "unreadable"; }
}

export async function checkStore(store: Store, opts: { repair?: boolean } = {}): Promise<CheckReport> {
  const problems: string[] = [];
  const repaired: string[] = [];
  const repair = !!opts.repair;

  for (const d of store.images.damage) problems.push(`image metadata: ${d}`);
  for (const d of store.snapshots.damage) problems.push(`snapshot metadata: ${d}`);

  const blobs = await store.content.list();
  for (const d of blobs) {
    let actual: string;
    try { actual = await hashFile(store.content.path(d)); } catch (e) { actual = `(unreadable: ${(e as Error).message})`; }
    if (actual === d) continue;
    problems.push(`blob ${d}: content hashes to ${actual}`);
    if (repair) { await store.content.delete(d); repaired.push(`deleted blob ${d} (its content did not match its digest)`); }
  }

  const snaps = await store.snapshots.list();
  const known = new Set(snaps.map((s) => s.chainId));
  const bad = new Set<string>();
  for (const s of snaps) {
    const dirs = await store.snapshots.lowerDirs(s.chainId).catch(() => [] as string[]);
    if (!dirs.length || !existsSync(dirs[0])) { problems.push(`snapshot ${s.chainId}: directory missing`); bad.add(s.chainId); }
    if (s.parent && !known.has(s.parent)) { problems.push(`snapshot ${s.chainId}: parent ${s.parent} missing`); bad.add(s.chainId); }
  }
  if (repair && bad.size) {
    // Descendants of a dropped snapshot cannot be mounted either (list() is parents first).
    for (const s of snaps) if (s.parent && bad.has(s.parent)) bad.add(s.chainId);
    for (const s of [...snaps].reverse()) {
      if (!bad.has(s.chainId)) continue;
      await store.snapshots.remove(s.chainId);
      repaired.push(`dropped snapshot ${s.chainId}`);
    }
  }

  const images = store.images.list();
  for (const img of images) {
    const name = img.repoTags[0] ?? img.id;
    const own: string[] = [];
    const m = await readJson<Manifest>(store, img.manifestDigest);
    let layers: string[] = img.layers ?? [];
    let diffIds = img.diffIds;
    if (typeof m === "string") own.push(`manifest ${img.manifestDigest} ${m}`);
    else if (!m?.config?.digest || !Array.isArray(m.layers)) own.push(`manifest ${img.manifestDigest} is not an image manifest`);
    else {
      layers = m.layers.map((l) => l.digest);
      const cfg = await readJson<ImageConfig>(store, m.config.digest);
      if (typeof cfg === "string") own.push(`config ${m.config.digest} ${cfg}`);
      else diffIds = cfg.rootfs?.diff_ids ?? diffIds;
    }
    for (const l of layers) if (!(await store.content.has(l))) own.push(`layer blob ${l} missing`);
    for (const p of own) problems.push(`image ${name}: ${p}`);
    if (own.length) {
      if (repair) { await store.images.remove(img.id); repaired.push(`dropped image ${name} (${own.join("; ")})`); }
      continue;
    }
    for (let i = 0; i < diffIds.length; i++) {
      const chain = chainIdOf(diffIds.slice(0, i + 1));
      if (await store.snapshots.has(chain)) continue;
      problems.push(`image ${name}: layer ${i + 1} (${diffIds[i]}) is not unpacked`);
      if (!repair) continue;
      const ok = await unpackAgain(store, img, layers, diffIds, i);
      if (ok) repaired.push(`unpacked layer ${i + 1} of image ${name} again from its blob`);
      else { await store.images.remove(img.id); repaired.push(`dropped image ${name} (layer ${i + 1} could not be unpacked)`); break; }
    }
  }
  if (repair && store.images.damage.length) {
    await store.images.rewrite();
    repaired.push("rewrote the image metadata files");
  }
  if (repair && store.snapshots.damage.length) {
    await store.snapshots.rewrite();
    repaired.push("rewrote the snapshot index");
  }
  return { Blobs: blobs.length, Snapshots: snaps.length, Images: images.length, Problems: problems, Repaired: repaired };
}

async function unpackAgain(store: Store, img: ImageRecord, layers: string[], diffIds: string[], i: number): Promise<boolean> {
  if (!layers[i] || !(await store.content.has(layers[i]))) return false;
  try {
    const parent = i ? chainIdOf(diffIds.slice(0, i)) : null;
    await store.snapshots.applyLayer(parent, store.content.reader(layers[i]) as AsyncIterable<Buffer>, diffIds[i], { compression: "auto" });
    return true;
  } catch (e) {
    process.stderr.write(`berthd: warning: repair: image ${img.id}: layer ${i + 1}: ${(e as Error).message}\n`);
    return false;
  }
}
