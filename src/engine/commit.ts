/**
 * `commit` and `diff`: a container's writable layer as a new image on top of
 * its image, and as Docker's change list. The container is paused while its
 * changes are read (Docker's default), so the layer is a consistent picture.
 */
import { holdPaused } from "./pause-hold.js";
import { join } from "node:path";
import { existsSync, mkdirSync } from "node:fs";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { changes, layerTar, pruneToLayer, upperLayer, type Change, type UpperLayer } from "../store/diff.js";
import { isMountPoint } from "../store/snapshots.js";
import { MediaType, type ContainerConfigSpec, type HistoryEntry, type ImageConfig, type Manifest, type Platform } from "../oci/image.js";
import { formatReference, parseReference } from "../oci/reference.js";
import { BadParameterError } from "../lib/errors.js";
import type { ContainerService } from "./containers.js";
import { mergeEnv } from "./launch-spec.js";
import type { EventBus } from "./events.js";
import { parseChanges } from "./images.js";
import { trace } from "../lib/trace.js";

export interface CommitOptions {
  repo?: string; tag?: string; comment?: string; author?: string; pause?: boolean;
  changes?: string[];
  /** The request body: config fields that replace the container's. */
  config?: Partial<ContainerConfigSpec>;
  /** The image's config exactly (the builder: not the RUN command's). */
  exactConfig?: ContainerConfigSpec;
  history?: HistoryEntry;
  /** The builder: the config its step ran with (recorded as the image's ContainerConfig; default: the container's). */
  containerConfig?: ContainerConfigSpec & { Image?: string };
  /**
   * The builder, for a step's container that has exited and goes next: its upper directory becomes the
   * layer's snapshot (moved, not unpacked again from the blob); the container must not be started again.
   */
  adoptUpper?: boolean;
}

/** What Docker's image config records of the container an image was committed from (`container`, `container_config`). */
export interface CommitMeta { container?: string; containerConfig?: ContainerConfigSpec & { Image?: string }; /** A new image with no parent: its platform (a multi-platform build's FROM scratch); default the host's. */ platform?: Platform }

/** An image config as Docker writes it: with the container it came from (both absent for pulled and imported images). */
export type DockerImageConfig = ImageConfig & { container?: string; container_config?: ContainerConfigSpec & { Image?: string } };

/** A new image's layer: a blob in the content store (with the upper directory it was read from, to become its snapshot), or a tar to ingest. */
export interface NewLayer { blob?: { digest: string; size: number }; upper?: UpperLayer; tar?: NodeJS.ReadableStream }

const OCI_OF: Record<string, string> = {
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  "application/vnd.docker.image.rootfs.diff.tar": MediaType.OciLayer,
};

export class CommitService {
  constructor(private readonly store: Store, private readonly containers: ContainerService, private readonly events: EventBus, private readonly dataRoot: string) {}

  /** The container's upper directory; one that was created but never started has none yet: an empty one stands in (as Docker: no changes). */
  private dirs(id: string): { upper: string } {
    const upper = join(this.dataRoot, "containers", id, "upper");
    if (!existsSync(upper)) mkdirSync(upper, { recursive: true, mode: 0o755 });
    return { upper };
  }

  async diff(ref: string): Promise<Change[]> {
    const c = this.containers.get(ref);
    const lowers = c.Berth.ChainId ? await this.store.snapshots.lowerDirs(c.Berth.ChainId) : [];
    return changes(this.dirs(c.Id).upper, lowers);
  }

  /** Under a store lease (store/gc.ts): the collector keeps off the layer, config and manifest until the image record lands. */
  commit(ref: string, opts: CommitOptions = {}): Promise<{ Id: string }> { return this.store.gc.lease(() => this.commitLeased(ref, opts)); }

  private async commitLeased(ref: string, opts: CommitOptions = {}): Promise<{ Id: string }> {
    const c = this.containers.get(ref);
    let target: string | undefined;
    if (opts.repo) {
      const r = parseReference(opts.tag ? `${opts.repo}:${opts.tag}` : opts.repo);
      if (r.digest) throw new BadParameterError("refusing to create a tag with a digest reference");
      target = formatReference(r);
    } else if (opts.tag) throw new BadParameterError("tag given without a repository");
    const fromChanges = parseChanges(opts.changes ?? []);
    const parent = this.store.images.resolve(c.Image);
    const parentCfg = parent ? await this.store.images.config(parent) : undefined;

    // A counted hold: concurrent commits (and cp-in) share one pause; a container the user paused stays paused.
    const release = await holdPaused(this.containers, c, opts.pause !== false);
    let blob: { digest: string; size: number };
    let upper: UpperLayer | undefined;
    try {
      const lowers = c.Berth.ChainId ? await this.store.snapshots.lowerDirs(c.Berth.ChainId) : [];
      trace(`commit ${c.Id.slice(0, 12)}: layer`);
      // Its upper directory can become the snapshot only once nothing has it mounted.
      const adopt = opts.adoptUpper && !c.State.Running && !!c.Berth.ChainId && c.Berth.ChainId === parent?.chainId && !isMountPoint(join(this.dataRoot, "containers", c.Id, "rootfs"));
      if (adopt) {
        upper = upperLayer(this.dirs(c.Id).upper, lowers, this.store.snapshots.maps);
        blob = await this.store.content.ingest(upper.tar);
      } else blob = await this.store.content.ingest(layerTar(this.dirs(c.Id).upper, lowers, this.store.snapshots.maps));
      trace(`commit ${c.Id.slice(0, 12)}: layer ingested (${blob.size} bytes)`);
    } finally {
      await release();
    }
    const cc = c.Config;
    let config: ContainerConfigSpec;
    if (opts.exactConfig) config = opts.exactConfig;
    else {
      config = {
        ...(parentCfg?.config ?? {}),
        User: cc.User || undefined, Env: cc.Env ?? undefined, Cmd: cc.Cmd ?? undefined, Entrypoint: cc.Entrypoint ?? undefined,
        WorkingDir: cc.WorkingDir || undefined, Labels: cc.Labels, Volumes: cc.Volumes ?? undefined,
        ExposedPorts: cc.ExposedPorts && Object.keys(cc.ExposedPorts).length ? cc.ExposedPorts : undefined, StopSignal: cc.StopSignal,
        ...stripUndefined(opts.config ?? {}),
        ...fromChanges,
      };
      if (fromChanges.Env) config.Env = mergeEnv(cc.Env, fromChanges.Env);
    }
    const history: HistoryEntry = opts.history ?? { created_by: [c.Path, ...c.Args].join(" "), ...(opts.comment ? { comment: opts.comment } : {}) };
    const containerConfig = opts.containerConfig ?? {
      ...stripUndefined({ User: cc.User || undefined, Env: cc.Env ?? undefined, Cmd: cc.Cmd ?? undefined, Entrypoint: cc.Entrypoint ?? undefined, WorkingDir: cc.WorkingDir || undefined,
        Labels: cc.Labels, Volumes: cc.Volumes ?? undefined, ExposedPorts: cc.ExposedPorts && Object.keys(cc.ExposedPorts).length ? cc.ExposedPorts : undefined, StopSignal: cc.StopSignal }),
      Image: c.Image,
    };
    const rec = await this.newImage(parent?.id ?? null, { blob, upper }, config, history, { author: opts.author, ref: target, container: c.Id, containerConfig });
    this.events.publish("container", "commit", c.Id, { comment: opts.comment ?? "", imageID: rec.id, imageRef: target ?? "", name: c.Name.slice(1) });
    return { Id: rec.id };
  }

  /**
   * A new image: the parent's layers, plus one (a blob already in the content
   * store, or a tar stream to ingest) when given, with this config and one
   * more history entry. Always an OCI manifest (a Docker parent's layer types
   * are mapped: same bytes).
   */
  newImage(parentId: string | null, layer: NewLayer | null, config: ContainerConfigSpec,
    history: HistoryEntry, opts: { author?: string; ref?: string } & CommitMeta = {}): Promise<ImageRecord> {
    return this.store.gc.lease(() => this.newImageLeased(parentId, layer, config, history, opts));
  }

  private async newImageLeased(parentId: string | null, layer: NewLayer | null, config: ContainerConfigSpec,
    history: HistoryEntry, opts: { author?: string; ref?: string } & CommitMeta = {}): Promise<ImageRecord> {
    const parent = parentId ? this.store.images.resolve(parentId) : undefined;
    const parentCfg: ImageConfig | undefined = parent ? await this.store.images.config(parent) : undefined;
    const parentManifest: Manifest | undefined = parent ? await this.store.images.manifest(parent) : undefined;
    let blob = layer?.blob;
    if (!blob && layer?.tar) blob = await this.store.content.ingest(layer.tar);
    let size = parent?.size ?? 0;
    if (blob) {
      let applied: { size: number } | undefined;
      if (layer?.upper) {
        // The directory the blob was read from, made to hold just what the blob holds, moved into the snapshotter.
        await pruneToLayer(layer.upper, this.store.snapshots.rootOwner(layer.upper.upper));
        applied = await this.store.snapshots.adoptDir(parent?.chainId ?? null, layer.upper.upper, blob.digest, layer.upper.size);
      }
      applied ??= await this.store.snapshots.applyLayer(parent?.chainId ?? null, this.store.content.reader(blob.digest), blob.digest);
      size += applied.size;
      trace(`commit: snapshot applied`);
    }
    const created = new Date().toISOString();
    const { container: _c, container_config: _cc, ...inherited } = (parentCfg ?? { architecture: opts.platform?.architecture ?? (process.arch === "x64" ? "amd64" : process.arch), os: opts.platform?.os ?? "linux", ...(opts.platform?.variant ? { variant: opts.platform.variant } : {}) }) as DockerImageConfig;
    const image: DockerImageConfig = {
      ...inherited,
      created,
      // As Docker: the container the image was committed from and its config (the parent's are not this image's).
      ...(opts.container !== undefined || opts.containerConfig ? { container: opts.container ?? "", container_config: stripUndefined(opts.containerConfig ?? {}) } : {}),
      ...(opts.author ? { author: opts.author } : {}),
      config: stripUndefined(config),
      rootfs: { type: "layers", diff_ids: [...(parentCfg?.rootfs?.diff_ids ?? []), ...(blob ? [blob.digest] : [])] },
      history: [...(parentCfg?.history ?? []), { created, ...history, ...(opts.author ? { author: opts.author } : {}), ...(blob ? {} : { empty_layer: true }) }],
    };
    const cfgBlob = await this.store.content.writeBytes(JSON.stringify(image));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: cfgBlob.digest, size: cfgBlob.size },
      layers: [
        ...(parentManifest?.layers ?? []).map((l) => ({ ...l, mediaType: OCI_OF[l.mediaType] ?? l.mediaType })),
        ...(blob ? [{ mediaType: MediaType.OciLayer, digest: blob.digest, size: blob.size }] : []),
      ],
    };
    const m = await this.store.content.writeBytes(JSON.stringify(manifest));
    const rec = await this.store.images.add(m.digest, opts.ref, size, parent?.id);
    trace("commit: image added");
    return rec;
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
