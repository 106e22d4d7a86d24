/**
 * Dockerfile word expansion: the small shell-like lexer Docker applies to the
 * arguments of Dockerfile instructions (BuildKit `frontend/dockerfile/shell`).
 *
 * It is not a shell. It knows variables, quotes and the escape character, and
 * nothing else: no command substitution, no globbing, no arithmetic.
 *
 *   $VAR  ${VAR}                 value of VAR ("" when unset)
 *   ${VAR:-word}  ${VAR-word}    word when VAR is unset or empty / unset only
 *   ${VAR:+word}  ${VAR+word}    word when VAR is set and non-empty / set
 *   ${VAR:?msg}   ${VAR?msg}     error "VAR: msg" when unset or empty / unset
 *   ${VAR#pat} ${VAR##pat}       remove shortest / longest matching prefix
 *   ${VAR%pat} ${VAR%%pat}       remove shortest / longest matching suffix
 *   ${VAR/pat/rep} ${VAR//pat/rep}  replace first / every match
 *   'single'                     literal, no escapes, no variables
 *   "double"                     variables expand; the escape character only
 *                                escapes `"`, `$` and itself
 *   <escape>c                    literal c (escape is `\` or, with the
 *                                `# escape=`` directive, a backtick)
 *
 * `word` parts nest (`${A:-${B:-x}}`). Patterns use `*` and `?` (no brackets).
 *
 * Which instructions Docker expands, and how (see {@link EXPANSION}):
 *
 * - one value per argument ({@link expandString}, BuildKit `ProcessWord`):
 *   ADD and COPY (each source, the destination, --chown, --chmod, --checksum,
 *   --from), ENV (keys and values), LABEL (keys and values), ARG (names and
 *   defaults), USER, WORKDIR, VOLUME (each path), STOPSIGNAL, the values of
 *   RUN --mount, and FROM (image and --platform, with the global ARGs only).
 * - split into several words ({@link processWords}): EXPOSE only.
 * - not expanded by Docker at all: RUN, CMD, ENTRYPOINT, SHELL (the shell in
 *   the container does it for the shell form), HEALTHCHECK, MAINTAINER and
 *   ONBUILD (its trigger is expanded when it fires in a child build).
 * - heredoc bodies of COPY/ADD whose delimiter is unquoted: variables and
 *   escapes only, quotes are kept ({@link expandHeredoc}).
 *
 * Note that Docker runs these even when a value holds no `$`: an ENV value of
 * `"a b"` becomes `a b` and `Rex\ The\ Dog` becomes `Rex The Dog`. The parser
 * (dockerfile.ts) therefore hands out raw values and the executor must always
 * pass them through here.
 *
 * Variables are read through a lookup function, so the caller decides what is
 * in scope (stage ENV, ARGs declared so far, --build-arg values, global ARGs).
 */
import { BadParameterError } from "../lib/errors.js";

/** The escape character of a Dockerfile (`# escape=` directive). */
export type EscapeToken = "\\" | "`";

/** Returns the value of a variable, or undefined when it is not set. */
export type VarLookup = (name: string) => string | undefined;

/**
 * Where variables come from: a lookup function, a Map, a plain object, or a
 * list of `KEY=value` strings (the last one of a key wins; `KEY` alone is "").
 */
export type VarSource =
  | VarLookup
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>
  | readonly string[];

export interface ExpandOptions {
  /** Escape character; default `\`. */
  escapeToken?: EscapeToken;
  /** Leave `$VAR` / `${VAR...}` untouched when VAR is unset (BuildKit SkipUnsetEnv). */
  skipUnset?: boolean;
  /** Keep quote characters in the output (they still group words). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (used for heredoc bodies). */
  skipQuotes?: boolean;
}

export interface ExpandResult {
  /** The expanded text, spaces kept: what {@link expandString} returns. */
  value: string;
  /** The text split into words after expansion: what {@link processWords} returns. */
  words: string[];
  /** Names that were looked up and set. */
  matched: Set<string>;
  /** Names that were looked up and not set. */
  unmatched: Set<string>;
}

/** How Docker expands the arguments of each instruction (see the module comment). */
export const EXPANSION: Readonly<Record<string, "word" | "words" | "none">> = Object.freeze({
  ADD: "word",
  ARG: "word",
  CMD: "none",
  COPY: "word",
  ENTRYPOINT: "none",
  ENV: "word",
  EXPOSE: "words",
  FROM: "word",
  HEALTHCHECK: "none",
  LABEL: "word",
  MAINTAINER: "none",
  ONBUILD: "none",
  RUN: "none",
  SHELL: "none",
  STOPSIGNAL: "word",
  USER: "word",
  VOLUME: "word",
  WORKDIR: "word",
});

/** Turns any {@link VarSource} into a lookup function. */
export function toLookup(vars: VarSource): VarLookup {
  if (typeof vars === "function") return vars as VarLookup;
  if (Array.isArray(vars)) {
    const m = new Map<string, string>();
    for (const e of vars as readonly string[]) {
      const i = e.indexOf("=");
      if (i < 0) m.set(e, "");
      else m.set(e.slice(0, i), e.slice(i + 1));
    }
    return (name) => m.get(name);
  }
  if (vars instanceof Map) {
    const m = vars as ReadonlyMap<string, string>;
    return (name) => m.get(name);
  }
  const rec = vars as Readonly<Record<string, string>>;
  return (name) => (Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined);
}

/** Expands `word` and returns both the joined value and the word split. */
export function expand(word: string, vars: VarSource, opts: ExpandOptions = {}): ExpandResult {
  return runLexer(word, toLookup(vars), opts, false);
}

/**
 * Expands one value (BuildKit `ProcessWord`): quotes and escapes are removed,
 * variables substituted, spaces kept. Throws BadParameterError with Docker's
 * wording (`failed to process "...": ...`) on a syntax error or `${X:?}`.
 */
export function expandString(word: string, vars: VarSource, opts: ExpandOptions = {}): string {
  return runLexer(word, toLookup(vars), opts, false).value;
}

/**
 * Expands and splits into words (BuildKit `ProcessWords`). Splitting happens
 * after substitution, on unquoted whitespace only: with A="x  y",
 * `a$A` → ["ax", "y"] and `a"$A"` → ["ax  y"]. Empty words are dropped.
 */
export function processWords(word: string, vars: VarSource, opts: ExpandOptions = {}): string[] {
  return runLexer(word, toLookup(vars), opts, false).words;
}

/**
 * Expands the body of a COPY/ADD heredoc whose delimiter was not quoted:
 * variables and the `\` escape are processed, quotes are left as they are
 * (BuildKit: a `\` lexer with SkipProcessQuotes).
 */
export function expandHeredoc(content: string, vars: VarSource): string {
  return runLexer(content, toLookup(vars), { escapeToken: "\\", skipQuotes: true }, false).value;
}

/**
 * Internal entry for the parser's heredoc detection: like {@link expand} but
 * `<<` followed by blanks stays glued to the next word (`<<  EOF` is one word).
 * @internal
 */
export function lexHeredocWords(line: string, opts: ExpandOptions): string[] {
  return runLexer(line, () => undefined, opts, true).words;
}

// ---------------------------------------------------------------------------

class LexError extends Error {}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function runLexer(source: string, lookup: VarLookup, opts: ExpandOptions, heredocs: boolean): ExpandResult {
  const sw = new ShellWord(source, lookup, opts, heredocs);
  try {
    const [value, words] = sw.processStopOn(null, sw.rawEscapes);
    return { value, words, matched: sw.matched, unmatched: sw.unmatched };
  } catch (e) {
    if (e instanceof LexError) throw new BadParameterError(`failed to process ${goQuote(source)}: ${e.message}`);
    throw e;
  }
}

const SPACE_RE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const LETTER_RE = /^\p{L}$/u;
const DIGIT_RE = /^\p{Nd}$/u;

/** Go's unicode.IsSpace. */
export function isSpace(ch: string): boolean {
  return SPACE_RE.test(ch);
}

class Words {
  word = "";
  words: string[] = [];
  inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = "";
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = "";
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private readonly escape: string;
  rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    source: string,
    private readonly lookup: VarLookup,
    private readonly opts: ExpandOptions,
    private readonly heredocs: boolean,
  ) {
    this.chars = Array.from(source);
    this.escape = opts.escapeToken ?? "\\";
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }
  private next(): string | undefined {
    return this.pos < this.chars.length ? this.chars[this.pos++] : undefined;
  }

  private getEnv(name: string): [string, boolean] {
    const v = this.lookup(name);
    if (v === undefined) {
      this.unmatched.add(name);
      return ["", false];
    }
    this.matched.add(name);
    return [v, true];
  }

  /** Processes until `stop` (consumed) or end of input. */
  processStopOn(stop: string | null, rawEscapes: boolean): [string, string[]] {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = "";
      const words = new Words();
      for (;;) {
        const ch = this.peek();
        if (ch === undefined) break;
        if (stop !== null && ch === stop) {
          this.next();
          return [result, words.getWords()];
        }
        if (ch === "$") {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
          continue;
        }
        if (!this.opts.skipQuotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        if (this.heredocs && ch === "<") {
          const tmp = this.processPossibleHeredoc();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        let c = this.next() as string;
        if (c === this.escape) {
          if (this.rawEscapes) {
            words.addRawChar(c);
            result += c;
          }
          const n = this.next();
          if (n === undefined) break; // a trailing escape is dropped
          c = n;
          words.addRawChar(c);
        } else {
          words.addChar(c);
        }
        result += c;
      }
      if (stop !== null) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
      return [result, words.getWords()];
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== "<") return "<";
    this.next();
    let space = "";
    for (let c = this.peek(); c !== undefined && (c === " " || c === "\t"); c = this.peek()) {
      space += c;
      this.next();
    }
    return "<<" + space;
  }

  private processSingleQuote(): string {
    // Everything up to the next ' is literal; a ' cannot be escaped inside.
    let result = "";
    const open = this.next() as string;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    // Literal except $ (expands) and the escape character, which escapes
    // only ", $ and itself; before anything else it stays.
    let result = "";
    const open = this.next() as string;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === undefined) throw new LexError("unexpected end of statement while looking for matching double-quote");
      if (p === '"') {
        this.next();
        if (this.opts.rawQuotes) result += p;
        return result;
      }
      if (p === "$") {
        result += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === undefined) continue; // escape at end: dropped, then the quote error
        if (q === '"' || q === "$" || q === this.escape) ch = this.next() as string;
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next(); // $
    if (this.peek() !== "{") {
      const name = this.processName();
      if (name === "") return "$";
      const [value, found] = this.getEnv(name);
      if (!found && this.opts.skipUnset) return "$" + name;
      return value;
    }
    this.next(); // {
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new LexError("syntax error: bad substitution");
    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw new LexError("syntax error: missing '}'");
    let chs = ch;

    if (ch === "}") {
      const [value, set] = this.getEnv(name);
      if (!set && this.opts.skipUnset) return "${" + name + "}";
      return value;
    }
    if (ch === "/") return this.processReplace(name);

    let nullIsUnset = false;
    if (ch === ":") {
      nullIsUnset = true;
      ch = this.next();
      if (ch === undefined) throw new LexError("syntax error: missing '}'");
      chs += ch;
      // Like Go's fallthrough: whatever follows ':' goes on as a modifier.
    } else if (!"+-?#%".includes(ch)) {
      throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }

    const rawEscapes = ch === "#" || ch === "%";
    let word: string;
    try {
      [word] = this.processStopOn("}", rawEscapes);
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }

    const [value, set] = this.getEnv(name);
    if (this.opts.skipUnset && !set) return "${" + name + chs + word + "}";

    switch (ch) {
      case "-":
        if (!set || (nullIsUnset && value === "")) return word;
        return value;
      case "+":
        if (!set || (nullIsUnset && value === "")) return "";
        return word;
      case "?":
        if (!set) throw new LexError(`${name}: ${word !== "" ? word : "is not allowed to be unset"}`);
        if (nullIsUnset && value === "") throw new LexError(`${name}: ${word !== "" ? word : "is not allowed to be empty"}`);
        return value;
      case "%":
      case "#": {
        // %/# remove the shortest match, %%/## the longest.
        let greedy = false;
        if (word.startsWith(ch)) {
          greedy = true;
          word = word.slice(1);
        }
        return ch === "%" ? trimSuffix(word, value, greedy) : trimPrefix(word, value, greedy);
      }
      default:
        throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const replaceAll = this.peek() === "/";
    if (replaceAll) this.next();
    let pattern: string;
    try {
      [pattern] = this.processStopOn("/", true);
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '/' in ${}");
      throw e;
    }
    let replacement: string;
    try {
      [replacement] = this.processStopOn("}", true);
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
    const [value, set] = this.getEnv(name);
    if (this.opts.skipUnset && !set) return "${" + name + "/" + pattern + "/" + replacement + "}";
    const re = shellPatternToRegex(pattern, true, false, replaceAll);
    if (replaceAll) return value.replace(re, () => replacement);
    const m = re.exec(value);
    if (!m) return value;
    return value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length);
  }

  /** A name: letters, digits and `_`; or all digits; or one special parameter. */
  private processName(): string {
    let name = "";
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) break;
      if (name === "" && DIGIT_RE.test(ch)) {
        for (let c = this.peek(); c !== undefined && DIGIT_RE.test(c); c = this.peek()) name += this.next();
        return name;
      }
      if (name === "" && "@*#?-$!0".includes(ch)) {
        this.next();
        return ch;
      }
      if (!LETTER_RE.test(ch) && !DIGIT_RE.test(ch) && ch !== "_") break;
      name += this.next();
    }
    return name;
  }
}

/**
 * Converts a shell pattern (`*` any string, `?` one character, `\` escapes
 * `*`, `?` and `\`) to a RegExp. `\}` and `\/` stand for `}` and `/`.
 */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? "^" : "";
  const star = greedy ? ".*" : ".*?";
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i];
    if (tok === "*") {
      out += star;
      continue;
    }
    if (tok === "?") {
      out += ".";
      continue;
    }
    if (tok === "\\") {
      const nx = chars[i + 1];
      if (nx === "}" || nx === "/") continue;
      if (nx !== "*" && nx !== "?" && nx !== "\\") {
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${nx ?? ""}'`);
      }
      out += "\\" + nx;
      i++;
      continue;
    }
    if ("[]{}.+()|^$/".includes(tok)) out += "\\";
    out += tok;
  }
  return new RegExp(out, global ? "gu" : "u");
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
}

/** Reverses a pattern keeping escapes in front of what they escape: a\*c → c\*a. */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array<string>(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const o = last - i;
    if (p[i] === "\\" && i !== last) {
      out[o - 1] = p[i];
      out[o] = p[i + 1];
      i += 2;
    } else {
      out[o] = p[i];
      i++;
    }
  }
  return out.join("");
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join("");
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // A regexp cannot find the shortest rightmost match, so reverse both.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}
