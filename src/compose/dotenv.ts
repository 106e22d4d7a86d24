/**
 * `.env` and `env_file` files, read as compose-go's dotenv parser reads them:
 *
 * - `KEY=value`, `KEY: value` (YAML style), an optional `export ` prefix, `#` comment lines;
 * - a bare `KEY` line takes KEY from the environment (the lookup), or is left out when unset;
 * - unquoted values end at the line's end, lose a ` #…` inline comment and trailing space, and are
 *   interpolated (`$VAR`, `${VAR:-default}`…) from the lookup first, then the lines read so far;
 * - 'single quotes' are literal (only `\'` is unescaped) and may span lines;
 * - "double quotes" may span lines, are interpolated, and know the escapes \a \b \f \n \r \t \v
 *   \\ \" \$ (a literal `$`) and octal `\0NNN`; another backslash pair stays as it is (so \' too);
 * - a key holding a space, a character outside [A-Za-z0-9_.-[]] in a key, or an unterminated
 *   quote is an error naming the line: `line 3: unterminated quoted value "abc`.
 */
import { interpolate, InterpolationError, type Env } from "./interpolate.js";

export class DotEnvError extends Error {}

export type Lookup = (key: string) => string | undefined;

const isSpace = (c: string) => c === " " || c === "\t" || c === "\v" || c === "\f" || c === "\r" || c === "\u0085" || c === "\u00a0";
const KEY_CHAR = /[\p{L}\p{N}_.\-[\]]/u;

const ESCAPES: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', $: "$$" };

/**
 * Double-quoted escapes, as compose-go's expandEscapes: the sequences \a \b \c \f \n \r \t \v \$ \" \\ and \0 with up to
 * three digits, each unquoted as Go's strconv.UnquoteChar would (`\0NNN` as the octal `\NNN`; one that Go refuses stays
 * as it is, with `\0` rewritten to `\`). `$` comes out as `$$` for the interpolation pass.
 */
function expandEscapes(s: string): string {
  return s.replace(/\\(?:[abcfnrtv$"\\]|0\d{0,3})/g, (m) => {
    if (m[1] === "0") {
      const digits = m.slice(2);
      if (/^[0-7]{3}$/.test(digits) && parseInt(digits, 8) <= 255) return String.fromCharCode(parseInt(digits, 8));
      return "\\" + digits;
    }
    return ESCAPES[m[1]] ?? m;
  });
}

/**
 * Parses dotenv text into a map (in file order). `lookup` gives the environment (for bare keys
 * and interpolation: it wins over earlier lines, as in compose-go).
 */
export function parseDotEnv(text: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const src = text.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n");
  let i = 0, line = 1;
  const n = src.length;
  const expand = (v: string): string => {
    const env: Env = new Proxy({}, { get: (_t, k: string) => lookup(k) ?? out[k], has: (_t, k: string) => lookup(k) !== undefined || k in out });
    try { return interpolate(v, env); } catch (e) { if (e instanceof InterpolationError) throw new DotEnvError(`expanding variables: ${e.message}`); throw e; }
  };
  while (i < n) {
    // Statement start: skip white space (counting lines) and comment lines.
    const c = src[i];
    if (c === "\n") { line++; i++; continue; }
    if (isSpace(c)) { i++; continue; }
    if (c === "#") { while (i < n && src[i] !== "\n") i++; continue; }
    // The key.
    let rest = src.slice(i);
    const ex = /^export[ \t]+/.exec(rest);
    if (ex) { i += ex[0].length; rest = src.slice(i); }
    let j = i, sep = "";
    for (; j < n; j++) {
      const ch = src[j];
      if (ch === "=" || ch === ":" || ch === "\n") { sep = ch; break; }
      if (isSpace(ch)) continue;
      if (!KEY_CHAR.test(ch)) {
        const near = src.slice(i).split("\n")[0];
        throw new DotEnvError(`line ${line}: unexpected character ${JSON.stringify(ch)} in variable name ${JSON.stringify(near)}`);
      }
    }
    const key = src.slice(i, j).replace(/\s+$/, "");
    if (/\s/.test(key)) throw new DotEnvError(`line ${line}: key cannot contain a space`);
    if (sep === "" || sep === "\n") {
      // A bare KEY: from the environment.
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
      i = j;
      continue;
    }
    i = j + 1;
    while (i < n && isSpace(src[i])) i++;
    const q = src[i];
    if (q === '"' || q === "'") {
      const start = line;
      let k = i + 1, raw = "", esc = false, closed = false;
      for (; k < n; k++) {
        const ch = src[k];
        if (ch === "\n") line++;
        if (esc) {
          esc = false;
          if (ch === q) { raw += ch; continue; }
          raw += "\\" + ch;
          continue;
        }
        if (ch === "\\") { esc = true; continue; }
        if (ch === q) { closed = true; break; }
        raw += ch;
      }
      if (!closed) {
        const first = src.slice(i).split("\n")[0];
        throw new DotEnvError(`line ${start}: unterminated quoted value ${first}`);
      }
      if (q === "'") out[key] = raw;
      else out[key] = expand(expandEscapes(raw));
      i = k + 1;
      continue;
    }
    let end = src.indexOf("\n", i);
    if (end < 0) end = n;
    let v = src.slice(i, end);
    const hash = v.indexOf(" #");
    if (hash >= 0) v = v.slice(0, hash);
    out[key] = expand(v.replace(/\s+$/, ""));
    i = end;
  }
  return out;
}

/** Reads the env files in order (later files win); errors name the file: `failed to read /p/.env: line 2: …`. */
export function readEnvFiles(files: { path: string; text: string }[], lookup: Lookup): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) {
    try { Object.assign(out, parseDotEnv(f.text, (k) => lookup(k) ?? out[k])); } catch (e) {
      if (e instanceof DotEnvError) throw new DotEnvError(`failed to read ${f.path}: ${e.message}`);
      throw e;
    }
  }
  return out;
}
