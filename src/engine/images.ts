/**
 * Images as the API sees them: list, inspect, tag, delete (untag vs delete,
 * refusing images in use), import and bootstrap. Reference parsing and
 * storage are the store's; this file decides Docker's semantics.
 */
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { checkStore, type CheckReport } from "../store/check.js";
import { chainIdOf } from "../store/snapshots.js";
import type { Lease } from "../store/gc.js";
import { createImageFromTar, bootstrapBusybox, bootstrapDebian } from "../store/create-image.js";
import { pullImage, parsePlatform, type ProgressMessage } from "../distribution/pull.js";
import { pushImage, checkLogin } from "../distribution/push.js";
import { saveImages, loadImages, type SaveEntry } from "../distribution/archive.js";
import type { Credentials } from "../distribution/registry.js";
import { familiarString, parseReference, formatReference } from "../oci/reference.js";
import { hostPlatform, type ContainerConfigSpec, type Platform } from "../oci/image.js";
import { BadParameterError, ConflictError, NotFoundError } from "../lib/errors.js";
import type { EventBus } from "./events.js";
import type { DockerImageConfig } from "./commit.js";
import type { ContainerService } from "./containers.js";
import { checkFilters, exactMatch, invalidFilter, labelsMatch, pruneLabelsMatch, untilLimit, type Filters } from "./filters.js";

/** A stored (normalized) reference as Docker shows it; lists call this per tag, so the usual forms skip the parser. */
function familiar(ref: string): string {
  if (ref.startsWith("docker.io/library/")) return ref.slice(18);
  if (ref.startsWith("docker.io/")) return ref.slice(10);
  if (!ref.startsWith("index.docker.io/") && ref.includes("/")) return ref;
  try { return familiarString(parseReference(ref)); } catch { return ref; }
}

export class ImageService {
  constructor(private readonly store: Store, private readonly events: EventBus, private readonly containers: ContainerService, private readonly insecure: string[] = []) {
    store.gc.setCollector(async () => { await this.sweep(); });
  }

  /** An image by name or ID; a name of a local index (a multi-platform image) gives its entry for `platform` (default: the host's). */
  resolve(ref: string, platform?: string): ImageRecord {
    const rec = this.store.images.resolve(ref) ?? this.fromIndex(ref, platform);
    if (!rec) throw new NotFoundError(`No such image: ${ref.includes(":") || ref.includes("@") || /^[0-9a-f]{12,}$/.test(ref) ? ref : ref + ":latest"}`);
    return rec;
  }

  find(ref: string, platform?: string): ImageRecord | undefined { return this.store.images.resolve(ref) ?? this.fromIndex(ref, platform); }

  /** The entry of a local index that serves `platform` (os/arch[/variant]; default the host's). */
  private fromIndex(ref: string, platform?: string): ImageRecord | undefined {
    const idx = this.store.images.resolveIndex(ref);
    if (!idx) return undefined;
    const want = platform ? parsePlatform(platform) : hostPlatform();
    const m = this.store.images.entryFor(idx, want);
    if (!m) throw new NotFoundError(`image with reference ${ref} was found but does not provide the specified platform (${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ""})`);
    return this.store.images.get(m.id);
  }

  /** The name `ps` shows for a container whose image was given by ID or has since been retagged. */
  displayName(id: string): string {
    const rec = this.store.images.resolve(id);
    if (rec?.repoTags.length) return familiar(rec.repoTags[0]);
    return id.replace("sha256:", "").slice(0, 12);
  }

  /** Images built or committed on each image (Docker's children), from the records' parents. */
  private childCounts(): Map<string, number> {
    const n = new Map<string, number>();
    for (const r of this.store.images.list()) if (r.parent && this.store.images.get(r.parent)) n.set(r.parent, (n.get(r.parent) ?? 0) + 1);
    return n;
  }

  /**
   * `GET /images/json`: from the records alone (no blob is read); a broken record is skipped (and logged once by the store).
   * As dockerd: an untagged image with children (a build's intermediate image) is listed only with `all`; `dangling=true`
   * lists the untagged images without children; an untagged image shows as `<none>:<none>` / `<none>@<none>`.
   * `Containers` and `SharedSize` are -1 unless asked (`extra`: what `system df` and `shared-size` ask for).
   */
  async list(opts: { all?: boolean; filters?: Record<string, string[]>; digests?: boolean; sharedSize?: boolean; extra?: boolean; chainMemo?: Map<string, string[]> }): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    const f = checkFilters(opts.filters, ["dangling", "label", "before", "since", "reference"]);
    let dangling: boolean | undefined;
    if ("dangling" in f) {
      if (exactMatch(f, "dangling", "true")) dangling = true;
      else if (exactMatch(f, "dangling", "false")) dangling = false;
      else throw invalidFilter("dangling", f.dangling);
    }
    // Docker resolves before/since first: an unknown image is a 404 whatever else matches.
    const before = f.before?.length ? Date.parse(this.resolve(f.before[f.before.length - 1]).created) : undefined;
    const since = f.since?.length ? Date.parse(this.resolve(f.since[f.since.length - 1]).created) : undefined;
    const uses = opts.extra ? this.containers.imageUseCounts() : undefined;
    const children = this.childCounts();
    const listed: ImageRecord[] = [];
    const indexed = this.store.images.indexedImages();
    for (const rec of this.store.images.list()) {
      if (this.store.images.brokenReason(rec.id) !== undefined) continue;
      if (!rec.repoTags.length && indexed.has(rec.id)) continue; // an entry of a multi-platform image
      const labels = rec.labels ?? {};
      const untagged = rec.repoTags.length === 0 && rec.repoDigests.length === 0;
      const heads = !children.get(rec.id);
      // As dockerd's Images(): dangling=true looks only at images without children.
      if (dangling === true && (!heads || rec.repoTags.length)) continue;
      if (untagged) {
        if (!opts.all && !heads) continue;
        if (dangling === false || f.reference?.length) continue;
      }
      if (before !== undefined && !(Date.parse(rec.created) < before)) continue;
      if (since !== undefined && !(Date.parse(rec.created) > since)) continue;
      if (!labelsMatch(labels, f)) continue;
      if (f.reference?.length && !f.reference.some((pat) => rec.repoTags.some((t) => globMatch(pat, familiar(t))))) continue;
      const created = Math.floor(Date.parse(rec.created) / 1000) || 0;
      listed.push(rec);
      out.push({
        Containers: uses ? uses.get(rec.id) ?? 0 : -1,
        Created: created,
        Id: rec.id,
        Labels: rec.labels && Object.keys(rec.labels).length ? rec.labels : null,
        ParentId: rec.parent && this.store.images.get(rec.parent) ? rec.parent : "",
        RepoDigests: untagged ? ["<none>@<none>"] : rec.repoDigests.length ? rec.repoDigests.map(familiar) : null,
        RepoTags: untagged ? ["<none>:<none>"] : rec.repoTags.length ? rec.repoTags.map(familiar) : null,
        SharedSize: -1,
        Size: rec.size,
        VirtualSize: rec.size,
      });
    }
    if (opts.extra || opts.sharedSize) {
      // As dockerd: a layer counts as shared when more than one of the listed images has it.
      const sizes = await this.chainSizes();
      const refs = new Map<string, number>();
      const memo = opts.chainMemo ?? new Map<string, string[]>();
      const chains = listed.map((r) => chainsOf(r, memo));
      for (const cs of chains) for (const c of cs) refs.set(c, (refs.get(c) ?? 0) + 1);
      chains.forEach((cs, i) => { out[i].SharedSize = cs.reduce((a, c) => a + ((refs.get(c) ?? 0) > 1 ? sizes.get(c) ?? 0 : 0), 0); });
    }
    // Multi-platform images (local indexes): one row each, under the index's ID, as dockerd's containerd store lists them.
    if (dangling !== true && !f.label?.length) {
      for (const ix of this.store.images.listIndexes()) {
        if (!ix.repoTags.length) continue;
        const created = Math.floor(Date.parse(ix.created) / 1000) || 0;
        if (before !== undefined && !(created * 1000 < before)) continue;
        if (since !== undefined && !(created * 1000 > since)) continue;
        if (f.reference?.length && !f.reference.some((pat) => ix.repoTags.some((t) => globMatch(pat, familiar(t))))) continue;
        const size = ix.manifests.reduce((a, m) => a + (this.store.images.get(m.id)?.size ?? 0), 0);
        out.push({
          Containers: -1, Created: created, Id: ix.id, Labels: null, ParentId: "",
          RepoDigests: ix.repoDigests.length ? ix.repoDigests.map(familiar) : null, RepoTags: ix.repoTags.map(familiar),
          SharedSize: -1, Size: size, VirtualSize: size,
        });
      }
    }
    return out.sort((a, b) => (b.Created as number) - (a.Created as number));
  }

  /** Each snapshot's own size (the bytes its layer added), by chain ID. */
  private async chainSizes(): Promise<Map<string, number>> {
    return new Map((await this.store.snapshots.list()).map((s) => [s.chainId, s.size]));
  }

  /**
   * The images part of `GET /system/df`, as dockerd computes it: the images `docker images` lists (with their
   * container counts and shared sizes), and `LayersSize`, the bytes of every layer some image uses, each
   * layer counted once however many images share it.
   */
  async diskUsage(): Promise<{ LayersSize: number; Images: Record<string, unknown>[] }> {
    const chainMemo = new Map<string, string[]>();
    const Images = await this.list({ extra: true, chainMemo });
    const sizes = await this.chainSizes();
    const used = new Set<string>();
    for (const rec of this.store.images.list()) for (const c of chainsOf(rec, chainMemo)) used.add(c);
    let LayersSize = 0;
    for (const c of used) LayersSize += sizes.get(c) ?? 0;
    return { LayersSize, Images };
  }

  async inspect(ref: string): Promise<Record<string, unknown>> {
    const rec = this.resolve(ref);
    const cfg = await this.store.images.config(rec) as DockerImageConfig;
    const history = cfg.history ?? [];
    const blank = { Hostname: "", Domainname: "", User: "", AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: "", Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: null };
    return {
      Id: rec.id,
      RepoTags: rec.repoTags.map(familiar),
      RepoDigests: rec.repoDigests.map(familiar),
      Parent: rec.parent && this.store.images.get(rec.parent) ? rec.parent : "",
      Comment: history.length ? history[history.length - 1].comment ?? "" : "",
      Created: rec.created,
      // As dockerd: the container the image was committed from (a build's last RUN step) and that step's config.
      Container: cfg.container ?? "",
      ContainerConfig: { ...blank, ...(cfg.container_config ?? {}) },
      DockerVersion: "",
      Author: cfg.author ?? "",
      Config: { ...blank, ...(cfg.config ?? {}) },
      Architecture: cfg.architecture,
      Variant: cfg.variant,
      Os: cfg.os,
      Size: rec.size,
      VirtualSize: rec.size,
      GraphDriver: { Name: "overlay2", Data: null },
      RootFS: { Type: "layers", Layers: cfg.rootfs.diff_ids },
      Metadata: { LastTagTime: "0001-01-01T00:00:00Z" },
      Descriptor: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: rec.manifestDigest },
    };
  }

  async history(ref: string): Promise<Record<string, unknown>[]> {
    const rec = this.resolve(ref);
    const cfg = await this.store.images.config(rec);
    const sizes = await this.layerSizes(rec);
    let layer = 0;
    const rows = (cfg.history ?? []).map((h, i, all) => {
      const size = h.empty_layer ? 0 : sizes[layer++] ?? 0;
      return { Id: i === all.length - 1 ? rec.id : "<missing>", Created: Math.floor(Date.parse(h.created ?? rec.created) / 1000), CreatedBy: h.created_by ?? "", Tags: i === all.length - 1 ? rec.repoTags.map(familiar) : null, Size: size, Comment: h.comment ?? "" };
    });
    return rows.reverse();
  }

  private async layerSizes(rec: ImageRecord): Promise<number[]> {
    const snaps = await this.store.snapshots.list();
    const byChain = new Map(snaps.map((s) => [s.chainId, s.size]));
    return rec.diffIds.map((_, i) => byChain.get(chainIdOf(rec.diffIds.slice(0, i + 1))) ?? 0);
  }

  async tag(source: string, repo: string, tag?: string): Promise<void> {
    // A multi-platform image (a local index) is tagged as a whole.
    const index = this.store.images.resolve(source) ? undefined : this.store.images.resolveIndex(source);
    const rec = index ? undefined : this.resolve(source);
    let ref: string;
    try {
      const r = parseReference(tag ? `${repo}:${tag}` : repo);
      if (r.digest) throw new BadParameterError("refusing to create a tag with a digest reference");
      ref = formatReference(r);
    } catch (e) {
      if (e instanceof BadParameterError) throw e;
      throw new BadParameterError(`invalid reference format`);
    }
    if (index) { await this.store.images.addIndex(index.id, ref); this.events.publish("image", "tag", index.id, { name: familiar(ref) }); return; }
    await this.store.images.tag(rec!.id, ref);
    this.events.publish("image", "tag", rec!.id, { name: familiar(ref) });
  }

  /** `docker rmi`: untags the given reference; deletes the image when no reference is left (or by ID). */
  async remove(ref: string, opts: { force?: boolean; noprune?: boolean }): Promise<{ Untagged?: string; Deleted?: string }[]> {
    // A multi-platform image's name: the tag goes (the index with its last one; its entries are then prunable).
    const index = this.store.images.resolve(ref) ? undefined : this.store.images.resolveIndex(ref);
    if (index) {
      const full = index.repoTags.find((t) => t === formatReference(parseReference(ref))) ?? index.repoTags[0];
      const left = full ? await this.store.images.untagIndex(full) : undefined;
      const out: { Untagged?: string; Deleted?: string }[] = full ? [{ Untagged: familiar(full) }] : [];
      if (!left?.repoTags.length) { await this.store.images.removeIndex(index.id); out.push({ Deleted: index.id }); }
      this.events.publish("image", "untag", index.id, {});
      return out;
    }
    const rec = this.resolve(ref);
    const out: { Untagged?: string; Deleted?: string }[] = [];
    const byId = rec.id === ref || rec.id.replace("sha256:", "").startsWith(ref.replace("sha256:", "")) && /^(sha256:)?[0-9a-f]+$/.test(ref) && !rec.repoTags.some((t) => familiar(t) === ref || familiar(t).split(":")[0] === ref);
    const users = this.containers.usingImage(rec.id);
    const running = users.find((c) => c.State.Running);
    if (!byId && rec.repoTags.length > 1) {
      const full = formatReference(parseReference(ref));
      await this.store.images.untag(full);
      this.events.publish("image", "untag", rec.id, { name: familiar(full) });
      return [{ Untagged: familiar(full) }];
    }
    if (byId && rec.repoTags.length > 1 && !opts.force) {
      throw new ConflictError(`conflict: unable to delete ${rec.id.replace("sha256:", "").slice(0, 12)} (must be forced) - image is referenced in multiple repositories`);
    }
    if (running) {
      throw new ConflictError(`conflict: unable to delete ${byId ? rec.id.replace("sha256:", "").slice(0, 12) : `repository reference "${ref}"`} (cannot be forced) - image is being used by running container ${running.Id.slice(0, 12)}`);
    }
    // As dockerd: an image others were built on cannot be deleted by ID, even forced; by its last tag it is only untagged.
    const hasChildren = this.hasChildren(rec.id);
    if (byId && hasChildren) {
      throw new ConflictError(`conflict: unable to delete ${rec.id.replace("sha256:", "").slice(0, 12)} (cannot be forced) - image has dependent child images`);
    }
    if (users.length && !opts.force) {
      throw new ConflictError(`conflict: unable to remove repository reference "${ref}" (must force) - container ${users[0].Id.slice(0, 12)} is using its referenced image ${rec.id.replace("sha256:", "").slice(0, 12)}`);
    }
    for (const t of [...rec.repoTags]) {
      await this.store.images.untag(t);
      out.push({ Untagged: familiar(t) });
      this.events.publish("image", "untag", rec.id, { name: familiar(t) });
    }
    for (const d of rec.repoDigests) out.push({ Untagged: familiar(d) });
    if (users.length) return out; // forced: the image stays as long as a container uses it
    if (hasChildren) return out; // untagged: it stays, as the parent of the images built on it
    await this.deleteWithParents(rec, out, !opts.noprune);
    await this.collect();
    return out;
  }

  private hasChildren(id: string): boolean {
    for (const r of this.store.images.list()) if (r.parent === id) return true;
    return false;
  }

  /**
   * Deletes an image and then, as dockerd's rmi does (unless noprune), its parents in turn while each is
   * untagged, has no other child and no container (running or not) uses it: a build's intermediate images
   * go with its result. It stops quietly at the first parent that must stay.
   */
  private async deleteWithParents(rec: ImageRecord, out: { Untagged?: string; Deleted?: string }[], prune: boolean): Promise<void> {
    // As dockerd: each image's line is followed by one for each layer (chain ID) it was the last user of, top first.
    const memo = new Map<string, string[]>();
    const drop = async (r: ImageRecord) => {
      await this.store.images.remove(r.id);
      out.push({ Deleted: r.id });
      this.events.publish("image", "delete", r.id, {});
      const used = new Set(this.store.images.list().flatMap((x) => chainsOf(x, memo)));
      for (const c of this.containers.all()) if (c.Berth.ChainId) used.add(c.Berth.ChainId);
      for (const c of [...chainsOf(r, memo)].reverse()) { if (used.has(c)) break; out.push({ Deleted: c }); }
    };
    await drop(rec);
    for (let p = prune ? rec.parent : undefined; p;) {
      const parent = this.store.images.get(p);
      if (!parent || parent.repoTags.length || parent.repoDigests.length || this.hasChildren(parent.id) || this.containers.usingImage(parent.id).length) break;
      await drop(parent);
      p = parent.parent;
    }
  }

  /**
   * Asks for a collection of the blobs and snapshots nothing references any more. It runs at once when
   * no write is in flight (and this resolves when it is done), or when the last one ends (store/gc.ts).
   */
  collect(): Promise<void> { return this.store.gc.request(); }

  /** Mark and sweep; only ever run by the store's GcGuard (exclusive with leases). */
  private async sweep(): Promise<{ blobs: number; snapshots: number }> {
    const { liveBlobs, liveChains } = await this.mark();
    let blobs = 0, snapshots = 0;
    // Children before parents: remove the snapshots whose parents are removed later.
    const snaps = await this.store.snapshots.list();
    for (const s of snaps.reverse()) if (!liveChains.has(s.chainId)) { await this.store.snapshots.remove(s.chainId).catch(() => {}); snapshots++; }
    for (const d of await this.store.content.list()) if (!liveBlobs.has(d)) { await this.store.content.delete(d).catch(() => {}); blobs++; }
    return { blobs, snapshots };
  }

  private async mark(): Promise<{ liveBlobs: Set<string>; liveChains: Set<string> }> {
    const liveBlobs = new Set<string>();
    const liveChains = new Set<string>();
    const addChains = (diffIds: string[]) => {
      let chain: string | undefined;
      for (const d of diffIds) { chain = chain ? chainIdOf([chain, d]) : d; liveChains.add(chain); }
    };
    for (const ix of this.store.images.listIndexes()) liveBlobs.add(ix.id);
    for (const rec of this.store.images.list()) {
      liveBlobs.add(rec.manifestDigest);
      liveBlobs.add(rec.id);
      if (rec.layers) for (const l of rec.layers) liveBlobs.add(l);
      else {
        const m = await this.store.images.manifest(rec).catch(() => undefined);
        if (m) { liveBlobs.add(m.config.digest); for (const l of m.layers) liveBlobs.add(l.digest); }
      }
      addChains(rec.diffIds);
    }
    let parent: Map<string, string | null> | undefined;
    for (const c of this.containers.all()) {
      const img = this.store.images.get(c.Image);
      if (img) addChains(img.diffIds);
      else if (c.Berth.ChainId) {
        // The image is gone but the container still needs its layers: keep the whole chain.
        parent ??= new Map((await this.store.snapshots.list()).map((s) => [s.chainId, s.parent]));
        for (let id: string | null | undefined = c.Berth.ChainId; id; id = parent.get(id)) liveChains.add(id);
      }
    }
    return { liveBlobs, liveChains };
  }

  /**
   * `berth system check [--repair]`, exclusive with every write: the store's own check, then (repairing)
   * a collection of what nothing references any more.
   */
  async check(opts: { repair?: boolean } = {}): Promise<CheckReport & { Unreferenced: { Blobs: number; Snapshots: number } }> {
    return this.store.gc.exclusive(async () => {
      const report = await checkStore(this.store, opts);
      if (opts.repair) {
        const swept = await this.sweep();
        if (swept.blobs) report.Repaired.push(`removed ${swept.blobs} unreferenced blob(s)`);
        if (swept.snapshots) report.Repaired.push(`removed ${swept.snapshots} unreferenced snapshot(s)`);
        return { ...report, Unreferenced: { Blobs: 0, Snapshots: 0 } };
      }
      const { liveBlobs, liveChains } = await this.mark();
      const blobs = (await this.store.content.list()).filter((d) => !liveBlobs.has(d)).length;
      const snapshots = (await this.store.snapshots.list()).filter((s) => !liveChains.has(s.chainId)).length;
      return { ...report, Unreferenced: { Blobs: blobs, Snapshots: snapshots } };
    });
  }

  /** `POST /images/prune`: dangling images (all unused ones with dangling=false), by label, label! and until (Docker's keys and values). */
  async prune(filters: Filters = {}): Promise<{ ImagesDeleted: { Untagged?: string; Deleted?: string }[]; SpaceReclaimed: number }> {
    const f = checkFilters(filters, ["dangling", "label", "label!", "until"]);
    let all = false;
    if ("dangling" in f) {
      if (exactMatch(f, "dangling", "false") || exactMatch(f, "dangling", "0")) all = true;
      else if (!exactMatch(f, "dangling", "true") && !exactMatch(f, "dangling", "1")) throw invalidFilter("dangling", f.dangling);
    }
    const until = untilLimit(f);
    const deleted: { Untagged?: string; Deleted?: string }[] = [];
    let space = 0;
    const uses = this.containers.imageUseCounts();
    const memo = new Map<string, string[]>();
    const usedChains = () => new Set(this.store.images.list().flatMap((r) => chainsOf(r, memo)));
    const sizes = await this.chainSizes();
    const usedBefore = usedChains();
    // As dockerd: only images nothing was built on are candidates, and a build's intermediate images go with
    // them; with dangling=false a tagged base whose children went is looked at again (one more pass).
    const indexed = this.store.images.indexedImages();
    for (let again = true; again;) {
      again = false;
      for (const rec of this.store.images.list()) {
        if (!this.store.images.get(rec.id)) continue; // went with an image pruned before it
        if (indexed.has(rec.id)) continue; // an entry of a local index
        if (uses.get(rec.id)) continue;
        if (this.hasChildren(rec.id)) continue;
        if (!all && (rec.repoTags.length || rec.repoDigests.length)) continue;
        if (until !== undefined && !(Date.parse(rec.created) < until)) continue;
        if (!pruneLabelsMatch(rec.labels ?? undefined, f)) continue;
        for (const t of rec.repoTags) { await this.store.images.untag(t); deleted.push({ Untagged: familiar(t) }); }
        for (const d of rec.repoDigests) deleted.push({ Untagged: familiar(d) });
        await this.deleteWithParents(this.store.images.get(rec.id) ?? rec, deleted, true);
        again = all;
      }
    }
    // What went: the layers no image uses any more (each counted once, as dockerd counts the layers it releases).
    const usedAfter = usedChains();
    for (const c of usedBefore) if (!usedAfter.has(c)) space += sizes.get(c) ?? 0;
    await this.collect();
    return { ImagesDeleted: deleted, SpaceReclaimed: space };
  }

  async importTar(tar: NodeJS.ReadableStream, opts: { repo?: string; tag?: string; message?: string; changes?: string[] }): Promise<ImageRecord> {
    let ref: string | undefined;
    if (opts.repo) ref = formatReference(parseReference(opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo));
    const config = parseChanges(opts.changes ?? []);
    const rec = await this.store.gc.lease((lease) => createImageFromTar(this.store, tar, { lease, ref, config, comment: opts.message, createdBy: "" }));
    this.events.publish("image", "import", rec.id, ref ? { name: familiar(ref) } : {});
    return rec;
  }

  /** opts.signal: the client went away; the push stops (TransferCancelledError). */
  async push(ref: string, opts: { creds?: Credentials; onProgress?: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<string> {
    const digest = await pushImage(this.store, ref, { ...opts, insecure: this.insecure });
    this.events.publish("image", "push", familiar(ref), { name: familiar(ref) });
    return digest;
  }

  login(server: string, creds: Credentials): Promise<void> { return checkLogin(server, creds, this.insecure); }

  /** opts.signal: the client went away; the pull stops, leaving no partial blob, snapshot or image (TransferCancelledError). */
  async pull(ref: string, opts: { platform?: string; creds?: Credentials; onProgress?: (m: ProgressMessage) => void; signal?: AbortSignal }): Promise<ImageRecord> {
    const rec = await this.store.gc.lease(() => pullImage(this.store, ref, { platform: opts.platform ? parsePlatform(opts.platform) : undefined, creds: opts.creds, onProgress: opts.onProgress, insecure: this.insecure, signal: opts.signal }));
    this.events.publish("image", "pull", familiar(ref), { name: familiar(ref) });
    return rec;
  }

  save(names: string[]): NodeJS.ReadableStream {
    if (!names.length) throw new BadParameterError("no images given to save");
    const byId = new Map<string, SaveEntry>();
    for (const n of names) {
      // A name of a local index (a multi-platform build): the whole index, every platform (archive.ts).
      const index = this.store.images.resolve(n) ? undefined : this.store.images.resolveIndex(n);
      const key = index?.id ?? this.resolve(n).id;
      const entry: SaveEntry = byId.get(key) ?? (index ? { refs: [], index } : { rec: this.resolve(n), refs: [] });
      const isId = key.includes(n.replace(/^sha256:/, "")) && /^(sha256:)?[0-9a-f]+$/.test(n);
      if (!isId) entry.refs.push(formatReference(parseReference(n)));
      byId.set(key, entry);
    }
    return saveImages(this.store, [...byId.values()]);
  }

  async load(src: NodeJS.ReadableStream, tmpRoot: string): Promise<string[]> {
    const loaded = await this.store.gc.lease((lease) => loadImages(this.store, src, tmpRoot, lease));
    for (const l of loaded) this.events.publish("image", "load", l.replace(/^Loaded image( ID)?: /, ""), {});
    return loaded;
  }

  async bootstrap(name: string, platform?: string): Promise<ImageRecord> {
    return this.store.gc.lease((lease) => this.bootstrapUnleased(name, platform ? parsePlatform(platform) : undefined, lease));
  }

  private async bootstrapUnleased(name: string, platform: Platform | undefined, lease: Lease): Promise<ImageRecord> {
    const r = parseReference(name);
    const base = familiarString(r).split(":")[0];
    let rec: ImageRecord;
    if (base === "busybox") rec = await bootstrapBusybox(this.store, familiarString(r), platform, lease);
    else if (platform && platform.architecture !== hostPlatform().architecture) throw new BadParameterError(`cannot bootstrap ${name} for ${platform.os}/${platform.architecture}: only busybox is bootstrapped for a foreign platform`);
    else if (base === "debian") {
      const m = /^(bookworm|bullseye|trixie|sid|stable|oldstable|testing|unstable)(-slim)?$/.exec(r.tag ?? "");
      if (!m) throw new BadParameterError(`cannot bootstrap ${name}: use debian:<suite> or debian:<suite>-slim, e.g. debian:bookworm-slim`);
      rec = await bootstrapDebian(this.store, m[1], !!m[2], familiarString(r), undefined, lease);
    } else {
      throw new BadParameterError(`cannot bootstrap ${name}: berth can bootstrap busybox (from Debian's busybox-static) and debian:<suite>[-slim] (with mmdebstrap)`);
    }
    this.events.publish("image", "import", rec.id, { name: familiarString(r) });
    return rec;
  }
}

/** The chain IDs of an image's layers, bottom first. */
/**
 * The chain IDs of each prefix of an image's layers. `memo` (one per request) keeps them by the image's
 * top chain ID, which names the whole list: images that share their layers are hashed once.
 */
function chainsOf(rec: ImageRecord, memo?: Map<string, string[]>): string[] {
  const hit = rec.chainId ? memo?.get(rec.chainId) : undefined;
  if (hit) return hit;
  const out: string[] = [];
  let chain: string | undefined;
  for (const d of rec.diffIds) { chain = chain ? chainIdOf([chain, d]) : d; out.push(chain); }
  if (rec.chainId) memo?.set(rec.chainId, out);
  return out;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp("^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, ".") + "(:.*)?$");
  return re.test(s);
}

/** `docker import --change`: the Dockerfile instructions import accepts (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL). */
export function parseChanges(changes: string[]): Partial<ContainerConfigSpec> {
  const cfg: Partial<ContainerConfigSpec> = {};
  const list = (rest: string): string[] => {
    const t = rest.trim();
    if (t.startsWith("[")) {
      try {
        const v = JSON.parse(t) as unknown;
        if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
      } catch { /* shell form */ }
    }
    return ["/bin/sh", "-c", t];
  };
  for (const ch of changes) {
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(ch);
    if (!m) throw new BadParameterError(`dockerfile parse error: ${ch}`);
    const [, instr, rest] = m;
    switch (instr.toUpperCase()) {
      case "CMD": cfg.Cmd = list(rest); break;
      case "ENTRYPOINT": cfg.Entrypoint = list(rest); break;
      case "ENV": {
        const kv = rest.includes("=") ? rest.trim().split(/\s+(?=[^=\s]+=)/) : [rest.trim().replace(/\s+/, "=")];
        cfg.Env = [...(cfg.Env ?? []), ...kv.map((x) => x.replace(/^([^=]+)="(.*)"$/, "$1=$2"))];
        break;
      }
      case "EXPOSE": for (const p of rest.trim().split(/\s+/)) (cfg.ExposedPorts ??= {})[p.includes("/") ? p : `${p}/tcp`] = {}; break;
      case "LABEL": for (const kv of rest.trim().split(/\s+(?=[^=\s]+=)/)) { const i = kv.indexOf("="); (cfg.Labels ??= {})[kv.slice(0, i)] = kv.slice(i + 1).replace(/^"(.*)"$/, "$1"); } break;
      case "USER": cfg.User = rest.trim(); break;
      case "WORKDIR": cfg.WorkingDir = rest.trim(); break;
      case "VOLUME": for (const v of list(rest)[0] === "/bin/sh" ? rest.trim().split(/\s+/) : list(rest)) (cfg.Volumes ??= {})[v] = {}; break;
      case "STOPSIGNAL": cfg.StopSignal = rest.trim(); break;
      default: throw new BadParameterError(`${instr.toUpperCase()} is not a valid change command`);
    }
  }
  return cfg;
}
