/**
 * The build executor, the solver of the step graph (graph.ts): it builds only the stages the target needs,
 * each once the stages it names are built, independent ones side by side (at most as many as the machine
 * has cores), and prints what Docker's classic builder prints ("Step 2/5 : RUN ...", " ---> Running in
 * ...", " ---> <id>", "Successfully built ..."), each stage's lines together and in file order. Each step
 * makes an image; a step whose digest (the parent step's digest, the instruction, the build args it sees
 * and, for COPY/ADD, the content of what is copied) was built before, by this build or an earlier one,
 * reuses that image ("Using cache").
 *
 * The executor knows nothing of containers or stores: a BuildBackend, which
 * the engine provides, resolves and pulls images, runs RUN steps in a
 * container and commits them, makes images from a parent plus a layer or a
 * config change, and mounts an image's filesystem for COPY --from.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync, existsSync, mkdirSync, chownSync, writeFileSync, type Stats } from "node:fs";
import { BuildCancelledError } from "./errors.js";
import { destPlan, readDockerfile, dropIgnoredBuildFiles, archiveKind, unpackArchive, glob, contentHash, isUrl, download } from "./sources.js";
import { OrderedOutput, Semaphore, type StageOutput } from "./schedule.js";
import { defaultDockerfileName } from "../lib/build-context.js";
import { join, posix } from "node:path";
import { BadParameterError, SystemError } from "../lib/errors.js";
import { lstatInRoot } from "../lib/securejoin.js";
import { trace } from "../lib/trace.js";
import { hostPlatform, type ContainerConfigSpec, type HistoryEntry, type Platform } from "../oci/image.js";
import { formatPlatform, normalizePlatform, platformArgs, samePlatform } from "./platform.js";
import { parseDockerfile, parseRunMount, type Dockerfile, type Instruction, type CopyInstruction, type AddInstruction, type RunMount } from "./dockerfile.js";
import { expandString, processWords, expandHeredoc } from "./expand.js";
import { buildGraph, stepDigest, type StageNode } from "./graph.js";
import { sshMount, checkEntitlements, type SshAgents, type RunExtras } from "./ssh.js";
import { parseGitRef, cloneGit, resolveGitCommit } from "./git.js";
import { excludeMatcher, parentsPivot } from "./sources.js";
import { BuildProgress, fullName, fullNameTagged, isFsStep, type Vertex } from "./progress.js";
import { availableParallelism } from "node:os";
import type { TarEntry } from "../lib/tar-writer.js";

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

export { BuildCancelledError };

/** Args every build knows without an ARG line (Docker's predefined proxy args). */
const PREDEFINED_ARGS = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

const short = (id: string) => id.replace(/^sha256:/, "").slice(0, 12);

interface State extends StageOutput {
  image: string | null;
  /** The digest of the step that made `image` (the cache key chain). */
  digest: string;
  /** The stage's index. */
  stage: number;
  config: ContainerConfigSpec;
  /** ARGs declared in this stage, with their values. */
  args: Map<string, string | undefined>;
  shell: string[];
  /** CMD was set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
  /** The step being run was found in the cache (progress: CACHED). */
  onCached?: () => void;
  /** Status lines of the step (a base image's pull) when progress is reported. */
  status?: (line: string) => void;
}

function envMap(env: string[] = []): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) { const i = e.indexOf("="); m.set(i < 0 ? e : e.slice(0, i), i < 0 ? "" : e.slice(i + 1)); }
  return m;
}

function setEnv(env: string[] = [], key: string, value: string): string[] {
  return [...env.filter((e) => e.split("=", 1)[0] !== key), `${key}=${value}`];
}

export async function build(backend: BuildBackend, opts: BuildOptions): Promise<string> {
  const inContext = (rel: string) => !!lstatInRoot(opts.contextDir, rel).stat?.isFile();
  // No name given: Dockerfile, or Containerfile when the context has none (as Podman).
  const dockerfileName = opts.dockerfile || defaultDockerfileName(inContext);
  const text = readDockerfile(opts.contextDir, dockerfileName);
  dropIgnoredBuildFiles(opts.contextDir, dockerfileName);
  const df: Dockerfile = parseDockerfile(text);
  const escapeToken = df.escapeToken;
  const buildArgs = opts.buildArgs ?? {};
  const used = new Set<string>();

  // Global ARGs: for FROM lines; the automatic platform ARGs are there without an ARG line (platform.ts).
  const autoArgs = platformArgs(opts.platform ?? hostPlatform());
  const globals = new Map<string, string | undefined>(Object.entries(autoArgs));
  for (const a of df.globalArgs) for (const v of a.vars) {
    const dflt = v.value !== undefined ? expandString(v.value, (n) => globals.get(n), { escapeToken }) : autoArgs[v.key];
    globals.set(v.key, v.key in buildArgs ? buildArgs[v.key] : dflt);
    if (v.key in buildArgs) used.add(v.key);
  }

  // Pass 3: the graph. Only the stages the target needs are built; each starts once the stages it needs
  // are built, side by side with the others, at most as many at once as the machine has cores.
  const graph = buildGraph(df, { target: opts.target, buildArgs, autoArgs });
  const total = graph.total;
  const prog = opts.progress;
  const fromRef = (stage: StageNode["stage"]): string | undefined => {
    const ref = expandString(stage.image, (n) => globals.get(n), { escapeToken });
    if (ref.toLowerCase() === "scratch" || df.stages.some((x) => x.index < stage.index && (x.name === ref.toLowerCase() || String(x.index) === ref))) return undefined;
    // A named context (--build-context) that is an image is shown as that image.
    const nc = opts.contexts?.get(ref);
    return nc?.dir ? undefined : nc?.image ?? ref;
  };
  const shownFrom = new Set<string>();
  if (prog) {
    prog.instant(`[internal] load build definition from ${dockerfileName}`, [`transferring dockerfile: ${Buffer.byteLength(text)}B done`]);
    prog.instant("[internal] load .dockerignore", ["transferring context: 2B done"]);
    for (const ref of new Set(graph.stages.map((s) => fromRef(s.stage)).filter((r): r is string => !!r))) prog.instant(`[internal] load metadata for ${fullNameTagged(ref)}`);
  }
  // Output: in file order, as the classic builder prints it. The first unfinished stage streams; the
  // others, running beside it, are held and shown when their turn comes.
  const printer = new OrderedOutput(graph.stages.length, opts);
  let step = 0;
  for (const a of df.globalArgs) opts.say(`Step ${++step}/${total} : ${a.original}\n`);
  // A failing stage stops the others (their running RUN is killed); the client going away stops them all.
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const checkCancel = (): void => { if (stop.signal.aborted) throw new BuildCancelledError(); };
  /** Steps built by this build (or being built now), by digest: the same step met again (in another stage) waits for this one and takes its image, --no-cache or not. */
  const inflight = new Map<string, Promise<string | null | undefined>>();
  /** Base images resolved (or pulled) once per build, however many stages name them. */
  const bases = new Map<string, Promise<BuildImage>>();
  const baseImage = (ref: string, pull: boolean, say: (l: string) => void, platform?: Platform): Promise<BuildImage> => {
    const k = `${pull}\0${ref}\0${platform ? formatPlatform(platform) : ""}`;
    if (!bases.has(k)) bases.set(k, backend.image(ref, pull, say, platform));
    return bases.get(k)!;
  };
  const done = new Map<number, { image: string | null; digest: string }>();
  const running = new Map<number, Promise<void>>();
  const slots = new Semaphore(Math.max(1, availableParallelism()));
  let firstError: unknown;
  const runStage = async (node: StageNode, slot: number): Promise<void> => {
    let held = false;
    /** The step being run, when progress is reported. */
    let cur: Vertex | undefined;
    try {
      for (const dep of node.deps) await running.get(dep);
      await slots.acquire();
      held = true;
      checkCancel();
      let pulled = false;
      const out: StageOutput & Pick<State, "onCached" | "status"> = prog
        ? { say: () => {}, output: (c) => cur?.log(c), onCached: () => cur?.cached(), status: (l) => { pulled = true; cur?.status(l.trimEnd()); } }
        : printer.stream(slot);
      const ref = prog ? fromRef(node.stage) : undefined;
      if (prog && ref !== undefined && !shownFrom.has(ref)) { shownFrom.add(ref); cur = prog.start(BuildProgress.stepName(df, node.stage, 1, `FROM ${fullName(ref)}`)); }
      const st = await fromStage(node, out);
      if (cur && !pulled) cur.cached();
      cur?.done(); cur = undefined;
      let n = node.firstStep, k = 1;
      for (const ins of node.stage.instructions) {
        checkCancel();
        n++;
        out.say(`Step ${n}/${total} : ${ins.original}\n`);
        trace(`build step ${n}`);
        if (prog && isFsStep(ins)) cur = prog.start(BuildProgress.stepName(df, node.stage, ++k, ins.original));
        await runStep(st, ins);
        cur?.done(); cur = undefined;
        out.say(` ---> ${st.image ? short(st.image) : "scratch"}\n`);
      }
      done.set(node.stage.index, { image: st.image, digest: st.digest });
    } catch (e) {
      cur?.done(e instanceof BuildCancelledError ? "context canceled" : e);
      if (firstError === undefined && !(e instanceof BuildCancelledError && !opts.signal?.aborted)) firstError = e;
      stop.abort();
      throw e;
    } finally {
      if (held) slots.release();
      printer.finish(slot);
    }
  };
  graph.stages.forEach((node, slot) => {
    const p = runStage(node, slot);
    p.catch(() => {});
    running.set(node.stage.index, p);
  });
  const results = await Promise.allSettled(running.values());
  opts.signal?.removeEventListener("abort", onAbort);
  printer.flush();
  if (results.some((r) => r.status === "rejected")) throw firstError ?? new BuildCancelledError();
  let last = done.get(graph.target)?.image ?? null;
  if (opts.signal?.aborted) throw new BuildCancelledError();
  if (!last) throw new BadParameterError("No image was generated. Is your Dockerfile empty?");
  const finalLabels = { ...(opts.labels ?? {}), ...(opts.finalLabels ? await opts.finalLabels(last) : {}) };
  if (Object.keys(finalLabels).length) {
    const img = (await backend.imageById(last))!;
    const cfg = { ...img.config, Labels: { ...(img.config.Labels ?? {}), ...finalLabels } };
    last = await backend.commit(last, null, cfg, { created_by: "LABEL (--label)", empty_layer: true }, { containerConfig: nopConfig(cfg, "LABEL (--label)", last) });
  }
  const unused = Object.keys(buildArgs).filter((k) => !used.has(k) && !PREDEFINED_ARGS.includes(k));
  if (unused.length) opts.say(`[Warning] One or more build-args [${unused.join(" ")}] were not consumed\n`);
  opts.say(`Successfully built ${short(last)}\n`);
  const exporting = prog?.start("exporting to image");
  exporting?.status("exporting layers done");
  exporting?.status(`writing image ${last} done`);
  for (const t of opts.tags ?? []) {
    if (opts.signal?.aborted) throw new BuildCancelledError();
    const full = /:[^/]+$/.test(t) ? t : `${t}:latest`;
    await backend.tag(last, full);
    exporting?.status(`naming to ${fullName(t)} done`);
    opts.say(`Successfully tagged ${full}\n`);
  }
  exporting?.done();
  return last;

  /** A stage's image, as a FROM or a --from names it: an earlier stage's (built by now), else undefined. */
  function stageImage(word: string, before: number): { image: string | null; digest: string } | undefined {
    const w = word.toLowerCase();
    const s = df.stages.find((x) => x.index < before && (x.name === w || String(x.index) === w));
    return s ? done.get(s.index) : undefined;
  }

  async function fromStage(node: StageNode, out: StageOutput & Pick<State, "onCached" | "status">): Promise<State> {
    const stage = node.stage;
    out.say(`Step ${node.firstStep}/${total} : ${stage.from.original}\n`);
    const ref = expandString(stage.image, (n) => globals.get(n), { escapeToken });
    let base: BuildImage | null = null;
    let digest: string;
    const parentStage = ref.toLowerCase() === "scratch" ? undefined : stageImage(ref, stage.index);
    // FROM --platform=<p> (often $BUILDPLATFORM): that platform's image; else the build's (undefined: the host's, as before).
    const fromPlatform = stage.from.platform ? normalizePlatform(expandString(stage.from.platform, (n) => globals.get(n), { escapeToken })) : opts.platform;
    if (ref.toLowerCase() === "scratch") { base = null; digest = fromPlatform && !samePlatform(fromPlatform, hostPlatform()) ? `scratch:${formatPlatform(fromPlatform)}` : "scratch"; }
    else if (parentStage) {
      base = parentStage.image ? (await backend.imageById(parentStage.image))! : null;
      digest = parentStage.digest;
    } else {
      const nc = opts.contexts?.get(ref);
      if (nc?.dir) throw new BadParameterError(`FROM ${ref}: a local build context is not an image (COPY --from=${ref} reads it)`);
      base = await baseImage(nc?.image ?? ref, !!opts.pull, out.status ?? out.say, fromPlatform);
      digest = base.id;
    }
    out.say(` ---> ${base ? short(base.id) : "scratch"}\n`);
    const config: ContainerConfigSpec = base ? { ...base.config } : { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] };
    return { image: base?.id ?? null, digest, config, args: new Map(), shell: config.Shell ?? ["/bin/sh", "-c"], cmdSet: false, stage: stage.index, ...out };
  }

  function vars(st: State): (n: string) => string | undefined {
    const env = envMap(st.config.Env);
    return (n) => (env.has(n) ? env.get(n) : st.args.has(n) ? st.args.get(n) : undefined);
  }

  /** ARGs with values, as RUN sees them (environment for the command, not persisted). */
  function argEnv(st: State): string[] {
    const env = envMap(st.config.Env);
    return [...st.args].filter(([k, v]) => v !== undefined && !env.has(k)).map(([k, v]) => `${k}=${v}`);
  }

  /** Moves the state on to a cached step's image ("Using cache"); false when that image is gone. */
  async function useCached(st: State, key: string, id: string | null | undefined): Promise<boolean> {
    const img = id ? await backend.imageById(id) : undefined;
    if (!img) return false;
    st.say(" ---> Using cache\n");
    st.onCached?.();
    st.image = img.id;
    st.config = { ...img.config };
    st.digest = key;
    return true;
  }

  /**
   * Runs a step once per build: when another stage of this build has the same digest (built, or being
   * built now), this one waits for it and takes its image, --no-cache or not; else the cache is looked
   * up by the digest and, on a miss, `build` makes the image (and moves the state), which then goes into
   * the cache. The digest is claimed before anything is awaited, so two stages cannot both miss it.
   */
  async function once(st: State, key: string, build: () => Promise<void>): Promise<void> {
    const prior = inflight.get(key);
    if (prior && (await useCached(st, key, await prior))) return;
    let settle!: (id: string | null | undefined) => void;
    inflight.set(key, new Promise((r) => { settle = r; }));
    try {
      if (!opts.noCache && (await useCached(st, key, opts.cache.get(key)))) { settle(st.image); return; }
      await build();
      opts.cache.set(key, st.image!);
      st.digest = key;
      settle(st.image);
    } catch (e) {
      inflight.delete(key);
      settle(undefined);
      throw e;
    }
  }

  function keyOf(st: State, ins: Instruction, extra: unknown = null): string {
    return stepDigest(st.digest, ins, argEnv(st), extra);
  }

  async function configStep(st: State, ins: Instruction, change: (c: ContainerConfigSpec) => void): Promise<void> {
    const key = keyOf(st, ins);
    return once(st, key, async () => {
      const next = { ...st.config };
      change(next);
      st.image = await backend.commit(st.image, null, next, { created_by: `/bin/sh -c #(nop)  ${ins.original}`, empty_layer: true }, { containerConfig: nopConfig(next, ins.original, st.image) });
      st.config = next;
    });
  }

  /**
   * WORKDIR, as the classic builder: the directory is made when missing (with its missing parents, root's
   * and 0755 whatever the USER, as dockerd 20.10 makes them), in a layer of its own; an existing one is
   * left as it is and the step only changes the config.
   */
  async function workdirStep(st: State, ins: Instruction, dir: string): Promise<void> {
    const key = keyOf(st, ins, dir);
    return once(st, key, async () => {
    const next = { ...st.config, WorkingDir: dir };
    const plan = await backend.withRootfs(st.image, async (rootfs) => destPlan(rootfs, dir));
    if (plan.blocked) throw new BadParameterError(`mkdir ${dir}: not a directory`);
    const step = `WORKDIR ${dir}`;
    const created_by = `/bin/sh -c #(nop) ${step}`;
    const meta: StepMeta = { containerConfig: nopConfig(next, step, st.image, true) };
    if (!plan.missing.length) {
      st.image = await backend.commit(st.image, null, next, { created_by, empty_layer: true }, meta);
    } else {
      const now = new Date();
      const entries: TarEntry[] = [
        ...plan.existing.map((e) => ({ ...e })),
        ...plan.missing.map((p): TarEntry => ({ name: p, type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: now })),
      ];
      st.image = await backend.commit(st.image, entries, next, { created_by }, meta);
    }
    st.config = next;
    });
  }

  async function runStep(st: State, ins: Instruction): Promise<void> {
    const v = vars(st);
    const ex = (s: string) => expandString(s, v, { escapeToken });
    switch (ins.keyword) {
      case "ARG":
        for (const a of ins.vars) {
          const dflt = a.value !== undefined ? ex(a.value) : globals.get(a.key);
          st.args.set(a.key, a.key in buildArgs ? buildArgs[a.key] : dflt);
          if (a.key in buildArgs) used.add(a.key);
        }
        return;
      case "ENV":
        return configStep(st, ins, (c) => { for (const p of ins.pairs) c.Env = setEnv(c.Env, p.key, ex(p.value)); });
      case "LABEL":
        return configStep(st, ins, (c) => { c.Labels = { ...(c.Labels ?? {}) }; for (const p of ins.pairs) c.Labels[ex(p.key)] = ex(p.value); });
      case "MAINTAINER":
        return configStep(st, ins, () => {});
      case "WORKDIR":
        return workdirStep(st, ins, posix.resolve(st.config.WorkingDir || "/", ex(ins.path)));
      case "USER": return configStep(st, ins, (c) => { c.User = ex(ins.user); });
      case "STOPSIGNAL": return configStep(st, ins, (c) => { c.StopSignal = ex(ins.signal); });
      case "EXPOSE":
        return configStep(st, ins, (c) => {
          c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
          for (const p of ins.ports.flatMap((x) => processWords(x, v, { escapeToken }))) c.ExposedPorts[p.includes("/") ? p : `${p}/tcp`] = {};
        });
      case "VOLUME":
        return configStep(st, ins, (c) => {
          c.Volumes = { ...(c.Volumes ?? {}) };
          for (const p of ins.volumes.flatMap((x) => processWords(x, v, { escapeToken }))) c.Volumes[p] = {};
        });
      case "CMD":
        st.cmdSet = true;
        return configStep(st, ins, (c) => { c.Cmd = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command; });
      case "ENTRYPOINT":
        // As Docker: a CMD inherited from the base image does not outlive a new ENTRYPOINT.
        return configStep(st, ins, (c) => { c.Entrypoint = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command; if (!st.cmdSet) c.Cmd = null; });
      case "SHELL":
        st.shell = ins.shell;
        return configStep(st, ins, (c) => { c.Shell = ins.shell; });
      case "HEALTHCHECK":
        return configStep(st, ins, (c) => {
          const h = ins.health;
          c.Healthcheck = h.test[0] === "NONE" ? { Test: ["NONE"] } : { Test: h.test, Interval: h.interval, Timeout: h.timeout, StartPeriod: h.startPeriod, Retries: h.retries };
        });
      case "ONBUILD":
        return configStep(st, ins, (c) => { (c as ContainerConfigSpec & { OnBuild?: string[] }).OnBuild = [...((c as { OnBuild?: string[] }).OnBuild ?? []), ins.expression]; });
      case "RUN": {
        const secretEnv: string[] = [];
        // As BuildKit: --network=host and --security=insecure need the build's entitlement.
        checkEntitlements(ins, opts.allow ?? []);
        const parsed = ins.mounts.map((m) => parseRunMount(m, ex));
        const mounts = parsed.map((m) => runMount(m, st, secretEnv));
        const key = keyOf(st, ins);
        return once(st, key, async () => {
        // ssh agents: a socket of this step's own per mount, SSH_AUTH_SOCK the first one's (unless the image sets it).
        const ssh = await sshMount(parsed, opts.ssh, st.config.WorkingDir || "/", envMap(st.config.Env).has("SSH_AUTH_SOCK"));
        mounts.push(...ssh.mounts);
        secretEnv.push(...ssh.env);
        await stubDirs(st, mounts);
        let cmd = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command;
        if (ins.heredocs.length && ins.shellForm) cmd = [...st.shell, ins.command[0] + "\n" + ins.heredocs.map((h) => h.content).join("")];
        const history: HistoryEntry = { created_by: ins.shellForm ? `/bin/sh -c ${ins.command[0]}` : `/bin/sh -c #(nop) RUN ${JSON.stringify(ins.command)}` };
        // As the classic builder records it: the build args the command saw come first, as "|<n> K=V ...".
        const args = argEnv(st);
        const cc: StepConfig = { ...st.config, Cmd: args.length ? [`|${args.length}`, ...args, ...cmd] : cmd, Image: st.image ?? "" };
        // Secrets given as environment variables are the command's only: not in the recorded config or history.
        const r = await backend.run(st.image, cmd, [...args, ...secretEnv], st.config, history, st.output, (cid) => st.say(` ---> Running in ${short(cid)}\n`), mounts.filter((m): m is RunMountSpec => !!m), cc, stop.signal, { network: ins.network === "default" ? opts.network || "default" : ins.network, privileged: ins.security === "insecure" });
        if (stop.signal.aborted && !r.image) throw new BuildCancelledError();
        if (r.exitCode !== 0 || !r.image) {
          throw new SystemError(`The command '${cmd.join(" ")}' returned a non-zero code: ${r.exitCode}`);
        }
        st.image = r.image;
        });
      }
      case "COPY": case "ADD":
        return copyStep(st, ins, ex);
    }
  }

  /**
   * RUN --mount, as BuildKit: type=cache is a directory kept between builds (by id, default the target),
   * type=bind a read-only view of the context (or of a path in it), type=tmpfs a fresh tmpfs, type=secret
   * a build secret as a read-only file (mode 0400 unless told, /run/secrets/<id> unless told) and/or an
   * environment variable of the command, type=ssh the client's agent through a socket of the step's own
   * (made when the step runs, ssh.ts; a required one the client did not forward fails the step now).
   */
  function runMount(m: RunMount, st: State, secretEnv: string[]): RunMountSpec | undefined {
    const target = m.target ? posix.resolve(st.config.WorkingDir || "/", m.target) : undefined;
    switch (m.type) {
      case "cache": {
        if (!target) throw new BadParameterError("RUN --mount=type=cache needs a target");
        const dir = join(opts.cacheMountDir, createHash("sha256").update(m.id || target).digest("hex").slice(0, 24));
        if (!existsSync(dir)) {
          mkdirSync(dir, { recursive: true, mode: m.mode ?? 0o755 });
          if (m.uid !== undefined || m.gid !== undefined) chownSync(dir, m.uid ?? 0, m.gid ?? 0);
        }
        // When it was last used (`system df`, `builder prune --filter until=`): a stamp beside it, never in it.
        writeFileSync(`${dir}.used`, `${Date.now()}\n`);
        return { type: "bind", source: dir, target, readOnly: m.readOnly };
      }
      case "bind": {
        if (!target) throw new BadParameterError("RUN --mount=type=bind needs a target");
        if (m.from) throw new BadParameterError("RUN --mount=type=bind,from=... is not supported by berth's builder yet");
        // The source is resolved inside the context, its symlinks followed as if the context were "/".
        const src = lstatInRoot(opts.contextDir, m.source ?? "");
        if (!src.stat) throw new BadParameterError(`failed to compute cache key: "/${posix.normalize("/" + (m.source ?? "")).slice(1)}": not found`);
        return { type: "bind", source: src.path, target, readOnly: true };
      }
      case "tmpfs":
        if (!target) throw new BadParameterError("RUN --mount=type=tmpfs needs a target");
        return { type: "tmpfs", target, readOnly: false, size: m.size };
      case "secret": {
        // As BuildKit: the id defaults to the target's base name; with env= and no target, no file.
        const id = m.id || (m.target ? posix.basename(m.target) : "") || m.source || "";
        const value = opts.secrets?.get(id);
        if (value === undefined) {
          if (m.required) throw new BadParameterError(`secret ${id} not found: not found`);
          return undefined;
        }
        if (m.env) secretEnv.push(`${m.env}=${value.toString("utf8")}`);
        if (m.env && !m.target) return undefined;
        const dir = join(opts.tmpDir, "secrets");
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = join(dir, createHash("sha256").update(`${id}\0${Math.random()}`).digest("hex").slice(0, 16));
        writeFileSync(file, value, { mode: m.mode ?? 0o400 });
        chownSync(file, m.uid ?? 0, m.gid ?? 0);
        return { type: "bind", source: file, target: target ?? `/run/secrets/${id}`, readOnly: true, stub: true };
      }
      case "ssh":
        // The socket is made when the step runs (ssh.ts sshMount); a required agent the client did not forward fails now.
        if (m.source) throw new BadParameterError("ssh does not support source");
        if (m.required && !opts.ssh?.has(m.id || "default")) throw new BadParameterError(`no SSH key ${JSON.stringify(m.id || "default")} forwarded from the client`);
        return undefined;
      default:
        if (m.required) throw new BadParameterError(`RUN --mount=type=${m.type} is not supported by berth's builder yet`);
        return undefined;
    }
  }

  /** For each stub mount: the directories on the way to its mountpoint that the parent image lacks (the step removes them when left empty). */
  async function stubDirs(st: State, mounts: (RunMountSpec | undefined)[]): Promise<void> {
    const stubs = mounts.filter((m): m is RunMountSpec => !!m?.stub);
    if (!stubs.length) return;
    await backend.withRootfs(st.image, async (rootfs) => {
      for (const m of stubs) m.stubDirs = destPlan(rootfs, posix.dirname(m.target)).missing.reverse();
    });
  }

  async function copyStep(st: State, ins: CopyInstruction | AddInstruction, ex: (s: string) => string): Promise<void> {
    const from = ins.keyword === "COPY" && ins.from ? ex(ins.from) : undefined;
    const sources = ins.sources.map(ex);
    // --exclude patterns (as .dockerignore lines), matched against each path relative to the source it is under.
    const excluded = excludeMatcher(ins.excludes.map(ex));
    const parents = ins.keyword === "COPY" && ins.parents;
    // As BuildKit: --checksum pins exactly one http(s) source.
    const checksum = ins.keyword === "ADD" && ins.checksum ? ex(ins.checksum) : undefined;
    if (checksum !== undefined) {
      if (sources.length !== 1) throw new BadParameterError("checksum can't be specified for multiple sources");
      if (!isUrl(sources[0])) throw new BadParameterError("checksum can't be specified for non-HTTP(S) sources");
      if (!/^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/.test(checksum)) throw new BadParameterError(`invalid checksum digest format: ${checksum}`);
    }
    const destRaw = ex(ins.dest);
    const workdir = st.config.WorkingDir || "/";
    const destDir = destRaw.endsWith("/") || sources.length + ins.contents.length > 1 || destRaw === "." ;
    const dest = posix.resolve(workdir, destRaw);
    const owner = ins.chown ? ex(ins.chown) : undefined;
    const chmod = ins.chmod ? parseInt(ex(ins.chmod), 8) : undefined;
    if (chmod !== undefined && (Number.isNaN(chmod) || chmod > 0o7777)) throw new BadParameterError(`invalid chmod: ${ins.chmod}`);

    const copyFrom = async <T>(fn: (root: string) => Promise<T>): Promise<T> => {
      if (!from) return fn(opts.contextDir);
      const nc = stageImage(from, st.stage) ? undefined : opts.contexts?.get(from);
      if (nc?.dir) return fn(nc.dir);
      const id = stageImage(from, st.stage)?.image ?? (await baseImage(nc?.image ?? from, false, st.say)).id;
      return backend.withRootfs(id, fn);
    };
    await copyFrom(async (root) => {
      type F = { src: string; rel: string; st: Stats; keepOwner?: boolean };
      const files: F[] = [];
      const add = (abs: string, rel: string, keepOwner = false, xrel = rel): void => {
        const s = lstatSync(abs);
        if (xrel && excluded?.(xrel, s.isDirectory())) return;
        files.push({ src: abs, rel, st: s, keepOwner });
        if (s.isDirectory()) for (const n of readdirSync(abs).sort()) add(join(abs, n), `${rel}/${n}`, keepOwner, xrel ? `${xrel}/${n}` : n);
      };
      /** Git sources keyed by commit, and their clones, made only when the step is not cached. */
      const gitKeys: unknown[] = [];
      const later: (() => Promise<void>)[] = [];
      /** --parents: the directories above a match, as the context has them, once each. */
      const seen = new Set<string>();
      const addParents = (rel: string): void => {
        const parts = rel.split("/").slice(0, -1);
        for (let i = 1; i <= parts.length; i++) {
          const p = parts.slice(0, i).join("/");
          if (seen.has(p)) continue;
          seen.add(p);
          const at = lstatInRoot(root, p);
          if (at.stat?.isDirectory()) files.push({ src: at.path, rel: p, st: at.stat });
        }
      };
      // Into a directory unless exactly one file (or heredoc) goes to a path not ending in "/".
      let multi = sources.length + ins.contents.length > 1;
      // Each source is resolved inside its root (the context, a stage's or an image's filesystem), its
      // symlinks followed as if that root were "/": as Docker, a link to /etc in the context means the
      // context's etc, never the host's.
      const notFound = (m: string): never => {
        throw new BadParameterError(from ? `${ins.keyword} failed: stat ${m}: file does not exist` : `${ins.keyword} failed: file not found in build context or excluded by .dockerignore: stat ${m}: file does not exist`);
      };
      for (const s of sources) {
        const gitRef = ins.keyword === "ADD" ? parseGitRef(s) : undefined;
        if (gitRef) {
          // A git repository at a ref: its tree (or subdirectory) is copied into the destination, .git only with
          // --keep-git-dir. As BuildKit, the step is keyed by the commit the ref names (asked of the remote, nothing
          // fetched): a cached step clones nothing. A ref the remote does not list is cloned to know its content.
          const keepGitDir = ins.keyword === "ADD" && ins.keepGitDir;
          const fetch = async (): Promise<void> => {
            const dir = await cloneGit(gitRef, join(opts.tmpDir, `git-${createHash("sha256").update(s + Math.random()).digest("hex").slice(0, 12)}`), { keepGitDir, signal: stop.signal });
            for (const n of readdirSync(dir).sort()) add(join(dir, n), n);
          };
          multi = true;
          const commit = await resolveGitCommit(gitRef, stop.signal);
          if (commit) { gitKeys.push([gitRef.remote, commit, gitRef.subdir, keepGitDir]); later.push(fetch); } else await fetch();
          continue;
        }
        if (ins.keyword === "ADD" && isUrl(s)) {
          // A remote file: downloaded (streamed, hashed on the way), checked against --checksum, added as a
          // file of mode 0600 (never unpacked), its mtime the server's Last-Modified.
          const got = await download(s, join(opts.tmpDir, `url-${createHash("sha256").update(s + Math.random()).digest("hex").slice(0, 12)}`), checksum, opts.signal);
          files.push({ src: got.path, rel: got.name, st: lstatSync(got.path) });
          continue;
        }
        // As Docker: a relative source that climbs out of its root is refused (an absolute one is taken from the root).
        const lexical = posix.normalize(s);
        if (!s.startsWith("/") && (lexical === ".." || lexical.startsWith("../"))) throw new BadParameterError(`${ins.keyword} failed: forbidden path outside the build context: ${s} ()`);
        const clean = posix.normalize("/" + s).slice(1);
        // --parents keeps the directories of each match, below a "/./" pivot when the source has one.
        const pivot = parents ? parentsPivot(s) : "";
        const matches = /[*?[]/.test(clean) ? glob(root, clean) : [clean];
        if (!matches.length) throw new BadParameterError(`${ins.keyword} failed: no source files were specified`);
        const resolved = matches.map((m) => {
          const r = lstatInRoot(root, m);
          return r.stat ? { m, abs: r.path, s2: r.stat } : notFound(m);
        });
        for (const { m, abs, s2 } of resolved) {
          // A directory's contents are copied, not the directory itself.
          if (matches.length > 1 || parents) multi = true;
          if (parents) {
            const rel = pivot && m.startsWith(pivot + "/") ? m.slice(pivot.length + 1) : m;
            if (excluded?.(posix.basename(m), s2.isDirectory())) continue;
            addParents(rel);
            if (s2.isDirectory()) { seen.add(rel); add(abs, rel, false, ""); } else files.push({ src: abs, rel, st: s2 });
            continue;
          }
          const archive = ins.keyword === "ADD" && ins.unpack !== false && !from && s2.isFile() ? archiveKind(abs) : undefined;
          if (archive) {
            // ADD unpacks a local archive into the destination, keeping its owners (as Docker).
            const into = join(opts.tmpDir, `add-${createHash("sha256").update(abs + Math.random()).digest("hex").slice(0, 12)}`);
            await unpackArchive(abs, archive, into, opts.signal);
            multi = true;
            for (const n of readdirSync(into).sort()) add(join(into, n), n, true);
          } else if (s2.isDirectory()) { multi = true; for (const n of readdirSync(abs).sort()) add(join(abs, n), n); }
          else if (!excluded?.(posix.basename(m), false)) files.push({ src: abs, rel: posix.basename(m), st: s2 });
        }
      }
      // The parent image is part of the key, so what its filesystem has at dest is too: look only on a miss.
      const key = keyOf(st, ins, [dest, destDir || multi, owner, chmod, contentHash(files), ins.contents.map((c) => [c.path, c.data]), ...(gitKeys.length ? [gitKeys] : [])]);
      await once(st, key, async () => {
      for (const f of later) await f();
      // The destination as the image has it: an existing directory is copied into; missing parents are made.
      // Its symlinks are followed inside the image, as Docker does: COPY into /x where /x -> /tmp writes the image's /tmp.
      const plan = await backend.withRootfs(st.image, async (rootfs) => destPlan(rootfs, dest));
      const intoDir = destDir || plan.destIsDir || multi;
      const [uid, gid] = await resolveOwner(st.image, owner);
      const baseRel = plan.destRel;
      const entries: TarEntry[] = [];
      // As Docker's layers: the directories on the way that exist already go in as the image has them (a layer
      // unpacked on its own must not make them root's 0755 over the lower ones), the missing ones are made
      // 0755, owned by --chown's user when given (as dockerd does).
      const existing = intoDir ? plan.existing : plan.existing.filter((e) => e.name !== baseRel);
      for (const e of existing) entries.push({ ...e });
      const now = new Date();
      const dirsToMake = intoDir ? plan.missing : plan.missing.filter((p) => p !== baseRel);
      for (const p of dirsToMake) entries.push({ name: p, type: "directory", mode: 0o755, uid, gid, mtime: now });
      for (const f of files) {
        const name = intoDir ? posix.join(baseRel, f.rel) : baseRel;
        const common = { name, uid: f.keepOwner && !owner ? Number(f.st.uid) : uid, gid: f.keepOwner && !owner ? Number(f.st.gid) : gid, mtime: new Date(Number(f.st.mtimeMs)) };
        if (f.st.isDirectory()) entries.push({ ...common, type: "directory", mode: chmod ?? (Number(f.st.mode) & 0o7777) });
        else if (f.st.isSymbolicLink()) entries.push({ ...common, type: "symlink", mode: 0o777, linkname: readlinkSync(f.src) });
        else if (f.st.isFile()) entries.push({ ...common, type: "file", mode: chmod ?? (Number(f.st.mode) & 0o7777), size: Number(f.st.size), source: f.src });
      }
      for (const c of ins.contents) {
        const data = c.expand ? expandHeredoc(c.data, vars(st)) : c.data;
        const name = intoDir ? posix.join(baseRel, c.path) : baseRel;
        entries.push({ name, type: "file", mode: chmod ?? 0o644, uid, gid, mtime: new Date(), source: Buffer.from(data) });
      }
      st.image = await backend.commit(st.image, entries, st.config, { created_by: `/bin/sh -c #(nop) ${ins.original}` }, { containerConfig: nopConfig(st.config, ins.original, st.image, true) });
      });
    });
  }

  /** --chown user[:group]: numbers as they are, names from the image's /etc/passwd and /etc/group. */
  async function resolveOwner(image: string | null, spec: string | undefined): Promise<[number, number]> {
    if (!spec) return [0, 0];
    const [u, g] = spec.split(":");
    return backend.withRootfs(image, async (root) => {
      const look = (file: string, name: string, field: number): number | undefined => {
        if (/^\d+$/.test(name)) return Number(name);
        try {
          // The image's own file: its /etc may be a symlink, followed inside the image, never on the host
          // (and only a regular file is read: a FIFO or a device there must not hang or flood the daemon).
          const f = lstatInRoot(root, `/etc/${file}`);
          if (!f.stat?.isFile()) return undefined;
          for (const line of readFileSync(f.path, "utf8").split("\n")) {
            const f = line.split(":");
            if (f[0] === name) return Number(f[field]);
          }
        } catch { /* none */ }
        return undefined;
      };
      const uid = look("passwd", u, 2);
      if (uid === undefined) throw new BadParameterError(`unable to convert uid/gid chown string to host mapping: can't find uid for user ${u}`);
      let gid: number | undefined = g !== undefined ? look("group", g, 2) : undefined;
      if (g !== undefined && gid === undefined) throw new BadParameterError(`unable to convert uid/gid chown string to host mapping: can't find gid for group ${g}`);
      if (gid === undefined) gid = /^\d+$/.test(u) ? uid : look("passwd", u, 3) ?? uid;
      return [uid, gid];
    });
  }
}

