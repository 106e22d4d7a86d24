/**
 * Dockerfile parser: text → global ARGs + stages of typed instructions.
 *
 * This is the first pass of `berth build` (BuildKit's
 * `frontend/dockerfile/parser` then `instructions`). It runs nothing and
 * expands nothing: every value is kept as written, quotes and `$VAR` included,
 * and the executor expands the instructions Docker expands (see expand.ts,
 * {@link EXPANSION}) with the variables in scope at that step.
 *
 * What it follows from BuildKit:
 * - parser directives (`# syntax=`, `# escape=`, `# check=`) only at the very
 *   top: the first line that is not one (an instruction, another comment, a
 *   blank line) ends them;
 * - lines ending in the escape character continue on the next line (unless
 *   that escape is itself escaped); comment lines and blank lines inside a
 *   continuation are skipped, the latter with a warning; continuation lines
 *   keep their leading whitespace;
 * - heredocs for RUN, COPY and ADD (also under ONBUILD), shell form only:
 *   `<<EOF`, `<<-EOF` (leading tabs stripped; see {@link heredocData}),
 *   `<<"EOF"`/`<<'EOF'` (no expansion), `3<<EOF`, several per line read in
 *   order;
 * - the exec (JSON) form is used when the arguments are a valid JSON array of
 *   strings; anything else is the shell form (`RUN ['a']` is shell form); an
 *   array with a non-string is an error;
 * - flags are `--name=value` (or `--name` for booleans) before the arguments,
 *   checked per instruction;
 * - error wording of BuildKit, with the line, e.g.
 *   `dockerfile parse error on line 3: unknown instruction: FOO`.
 */
import type { EscapeToken } from "./expand.js";
import { parseNodes } from "./parser.js";
import { parseInstruction, DockerfileParseError, type ArgInstruction, type Dockerfile, type Instruction, type Stage } from "./instructions.js";

export type { EscapeToken } from "./expand.js";
export { parseGoDuration } from "../lib/duration.js";
export * from "./instructions.js";
export { parseRunMount, type RunMount, type MountType } from "./flags.js";

/** Parses a Dockerfile. Throws {@link DockerfileParseError}. */
export function parseDockerfile(text: string): Dockerfile {
  const { nodes, directives, warnings } = parseNodes(text);
  if (nodes.length === 0) throw new DockerfileParseError("file with no instructions");
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, number>();
  for (const node of nodes) {
    const ins = parseInstruction(node);
    if (ins.keyword === "FROM") {
      if (ins.name !== undefined) {
        if (names.has(ins.name)) throw new DockerfileParseError(`duplicate stage name "${ins.name}"`, ins.line, ins.endLine);
        names.set(ins.name, stages.length);
      }
      stages.push({
        index: stages.length,
        name: ins.name,
        image: ins.image,
        platform: ins.platform,
        from: ins,
        instructions: [],
      });
      continue;
    }
    if (stages.length === 0) {
      if (ins.keyword === "ARG") {
        globalArgs.push(ins);
        continue;
      }
      throw new DockerfileParseError("no build stage in current context", ins.line, ins.endLine);
    }
    stages[stages.length - 1].instructions.push(ins);
  }
  if (stages.length === 0) throw new DockerfileParseError("dockerfile contains no stages to build");
  return {
    escapeToken: directives.escape,
    directives: { ...directives.values },
    globalArgs,
    stages,
    warnings,
  };
}

/**
 * Parses ONBUILD triggers (the `expression`s stored in a base image) into
 * instructions, as a child build runs them right after its FROM.
 */
export function parseOnbuildTriggers(triggers: readonly string[], escapeToken: EscapeToken = "\\"): Instruction[] {
  if (triggers.length === 0) return [];
  const { nodes } = parseNodes(triggers.join("\n"), escapeToken);
  const out: Instruction[] = [];
  for (const node of nodes) {
    const ins = parseInstruction(node);
    if (ins.keyword === "FROM") {
      throw new DockerfileParseError("FROM isn't allowed as an ONBUILD trigger", ins.line, ins.endLine);
    }
    out.push(ins);
  }
  return out;
}

/**
 * Docker's error context (BuildKit errdefs Source.Print): the file name and
 * first line, then the lines around the error with `>>>` on the failing ones.
 *
 *     Dockerfile:3
 *     --------------------
 *        1 |     FROM alpine
 *        2 |
 *        3 | >>> FOO bar
 *        4 |     RUN x
 *        5 |
 *     --------------------
 */
export function formatErrorSnippet(text: string, line: number, endLine = line, filename = "Dockerfile"): string {
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  if (line < 1 || line > lines.length) return "";
  let start = line;
  let end = Math.min(Math.max(endLine, line), lines.length);
  const pad = start === end ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (start > 1) {
      start--;
      p++;
    }
    if (end !== lines.length) {
      end++;
      p++;
    }
  }
  const bar = "--------------------";
  let out = `${filename}:${line}\n${bar}\n`;
  for (let i = start; i <= end; i++) {
    const mark = i >= line && i <= Math.max(endLine, line) ? ">>>" : "   ";
    out += ` ${String(i).padStart(3)} | ${mark} ${lines[i - 1]}\n`;
  }
  return out + bar + "\n";
}

