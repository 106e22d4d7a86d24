/**
 * What a step implementation is given: the stage's state it moves on, and the solver's services (the
 * per-build dedupe and cache, the images of stages and bases, the stop signal), as an explicit context
 * instead of the solver's locals.
 */
import type { ContainerConfigSpec, Platform } from "../../oci/image.js";
import type { EscapeToken, Instruction } from "../dockerfile.js";
import type { StageOutput } from "../schedule.js";
import type { BuildBackend, BuildImage, BuildOptions } from "../types.js";

/** A stage being built: the image its steps have made so far and what the next steps see. */
export interface State extends StageOutput {
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

/** A stage's image as a FROM or --from names it, once built. */
export interface StageResult { image: string | null; digest: string }

export interface StepContext {
  backend: BuildBackend;
  opts: BuildOptions;
  escapeToken: EscapeToken;
  /** The global ARGs (for an ARG line with no default of its own). */
  globals: ReadonlyMap<string, string | undefined>;
  buildArgs: Readonly<Record<string, string>>;
  /** The build args some ARG consumed (the rest are warned about). */
  used: Set<string>;
  /** Fired when the build stops (a stage failed, the client went away). */
  signal: AbortSignal;
  /** Runs a step once per build and through the cache (the solver's dedupe: executor.ts). */
  once(st: State, key: string, build: () => Promise<void>): Promise<void>;
  /** The step's digest: its parent's, the instruction, the args it sees, and its other inputs. */
  keyOf(st: State, ins: Instruction, extra?: unknown): string;
  /** An earlier stage's image, as a FROM or --from word names it; undefined when the word names no stage. */
  stageImage(word: string, before: number): StageResult | undefined;
  /** A base image, resolved (or pulled) once per build. */
  baseImage(ref: string, pull: boolean, say: (line: string) => void, platform?: Platform): Promise<BuildImage>;
  /** Moves the state on to a cached image ("Using cache"); false when that image is gone. */
  useCached(st: State, key: string, id: string | null | undefined): Promise<boolean>;
}

export const short = (id: string): string => id.replace(/^sha256:/, "").slice(0, 12);

export function envMap(env: string[] = []): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) { const i = e.indexOf("="); m.set(i < 0 ? e : e.slice(0, i), i < 0 ? "" : e.slice(i + 1)); }
  return m;
}

export function setEnv(env: string[] = [], key: string, value: string): string[] {
  return [...env.filter((e) => e.split("=", 1)[0] !== key), `${key}=${value}`];
}

/** The variables a word of the step sees: the config's environment, then the stage's ARGs. */
export function vars(st: State): (n: string) => string | undefined {
  const env = envMap(st.config.Env);
  return (n) => (env.has(n) ? env.get(n) : st.args.has(n) ? st.args.get(n) : undefined);
}

/** ARGs with values, as RUN sees them (environment for the command, not persisted). */
export function argEnv(st: State): string[] {
  const env = envMap(st.config.Env);
  return [...st.args].filter(([k, v]) => v !== undefined && !env.has(k)).map(([k, v]) => `${k}=${v}`);
}
