/**
 * A small runtime schema validator for the Engine API's JSON bodies and
 * queries, in Go's terms, because the Docker API is Go's `encoding/json`:
 *
 * - a value of the wrong JSON kind is a 400 with Go's wording,
 *   `json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Image of type string`
 *   (the innermost struct's type name, then the path of JSON field names from the top);
 * - `null` is "not set" anywhere (Go leaves the zero value): struct fields that
 *   are null are dropped, null elements of arrays and values of maps become
 *   the element's zero value ("" / 0 / false / {}), as Go's decoder does;
 * - field names match case-insensitively when there is no exact match (Go's
 *   rule), and are renamed to the schema's spelling;
 * - unknown fields pass through untouched (Go ignores them; the engine never
 *   reads a field the schema does not type);
 * - integers are integers (`number 1.5 ... of type int64`), within their Go range.
 *
 * Schemas are plain values; `Infer<typeof S>` is the TypeScript type a schema
 * accepts, so the request types in types.ts and the checks cannot drift apart.
 */
import { BadParameterError } from "../lib/errors.js";

/** Where a value sits: the innermost struct's Go type name and the JSON path from the top (for Go's message). */
interface At { struct: string; path: string }

export interface Schema<T> {
  /** The Go type named in error messages (e.g. "[]string", "container.HostConfig"). */
  readonly go: string;
  /** The zero value Go gives a null element of this type inside an array or map. */
  readonly zero: () => unknown;
  /** Checks v (never null here) and returns the normalized value. */
  readonly parse: (v: unknown, at: At | undefined) => T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

export class ValidationError extends BadParameterError {}

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  switch (typeof v) {
    case "string": return "string";
    case "number": return "number";
    case "boolean": return "bool";
    default: return "object";
  }
}

function fail(what: string, go: string, at: At | undefined): never {
  if (!at) throw new ValidationError(`json: cannot unmarshal ${what} into Go value of type ${go}`);
  throw new ValidationError(`json: cannot unmarshal ${what} into Go struct field ${at.struct}.${at.path} of type ${go}`);
}

function shortName(go: string): string {
  const i = go.lastIndexOf(".");
  return i >= 0 ? go.slice(i + 1) : go;
}

/** A value of a child position: null → the element's zero value (arrays, maps). */
function element<T>(s: Schema<T>, v: unknown, at: At | undefined): T {
  return v === null ? (s.zero() as T) : s.parse(v, at);
}

export function str(go = "string"): Schema<string> {
  return { go, zero: () => "", parse: (v, at) => (typeof v === "string" ? v : fail(kindOf(v), go, at)) };
}

export function bool(go = "bool"): Schema<boolean> {
  return { go, zero: () => false, parse: (v, at) => (typeof v === "boolean" ? v : fail(kindOf(v), go, at)) };
}

const RANGES: Record<string, [number, number]> = {
  int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint: [0, Number.MAX_SAFE_INTEGER], uint64: [0, Number.MAX_SAFE_INTEGER], uint32: [0, 2 ** 32 - 1], uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1], "os.FileMode": [0, 2 ** 32 - 1], "time.Duration": [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** A Go integer type ("int64", "uint16", "time.Duration" ...): integral and within range. */
export function int(go = "int64"): Schema<number> {
  const [lo, hi] = RANGES[go] ?? RANGES.int64;
  return {
    go, zero: () => 0,
    parse: (v, at) => {
      if (typeof v !== "number") return fail(kindOf(v), go, at);
      if (!Number.isInteger(v) || v < lo || v > hi) return fail(`number ${v}`, go, at);
      return v;
    },
  };
}

/** A Go float64. */
export function float(go = "float64"): Schema<number> {
  return { go, zero: () => 0, parse: (v, at) => (typeof v === "number" ? v : fail(kindOf(v), go, at)) };
}

/** Anything (json.RawMessage, interface{}). */
export function any(go = "interface {}"): Schema<unknown> {
  return { go, zero: () => null, parse: (v) => v };
}

/** Docker's strslice.StrSlice: a string or a list of strings (Cmd, Entrypoint, Shell, CapAdd). */
export function strSlice(): Schema<string[]> {
  return {
    go: "strslice.StrSlice", zero: () => [],
    parse: (v, at) => {
      if (typeof v === "string") return [v];
      if (Array.isArray(v) && v.every((x) => typeof x === "string" || x === null)) return v.map((x) => x ?? "");
      return fail(kindOf(v), "string", at);
    },
  };
}

export function arr<T>(of: Schema<T>, go = `[]${of.go}`): Schema<T[]> {
  return {
    go, zero: () => [],
    parse: (v, at) => {
      if (!Array.isArray(v)) return fail(kindOf(v), go, at);
      return v.map((x) => element(of, x, at));
    },
  };
}

/** map[string]T: a JSON object; its keys are data (never renamed). */
export function map<T>(of: Schema<T>, go = `map[string]${of.go}`): Schema<Record<string, T>> {
  return {
    go, zero: () => ({}),
    parse: (v, at) => {
      if (kindOf(v) !== "object") return fail(kindOf(v), go, at);
      const out: Record<string, T> = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        // A JSON object may carry "__proto__" as a key: define it, never assign through it.
        Object.defineProperty(out, k, { value: element(of, x, at), enumerable: true, writable: true, configurable: true });
      }
      return out;
    },
  };
}

type Fields = Record<string, Schema<unknown>>;
export type StructOf<F extends Fields> = { [K in keyof F]?: Infer<F[K]> } & Record<string, unknown>;

/**
 * A Go struct: a JSON object whose known fields are checked. `go` is the
 * type's Go name ("container.HostConfig"); its last part names the struct in
 * messages about its own fields.
 */
export function struct<F extends Fields>(go: string, fields: F): Schema<StructOf<F>> {
  const name = shortName(go);
  const lower = new Map(Object.keys(fields).map((k) => [k.toLowerCase(), k]));
  return {
    go, zero: () => ({}),
    parse: (v, at) => {
      if (kindOf(v) !== "object") return fail(kindOf(v), go, at);
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const [k0, x] of Object.entries(src)) {
        let k = k0;
        if (!Object.prototype.hasOwnProperty.call(fields, k)) {
          const canon = lower.get(k.toLowerCase());
          // Go: an exact match wins; otherwise the first case-insensitive one.
          if (canon !== undefined && !Object.prototype.hasOwnProperty.call(src, canon)) k = canon;
        }
        const s = Object.prototype.hasOwnProperty.call(fields, k) ? fields[k] : undefined;
        if (x === null && s) continue; // null: not set
        const value = s ? s.parse(x, { struct: name, path: at ? `${at.path}.${k}` : k }) : x;
        Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
      }
      return out as StructOf<F>;
    },
  };
}

/**
 * Checks a whole decoded body against a schema (the top level is "Go value
 * of type ..."). null at the top is "not set": the caller decides (some
 * routes answer Docker's own "cannot be empty" message).
 */
export function check<T>(s: Schema<T>, v: unknown): T {
  return s.parse(v, undefined);
}

// ------------------------------------------------------------------ raw JSON

/** Deeper than this is refused before parsing: nothing legitimate nests so deep, and deep values overflow the stack later (stringify, walks). */
export const MAX_JSON_DEPTH = 256;

/** The nesting depth of a JSON text, in one linear scan that skips strings. */
export function jsonDepth(text: string): number {
  let depth = 0, max = 0, inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inStr) {
      if (c === 0x5c) i++; // backslash: skip the escaped char
      else if (c === 0x22) inStr = false;
      continue;
    }
    if (c === 0x22) inStr = true;
    else if (c === 0x5b || c === 0x7b) { if (++depth > max) max = depth; }
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** JSON.parse with a depth limit and Docker-like 400s. */
export function parseJson(text: string): unknown {
  if (jsonDepth(text) > MAX_JSON_DEPTH) throw new ValidationError(`invalid JSON: exceeded max depth ${MAX_JSON_DEPTH}`);
  try { return JSON.parse(text); } catch (e) { throw new ValidationError(`invalid JSON: ${(e as Error).message}`); }
}

// ------------------------------------------------------------------ query parameters

/** Docker's httputils.BoolValue: anything but "", "0", "no", "false", "none" is true (absent: the default). */
export function boolParam(q: URLSearchParams, k: string, dflt = false): boolean {
  const v0 = q.get(k);
  if (v0 === null) return dflt;
  const v = v0.trim().toLowerCase();
  return !(v === "" || v === "0" || v === "no" || v === "false" || v === "none");
}

/** Go's strconv.Atoi, with its wording: an integer or a 400. */
export function atoi(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw new ValidationError(`strconv.Atoi: parsing ${JSON.stringify(s)}: invalid syntax`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new ValidationError(`strconv.Atoi: parsing ${JSON.stringify(s)}: value out of range`);
  return n;
}

/** An integer query parameter (absent or empty: undefined). */
export function intParam(q: URLSearchParams, k: string): number | undefined {
  const v = q.get(k);
  if (v === null || v === "") return undefined;
  return atoi(v);
}

/**
 * Docker's filters.FromJSON: {"k":["v"]} or the older {"k":{"v":true}}. An
 * empty string or null is no filter; a null value is a key with no values;
 * any other shape is a 400 with Go's wording.
 */
export function parseFilters(raw: string | null): Record<string, string[]> {
  if (!raw) return {};
  if (jsonDepth(raw) > MAX_JSON_DEPTH) throw new ValidationError("invalid filter: exceeded max depth");
  let v: unknown;
  try { v = JSON.parse(raw); } catch (e) { throw new ValidationError(`invalid filter '${raw}': ${(e as Error).message}`); }
  if (v === null) return {};
  if (kindOf(v) !== "object") throw new ValidationError(`json: cannot unmarshal ${kindOf(v)} into Go value of type map[string]map[string]bool`);
  const out: Record<string, string[]> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    let vals: string[];
    if (x === null) vals = [];
    else if (Array.isArray(x)) {
      if (!x.every((s) => typeof s === "string" || s === null)) throw new ValidationError("json: cannot unmarshal array into Go value of type map[string]bool");
      vals = x.map((s) => s ?? "");
    } else if (kindOf(x) === "object") {
      for (const b of Object.values(x as Record<string, unknown>)) {
        if (b !== null && typeof b !== "boolean") throw new ValidationError(`json: cannot unmarshal ${kindOf(b)} into Go value of type bool`);
      }
      vals = Object.keys(x as object);
    } else throw new ValidationError(`json: cannot unmarshal ${kindOf(x)} into Go value of type map[string]bool`);
    Object.defineProperty(out, k, { value: vals, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

// ------------------------------------------------------------------ paths

/** Go's url.PathUnescape: a malformed escape is an error (Docker answers 400); bytes that are not UTF-8 decode leniently. */
export function unescapePath(s: string): string {
  if (!s.includes("%")) return s;
  const bad = /%(?![0-9a-fA-F]{2})[^%]{0,2}/.exec(s);
  if (bad) throw new ValidationError(`invalid URL escape ${JSON.stringify(bad[0])}`);
  const parts = s.split(/(%[0-9a-fA-F]{2})/);
  return Buffer.concat(parts.map((p, i) => (i % 2 ? Buffer.from([parseInt(p.slice(1), 16)]) : Buffer.from(p, "utf8")))).toString("utf8");
}

/** A malformed escape anywhere in a query string (Go's ParseQuery refuses it; Docker answers 400). */
export function checkQueryEscapes(search: string): void {
  const bad = /%(?![0-9a-fA-F]{2})[^%&]{0,2}/.exec(search);
  if (bad) throw new ValidationError(`invalid URL escape ${JSON.stringify(bad[0])}`);
}
