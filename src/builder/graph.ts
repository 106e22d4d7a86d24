/**
 * Pass 3 of the builder: the instructions as a graph of steps, as BuildKit's LLB.
 *
 * A build's graph has one node per stage the target needs (the others are never built), each a chain
 * of steps; a stage depends on the stages its FROM and its `COPY --from` / `RUN --mount=from=` name.
 * Stages with no path between them are independent: the solver (executor.ts) runs them side by side.
 *
 * Every step has a digest, its cache key: the parent step's digest (for a FROM, the base image's
 * content digest), the instruction as written, the build args it sees, and the content digests of its
 * inputs (the files a COPY copies: names, modes, bytes; never mtimes). The same digest means the same
 * step, wherever it appears: in two stages of one build, in two builds, before and after a restart.
 */
import { createHash } from "node:crypto";
import { BadParameterError } from "../lib/errors.js";
import type { Dockerfile, Instruction, Stage } from "./instructions.js";
import { parseRunMount } from "./flags.js";
import { expandString } from "./expand.js";

export interface StageNode {
  stage: Stage;
  /** Indices of the stages this one needs built first (its FROM, COPY --from, RUN --mount from=). */
  deps: number[];
  /** The number of this stage's FROM step among the build's steps (1-based, global ARGs first). */
  firstStep: number;
}

export interface BuildGraph {
  /** The stages the target needs, in file order (a dependency always comes before its dependents). */
  stages: StageNode[];
  /** The target stage (the last one of `stages`). */
  target: number;
  /** How many steps the build shows: the global ARGs, then each needed stage's FROM and instructions. */
  total: number;
}

export interface GraphOptions {
  target?: string;
  buildArgs?: Record<string, string>;
  /** The automatic platform ARGs (platform.ts): in the global scope without an ARG line. */
  autoArgs?: Record<string, string>;
}

/**
 * The graph of a parsed Dockerfile. Stage references are resolved as the executor resolves them: a FROM
 * by its image word expanded with the global ARGs; a `--from` by its value expanded with the stage's
 * ARGs and ENVs as far as the Dockerfile tells them (a name or an index of an earlier stage; anything
 * else is an image).
 */
export function buildGraph(df: Dockerfile, opts: GraphOptions = {}): BuildGraph {
  const buildArgs = opts.buildArgs ?? {};
  const escapeToken = df.escapeToken;
  const auto = opts.autoArgs ?? {};
  const globals = new Map<string, string | undefined>(Object.entries(auto));
  for (const a of df.globalArgs) for (const v of a.vars) {
    const dflt = v.value !== undefined ? expandString(v.value, (n) => globals.get(n), { escapeToken }) : auto[v.key];
    globals.set(v.key, v.key in buildArgs ? buildArgs[v.key] : dflt);
  }
  let last = df.stages.length - 1;
  if (opts.target) {
    const t = df.stages.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) throw new BadParameterError(`failed to reach build target ${opts.target} in Dockerfile`);
    last = t.index;
  }
  const byName = (word: string, before: number): number | undefined => {
    const w = word.toLowerCase();
    const s = df.stages.find((x) => x.index < before && (x.name === w || String(x.index) === w));
    return s?.index;
  };
  const deps = df.stages.map((stage) => {
    const out = new Set<number>();
    const from = byName(expandString(stage.image, (n) => globals.get(n), { escapeToken }), stage.index);
    if (from !== undefined) out.add(from);
    const vars = new Map<string, string | undefined>();
    const lookup = (n: string) => vars.get(n);
    const ex = (s: string) => { try { return expandString(s, lookup, { escapeToken }); } catch { return s; } };
    for (const ins of stage.instructions) {
      if (ins.keyword === "ARG") for (const a of ins.vars) vars.set(a.key, a.key in buildArgs ? buildArgs[a.key] : a.value !== undefined ? ex(a.value) : globals.get(a.key));
      else if (ins.keyword === "ENV") for (const p of ins.pairs) vars.set(p.key, ex(p.value));
      for (const ref of stageRefs(ins, ex)) {
        const i = byName(ref, stage.index);
        if (i !== undefined) out.add(i);
      }
    }
    return [...out];
  });
  const needed = new Set<number>();
  const visit = (i: number): void => { if (needed.has(i)) return; needed.add(i); for (const d of deps[i]) visit(d); };
  visit(last);
  let step = df.globalArgs.length;
  const stages: StageNode[] = [];
  for (const stage of df.stages) {
    if (!needed.has(stage.index)) continue;
    stages.push({ stage, deps: deps[stage.index], firstStep: step + 1 });
    step += 1 + stage.instructions.length;
  }
  return { stages, target: last, total: step };
}

/** The stage (or image) words an instruction reads from: COPY --from, RUN --mount=...,from=. */
function stageRefs(ins: Instruction, ex: (s: string) => string): string[] {
  if (ins.keyword === "COPY" && ins.from) return [ex(ins.from)];
  if (ins.keyword === "RUN") {
    const out: string[] = [];
    for (const m of ins.mounts) {
      try { const r = parseRunMount(m, ex); if (r.from) out.push(r.from); } catch { /* the step reports it */ }
    }
    return out;
  }
  return [];
}

/** Two stages are independent when neither needs the other, directly or through others. */
export function independent(g: BuildGraph, a: number, b: number): boolean {
  const deps = new Map(g.stages.map((s) => [s.stage.index, s.deps]));
  const reaches = (from: number, to: number): boolean => {
    const seen = new Set<number>();
    const walk = (i: number): boolean => {
      if (i === to) return true;
      if (seen.has(i)) return false;
      seen.add(i);
      return (deps.get(i) ?? []).some(walk);
    };
    return walk(from);
  };
  return !reaches(a, b) && !reaches(b, a);
}

/**
 * A step's digest: what the step is made of, hashed. `parent` is the previous step's digest (or the base
 * image's ID for the first); `args` the build args the step sees (K=V); `inputs` the content digests and
 * settings the step depends on beyond its text (a COPY's files by content, its destination, owner, mode).
 */
export function stepDigest(parent: string, ins: { keyword: string; original: string }, args: readonly string[], inputs: unknown = null): string {
  return "sha256:" + createHash("sha256").update(JSON.stringify(["step/v2", parent, ins.keyword, ins.original, args, inputs])).digest("hex");
}
