/**
 * `.dockerignore`: which files of the build context are left out, with
 * Docker's rules (moby/patternmatcher and its `ignorefile` reader, as used by
 * BuildKit's context transfer).
 *
 * File format (parseDockerignore):
 * - one pattern per line; a line whose FIRST character is `#` is a comment
 *   (` # x` with a leading blank is a pattern), blank lines are skipped;
 * - surrounding whitespace is trimmed; `!` in front makes an exception that
 *   re-includes what earlier patterns excluded (the last matching line wins);
 * - each pattern is cleaned like Go's filepath.Clean and a leading `/` is
 *   dropped, so `/foo`, `./foo`, `foo/` and `foo/.` are all `foo`. There is
 *   no "directory only" form: `dir/` and `dir` mean the same thing and match a
 *   file or a directory named dir (and, through it, everything below it).
 *
 * Pattern syntax: Go filepath.Match (`*` any run of non-`/` characters, `?`
 * one non-`/` character, `[a-z]` / `[^a-z]` classes, `\` escapes) plus `**`,
 * which matches any number of directories, including none: `**\/*.log`
 * matches `a.log` and `x/y/a.log`; `foo/**` matches everything under foo.
 *
 * A path is ignored when the last pattern that matches it, or matches one of
 * its parent directories, is not an exception. So with `dir` then
 * `!dir/keep.txt`, dir/keep.txt is sent and dir/other is not.
 *
 * Note (as in Docker): excluding the Dockerfile or `.dockerignore` itself only
 * affects what COPY/ADD can see. The client still sends both to the daemon,
 * because the build needs them; this module does not special-case them and
 * the caller decides (send them regardless, but keep them out of COPY/ADD).
 *
 * Paths given to this module are relative to the context root, with `/`
 * separators (a leading `./` or `/` is tolerated). The context root itself
 * (`.` or "") is never ignored.
 */
import { BadParameterError } from "./errors.js";

/** One compiled pattern. */
export interface IgnorePattern {
  /** The cleaned pattern without its `!`. */
  readonly pattern: string;
  /** True for `!pattern` lines (exceptions / re-includes). */
  readonly exclusion: boolean;
  /** Path segments of the pattern. */
  readonly dirs: readonly string[];
}

/**
 * Per-pattern results for a directory, to pass to {@link DockerIgnore.match}
 * for its children (BuildKit's MatchInfo). Opaque to callers.
 */
export interface MatchInfo {
  readonly parentMatched: readonly boolean[];
}

/**
 * Reads a .dockerignore file into patterns, as Docker does (`!` kept in front
 * of exceptions): comments and blank lines dropped, each pattern cleaned,
 * leading `/` removed.
 */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (i === 0 && line.startsWith("\ufeff")) line = line.slice(1);
    if (line.startsWith("#")) continue;
    let pattern = line.trim();
    if (pattern === "") continue;
    const invert = pattern[0] === "!";
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern[0] === "/") pattern = pattern.slice(1);
    }
    out.push(invert ? "!" + pattern : pattern);
  }
  return out;
}

/** Go's path.Clean for `/`-separated paths. */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length > 0 && parts[parts.length - 1] !== "..") parts.pop();
      else if (!rooted) parts.push("..");
      continue;
    }
    parts.push(seg);
  }
  const joined = parts.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

interface Compiled extends IgnorePattern {
  readonly type: MatchType;
  readonly re?: RegExp;
  /** Pattern minus a trailing `/**` or `/*` (BuildKit patternWithoutTrailingGlob). */
  readonly prefix: string;
}

/** Characters that make an exception pattern more than a plain path prefix. */
const GLOB_CHARS = /[*?[\]^\\]/;

/** A compiled .dockerignore. */
export class DockerIgnore {
  readonly patterns: readonly IgnorePattern[];
  /** True when some pattern is an exception (`!...`). */
  readonly hasExceptions: boolean;
  private readonly compiled: readonly Compiled[];
  private readonly onlyPrefixExceptions: boolean;

  /** Compiles patterns as returned by {@link parseDockerignore}. */
  constructor(patterns: readonly string[]) {
    const compiled: Compiled[] = [];
    let hasExceptions = false;
    for (let p of patterns) {
      p = p.trim();
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p[0] === "!") {
        if (p.length === 1) throw new BadParameterError('illegal exclusion pattern: "!"');
        exclusion = true;
        hasExceptions = true;
        p = p.slice(1);
      }
      validateGlob(p);
      compiled.push(compile(p, exclusion));
    }
    this.compiled = compiled;
    this.patterns = compiled.map(({ pattern, exclusion, dirs }) => ({ pattern, exclusion, dirs }));
    this.hasExceptions = hasExceptions;
    this.onlyPrefixExceptions = compiled.every((c) => !c.exclusion || !GLOB_CHARS.test(c.prefix));
  }

  /** Parses and compiles the text of a .dockerignore file. */
  static parse(text: string): DockerIgnore {
    return new DockerIgnore(parseDockerignore(text));
  }

  /**
   * Whether `relPath` is left out of the context: the last pattern matching
   * it or one of its parents decides (BuildKit MatchesOrParentMatches).
   * `isDir` does not change the answer (Docker has no directory-only
   * patterns); it is accepted so callers can pass what they know.
   */
  isIgnored(relPath: string, isDir?: boolean): boolean {
    void isDir;
    const file = normalizeRel(relPath);
    if (file === ".") return false;
    const slash = file.lastIndexOf("/");
    const parentDirs = slash < 0 ? [] : file.slice(0, slash).split("/");
    let matched = false;
    for (const pat of this.compiled) {
      if (pat.exclusion !== matched) continue;
      let m = matchOne(pat, file);
      for (let i = 0; !m && i < parentDirs.length; i++) m = matchOne(pat, parentDirs.slice(0, i + 1).join("/"));
      if (m) matched = !pat.exclusion;
    }
    return matched;
  }

  /**
   * Incremental form for walkers (BuildKit MatchesUsingParentResults): pass
   * the `info` returned for a directory when matching its entries; omit it
   * for a path whose parents were not matched through this method.
   */
  match(relPath: string, parent?: MatchInfo): { ignored: boolean; info: MatchInfo } {
    const file = normalizeRel(relPath);
    const n = this.compiled.length;
    const parentMatched = parent?.parentMatched ?? [];
    if (parentMatched.length !== 0 && parentMatched.length !== n) {
      throw new BadParameterError("wrong number of values in parentMatched");
    }
    const result: boolean[] = new Array<boolean>(n).fill(false);
    if (file === ".") return { ignored: false, info: { parentMatched: result } };
    let matched = false;
    for (let i = 0; i < n; i++) {
      const pat = this.compiled[i];
      let m = parentMatched.length !== 0 ? parentMatched[i] : false;
      if (!m) {
        if (pat.exclusion !== matched) continue;
        m = matchOne(pat, file);
        if (!m && parentMatched.length === 0) {
          const slash = file.lastIndexOf("/");
          if (slash >= 0) {
            const dirs = file.slice(0, slash).split("/");
            for (let j = 0; !m && j < dirs.length; j++) m = matchOne(pat, dirs.slice(0, j + 1).join("/"));
          }
        }
      }
      result[i] = m;
      if (m) matched = !pat.exclusion;
    }
    return { ignored: matched, info: { parentMatched: result } };
  }

  /**
   * Whether an exception (`!pattern`) might re-include something below the
   * directory `relDir`. When false, a walker that found `relDir` ignored may
   * skip it whole; when true it must walk in and test each entry (the
   * directory entry itself is then still needed as a parent of what is kept).
   * Exact for plain-path exceptions (`!dir/sub`, `!dir/sub/*`); any exception
   * with a wildcard elsewhere (`!**\/*.go`) makes this true everywhere, as in
   * BuildKit's walker.
   */
  mayReinclude(relDir: string): boolean {
    if (!this.hasExceptions) return false;
    if (!this.onlyPrefixExceptions) return true;
    const dirSlash = normalizeRel(relDir) + "/";
    for (const pat of this.compiled) {
      if (pat.exclusion && (pat.prefix + "/").startsWith(dirSlash)) return true;
    }
    return false;
  }

  /** True when `relDir` is ignored and nothing below it can be re-included. */
  canSkipDir(relDir: string): boolean {
    return this.isIgnored(relDir, true) && !this.mayReinclude(relDir);
  }
}

function normalizeRel(p: string): string {
  let s = p.replace(/\\/g, "/");
  while (s.startsWith("/")) s = s.slice(1);
  return cleanPath(s);
}

/** Rejects malformed patterns like Go's filepath.Match does (ErrBadPattern). */
function validateGlob(p: string): void {
  const bad = (): never => {
    throw new BadParameterError(`syntax error in pattern: ${JSON.stringify(p)}`);
  };
  const c = Array.from(p);
  for (let i = 0; i < c.length; i++) {
    const ch = c[i];
    if (ch === "\\") {
      if (i + 1 >= c.length) bad();
      i++;
    } else if (ch === "[") {
      i++;
      if (c[i] === "^") i++;
      let nrange = 0;
      for (;;) {
        if (i >= c.length) bad();
        if (c[i] === "]" && nrange > 0) break;
        const esc = (): void => {
          if (i >= c.length || c[i] === "-" || c[i] === "]") bad();
          if (c[i] === "\\") {
            i++;
            if (i >= c.length) bad();
          }
          i++;
        };
        esc();
        if (c[i] === "-") {
          i++;
          esc();
        }
        nrange++;
      }
    }
  }
}

const REGEX_ESCAPE = new Set([".", "+", "(", ")", "|", "{", "}", "$", "^"]);

/** Escapes a character for use outside a class in a `u` RegExp. */
function escapeRe(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? "\\" + ch : ch;
}

/** Escapes a character for use inside a `[...]` class in a `u` RegExp. */
function escapeClass(ch: string): string {
  return /[\\\]\[^-]/.test(ch) ? "\\" + ch : ch;
}

function compile(pattern: string, exclusion: boolean): Compiled {
  const dirs = pattern.split("/");
  const c = Array.from(pattern);
  let reStr = "^";
  let type: MatchType = "exact";
  let inClass = false;
  for (let i = 0, iter = 0; i < c.length; iter++) {
    const ch = c[i++];
    if (inClass) {
      // Inside [...]: pass through, `\` escapes the next character.
      if (ch === "]") {
        inClass = false;
        reStr += "]";
      } else if (ch === "\\" && i < c.length) {
        reStr += escapeClass(c[i++]);
      } else if (ch === "-") {
        reStr += "-"; // a range
      } else {
        reStr += escapeClass(ch);
      }
      continue;
    }
    if (ch === "*") {
      if (c[i] === "*") {
        i++;
        if (c[i] === "/") i++; // `**/` is treated as `**`
        if (i >= c.length) {
          // trailing `**` matches everything below
          if (type === "exact") type = "prefix";
          else {
            reStr += ".*";
            type = "regexp";
          }
        } else {
          reStr += "(.*/)?";
          type = "regexp";
        }
        if (iter === 0) type = "suffix";
      } else {
        reStr += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      reStr += "[^/]";
      type = "regexp";
    } else if (REGEX_ESCAPE.has(ch)) {
      reStr += "\\" + ch;
    } else if (ch === "\\") {
      if (i < c.length) {
        reStr += escapeRe(c[i++]);
        type = "regexp";
      } else {
        reStr += "\\\\";
      }
    } else if (ch === "[") {
      inClass = true;
      reStr += "[";
      if (c[i] === "^") {
        reStr += "^";
        i++;
      }
      type = "regexp";
    } else if (ch === "]") {
      reStr += "\\]";
      type = "regexp";
    } else {
      reStr += escapeRe(ch);
    }
  }
  let re: RegExp | undefined;
  if (type === "regexp") re = new RegExp(reStr + "$", "u");
  let prefix = pattern;
  if (prefix.endsWith("/**")) prefix = prefix.slice(0, -3);
  else if (prefix.endsWith("/*")) prefix = prefix.slice(0, -2);
  return { pattern, exclusion, dirs, type, re, prefix };
}

function matchOne(p: Compiled, path: string): boolean {
  switch (p.type) {
    case "exact":
      return path === p.pattern;
    case "prefix":
      return path.startsWith(p.pattern.slice(0, -2));
    case "suffix": {
      const suffix = p.pattern.slice(2);
      if (path.endsWith(suffix)) return true;
      // `**/foo` also matches `foo`
      return suffix[0] === "/" && path === suffix.slice(1);
    }
    case "regexp":
      return (p.re as RegExp).test(path);
  }
}
