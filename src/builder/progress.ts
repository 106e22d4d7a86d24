/**
 * The solver's progress as BuildKit reports it (lib/build-progress.ts renders it): numbered vertices, each
 * started, CACHED or DONE (or failed), with its log and status lines. The names are BuildKit's: the internal
 * steps (`[internal] load build definition from Dockerfile`, `[internal] load metadata for <image>`), a
 * stage's filesystem steps as `[<stage> k/n] <instruction>` (the stage name only when the Dockerfile has more
 * than one stage; `stage-<i>` for an unnamed one; k/n counting FROM, RUN, COPY, ADD and WORKDIR: the others
 * change only the config and are not shown), and `exporting to image`.
 */
import type { ProgressEvent } from "../lib/build-progress.js";
import { parseReference } from "../oci/reference.js";
import type { Dockerfile, Instruction, Stage } from "./instructions.js";

export interface Vertex {
  readonly id: number;
  cached(): void;
  log(chunk: Buffer | string): void;
  status(text: string): void;
  done(error?: unknown): void;
}

/** Instructions that make a filesystem step (shown as a vertex). */
export function isFsStep(ins: Instruction): boolean {
  return ins.keyword === "RUN" || ins.keyword === "COPY" || ins.keyword === "ADD" || ins.keyword === "WORKDIR";
}

/** An image reference as BuildKit names it in a FROM vertex: docker.io/library/busybox, the tag only when given. */
export function fullName(ref: string): string {
  try {
    const r = parseReference(ref);
    return `${r.domain}/${r.path}${r.tag && /:[^/]+$/.test(ref.split("@")[0]) ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
  } catch { return ref; }
}

/** As `fullName`, with the implied tag: docker.io/library/busybox:latest (the metadata vertex's name). */
export function fullNameTagged(ref: string): string {
  try {
    const r = parseReference(ref);
    return `${r.domain}/${r.path}${r.digest ? `@${r.digest}` : `:${r.tag ?? "latest"}`}`;
  } catch { return ref; }
}

export class BuildProgress {
  private next = 1;
  constructor(private readonly emit: (e: ProgressEvent) => void, private readonly now: () => number = Date.now) {}

  /** A new vertex, started now. */
  start(name: string): Vertex {
    const id = this.next++;
    const started = this.now();
    let finished = false, wasCached = false;
    this.emit({ v: { id, name, started } });
    return {
      id,
      cached: () => { wasCached = true; },
      log: (chunk) => { if (!finished) this.emit({ log: { id, t: this.now() - started, data: chunk.toString() } }); },
      status: (text) => { if (!finished) this.emit({ status: { id, text } }); },
      done: (error?: unknown) => {
        if (finished) return;
        finished = true;
        const e = error === undefined ? undefined : error instanceof Error ? error.message : String(error);
        this.emit({ v: { id, name, started, completed: this.now(), ...(wasCached && !e ? { cached: true } : {}), ...(e ? { error: e } : {}) } });
      },
    };
  }

  /** A vertex that is done at once (the internal steps that take no time of their own). */
  instant(name: string, statuses: string[] = []): void {
    const v = this.start(name);
    for (const s of statuses) v.status(s);
    v.done();
  }

  /** The name of a stage's step: `[build 2/3] RUN ...`. */
  static stepName(df: Dockerfile, stage: Stage, k: number, text: string): string {
    const n = 1 + stage.instructions.filter(isFsStep).length;
    const prefix = df.stages.length > 1 ? `${stage.name ?? `stage-${stage.index}`} ` : "";
    return `[${prefix}${k}/${n}] ${text}`;
  }
}
