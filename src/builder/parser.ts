/**
 * Pass 1 of the Dockerfile parser: text → nodes (BuildKit parser.Parse). A node is one logical instruction
 * line (continuations joined, heredocs attached), its keyword, flags and arguments split but not yet
 * interpreted; instructions.ts turns nodes into typed instructions.
 */
import { isSpace, lexHeredocWords, processWords, type EscapeToken } from "./expand.js";
import type { Heredoc, ParseWarning } from "./instructions.js";
import { BadParameterError } from "../lib/errors.js";
import { DockerfileParseError, NodeError } from "./errors.js";

/** One logical instruction line, split but not yet interpreted. */
export interface Node {
  /** Keyword as written. */
  cmd: string;
  /** Keyword lower-cased. */
  lower: string;
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
  /** The trigger of an ONBUILD. */
  child?: Node;
}


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

export function parseNodes(
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

export function isHeredocWord(src: string): Heredoc | null {
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

