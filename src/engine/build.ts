/**
 * Builds (`POST /build`, the classic builder's protocol): the context tar is
 * unpacked into a temporary directory, the executor (src/builder) runs the
 * Dockerfile against this engine's images, containers and commits, and the
 * build cache (key → image ID) lives in <data-root>/buildcache/cache.{json,journal}.
 *
 * A build stops when its client goes away (the signal the API passes): the
 * executor checks it between steps, a running RUN container is killed (and,
 * as every build container, removed), mounted image filesystems are unmounted
 * and the scratch directory removed; the steps that finished stay in the
 * cache, and no tag is set.
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import type { Store } from "../store/index.js";
import { TarUnpacker } from "../store/tar-unpack.js";
import { writeTar, type TarEntry } from "../lib/tar-writer.js";
import { readJsonIfExists } from "../lib/fsutil.js";
import { Journal } from "../store/journal.js";
import { BadParameterError, errorMessage } from "../lib/errors.js";
import { trace } from "../lib/trace.js";
import { lstatInRoot } from "../lib/securejoin.js";
import type { ContainerConfigSpec, HistoryEntry } from "../oci/image.js";
import { build, BuildCancelledError, type BuildBackend, type BuildImage } from "../builder/executor.js";
import { formatPlatform, normalizePlatform, parsePlatforms, platformProgress, samePlatform } from "../builder/platform.js";
import type { Platform } from "../oci/image.js";
import { saveImages } from "../distribution/archive.js";
import { multiPlatformIndex } from "./manifests.js";
import { SshAgents } from "../builder/ssh.js";
import { parseGitRef, cloneGit } from "../builder/git.js";
import { pruneIgnored, readDockerfile } from "../builder/sources.js";
import { defaultDockerfileName } from "../lib/build-context.js";
import { BuildProgress, fullNameTagged } from "../builder/progress.js";
import { imageArchive, parseAnnotation, rootfsTar, rootfsTars } from "../builder/output.js";
import { NotFoundError } from "../lib/errors.js";
import { exportLocal, importInline, importLayout, inlineValue, INLINE_LABEL, type CacheRecord } from "../builder/cache-export.js";
import type { ContainerService } from "./containers.js";
import type { ImageService } from "./images.js";
import type { CommitService } from "./commit.js";
import { checkFilters, untilLimit, type Filters } from "./filters.js";

/** One cache record: key → image ID; when it was made and last used (ms), how often it was used (absent in older records). */
interface CacheEntry { k: string; id: string; c?: number; u?: number; n?: number }

/** A build cache entry as `GET /system/df` and `POST /build/prune` show it (Docker's BuildCache fields). */
export interface BuildCacheRecord {
  ID: string; Parent: string; Parents: string[] | null; Type: string; Description: string;
  InUse: boolean; Shared: boolean; Size: number; CreatedAt: string; LastUsedAt: string | null; UsageCount: number;
}

export interface BuildPruneOptions { all?: boolean; filters?: Filters; keepStorage?: number }

export interface BuildRequest {
  tags: string[]; dockerfile?: string; buildArgs?: Record<string, string>; target?: string;
  noCache?: boolean; pull?: boolean; labels?: Record<string, string>; quiet?: boolean;
  /** Build secrets by id (RUN --mount=type=secret): kept in memory and in the build's scratch directory only. */
  secrets?: Record<string, Buffer>;
  /** ssh agents by id, as socket paths on this machine (RUN --mount=type=ssh; `build --ssh`). */
  ssh?: ReadonlyMap<string, string>;
  /** Entitlements (`build --allow`): network.host, security.insecure. */
  allow?: string[];
  /** A git repository to build from instead of the context tar (`remote=<git url>#ref:dir`). */
  remote?: string;
  /** The network RUN steps use unless they say (`build --network`, the API's networkmode); "default" when unset. */
  network?: string;
  /**
   * berth's own client asks for BuildKit's progress (`{"id":"berth.progress","aux":<event>}`, lib/build-progress.ts)
   * in place of the classic builder's lines, and for the result (`{"id":"berth.result","aux":{ID, ManifestDigest}}`).
   */
  progress?: boolean;
  /** Send the result message (`berth.result`: ID, ManifestDigest, and the cache records the build used) whatever the progress. */
  result?: boolean;
  /** `--cache-from <image>` (Docker's cachefrom): images whose inline cache (cache-export.ts) the build may use. */
  cacheFrom?: string[];
  /** `--cache-to type=inline` (or the build arg BUILDKIT_INLINE_CACHE=1): the image carries its cache. */
  inlineCache?: boolean;
  /** Named build contexts (`--build-context`): name → `docker-image://<ref>`, or `berth-context://<id>` (a directory the client uploaded: uploadContext). */
  contexts?: Record<string, string>;
  /** `build --platform` (the API's platform): one or more os/arch[/variant], comma-separated; several make an index. */
  platform?: string;
}

export class BuildService {
  constructor(
    private readonly store: Store, private readonly containers: ContainerService, private readonly images: ImageService,
    private readonly commits: CommitService, private readonly dataRoot: string,
  ) {}

  /** The build cache, key → image ID: in memory, and on disk as a journal (one line per new step, whatever the cache's size). */
  private readonly cache = new Map<string, string>();
  /** When each record was made and used, for `system df` and `builder prune` (lost with nothing else if absent). */
  private readonly usage = new Map<string, { c: number; u?: number; n: number }>();
  private journal: Journal<CacheEntry> | undefined;

  /** After a crash: image filesystems a build had mounted, and its scratch directories, go. */
  async init(): Promise<void> {
    const tmp = join(this.dataRoot, "tmp");
    let mounts: string[] = [];
    try { mounts = (await fsp.readFile("/proc/self/mountinfo", "utf8")).split("\n").map((l) => l.split(" ")[4]).filter((m) => m?.startsWith(tmp + "/build-")); } catch { /* no /proc */ }
    for (const m of mounts.reverse()) await this.store.snapshots.unmount(m).catch(() => {});
    for (const n of await fsp.readdir(tmp).catch(() => [] as string[])) if (n.startsWith("build-")) await fsp.rm(join(tmp, n), { recursive: true, force: true }).catch(() => {});
    const dir = join(this.dataRoot, "buildcache");
    await fsp.mkdir(dir, { recursive: true });
    this.journal = new Journal<CacheEntry>(dir, "cache", "entries", (r) => r.k, () => [...this.cache].map(([k, id]) => this.entry(k, id)));
    const { records } = await this.journal.load();
    for (const r of records) {
      if (typeof r?.k !== "string" || typeof r.id !== "string") continue;
      this.cache.set(r.k, r.id);
      this.usage.set(r.k, { c: typeof r.c === "number" ? r.c : 0, u: typeof r.u === "number" ? r.u : undefined, n: typeof r.n === "number" ? r.n : 0 });
    }
    // An older berth kept the whole cache in index.json, rewritten after each build.
    const old = await readJsonIfExists<Record<string, string>>(join(dir, "index.json")).catch(() => undefined);
    if (old) {
      for (const [k, id] of Object.entries(old)) if (typeof id === "string" && !this.cache.has(k)) this.cache.set(k, id);
      await this.journal.compact();
      await fsp.rm(join(dir, "index.json"), { force: true });
    }
  }

  private entry(k: string, id: string): CacheEntry {
    const u = this.usage.get(k);
    return { k, id, ...(u ? { c: u.c, ...(u.u !== undefined ? { u: u.u } : {}), n: u.n } : {}) };
  }

  /**
   * The cache a build sees: a new step is recorded at once (so a crash or a cancelled build keeps the steps
   * that finished); a hit (a lookup whose image is still there) counts as a use.
   */
  private buildCache(pending: Promise<void>[], used = new Map<string, string>()): Map<string, string> {
    const shared = this.cache, journal = this.journal, usage = this.usage, store = this.store;
    const entry = (k: string, id: string) => this.entry(k, id);
    return new (class extends Map<string, string> {
      override get(k: string) {
        const id = shared.get(k);
        if (id && store.images.get(id)) {
          used.set(k, id);
          const u = usage.get(k) ?? { c: Date.now(), n: 0 };
          u.u = Date.now(); u.n++;
          usage.set(k, u);
          if (journal) pending.push(journal.change([entry(k, id)]).catch(() => {}));
        }
        return id;
      }
      override has(k: string) { return shared.has(k); }
      override set(k: string, id: string) {
        used.set(k, id);
        if (shared.get(k) !== id) {
          shared.set(k, id);
          usage.set(k, { c: Date.now(), n: 0 });
          if (journal) pending.push(journal.change([entry(k, id)]).catch(() => {}));
        }
        return this;
      }
    })();
  }

  private mountsDir(): string { return join(this.dataRoot, "buildcache", "mounts"); }

  /**
   * The build cache as `GET /system/df` shows it (BuildCache): each RUN --mount=type=cache directory
   * (Type exec.cachemount, its size on disk) and each step record of the classic builder's cache (Type
   * regular, Size 0: its data is an image's, counted under Images; Shared while that image exists).
   */
  async diskUsage(): Promise<BuildCacheRecord[]> {
    const out: BuildCacheRecord[] = [];
    const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
    for (const n of (await fsp.readdir(this.mountsDir()).catch(() => [] as string[])).sort()) {
      const dir = join(this.mountsDir(), n);
      const st = await fsp.lstat(dir).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      const used = await fsp.stat(dir + ".used").catch(() => undefined);
      out.push({
        ID: n, Parent: "", Parents: null, Type: "exec.cachemount", Description: "cached mount (RUN --mount=type=cache)",
        InUse: false, Shared: false, Size: await duBytes(dir), CreatedAt: iso(st.birthtimeMs || st.ctimeMs)!, LastUsedAt: iso((used ?? st).mtimeMs), UsageCount: 0,
      });
    }
    for (const [k, id] of this.cache) {
      const u = this.usage.get(k);
      const rec = this.store.images.get(id);
      let description = "";
      if (rec) {
        const h = (await this.store.images.config(rec).catch(() => undefined))?.history ?? [];
        description = h.length ? h[h.length - 1].created_by ?? "" : "";
      }
      const created = u?.c || (rec ? Date.parse(rec.created) : 0);
      out.push({
        ID: k.replace(/^sha256:/, "").slice(0, 25), Parent: "", Parents: null, Type: "regular", Description: description,
        InUse: false, Shared: !!rec, Size: 0, CreatedAt: new Date(created).toISOString(), LastUsedAt: iso(u?.u), UsageCount: u?.n ?? 0,
      });
    }
    return out;
  }

  /**
   * `POST /build/prune` (BuildKit's answer shape): without `all` only the dangling cache goes (step records
   * whose image is gone); with `all` every record and cache mount. `until` keeps what was used (made, if
   * never used) more recently than that; `keep-storage` stops once the cache left is no larger than that
   * many bytes (the least recently used go first). Filters `id` and `type` narrow it further.
   */
  async prune(opts: BuildPruneOptions = {}): Promise<{ CachesDeleted: string[] | null; SpaceReclaimed: number }> {
    const f = checkFilters(opts.filters, ["until", "unused-for", "id", "parent", "type", "description", "inuse", "shared", "private"]);
    const until = untilLimit(f) ?? untilLimit({ until: f["unused-for"] ?? [] });
    const all = await this.diskUsage();
    const last = (r: BuildCacheRecord) => Date.parse(r.LastUsedAt ?? r.CreatedAt);
    let candidates = all.filter((r) => opts.all || (r.Type === "regular" && !r.Shared));
    if (until !== undefined) candidates = candidates.filter((r) => last(r) < until);
    if (f.id?.length) candidates = candidates.filter((r) => f.id.some((x) => r.ID.startsWith(x)));
    if (f.type?.length) candidates = candidates.filter((r) => f.type.includes(r.Type));
    if (f.description?.length) candidates = candidates.filter((r) => f.description.some((x) => r.Description.includes(x)));
    candidates.sort((a, b) => last(a) - last(b));
    let total = all.reduce((a, r) => a + r.Size, 0);
    const deleted: string[] = [];
    let space = 0;
    const byShortKey = new Map([...this.cache.keys()].map((k) => [k.replace(/^sha256:/, "").slice(0, 25), k]));
    const gone: string[] = [];
    for (const r of candidates) {
      if (opts.keepStorage && opts.keepStorage > 0 && total <= opts.keepStorage) break;
      if (r.Type === "exec.cachemount") {
        await fsp.rm(join(this.mountsDir(), r.ID), { recursive: true, force: true });
        await fsp.rm(join(this.mountsDir(), r.ID + ".used"), { force: true });
      } else {
        const k = byShortKey.get(r.ID);
        if (!k) continue;
        this.cache.delete(k);
        this.usage.delete(k);
        gone.push(k);
      }
      deleted.push(r.ID);
      space += r.Size;
      total -= r.Size;
    }
    if (gone.length && this.journal) await this.journal.change([], gone);
    return { CachesDeleted: deleted.length ? deleted : null, SpaceReclaimed: space };
  }

  /** Runs a build from a context tar (plain or gzip); messages go to `send` in Docker's JSON-stream shape. Returns the image ID. */
  async build(context: NodeJS.ReadableStream, req: BuildRequest, send: (m: object) => void, signal?: AbortSignal): Promise<string> {
    const tmp = join(this.dataRoot, "tmp", `build-${randomBytes(6).toString("hex")}`);
    const ctx = join(tmp, "context");
    await fsp.mkdir(ctx, { recursive: true, mode: 0o700 });
    const pending: Promise<void>[] = [];
    const ssh = req.ssh?.size ? new SshAgents(req.ssh, join(tmp, "ssh")) : undefined;
    let contextDir = ctx;
    try {
      trace("build: context arriving");
      const git = req.remote ? parseGitRef(req.remote) : undefined;
      if (req.remote && !git) throw new BadParameterError(`unable to prepare context: unsupported remote context ${req.remote}: only git repositories are`);
      if (git) {
        await fsp.rmdir(ctx);
        contextDir = await cloneGit(git, ctx, { signal });
        // Nobody sent it: its .dockerignore is applied here (as dockerd's remote contexts).
        pruneIgnored(contextDir, req.dockerfile || defaultDockerfileName((rel) => !!lstatInRoot(contextDir, rel).stat?.isFile()));
      }
      else await unpackContext(context, ctx);
      if (signal?.aborted) throw new BuildCancelledError();
      trace("build: context unpacked");
      /** The records this build used or made (`--cache-to`). */
      const used = new Map<string, string>();
      const cache = this.buildCache(pending, used);
      const inline = req.inlineCache || req.buildArgs?.BUILDKIT_INLINE_CACHE === "1";
      const buildArgs = { ...(req.buildArgs ?? {}) };
      delete buildArgs.BUILDKIT_INLINE_CACHE;
      const quiet = req.quiet || req.progress;
      const say = (line: string) => { if (!quiet) send({ stream: line }); };
      const progress = req.progress && !req.quiet ? new BuildProgress((ev) => send({ id: "berth.progress", aux: ev })) : undefined;
      // --cache-from <image>: its inline cache, recorded before the first step looks (BuildKit's "importing cache manifest").
      for (const ref of req.cacheFrom ?? []) {
        const v = progress?.start(`importing cache manifest from ${ref}`);
        await this.cacheFromImage(ref, cache, signal);
        v?.done();
      }
      // --platform with several platforms: one build each (its own automatic platform ARGs, its base images),
      // untagged; the tags name an OCI index of their manifests (engine/manifests.ts).
      const platforms = parsePlatforms(req.platform);
      const one = (platform: Platform | undefined, tags: string[] | undefined, o: { signal?: AbortSignal; say?: (l: string) => void; output?: (c: Buffer) => void; dockerfileText?: string } = {}) => build(this.backend(tmp, o.signal ?? signal, !!req.progress, platform), {
        platform, contextDir, tmpDir: tmp, ssh, allow: req.allow, network: req.network, cacheMountDir: join(this.dataRoot, "buildcache", "mounts"), dockerfile: req.dockerfile, dockerfileText: o.dockerfileText, tags, buildArgs, target: req.target,
        noCache: req.noCache, pull: req.pull, labels: req.labels, cache, say: o.say ?? say, signal: o.signal ?? signal,
        finalLabels: inline ? async (image) => { const v = await inlineValue(this.store, image, [...used].map(([k, i]) => ({ k, id: i }))); return v ? { [INLINE_LABEL]: v } : ({} as Record<string, string>); } : undefined,
        secrets: new Map(Object.entries(req.secrets ?? {})), progress: progress && platform && platforms.length > 1 ? platformProgress(progress, platform) : progress, contexts: this.namedContexts(req.contexts),
        output: o.output ?? ((chunk) => { if (!quiet) send({ stream: chunk.toString() }); }),
      });
      let id: string;
      if (platforms.length <= 1) id = await one(platforms[0], req.tags);
      else {
        // The platforms build side by side (as BuildKit's), from one read of the Dockerfile (a build drops it
        // from the context when .dockerignore names it); a failing one stops the others. Their classic output
        // lines carry the platform.
        const dockerfileText = readDockerfile(contextDir, req.dockerfile || defaultDockerfileName((rel) => !!lstatInRoot(contextDir, rel).stat?.isFile()));
        const stop = new AbortController();
        const onAbort = () => stop.abort();
        signal?.addEventListener("abort", onAbort, { once: true });
        let firstError: unknown;
        const runs = platforms.map(async (p) => {
          const lines = prefixLines(`[${formatPlatform(p)}] `, (l) => { if (!quiet) send({ stream: l }); });
          try {
            return { id: await one(p, [], { signal: stop.signal, say: lines.write, output: (c) => lines.write(c.toString()), dockerfileText }), platform: p };
          } catch (e) {
            if (firstError === undefined && !(e instanceof BuildCancelledError && !signal?.aborted)) firstError = e;
            stop.abort();
            throw e;
          } finally { lines.flush(); }
        });
        const settled = await Promise.allSettled(runs);
        signal?.removeEventListener("abort", onAbort);
        if (settled.some((r) => r.status === "rejected")) throw firstError ?? new BuildCancelledError();
        const images = settled.map((r) => (r as PromiseFulfilledResult<{ id: string; platform: Platform }>).value);
        id = (await multiPlatformIndex(this.store, images, req.tags)).id;
        for (const t of req.tags) say(`Successfully tagged ${/:[^/]+$/.test(t) ? t : `${t}:latest`}\n`);
        progress?.instant("exporting manifest list", [`exporting manifest list ${id} done`, ...req.tags.map((t) => `naming to ${fullNameTagged(t)} done`)]);
      }
      trace("build: done");
      send({ aux: { ID: id } });
      if (req.progress || req.result) {
        // The image's manifest as BuildKit's metadata names it (containerimage.digest and .descriptor).
        const rec = this.store.images.get(id);
        const manifest = rec ? { digest: rec.manifestDigest, size: await this.store.content.size(rec.manifestDigest) ?? 0, mediaType: (await this.store.images.manifest(rec)).mediaType ?? "" }
          : this.store.images.getIndex(id) ? { digest: id, size: this.store.images.getIndex(id)!.size, mediaType: this.store.images.getIndex(id)!.mediaType } : undefined;
        send({ id: "berth.result", aux: { ID: id, ManifestDigest: manifest?.digest ?? "", Manifest: manifest, Cache: [...used].map(([k, i]) => ({ k, id: i })) } });
      }
      if (req.quiet) send({ stream: id + "\n" });
      return id;
    } finally {
      // The steps that finished are cache even when a later one failed or the client left (as Docker keeps them).
      await Promise.all(pending);
      await ssh?.close();
      await fsp.rm(tmp, { recursive: true, force: true });
      for (const v of Object.values(req.contexts ?? {})) { const d = this.uploadedContext(v); if (d) await fsp.rm(join(d, ".."), { recursive: true, force: true }); }
    }
  }

  /** A named context's directory: `berth-context://<id>` is one uploadContext made. */
  private uploadedContext(v: string): string | undefined {
    const m = /^berth-context:\/\/([0-9a-f]{24})$/.exec(v);
    return m ? join(this.dataRoot, "tmp", `build-ctx-${m[1]}`, "ctx") : undefined;
  }

  private namedContexts(contexts: Record<string, string> | undefined): Map<string, { image?: string; dir?: string }> | undefined {
    if (!contexts) return undefined;
    const out = new Map<string, { image?: string; dir?: string }>();
    for (const [name, v] of Object.entries(contexts)) {
      const dir = this.uploadedContext(v);
      if (dir) out.set(name, { dir });
      else if (v.startsWith("docker-image://") && v.length > 15) out.set(name, { image: v.slice(15) });
      else throw new BadParameterError(`invalid build context ${name}=${v}: docker-image://<ref> or a directory`);
    }
    return out;
  }

  /** `--build-context name=DIR`: the directory's tar unpacked for the build that names it (which removes it; a daemon start removes any left). */
  async uploadContext(src: NodeJS.ReadableStream): Promise<string> {
    const id = randomBytes(12).toString("hex");
    const dir = join(this.dataRoot, "tmp", `build-ctx-${id}`, "ctx");
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    try { await unpackContext(src, dir); } catch (e) { await fsp.rm(join(dir, ".."), { recursive: true, force: true }); throw e; }
    return `berth-context://${id}`;
  }

  /** `--cache-from <image>`: the image (pulled when missing; a failed pull only means no cache, as BuildKit) and its inline cache recorded. */
  private async cacheFromImage(ref: string, cache: Map<string, string>, signal?: AbortSignal): Promise<number> {
    let rec = this.store.images.resolve(ref);
    if (!rec) {
      try { rec = await this.images.pull(ref, { signal }); } catch { return 0; }
    }
    return importInline(this.store, rec, join(this.dataRoot, "tmp"), (r) => { cache.set(r.k, r.id); }).catch(() => 0);
  }

  /** `--cache-to type=local`: the images of these records (and their parents) as an OCI layout tar. */
  exportCache(records: CacheRecord[]): Promise<NodeJS.ReadableStream> {
    return exportLocal(this.store, records.filter((r) => this.store.images.get(r.id)));
  }

  /** `--cache-from type=local`: a local cache's layout loaded, its records (the client read them from its index.json) kept. */
  async importCache(src: NodeJS.ReadableStream, index: { records: CacheRecord[]; parents: [string, string][] }): Promise<number> {
    const pending: Promise<void>[] = [];
    const c = this.buildCache(pending);
    const n = await importLayout(this.store, src, join(this.dataRoot, "tmp"), index, (r) => { c.set(r.k, r.id); });
    await Promise.all(pending);
    return n;
  }

  /**
   * A built image as `build --output` exports it: `rootfs` (its filesystem as a tar, for type=local and
   * type=tar) or `image` (an OCI layout + docker-archive named `names`, with `annotations`: type=oci, docker).
   */
  async exportBuild(ref: string, kind: string, names: string[], annotations: string[]): Promise<NodeJS.ReadableStream> {
    // A multi-platform build's result is an index: its archive holds every platform (distribution/archive.ts).
    const rec = this.store.images.resolve(ref);
    const index = rec ? undefined : this.store.images.resolveIndex(ref);
    if (!rec && !index) throw new NotFoundError(`No such image: ${ref}`);
    if (index && kind === "image" && annotations.length) throw new BadParameterError("--annotation with an export of a multi-platform build is not supported by berth yet");
    // As BuildKit: each platform's filesystem under linux_amd64/, linux_arm64/, ...
    if (index && kind === "rootfs") {
      const images = index.manifests.map((m) => {
        const r = this.store.images.get(m.id);
        if (!r) throw new NotFoundError(`No such image: ${m.id}`);
        return { rec: r, prefix: m.platform ? formatPlatform(m.platform).replace(/\//g, "_") : m.digest.slice(7, 19) };
      });
      return rootfsTars(this.store, images, join(this.dataRoot, "tmp"));
    }
    if (index && kind === "image") return saveImages(this.store, [{ refs: names, index }]);
    if (kind === "rootfs") return rootfsTar(this.store, rec!, join(this.dataRoot, "tmp"));
    if (kind === "image") return imageArchive(this.store, rec!, names, annotations.map(parseAnnotation));
    throw new BadParameterError(`unknown export kind ${JSON.stringify(kind)}: rootfs or image`);
  }

  private backend(tmp: string, signal?: AbortSignal, progress = false, platform?: Platform): BuildBackend {
    const buildSignal = signal;
    const store = this.store;
    const info = async (id: string): Promise<BuildImage | undefined> => {
      const rec = store.images.resolve(id);
      if (!rec) return undefined;
      return { id: rec.id, config: (await store.images.config(rec)).config ?? {} };
    };
    return {
      image: async (ref, pull, say, want) => {
        const wanted = want ? formatPlatform(want) : undefined;
        let rec = pull ? undefined : this.images.find(ref, wanted);
        if (rec && want) {
          // A plain image of another platform is not this build's base (an index gives the right entry).
          const c = await store.images.config(rec);
          if (c.architecture && !samePlatform(normalizePlatform(`${c.os || "linux"}/${c.architecture}${c.variant ? `/${c.variant}` : ""}`), want)) {
            throw new BadParameterError(`image ${ref} is ${c.os}/${c.architecture}${c.variant ? `/${c.variant}` : ""}, not ${wanted}: name an image of that platform, or a multi-platform image (berth manifest create)`);
          }
        }
        if (!rec) {
          // The build's signal stops its base-image pull too (the client went away).
          await this.images.pull(ref, { platform: wanted, signal, onProgress: (m) => { if (m.status && !m.progressDetail) say(`${m.id ? `${m.id}: ` : ""}${m.status}\n`); } })
            .catch((e: unknown) => { throw signal?.aborted ? new BuildCancelledError() : e; });
          rec = store.images.resolve(ref);
        }
        if (!rec) throw new BadParameterError(`pull access denied for ${ref}, repository does not exist or may require 'docker login'`);
        return (await info(rec.id))!;
      },
      imageById: info,
      run: async (parent, cmd, env, config, history, out, started, mounts, containerConfig, stepSignal, extras) => {
        // The step's own signal: the build's, or a sibling stage failing (which stops this one too).
        const signal = stepSignal ?? buildSignal;
        if (!parent) throw new BadParameterError("a RUN needs a base image with a shell: FROM scratch has none");
        const rec = store.images.resolve(parent)!;
        const cfg = await store.images.config(rec);
        const { Id } = await this.containers.create({
          Image: parent, Cmd: cmd, Entrypoint: [], Env: [...(config.Env ?? []), ...env], WorkingDir: config.WorkingDir, User: config.User,
          AttachStdout: true, AttachStderr: true, Labels: {},
          HostConfig: {
            NetworkMode: extras?.network ?? "default", Privileged: !!extras?.privileged,
            Mounts: mounts.map((m) => m.type === "tmpfs"
              ? { Type: "tmpfs", Target: m.target, ...(m.size ? { TmpfsOptions: { SizeBytes: m.size } } : {}) }
              : { Type: "bind", Source: m.source, Target: m.target, ReadOnly: m.readOnly }),
          },
        }, undefined, rec, cfg);
        // The client went away: the step's process is killed (the finally below removes its container).
        const kill = () => { this.containers.kill(Id, "SIGKILL").catch(() => {}); };
        signal?.addEventListener("abort", kill, { once: true });
        started(Id);
        try {
          if (signal?.aborted) throw new BuildCancelledError();
          const logs = this.containers.logs(Id, { follow: true });
          const relay = (async () => { for await (const e of logs.entries) out(e.data); })();
          const waited = this.containers.wait(Id, "next-exit");
          await this.containers.start(Id);
          if (signal?.aborted) kill(); // it fired while the container was starting, when a kill finds nothing to kill
          const { StatusCode } = await waited;
          await relay.catch(() => {});
          if (signal?.aborted) throw new BuildCancelledError();
          if (StatusCode !== 0) return { exitCode: StatusCode };
          // A secret's mountpoint (the empty file the runtime made to bind it on) is not part of the step (as BuildKit).
          const upper = join(this.dataRoot, "containers", Id, "upper");
          for (const m of mounts) {
            if (!m.stub) continue;
            const at = lstatInRoot(upper, m.target, false);
            if ((at.stat?.isFile() && at.stat.size === 0) || at.stat?.isSocket()) await fsp.rm(at.path, { force: true });
            // The directories made for it alone go too (rmdir: only while empty).
            for (const d of m.stubDirs ?? []) await fsp.rmdir(lstatInRoot(upper, d, false).path).catch(() => {});
          }
          const { Id: image } = await this.commits.commit(Id, { pause: false, adoptUpper: true, exactConfig: config, history, containerConfig: containerConfig ?? { ...config, Cmd: cmd, Image: parent } });
          return { exitCode: 0, image };
        } finally {
          signal?.removeEventListener("abort", kill);
          if (!progress) out(Buffer.from(`Removing intermediate container ${Id.slice(0, 12)}\n`));
          await this.containers.remove(Id, { force: true, volumes: true }).catch(() => {});
        }
      },
      commit: async (parent, layer, config, history, meta) => {
        const tar = layer ? Readable.from(writeTar(layer as Iterable<TarEntry>)) : null;
        const rec = await this.commits.newImage(parent, tar ? { tar } : null, config as ContainerConfigSpec, history as HistoryEntry,
          { ...(meta ? { container: meta.container ?? "", containerConfig: meta.containerConfig } : {}), ...(platform && !parent ? { platform } : {}) });
        return rec.id;
      },
      // COPY --link's layer onto a new parent: the same blob (the builder's layers are uncompressed, their digest the diff ID).
      rebase: async (parent, layerOf, config, history, meta) => {
        const rec = store.images.resolve(layerOf);
        if (!rec) return undefined;
        const top = (await store.images.manifest(rec)).layers.at(-1);
        if (!top || top.digest !== (await store.images.config(rec)).rootfs?.diff_ids?.at(-1)) return undefined;
        const img = await this.commits.newImage(parent, { blob: { digest: top.digest, size: top.size } }, config as ContainerConfigSpec, history as HistoryEntry,
          { ...(meta ? { container: meta.container ?? "", containerConfig: meta.containerConfig } : {}), ...(platform && !parent ? { platform } : {}) }).catch(() => undefined);
        return img?.id;
      },
      withRootfs: async (image, fn) => {
        const rec = image ? store.images.resolve(image) : undefined;
        if (!rec?.chainId) {
          const empty = join(tmp, `empty-${randomBytes(4).toString("hex")}`);
          await fsp.mkdir(empty, { recursive: true });
          return fn(empty);
        }
        const dir = join(tmp, `rootfs-${randomBytes(4).toString("hex")}`);
        await store.snapshots.mount(rec.chainId, dir, join(dir, "fs"));
        try { return await fn(join(dir, "fs")); } finally { await store.snapshots.unmount(join(dir, "fs")); }
      },
      tag: async (image, ref) => {
        const i = ref.lastIndexOf(":");
        const hasTag = i > ref.lastIndexOf("/");
        await this.images.tag(image, hasTag ? ref.slice(0, i) : ref, hasTag ? ref.slice(i + 1) : "latest");
      },
    };
  }
}

/** The build files a build may remove from its context (Dockerfile, ignore files), and a function that puts back any gone. */
/** Text written in chunks, out again line by line, each line with `prefix` in front (the rest at flush). */
function prefixLines(prefix: string, out: (line: string) => void): { write: (s: string) => void; flush: () => void } {
  let rest = "";
  return {
    write: (s) => {
      rest += s;
      let i;
      while ((i = rest.indexOf("\n")) >= 0) { out(prefix + rest.slice(0, i + 1)); rest = rest.slice(i + 1); }
    },
    flush: () => { if (rest) out(prefix + rest + "\n"); rest = ""; },
  };
}

/** The bytes of the files under dir (what `du -b` counts, directories aside), never following a symlink. */
async function duBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await fsp.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) total += (await fsp.lstat(p).catch(() => ({ size: 0 }))).size;
    }
  };
  await walk(dir);
  return total;
}

/** The context tar (gzip sniffed) into dir, with the same hostile-tar rules as layers. */
async function unpackContext(src: NodeJS.ReadableStream, dir: string): Promise<void> {
  const u = new TarUnpacker(dir);
  let first = true;
  let gunzip: ReturnType<typeof createGunzip> | undefined;
  const feed = (b: Buffer) => u.write(b);
  try {
    for await (const chunk of src as AsyncIterable<Buffer>) {
      if (first) {
        first = false;
        if (chunk[0] === 0x1f && chunk[1] === 0x8b) {
          gunzip = createGunzip();
          gunzip.on("data", feed);
        }
      }
      if (gunzip) { if (!gunzip.write(chunk)) await new Promise((r) => gunzip!.once("drain", r)); }
      else feed(chunk);
    }
    if (gunzip) { await new Promise<void>((res, rej) => { gunzip!.once("end", res); gunzip!.once("error", rej); gunzip!.end(); }); }
    if (!first) u.end();
  } catch (e) {
    u.abort();
    throw new BadParameterError(`invalid build context: ${errorMessage(e)}`);
  }
}
