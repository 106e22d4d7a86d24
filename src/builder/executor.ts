/**
 * The build executor, the solver of the step graph (graph.ts): it builds only the stages the target needs,
 * each once the stages it names are built, independent ones side by side (at most as many as the machine
 * has cores), and prints what Docker's classic builder prints ("Step 2/5 : RUN ...", " ---> Running in
 * ...", " ---> <id>", "Successfully built ..."), each stage's lines together and in file order. Each step
 * makes an image; a step whose digest (the parent step's digest, the instruction, the build args it sees
 * and, for COPY/ADD, the content of what is copied) was built before, by this build or an earlier one,
 * reuses that image ("Using cache").
 *
 * The executor is the solver only: the graph walk, the scheduling, the per-build dedupe and the cache by
 * step digest, base images, the final label, tags. What each instruction does is in steps/ (config,
 * workdir, run and its mounts, copy, owner), each a function of an explicit StepContext (steps/context.ts)
 * that this solver is.
 *
 * The executor knows nothing of containers or stores: a BuildBackend (types.ts), which
 * the engine provides, resolves and pulls images, runs RUN steps in a
 * container and commits them, makes images from a parent plus a layer or a
 * config change, and mounts an image's filesystem for COPY --from.
 */
import { BuildCancelledError } from "./errors.js";
import { readDockerfile, dropIgnoredBuildFiles } from "./sources.js";
import { OrderedOutput, Semaphore, type StageOutput } from "./schedule.js";
import { defaultDockerfileName } from "../lib/build-context.js";
import { BadParameterError } from "../lib/errors.js";
import { lstatInRoot } from "../lib/securejoin.js";
import { trace } from "../lib/trace.js";
import { hostPlatform, type ContainerConfigSpec, type Platform } from "../oci/image.js";
import { formatPlatform, normalizePlatform, platformArgs, samePlatform } from "./platform.js";
import { parseDockerfile, type Dockerfile, type Instruction } from "./dockerfile.js";
import { expandString } from "./expand.js";
import { buildGraph, stepDigest, type StageNode } from "./graph.js";
import { BuildProgress, fullName, fullNameTagged, isFsStep, type Vertex } from "./progress.js";
import { runInstruction, short, argEnv, type State, type StepContext, type StageResult } from "./steps/index.js";
import { nopConfig, type BuildBackend, type BuildImage, type BuildOptions } from "./types.js";
import { availableParallelism } from "node:os";

export type { BuildBackend, BuildImage, BuildOptions, RunMountSpec, StepMeta, StepConfig } from "./types.js";
export { nopConfig } from "./types.js";

export { BuildCancelledError };

/** Args every build knows without an ARG line (Docker's predefined proxy args). */
const PREDEFINED_ARGS = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

export function build(backend: BuildBackend, opts: BuildOptions): Promise<string> {
  return new Solver(backend, opts).run();
}

/** What a stage's steps write to: the client's stream (in file order), or the progress's vertices. */
type StageOut = StageOutput & Pick<State, "onCached" | "status">;

/** One build: the graph walk, the per-build dedupe and cache, the final image. The steps it runs are steps/'s. */
class Solver implements StepContext {
  readonly escapeToken: Dockerfile["escapeToken"];
  readonly buildArgs: Record<string, string>;
  readonly used = new Set<string>();
  readonly globals: Map<string, string | undefined>;
  private readonly dockerfileName: string;
  private readonly text: string;
  private readonly df: Dockerfile;
  private readonly graph: ReturnType<typeof buildGraph>;
  private readonly prog: BuildProgress | undefined;
  private readonly printer: OrderedOutput;
  /** A failing stage stops the others (their running RUN is killed); the client going away stops them all. */
  private readonly stop = new AbortController();
  /** Steps built by this build (or being built now), by digest: the same step met again (in another stage) waits for this one and takes its image, --no-cache or not. */
  private readonly inflight = new Map<string, Promise<string | null | undefined>>();
  /** Base images resolved (or pulled) once per build, however many stages name them. */
  private readonly bases = new Map<string, Promise<BuildImage>>();
  private readonly done = new Map<number, StageResult>();
  private readonly running = new Map<number, Promise<void>>();
  private readonly slots = new Semaphore(Math.max(1, availableParallelism()));
  private readonly shownFrom = new Set<string>();
  private firstError: unknown;

  constructor(readonly backend: BuildBackend, readonly opts: BuildOptions) {
    const inContext = (rel: string) => !!lstatInRoot(opts.contextDir, rel).stat?.isFile();
    // No name given: Dockerfile, or Containerfile when the context has none (as Podman).
    this.dockerfileName = opts.dockerfile || defaultDockerfileName(inContext);
    this.text = opts.dockerfileText ?? readDockerfile(opts.contextDir, this.dockerfileName);
    dropIgnoredBuildFiles(opts.contextDir, this.dockerfileName);
    this.df = parseDockerfile(this.text);
    this.escapeToken = this.df.escapeToken;
    this.buildArgs = opts.buildArgs ?? {};
    // Global ARGs: for FROM lines; the automatic platform ARGs are there without an ARG line (platform.ts).
    const autoArgs = platformArgs(opts.platform ?? hostPlatform());
    this.globals = new Map<string, string | undefined>(Object.entries(autoArgs));
    for (const a of this.df.globalArgs) for (const v of a.vars) {
      const dflt = v.value !== undefined ? this.expandGlobal(v.value) : autoArgs[v.key];
      this.globals.set(v.key, v.key in this.buildArgs ? this.buildArgs[v.key] : dflt);
      if (v.key in this.buildArgs) this.used.add(v.key);
    }
    // Pass 3: the graph. Only the stages the target needs are built; each starts once the stages it needs
    // are built, side by side with the others, at most as many at once as the machine has cores.
    this.graph = buildGraph(this.df, { target: opts.target, buildArgs: this.buildArgs, autoArgs });
    this.prog = opts.progress;
    // Output: in file order, as the classic builder prints it. The first unfinished stage streams; the
    // others, running beside it, are held and shown when their turn comes.
    this.printer = new OrderedOutput(this.graph.stages.length, opts);
  }

  get signal(): AbortSignal { return this.stop.signal; }

  async run(): Promise<string> {
    const { opts, prog, graph } = this;
    if (prog) {
      prog.instant(`[internal] load build definition from ${this.dockerfileName}`, [`transferring dockerfile: ${Buffer.byteLength(this.text)}B done`]);
      prog.instant("[internal] load .dockerignore", ["transferring context: 2B done"]);
      for (const ref of new Set(graph.stages.map((s) => this.fromRef(s.stage)).filter((r): r is string => !!r))) prog.instant(`[internal] load metadata for ${fullNameTagged(ref)}`);
    }
    let step = 0;
    for (const a of this.df.globalArgs) opts.say(`Step ${++step}/${graph.total} : ${a.original}\n`);
    const onAbort = () => this.stop.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    graph.stages.forEach((node, slot) => {
      const p = this.runStage(node, slot);
      p.catch(() => {});
      this.running.set(node.stage.index, p);
    });
    const results = await Promise.allSettled(this.running.values());
    opts.signal?.removeEventListener("abort", onAbort);
    this.printer.flush();
    if (results.some((r) => r.status === "rejected")) throw this.firstError ?? new BuildCancelledError();
    const last = this.done.get(graph.target)?.image ?? null;
    if (opts.signal?.aborted) throw new BuildCancelledError();
    if (!last) throw new BadParameterError("No image was generated. Is your Dockerfile empty?");
    return this.finish(last);
  }

  private checkCancel(): void { if (this.stop.signal.aborted) throw new BuildCancelledError(); }

  private expandGlobal(word: string): string {
    return expandString(word, (n) => this.globals.get(n), { escapeToken: this.escapeToken });
  }

  /** The image a stage's FROM names, as progress shows it; undefined for scratch, an earlier stage or a local context. */
  private fromRef(stage: StageNode["stage"]): string | undefined {
    const ref = this.expandGlobal(stage.image);
    if (ref.toLowerCase() === "scratch" || this.df.stages.some((x) => x.index < stage.index && (x.name === ref.toLowerCase() || String(x.index) === ref))) return undefined;
    // A named context (--build-context) that is an image is shown as that image.
    const nc = this.opts.contexts?.get(ref);
    return nc?.dir ? undefined : nc?.image ?? ref;
  }

  private async runStage(node: StageNode, slot: number): Promise<void> {
    const { prog, df } = this;
    let held = false;
    /** The step being run, when progress is reported. */
    let cur: Vertex | undefined;
    try {
      for (const dep of node.deps) await this.running.get(dep);
      await this.slots.acquire();
      held = true;
      this.checkCancel();
      let pulled = false;
      const out: StageOut = prog
        ? { say: () => {}, output: (c) => cur?.log(c), onCached: () => cur?.cached(), status: (l) => { pulled = true; cur?.status(l.trimEnd()); } }
        : this.printer.stream(slot);
      const ref = prog ? this.fromRef(node.stage) : undefined;
      if (prog && ref !== undefined && !this.shownFrom.has(ref)) { this.shownFrom.add(ref); cur = prog.start(BuildProgress.stepName(df, node.stage, 1, `FROM ${fullName(ref)}`)); }
      const st = await this.fromStage(node, out);
      if (cur && !pulled) cur.cached();
      cur?.done(); cur = undefined;
      let n = node.firstStep, k = 1;
      for (const ins of node.stage.instructions) {
        this.checkCancel();
        n++;
        out.say(`Step ${n}/${this.graph.total} : ${ins.original}\n`);
        trace(`build step ${n}`);
        if (prog && isFsStep(ins)) cur = prog.start(BuildProgress.stepName(df, node.stage, ++k, ins.original));
        await runInstruction(this, st, ins);
        cur?.done(); cur = undefined;
        out.say(` ---> ${st.image ? short(st.image) : "scratch"}\n`);
      }
      this.done.set(node.stage.index, { image: st.image, digest: st.digest });
    } catch (e) {
      cur?.done(e instanceof BuildCancelledError ? "context canceled" : e);
      if (this.firstError === undefined && !(e instanceof BuildCancelledError && !this.opts.signal?.aborted)) this.firstError = e;
      this.stop.abort();
      throw e;
    } finally {
      if (held) this.slots.release();
      this.printer.finish(slot);
    }
  }

  private async fromStage(node: StageNode, out: StageOut): Promise<State> {
    const { opts, backend } = this;
    const stage = node.stage;
    out.say(`Step ${node.firstStep}/${this.graph.total} : ${stage.from.original}\n`);
    const ref = this.expandGlobal(stage.image);
    let base: BuildImage | null = null;
    let digest: string;
    const parentStage = ref.toLowerCase() === "scratch" ? undefined : this.stageImage(ref, stage.index);
    // FROM --platform=<p> (often $BUILDPLATFORM): that platform's image; else the build's (undefined: the host's, as before).
    const fromPlatform = stage.from.platform ? normalizePlatform(this.expandGlobal(stage.from.platform)) : opts.platform;
    if (ref.toLowerCase() === "scratch") { base = null; digest = fromPlatform && !samePlatform(fromPlatform, hostPlatform()) ? `scratch:${formatPlatform(fromPlatform)}` : "scratch"; }
    else if (parentStage) {
      base = parentStage.image ? (await backend.imageById(parentStage.image))! : null;
      digest = parentStage.digest;
    } else {
      const nc = opts.contexts?.get(ref);
      if (nc?.dir) throw new BadParameterError(`FROM ${ref}: a local build context is not an image (COPY --from=${ref} reads it)`);
      base = await this.baseImage(nc?.image ?? ref, !!opts.pull, out.status ?? out.say, fromPlatform);
      digest = base.id;
    }
    out.say(` ---> ${base ? short(base.id) : "scratch"}\n`);
    const config: ContainerConfigSpec = base ? { ...base.config } : { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] };
    return { image: base?.id ?? null, digest, config, args: new Map(), shell: config.Shell ?? ["/bin/sh", "-c"], cmdSet: false, stage: stage.index, ...out };
  }

  /** The built image: --label's (and the inline cache's) labels on it, the unused build args warned about, the tags set. */
  private async finish(built: string): Promise<string> {
    const { opts, backend, prog } = this;
    let last = built;
    const finalLabels = { ...(opts.labels ?? {}), ...(opts.finalLabels ? await opts.finalLabels(last) : {}) };
    if (Object.keys(finalLabels).length) {
      const img = (await backend.imageById(last))!;
      const cfg = { ...img.config, Labels: { ...(img.config.Labels ?? {}), ...finalLabels } };
      last = await backend.commit(last, null, cfg, { created_by: "LABEL (--label)", empty_layer: true }, { containerConfig: nopConfig(cfg, "LABEL (--label)", last) });
    }
    const unused = Object.keys(this.buildArgs).filter((k) => !this.used.has(k) && !PREDEFINED_ARGS.includes(k));
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
  }

  baseImage(ref: string, pull: boolean, say: (l: string) => void, platform?: Platform): Promise<BuildImage> {
    const k = `${pull}\0${ref}\0${platform ? formatPlatform(platform) : ""}`;
    if (!this.bases.has(k)) this.bases.set(k, this.backend.image(ref, pull, say, platform));
    return this.bases.get(k)!;
  }

  /** A stage's image, as a FROM or a --from names it: an earlier stage's (built by now), else undefined. */
  stageImage(word: string, before: number): StageResult | undefined {
    const w = word.toLowerCase();
    const s = this.df.stages.find((x) => x.index < before && (x.name === w || String(x.index) === w));
    return s ? this.done.get(s.index) : undefined;
  }

  /** Moves the state on to a cached step's image ("Using cache"); false when that image is gone. */
  async useCached(st: State, key: string, id: string | null | undefined): Promise<boolean> {
    const img = id ? await this.backend.imageById(id) : undefined;
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
  async once(st: State, key: string, build: () => Promise<void>): Promise<void> {
    const prior = this.inflight.get(key);
    if (prior && (await this.useCached(st, key, await prior))) return;
    let settle!: (id: string | null | undefined) => void;
    this.inflight.set(key, new Promise((r) => { settle = r; }));
    try {
      if (!this.opts.noCache && (await this.useCached(st, key, this.opts.cache.get(key)))) { settle(st.image); return; }
      await build();
      this.opts.cache.set(key, st.image!);
      st.digest = key;
      settle(st.image);
    } catch (e) {
      this.inflight.delete(key);
      settle(undefined);
      throw e;
    }
  }

  keyOf(st: State, ins: Instruction, extra: unknown = null): string {
    return stepDigest(st.digest, ins, argEnv(st), extra);
  }
}
