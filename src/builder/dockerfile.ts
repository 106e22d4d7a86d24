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
import { BadParameterError } from "../lib/errors.js";
import { isSpace, lexHeredocWords, processWords, type EscapeToken } from "./expand.js";

export type { EscapeToken } from "./expand.js";
import { parseGoDuration } from "../lib/duration.js";
import { ramInBytes } from "../lib/units.js";
export { parseGoDuration };

/** Every instruction keyword Docker knows, upper case. */
export const KEYWORDS = [
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
  "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
] as const;
export type Keyword = (typeof KEYWORDS)[number];

/** A heredoc attached to a RUN/COPY/ADD line. */
export interface Heredoc {
  /** The delimiter word, quotes removed (`<<"EOF"` → `EOF`). */
  name: string;
  /** File descriptor written before `<<` (`3<<EOF`), 0 when none. */
  fd: number;
  /** False when any part of the delimiter was quoted: no variable expansion. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body (see {@link heredocData}). */
  chomp: boolean;
  /** The body exactly as in the file, line endings included, tabs not yet stripped. */
  content: string;
}

/** Fields every instruction has. */
export interface InstructionBase {
  keyword: Keyword;
  /** Flags as written, e.g. `["--mount=type=cache,target=/root/.cache"]`. */
  flags: string[];
  /** Arguments as the parser split them, before any expansion. */
  args: string[];
  /** Exec (JSON array) form. */
  json: boolean;
  /** The logical line: continuations joined, comment lines dropped, trimmed. */
  original: string;
  /** First line of the instruction in the Dockerfile, 1-based. */
  line: number;
  /** Last line, including continuation lines and heredoc bodies. */
  endLine: number;
  heredocs: Heredoc[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface FromInstruction extends InstructionBase {
  keyword: "FROM";
  /** Base image (or stage name), unexpanded. */
  image: string;
  /** Stage name after AS, lower-cased. */
  name?: string;
  /** --platform value, unexpanded. */
  platform?: string;
}

export interface ArgInstruction extends InstructionBase {
  keyword: "ARG";
  /** Declared names and their defaults (undefined when none), unexpanded. */
  vars: { key: string; value: string | undefined }[];
}

export interface EnvInstruction extends InstructionBase {
  keyword: "ENV";
  /** Unexpanded; quotes and escapes are removed by expansion. */
  pairs: KeyValue[];
}

export interface LabelInstruction extends InstructionBase {
  keyword: "LABEL";
  pairs: KeyValue[];
}

export interface MaintainerInstruction extends InstructionBase {
  keyword: "MAINTAINER";
  maintainer: string;
}

interface CommandLine {
  /** Exec form: the argv. Shell form: one string, to run with the SHELL. */
  command: string[];
  /** True for the shell form (prepend the SHELL, e.g. `/bin/sh -c`). */
  shellForm: boolean;
}

export interface RunInstruction extends InstructionBase, CommandLine {
  keyword: "RUN";
  /** Raw --mount values (expand each field, then {@link parseRunMount}). */
  mounts: string[];
  network: "default" | "none" | "host";
  security: "sandbox" | "insecure";
}

export interface CmdInstruction extends InstructionBase, CommandLine {
  keyword: "CMD";
}

export interface EntrypointInstruction extends InstructionBase, CommandLine {
  keyword: "ENTRYPOINT";
}

export interface ShellInstruction extends InstructionBase {
  keyword: "SHELL";
  shell: string[];
}

export interface WorkdirInstruction extends InstructionBase {
  keyword: "WORKDIR";
  path: string;
}

export interface UserInstruction extends InstructionBase {
  keyword: "USER";
  user: string;
}

export interface StopsignalInstruction extends InstructionBase {
  keyword: "STOPSIGNAL";
  signal: string;
}

export interface ExposeInstruction extends InstructionBase {
  keyword: "EXPOSE";
  /** Unexpanded; Docker expands each with processWords (one may give several). */
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase {
  keyword: "VOLUME";
  volumes: string[];
}

/** A COPY/ADD source given inline as a heredoc: a file named `path` holding `data`. */
export interface InlineSource {
  path: string;
  /** Body with `<<-` tabs already stripped. */
  data: string;
  /** Expand variables in `data` (expand.ts expandHeredoc). */
  expand: boolean;
}

interface SourcesAndDest {
  /** Source paths/URLs, unexpanded; heredoc sources are in `contents`. */
  sources: string[];
  contents: InlineSource[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** --exclude patterns. */
  excludes: string[];
}

export interface CopyInstruction extends InstructionBase, SourcesAndDest {
  keyword: "COPY";
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase, SourcesAndDest {
  keyword: "ADD";
  checksum?: string;
  keepGitDir: boolean;
  /** --unpack, undefined when not given (Docker's default: unpack local archives). */
  unpack?: boolean;
}

/** Docker's HealthConfig: durations in nanoseconds, absent = inherit/default. */
export interface HealthConfig {
  /** ["NONE"], ["CMD", ...argv] or ["CMD-SHELL", command]. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  keyword: "HEALTHCHECK";
  health: HealthConfig;
}

export interface OnbuildInstruction extends InstructionBase {
  keyword: "ONBUILD";
  /** Keyword of the trigger, upper case (not validated, as in Docker). */
  trigger: string;
  /** The trigger text stored in the image config (heredocs appended). */
  expression: string;
}

/** An instruction inside a stage (FROM starts a stage and is not one of these). */
export type Instruction =
  | AddInstruction | ArgInstruction | CmdInstruction | CopyInstruction | EntrypointInstruction
  | EnvInstruction | ExposeInstruction | HealthcheckInstruction | LabelInstruction
  | MaintainerInstruction | OnbuildInstruction | RunInstruction | ShellInstruction
  | StopsignalInstruction | UserInstruction | VolumeInstruction | WorkdirInstruction;

export interface Stage {
  /** 0-based position; `--target` and `COPY --from=<n>` use it. */
  index: number;
  /** AS name, lower-cased; undefined for unnamed stages. */
  name?: string;
  /** Base image or earlier stage name, unexpanded (expand with the global ARGs). */
  image: string;
  platform?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export interface ParseWarning {
  line: number;
  message: string;
}

export interface Dockerfile {
  escapeToken: EscapeToken;
  /** Parser directives found at the top, lower-case names: syntax, escape, check. */
  directives: Record<string, string>;
  /** ARG instructions before the first FROM (usable in FROM lines). */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  warnings: ParseWarning[];
}

/**
 * A Dockerfile that cannot be parsed. `line`/`endLine` locate it (0 when the
 * error is about the whole file); `detail` is the message without location.
 */
export class DockerfileParseError extends BadParameterError {
  readonly line: number;
  readonly endLine: number;
  readonly detail: string;
  constructor(detail: string, line = 0, endLine = line) {
    super(line > 0 ? `dockerfile parse error on line ${line}: ${detail}` : detail);
    this.line = line;
    this.endLine = endLine;
    this.detail = detail;
  }
}

/** Heredoc body as a file gets it: with `<<-`, leading tabs of every line removed. */
export function heredocData(h: Heredoc): string {
  return h.chomp ? h.content.replace(/^\t+/gm, "") : h.content;
}

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

// ---------------------------------------------------------------------------
// Pass 1: text → nodes (BuildKit parser.Parse)

/** One logical instruction line, split but not yet interpreted. */
interface Node {
  /** Keyword as written. */
  cmd: string;
  /** Keyword lower-cased. */
  lower: string;
  flags: string[];
  args: string[];
  json: boolean;
  original: string;
  line: number;
  endLine: number;
  heredocs: Heredoc[];
  /** The trigger of an ONBUILD. */
  child?: Node;
}

/** An error in one instruction; located by the caller. */
class NodeError extends Error {}

const TOKEN_WHITESPACE = /[\t\v\f\r ]+/;
const VALID_DIRECTIVES = new Set(["syntax", "escape", "check"]);
const HEREDOC_INSTRUCTIONS = new Set(["add", "copy", "run"]);

class Directives {
  escape: EscapeToken = "\\";
  continuation = makeContinuationRe("\\");
  values: Record<string, string> = {};
  private done = false;
  private readonly seen = new Set<string>();

  /** Looks for `# key=value` at the top of the file (BuildKit DirectiveParser). */
  parseLine(line: string): void {
    if (this.done) return;
    if (!line.startsWith("#")) {
      this.done = true;
      return;
    }
    const m = /^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/.exec(line.slice(1).replace(/^\s+/, ""));
    if (!m) {
      this.done = true;
      return;
    }
    const key = m[1].toLowerCase();
    if (!VALID_DIRECTIVES.has(key)) {
      this.done = true;
      return;
    }
    if (this.seen.has(key)) throw new NodeError(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    this.values[key] = m[2];
    if (key === "escape") {
      if (m[2] !== "`" && m[2] !== "\\") throw new NodeError(`invalid escape token '${m[2]}' does not match \` or \\`);
      this.setEscape(m[2]);
    }
  }

  setEscape(e: EscapeToken): void {
    this.escape = e;
    this.continuation = makeContinuationRe(e);
  }
}

/** The escape as last non-blank character, not itself escaped, continues the line. */
function makeContinuationRe(escape: string): RegExp {
  const e = escape === "\\" ? "\\\\" : escape;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

/** Splits into lines keeping each line's ending (Go scanLines). */
function splitLines(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf("\n", start);
    if (i < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, "");
}

function trimLeadingSpace(s: string): string {
  let i = 0;
  const chars = Array.from(s);
  while (i < chars.length && isSpace(chars[i])) i++;
  return chars.slice(i).join("");
}

function isComment(line: string): boolean {
  return trimLeadingSpace(line).startsWith("#");
}

function trimContinuation(line: string, d: Directives): [string, boolean] {
  if (d.continuation.test(line)) return [line.replace(d.continuation, "$1"), false];
  return [line, true];
}

function parseNodes(
  text: string,
  escape?: EscapeToken,
): { nodes: Node[]; directives: Directives; warnings: ParseWarning[] } {
  const d = new Directives();
  if (escape !== undefined) d.setEscape(escape);
  const lines = splitLines(text);
  const nodes: Node[] = [];
  const warnings: ParseWarning[] = [];
  let idx = 0;
  let currentLine = 0;

  const processLine = (raw: string, stripLeft: boolean): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeadingSpace(token);
    try {
      d.parseLine(token);
    } catch (e) {
      if (e instanceof NodeError) throw new DockerfileParseError(e.message, currentLine + 1);
      throw e;
    }
    return isComment(token) ? "" : token;
  };

  while (idx < lines.length) {
    let raw = lines[idx++];
    if (currentLine === 0 && raw.startsWith("\ufeff")) raw = raw.slice(1);
    const first = processLine(raw, true);
    currentLine++;
    const startLine = currentLine;
    let [buf, isEnd] = trimContinuation(first, d);
    if (isEnd && buf === "") continue;

    let emptyContinuation = false;
    while (!isEnd && idx < lines.length) {
      const rawNext = lines[idx++];
      const p = processLine(rawNext, false);
      currentLine++;
      if (isComment(rawNext)) continue;
      if (trimLeadingSpace(trimNewline(p)) === "") {
        emptyContinuation = true;
        continue;
      }
      let part: string;
      [part, isEnd] = trimContinuation(p, d);
      buf += part;
    }
    if (emptyContinuation) {
      warnings.push({ line: startLine, message: `Empty continuation line found in: ${buf.trim()}` });
    }
    if (!isEnd) {
      warnings.push({ line: startLine, message: `Line continuation at end of file in: ${buf.trim()}` });
    }

    let node: Node;
    try {
      node = newNodeFromLine(buf, d.escape);
    } catch (e) {
      if (e instanceof NodeError) throw new DockerfileParseError(e.message, startLine, currentLine);
      throw e;
    }
    node.line = startLine;

    if (canContainHeredoc(node) && buf.includes("<<")) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(buf);
      } catch (e) {
        if (e instanceof NodeError) throw new DockerfileParseError(e.message, startLine, currentLine);
        throw e;
      }
      for (const doc of docs) {
        let terminated = false;
        while (idx < lines.length) {
          const rawDoc = lines[idx++];
          currentLine++;
          let candidate = trimNewline(rawDoc);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, "");
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          doc.content += rawDoc;
        }
        if (!terminated) throw new DockerfileParseError("unterminated heredoc", startLine, currentLine);
        node.heredocs.push(doc);
      }
    }
    node.endLine = currentLine;
    nodes.push(node);
  }
  return { nodes, directives: d, warnings };
}

function canContainHeredoc(node: Node): boolean {
  let n = node;
  if (n.lower === "onbuild" && n.child) n = n.child;
  return HEREDOC_INSTRUCTIONS.has(n.lower) && !n.json;
}

/** Splits `KEYWORD [--flags] rest` and dispatches on the keyword. */
function newNodeFromLine(line: string, escape: EscapeToken): Node {
  const trimmed = line.trim();
  const m = TOKEN_WHITESPACE.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  let flags: string[] = [];
  let rest = "";
  if (m) [rest, flags] = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
  rest = rest.trim();
  const lower = cmd.toLowerCase();
  const node: Node = {
    cmd, lower, flags, args: [], json: false, original: trimmed, line: 0, endLine: 0, heredocs: [],
  };
  switch (lower) {
    case "add":
    case "copy":
    case "volume":
      parseMaybeJSONToList(node, rest);
      break;
    case "cmd":
    case "entrypoint":
    case "run":
    case "shell":
      parseMaybeJSON(node, rest);
      break;
    case "arg":
      node.args = parseWords(rest, escape);
      break;
    case "env":
    case "label":
      node.args = parseNameVal(rest, lower.toUpperCase(), escape);
      break;
    case "expose":
    case "from":
      node.args = splitWhitespace(rest);
      break;
    case "healthcheck":
      parseHealthConfig(node, rest);
      break;
    case "maintainer":
    case "stopsignal":
    case "user":
    case "workdir":
      node.args = rest === "" ? [] : [rest];
      break;
    case "onbuild":
      if (rest !== "") {
        node.child = newNodeFromLine(rest, escape);
        node.args = [node.child.cmd, ...node.child.args];
      }
      break;
    default:
      break; // unknown: reported by pass 2
  }
  return node;
}

/**
 * Takes the leading `--flag[=value]` words off `line` (quotes and `\` work
 * inside them); a lone `--` ends the flags. Returns [rest, flags].
 */
function extractBuilderFlags(line: string): [string, string[]] {
  const SPACES = 0, WORD = 1, QUOTE = 2;
  const words: string[] = [];
  let phase = SPACES;
  let word = "";
  let quote = "";
  let blankOK = false;
  const c = Array.from(line);
  const restFrom = (pos: number): string => c.slice(pos).join("");
  for (let pos = 0; pos <= c.length; pos++) {
    const ch = c[pos];
    if (phase === SPACES) {
      if (pos === c.length) break;
      if (isSpace(ch)) continue;
      if (ch !== "-" || pos + 1 === c.length || c[pos + 1] !== "-") return [restFrom(pos), words];
      phase = WORD;
    }
    if (pos === c.length) {
      if (word !== "--" && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === WORD) {
      if (isSpace(ch)) {
        phase = SPACES;
        if (word === "--") return [restFrom(pos), words];
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = QUOTE;
        continue;
      }
      let w = ch;
      if (ch === "\\") {
        if (pos + 1 === c.length) continue;
        w = c[++pos];
      }
      word += w;
      continue;
    }
    // QUOTE
    if (ch === quote) {
      phase = WORD;
      continue;
    }
    let w = ch;
    if (ch === "\\") {
      if (pos + 1 === c.length) {
        phase = WORD;
        continue;
      }
      w = c[++pos];
    }
    word += w;
  }
  return ["", words];
}

/**
 * Splits into words on unquoted whitespace, keeping quotes and escapes in the
 * words (they are removed later by expansion). Used for ARG, ENV and LABEL.
 */
function parseWords(rest: string, escape: string): string[] {
  const SPACES = 0, WORD = 1, QUOTE = 2;
  const words: string[] = [];
  let phase = SPACES;
  let word = "";
  let quote = "";
  let blankOK = false;
  const c = Array.from(rest);
  for (let pos = 0; pos <= c.length; pos++) {
    let ch = c[pos];
    if (phase === SPACES) {
      if (pos === c.length) break;
      if (isSpace(ch)) continue;
      phase = WORD;
    }
    if (pos === c.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === WORD) {
      if (isSpace(ch)) {
        phase = SPACES;
        if (blankOK || word.length > 0) words.push(word);
        word = "";
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = QUOTE;
      }
      if (ch === escape) {
        if (pos + 1 === c.length) continue; // a trailing escape is dropped
        // keep the escape and the escaped character, even a quote
        word += ch;
        ch = c[++pos];
      }
      word += ch;
      continue;
    }
    // QUOTE
    if (ch === quote) phase = WORD;
    if (ch === escape && quote !== "'") {
      if (pos + 1 === c.length) {
        phase = WORD;
        continue;
      }
      word += ch;
      ch = c[++pos];
    }
    word += ch;
  }
  return words;
}

/**
 * ENV/LABEL: `key=value ...` pairs, or the legacy `key value with spaces`
 * (decided by whether the first word has a `=`). Returns [k, v, k, v, ...].
 */
function parseNameVal(rest: string, keyword: string, escape: string): string[] {
  const words = parseWords(rest, escape);
  if (words.length === 0) return [];
  if (!words[0].includes("=")) {
    const m = TOKEN_WHITESPACE.exec(rest);
    if (!m) throw new NodeError(`${keyword} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length)];
  }
  const out: string[] = [];
  for (const w of words) {
    const i = w.indexOf("=");
    if (i < 0) throw new NodeError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    out.push(w.slice(0, i), w.slice(i + 1));
  }
  return out;
}

function splitWhitespace(rest: string): string[] {
  return rest === "" ? [] : rest.split(TOKEN_WHITESPACE);
}

const NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only";

/** The arguments as a JSON array of strings, or undefined when they are not JSON. */
function parseJSON(rest: string): string[] | undefined {
  const s = trimLeadingSpace(rest);
  if (!s.startsWith("[")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const item of v as unknown[]) {
    if (typeof item !== "string") throw new NodeError(NOT_STRING_ARRAY);
    out.push(item);
  }
  return out;
}

function parseMaybeJSON(node: Node, rest: string): void {
  if (rest === "") return;
  const j = parseJSON(rest);
  if (j) {
    node.args = j;
    node.json = true;
  } else {
    node.args = [rest];
  }
}

function parseMaybeJSONToList(node: Node, rest: string): void {
  const j = parseJSON(rest);
  if (j) {
    node.args = j;
    node.json = true;
  } else {
    node.args = splitWhitespace(rest);
  }
}

function parseHealthConfig(node: Node, rest: string): void {
  const c = Array.from(rest);
  let sep = 0;
  while (sep < c.length && !isSpace(c[sep])) sep++;
  if (sep === 0) return;
  let next = sep;
  while (next < c.length && isSpace(c[next])) next++;
  const typ = c.slice(0, sep).join("");
  const sub: Node = { ...node, args: [], json: false };
  parseMaybeJSON(sub, c.slice(next).join(""));
  node.args = [typ, ...sub.args];
  node.json = sub.json;
}

const HEREDOC_RE = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/** Recognises one heredoc word (`<<EOF`, `<<-"EOF"`, `3<<EOF`); null otherwise. */
function parseHeredoc(src: string): Heredoc | null {
  const m = HEREDOC_RE.exec(src);
  if (!m) return null;
  const rest = m[3];
  if (rest === "") return null;
  let words: string[];
  let raw: string[];
  try {
    words = processWords(rest, () => undefined, { skipUnset: true });
    if (words.length !== 1) return null;
    raw = processWords(rest, () => undefined, { skipUnset: true, rawQuotes: true });
  } catch (e) {
    if (e instanceof BadParameterError) throw new NodeError(e.message);
    throw e;
  }
  if (raw.length !== words.length) throw new NodeError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  // Some part of the word was quoted when the quoted and unquoted lexings differ.
  const quotes = (s: string): number => (s.match(/['"]/g) ?? []).length;
  return {
    name: words[0],
    fd: m[1] === "" ? 0 : Number(m[1]),
    expand: quotes(words[0]) === quotes(raw[0]),
    chomp: m[2] === "-",
    content: "",
  };
}

function isHeredocWord(src: string): Heredoc | null {
  try {
    return parseHeredoc(src);
  } catch {
    return null;
  }
}

function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = lexHeredocWords(line, { escapeToken: "\\", rawQuotes: true, rawEscapes: true, skipUnset: true });
  } catch {
    return [];
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    const h = parseHeredoc(w);
    if (h) docs.push(h);
  }
  return docs;
}

// ---------------------------------------------------------------------------
// Pass 2: node → typed instruction (BuildKit instructions.ParseInstruction)

type FlagKind = "bool" | "string" | "strings";
type FlagValues = Map<string, string | boolean | string[]>;

/** Checks flags against what the instruction accepts (BuildKit BFlags). */
function parseFlags(raw: readonly string[], spec: Readonly<Record<string, FlagKind>>): FlagValues {
  const used: FlagValues = new Map();
  for (const a of raw) {
    if (!a.startsWith("--")) throw new NodeError(`arg should start with -- : ${a}`);
    if (a === "--") break;
    let name = a.slice(2);
    let value = "";
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (kind === undefined) throw new NodeError(`unknown flag: ${name}`);
    if (used.has(name) && kind !== "strings") throw new NodeError(`duplicate flag specified: ${name}`);
    switch (kind) {
      case "bool": {
        if (eq >= 0 && value === "") throw new NodeError(`missing a value on flag: ${name}`);
        const lower = value.toLowerCase();
        if (lower === "" || lower === "true") used.set(name, true);
        else if (lower === "false") used.set(name, false);
        else throw new NodeError(`expecting boolean value for flag ${name}, not: ${value}`);
        break;
      }
      case "string":
        if (eq < 0) throw new NodeError(`missing a value on flag: ${name}`);
        used.set(name, value);
        break;
      case "strings": {
        if (eq < 0) throw new NodeError(`missing a value on flag: ${name}`);
        const list = (used.get(name) as string[] | undefined) ?? [];
        list.push(value);
        used.set(name, list);
        break;
      }
    }
  }
  return used;
}

const str = (f: FlagValues, name: string): string | undefined => f.get(name) as string | undefined;
const bool = (f: FlagValues, name: string): boolean => f.get(name) === true;
const strs = (f: FlagValues, name: string): string[] => (f.get(name) as string[] | undefined) ?? [];

const atLeastOne = (k: string): NodeError => new NodeError(`${k} requires at least one argument`);
const exactlyOne = (k: string): NodeError => new NodeError(`${k} requires exactly one argument`);

function parseInstruction(node: Node): FromInstruction | Instruction {
  try {
    return parseNode(node);
  } catch (e) {
    if (e instanceof NodeError) throw new DockerfileParseError(e.message, node.line, node.endLine);
    throw e;
  }
}

function parseNode(node: Node): FromInstruction | Instruction {
  const keyword = node.lower.toUpperCase();
  if (!(KEYWORDS as readonly string[]).includes(keyword)) {
    const hint = suggest(keyword);
    throw new NodeError(`unknown instruction: ${keyword}${hint ? ` (did you mean ${hint}?)` : ""}`);
  }
  const base = {
    flags: node.flags,
    args: node.args,
    json: node.json,
    original: node.original,
    line: node.line,
    endLine: node.endLine,
    heredocs: node.heredocs,
  };
  const args = node.args;
  const noFlags = (): void => void parseFlags(node.flags, {});

  switch (keyword as Keyword) {
    case "FROM": {
      const f = parseFlags(node.flags, { platform: "string" });
      let name: string | undefined;
      if (args.length === 3 && args[1].toLowerCase() === "as") {
        name = args[2].toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
          throw new NodeError(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
        }
      } else if (args.length !== 1) {
        throw new NodeError("FROM requires either one or three arguments");
      }
      return { ...base, keyword: "FROM", image: args[0], name, platform: str(f, "platform") };
    }
    case "ARG": {
      if (args.length === 0) throw atLeastOne("ARG");
      noFlags();
      const vars = args.map((a) => {
        const i = a.indexOf("=");
        if (i < 0) return { key: a, value: undefined };
        if (i === 0) throw new NodeError("ARG names can not be blank");
        return { key: a.slice(0, i), value: a.slice(i + 1) };
      });
      return { ...base, keyword: "ARG", vars };
    }
    case "ENV":
    case "LABEL": {
      noFlags();
      if (args.length === 0) throw atLeastOne(keyword);
      const pairs: KeyValue[] = [];
      for (let i = 0; i + 1 < args.length; i += 2) {
        if (args[i] === "") throw new NodeError(`${keyword} names can not be blank`);
        pairs.push({ key: args[i], value: args[i + 1] });
      }
      return keyword === "ENV" ? { ...base, keyword: "ENV", pairs } : { ...base, keyword: "LABEL", pairs };
    }
    case "MAINTAINER":
      if (args.length !== 1) throw exactlyOne("MAINTAINER");
      noFlags();
      return { ...base, keyword: "MAINTAINER", maintainer: args[0] };
    case "WORKDIR":
      if (args.length !== 1) throw exactlyOne("WORKDIR");
      noFlags();
      return { ...base, keyword: "WORKDIR", path: args[0] };
    case "USER":
      if (args.length !== 1) throw exactlyOne("USER");
      noFlags();
      return { ...base, keyword: "USER", user: args[0] };
    case "STOPSIGNAL":
      if (args.length !== 1) throw exactlyOne("STOPSIGNAL");
      noFlags();
      return { ...base, keyword: "STOPSIGNAL", signal: args[0] };
    case "EXPOSE":
      if (args.length === 0) throw atLeastOne("EXPOSE");
      noFlags();
      return { ...base, keyword: "EXPOSE", ports: [...args] };
    case "VOLUME": {
      if (args.length === 0) throw atLeastOne("VOLUME");
      noFlags();
      const volumes = args.map((v) => {
        const t = v.trim();
        if (t === "") throw new NodeError("VOLUME specified can not be an empty string");
        return t;
      });
      return { ...base, keyword: "VOLUME", volumes };
    }
    case "RUN": {
      const f = parseFlags(node.flags, { mount: "strings", network: "string", security: "string" });
      if (args.length === 0) throw atLeastOne("RUN");
      const network = str(f, "network") ?? "default";
      if (network !== "default" && network !== "none" && network !== "host") {
        throw new NodeError(`invalid network mode ${JSON.stringify(network)}`);
      }
      const security = str(f, "security") ?? "sandbox";
      if (security !== "sandbox" && security !== "insecure") {
        throw new NodeError(`security ${JSON.stringify(security)} is not valid`);
      }
      const mounts = strs(f, "mount");
      for (const m of mounts) checkMountAtParse(m);
      return { ...base, keyword: "RUN", ...commandLine(node), mounts, network, security };
    }
    case "CMD":
      noFlags();
      return { ...base, keyword: "CMD", ...commandLine(node) };
    case "ENTRYPOINT":
      noFlags();
      return { ...base, keyword: "ENTRYPOINT", ...commandLine(node) };
    case "SHELL": {
      noFlags();
      const { command } = commandLine(node);
      if (command.length === 0) throw atLeastOne("SHELL");
      if (!node.json) throw new NodeError("SHELL requires the arguments to be in JSON form");
      return { ...base, keyword: "SHELL", shell: command };
    }
    case "COPY": {
      if (args.length < 2) throw noDestination("COPY");
      const f = parseFlags(node.flags, {
        chown: "string", from: "string", chmod: "string", link: "bool", parents: "bool", exclude: "strings",
      });
      return {
        ...base, keyword: "COPY", ...sourcesAndDest(node, "COPY", f),
        from: str(f, "from"), parents: bool(f, "parents"),
      };
    }
    case "ADD": {
      if (args.length < 2) throw noDestination("ADD");
      const f = parseFlags(node.flags, {
        chown: "string", chmod: "string", link: "bool", "keep-git-dir": "bool",
        checksum: "string", unpack: "bool", exclude: "strings",
      });
      return {
        ...base, keyword: "ADD", ...sourcesAndDest(node, "ADD", f),
        checksum: str(f, "checksum"), keepGitDir: bool(f, "keep-git-dir"),
        unpack: f.has("unpack") ? bool(f, "unpack") : undefined,
      };
    }
    case "HEALTHCHECK":
      return { ...base, keyword: "HEALTHCHECK", health: parseHealthcheck(node) };
    case "ONBUILD": {
      if (args.length === 0) throw atLeastOne("ONBUILD");
      noFlags();
      const trigger = args[0].trim().toUpperCase();
      if (trigger === "ONBUILD") throw new NodeError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (trigger === "MAINTAINER" || trigger === "FROM") throw new NodeError(`${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, "");
      for (const h of node.heredocs) expression += "\n" + h.content + h.name;
      return { ...base, keyword: "ONBUILD", trigger, expression };
    }
  }
}

function noDestination(k: string): NodeError {
  return new NodeError(`${k} requires at least two arguments, but only one was provided. Destination could not be determined`);
}

function commandLine(node: Node): CommandLine {
  const argv = node.args;
  if (node.json) return { command: [...argv], shellForm: false };
  return { command: argv.length === 0 ? [] : [argv.join(" ")], shellForm: true };
}

function sourcesAndDest(node: Node, k: string, f: FlagValues): SourcesAndDest {
  const args = node.args;
  const dest = args[args.length - 1];
  if (isHeredocWord(dest)) throw new NodeError(`${k} cannot accept a heredoc as a destination`);
  const byName = new Map(node.heredocs.map((h) => [h.name, h] as const));
  const sources: string[] = [];
  const contents: InlineSource[] = [];
  for (const src of args.slice(0, -1)) {
    const h = isHeredocWord(src);
    if (h) {
      const doc = byName.get(h.name);
      const data = doc ? heredocData({ ...doc, chomp: h.chomp }) : "";
      contents.push({ path: h.name, data, expand: h.expand });
    } else {
      sources.push(src);
    }
  }
  return {
    sources, contents, dest,
    chown: str(f, "chown"), chmod: str(f, "chmod"), link: bool(f, "link"), excludes: strs(f, "exclude"),
  };
}

function parseHealthcheck(node: Node): HealthConfig {
  if (node.args.length === 0) throw atLeastOne("HEALTHCHECK");
  const typ = node.args[0].toUpperCase();
  const rest = node.args.slice(1);
  if (typ === "NONE") {
    if (rest.length !== 0) throw new NodeError("HEALTHCHECK NONE takes no arguments");
    return { test: ["NONE"] };
  }
  const f = parseFlags(node.flags, {
    interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string",
  });
  if (typ !== "CMD") throw new NodeError(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? rest : rest.length === 0 ? [] : [rest.join(" ")];
  if (cmd.length === 0) throw new NodeError("Missing command after HEALTHCHECK CMD");
  const health: HealthConfig = { test: [node.json ? "CMD" : "CMD-SHELL", ...cmd] };
  const interval = (name: string): number | undefined => {
    const s = str(f, name);
    if (s === undefined || s === "") return undefined;
    let d: number;
    try { d = parseGoDuration(s); } catch (e) { throw new NodeError((e as Error).message); }
    if (d === 0) return 0;
    if (d < 1e6) throw new NodeError(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
    return d;
  };
  const set = (key: "interval" | "timeout" | "startPeriod" | "startInterval", flag: string): void => {
    const v = interval(flag);
    if (v !== undefined) health[key] = v;
  };
  set("interval", "interval");
  set("timeout", "timeout");
  set("startPeriod", "start-period");
  set("startInterval", "start-interval");
  const retries = str(f, "retries");
  if (retries !== undefined && retries !== "") {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw new NodeError(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`);
    }
    const n = Number(retries);
    if (n < 0) throw new NodeError(`--retries cannot be negative (${n})`);
    health.retries = n;
  }
  return health;
}


/** Go's time.ParseDuration ("1m30s", "1.5h", "500ms"); returns nanoseconds. */

function suggest(word: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of KEYWORDS) {
    const d = levenshtein(word, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD > 0 && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

// ---------------------------------------------------------------------------
// RUN --mount

export type MountType = "bind" | "cache" | "tmpfs" | "secret" | "ssh";

/** A parsed RUN --mount (BuildKit instructions.Mount). */
export interface RunMount {
  type: MountType;
  /** Stage or image to mount from (bind, cache). */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** Cache id, secret id or ssh id. */
  id?: string;
  sharing?: "shared" | "private" | "locked";
  required: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs size in bytes. */
  size?: number;
  /** Secret exposed as this environment variable. */
  env?: string;
}

/**
 * Parses one RUN --mount value (`type=cache,target=/root/.cache,...`; CSV, so
 * a field may be double-quoted). `expand` is applied to every value first;
 * the executor passes its variable expansion (expand.ts expandString).
 * Throws BadParameterError with BuildKit's wording.
 */
export function parseRunMount(spec: string, expand: (value: string) => string = (v) => v): RunMount {
  const fields = parseCSVRecord(spec);
  const m: RunMount = { type: "bind", readOnly: false, required: false };
  let roAuto = true;
  const fail = (msg: string): never => {
    throw new BadParameterError(msg);
  };
  const parseBool = (key: string, v: string): boolean => {
    if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
    if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
    return fail(`invalid value for ${key}: ${v}`);
  };
  const parseUint = (key: string, v: string, radix: 8 | 10): number => {
    const ok = radix === 8 ? /^[0-7]+$/.test(v) : /^\d+$/.test(v);
    const n = ok ? parseInt(v, radix) : NaN;
    if (!ok || n > 0xffffffff) fail(`invalid value ${v} for ${key}`);
    return n;
  };
  for (const field of fields) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case "readonly":
        case "ro":
          m.readOnly = true;
          roAuto = false;
          continue;
        case "readwrite":
        case "rw":
          m.readOnly = false;
          roAuto = false;
          continue;
        case "required":
          if (m.type !== "secret" && m.type !== "ssh") fail(`unexpected key '${key}' for mount type '${m.type}'`);
          m.required = true;
          continue;
        default:
          fail(`invalid field '${field}' must be a key=value pair`);
      }
    }
    const value = expand(field.slice(eq + 1));
    switch (key) {
      case "type": {
        const t = value.toLowerCase();
        if (!["bind", "cache", "tmpfs", "secret", "ssh"].includes(t)) fail(`unsupported mount type ${JSON.stringify(value)}`);
        m.type = t as MountType;
        break;
      }
      case "from":
        m.from = value;
        break;
      case "source":
      case "src":
        m.source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        m.target = value;
        break;
      case "readonly":
      case "ro":
        m.readOnly = parseBool(key, value);
        roAuto = false;
        break;
      case "readwrite":
      case "rw":
        m.readOnly = !parseBool(key, value);
        roAuto = false;
        break;
      case "required":
        if (m.type !== "secret" && m.type !== "ssh") fail(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case "size":
        if (m.type !== "tmpfs") fail(`unexpected key '${key}' for mount type '${m.type}'`);
        m.size = ramInBytes(value) ?? fail(`invalid value for ${key}: ${value}`);
        break;
      case "id":
        m.id = value;
        break;
      case "sharing": {
        const s = value.toLowerCase();
        if (s !== "shared" && s !== "private" && s !== "locked") fail(`unsupported sharing value ${JSON.stringify(value)}`);
        m.sharing = s as RunMount["sharing"];
        break;
      }
      case "mode":
        m.mode = parseUint("mode", value, 8);
        break;
      case "uid":
        m.uid = parseUint("uid", value, 10);
        break;
      case "gid":
        m.gid = parseUint("gid", value, 10);
        break;
      case "env":
        m.env = value;
        break;
      default:
        fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  const fileInfoAllowed = m.type === "secret" || m.type === "ssh" || m.type === "cache";
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) fail(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) fail(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) fail(`gid not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === "cache" || m.type === "tmpfs");
  if (m.type === "secret") {
    if (m.from !== undefined) fail("secret mount should not have a from");
    if (m.sharing !== undefined) fail("secret mount should not define sharing");
    if (!m.source && !m.target && !m.id && !m.env) fail("invalid secret mount. one of source, target required");
    if (m.source && m.id) fail("both source and id can't be set");
  }
  if (m.sharing !== undefined && m.type !== "cache") fail(`invalid cache sharing set for ${m.type} mount`);
  return m;
}

/** Validation at parse time: full for mounts without variables, `from=$X` refused (as BuildKit). */
function checkMountAtParse(spec: string): void {
  try {
    if (!spec.includes("$")) {
      parseRunMount(spec);
      return;
    }
    for (const field of parseCSVRecord(spec)) {
      const eq = field.indexOf("=");
      if (eq > 0 && field.slice(0, eq).toLowerCase() === "from" && /\$./.test(field.slice(eq + 1))) {
        throw new BadParameterError("'from' doesn't support variable expansion, define alias stage instead");
      }
    }
  } catch (e) {
    if (e instanceof BadParameterError) throw new NodeError(e.message);
    throw e;
  }
}

/** One CSV record (Go encoding/csv, default settings). */
function parseCSVRecord(s: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new BadParameterError('failed to parse csv mounts: extraneous or missing " in quoted-field');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ",") throw new BadParameterError('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      while (i < s.length && s[i] !== ",") {
        if (s[i] === '"') throw new BadParameterError('failed to parse csv mounts: bare " in non-quoted-field');
        field += s[i++];
      }
    }
    fields.push(field);
    if (i >= s.length) return fields;
    i++; // comma
  }
}

