/**
 * What the builder's solver (executor.ts) and its steps (steps/) share: the backend the engine gives a
 * build, the build's options, and the records a step leaves in an image.
 */
import type { ContainerConfigSpec, HistoryEntry, Platform } from "../oci/image.js";
import type { TarEntry } from "../lib/tar-writer.js";
import type { BuildProgress } from "./progress.js";
import type { SshAgents, RunExtras } from "./ssh.js";

export interface BuildImage { id: string; config: ContainerConfigSpec }

/** A RUN --mount as the container gets it: a host directory bound in, or a tmpfs. */
export interface RunMountSpec {
  type: "bind" | "tmpfs"; source?: string; target: string; readOnly: boolean; size?: number;
  /** A file bound in for this step only (a secret, an ssh agent): its mountpoint is not kept in the layer. */
  stub?: boolean;
  /** The directories the stub's mountpoint needs that the parent image lacks, deepest first: removed after the step when left empty. */
  stubDirs?: string[];
}

/**
 * What the classic builder records of the step that made an image: the container it ran in ("" when the
 * step ran none) and that container's config (the image's config with the step as its Cmd).
 */
export interface StepMeta { container?: string; containerConfig: StepConfig }

/** A step's container config: the image's, plus the image it started from (as Docker's ContainerConfig.Image). */
export type StepConfig = ContainerConfigSpec & { Image?: string };

/** The config the classic builder records for a step that runs no command: its Cmd is the step, as a "#(nop)" comment. */
export function nopConfig(config: ContainerConfigSpec, step: string, parent: string | null, oneWord = false): StepConfig {
  return { ...config, Cmd: oneWord ? ["/bin/sh", "-c", `#(nop) ${step}`] : ["/bin/sh", "-c", "#(nop) ", step], Image: parent ?? "" };
}

export interface BuildBackend {
  /** An image by reference or ID, pulled when missing (or always with pull); `platform`: that platform's (an index's entry). */
  image(ref: string, pull: boolean, say: (line: string) => void, platform?: Platform): Promise<BuildImage>;
  /** By ID (a cached step's image), undefined when gone. */
  imageById(id: string): Promise<BuildImage | undefined>;
  /**
   * Runs cmd in a container of `parent` (null: scratch) with these mounts and commits it with `config`; output streams to `out`.
   * The image records the container's ID and `containerConfig` (the step as the classic builder records it).
   */
  run(parent: string | null, cmd: string[], env: string[], config: ContainerConfigSpec, history: HistoryEntry, out: (chunk: Buffer) => void, started: (containerId: string) => void, mounts: RunMountSpec[], containerConfig?: StepConfig, signal?: AbortSignal, extras?: RunExtras): Promise<{ exitCode: number; image?: string }>;
  /** A new image: parent plus an optional layer (a tar stream of entries) with this config (and what made it: `meta`). */
  commit(parent: string | null, layer: Iterable<TarEntry> | null, config: ContainerConfigSpec, history: HistoryEntry, meta?: StepMeta): Promise<string>;
  /**
   * A new image: parent plus the top layer of `layerOf` (the same blob, the same diff ID), with this config:
   * COPY --link's layer put on a new parent. Undefined when that image is gone or its top layer cannot be reused.
   */
  rebase?(parent: string | null, layerOf: string, config: ContainerConfigSpec, history: HistoryEntry, meta?: StepMeta): Promise<string | undefined>;
  /** Runs fn with the image's filesystem mounted read-only (null: scratch, an empty dir). */
  withRootfs<T>(image: string | null, fn: (dir: string) => Promise<T>): Promise<T>;
  tag(image: string, ref: string): Promise<void>;
}

export interface BuildOptions {
  contextDir: string;
  /** Scratch space of this build (ADD unpacks archives here). */
  tmpDir: string;
  /** Where RUN --mount=type=cache directories persist between builds. */
  cacheMountDir: string;
  dockerfile?: string;
  /** The Dockerfile's text, read already (the builds of several platforms share one read of it). */
  dockerfileText?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  pull?: boolean;
  labels?: Record<string, string>;
  /** Where cache records live: key → image ID. */
  cache: Map<string, string>;
  say: (line: string) => void;
  output: (chunk: Buffer) => void;
  /** Build secrets by id (`build --secret`), for RUN --mount=type=secret: never in a layer, the config or the cache key. */
  secrets?: ReadonlyMap<string, Buffer>;
  /** Fired when the client went away: the build stops between steps (a running RUN is the backend's to kill). */
  signal?: AbortSignal;
  /** The client's ssh agents (`build --ssh`), for RUN --mount=type=ssh. */
  ssh?: SshAgents;
  /** Entitlements the build was given (`build --allow`): network.host, security.insecure. */
  allow?: readonly string[];
  /** The network of RUN steps that name none (`build --network`): "default" when unset. */
  network?: string;
  /** BuildKit's progress (progress.ts): when given, steps report there (say and output then carry nothing the client shows). */
  progress?: BuildProgress;
  /** Named build contexts (`build --build-context name=docker-image://ref|path`), for FROM and --from words that name no stage. */
  contexts?: ReadonlyMap<string, { image?: string; dir?: string }>;
  /** The platform this build is for (`build --platform`, one build per platform): the automatic platform ARGs, FROM's image. Unset: the host's. */
  platform?: Platform;
  /** Labels the final image gets from its last step's image (the inline cache: cache-export.ts), with --label's. */
  finalLabels?: (image: string) => Promise<Record<string, string>>;
}

