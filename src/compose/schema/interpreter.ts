/**
 * A JSON Schema (draft-07) validator for exactly the keywords compose-spec.json uses: type, enum, pattern,
 * minimum, maximum, required, properties, patternProperties, additionalProperties, items, uniqueItems,
 * oneOf, anyOf, allOf, not, $ref (local), and the annotations (description, title, default, deprecated,
 * $schema, $id, format: formats are not checked, as in compose-go, whose checkers accept every value).
 *
 * Why not ajv's generated code: for this schema it is ~240 kB minified, and loading it plus compiling the
 * functions the first validation touches cost `berth compose` ~18 ms of CPU on every run (measured);
 * walking the schema object costs well under 1 ms. test/unit/compose-loader.test.ts checks that this
 * validator and ajv agree on the documents of the tests. A schema with another keyword fails loudly
 * (unsupportedKeywords), so a newer compose-spec.json cannot be half-checked.
 */

export interface SchemaError { instancePath: string; keyword: string; params: Record<string, unknown>; message?: string }

type Schema = boolean | { [k: string]: unknown };

const ANNOTATIONS = new Set(["description", "title", "default", "deprecated", "$schema", "$id", "format", "examples", "$comment", "definitions"]);
const KEYWORDS = new Set(["type", "enum", "const", "pattern", "minimum", "maximum", "required", "properties", "patternProperties", "additionalProperties", "items",
  "uniqueItems", "minItems", "maxItems", "minLength", "oneOf", "anyOf", "allOf", "not", "$ref"]);

/** Keywords of the schema this validator does not know (empty when it can check the schema completely). */
export function unsupportedKeywords(root: Schema): string[] {
  const out = new Set<string>();
  const walk = (s: unknown, inMap: boolean) => {
    if (!s || typeof s !== "object") return;
    if (Array.isArray(s)) { s.forEach((x) => walk(x, false)); return; }
    for (const [k, v] of Object.entries(s)) {
      if (inMap) { walk(v, false); continue; }
      if (!KEYWORDS.has(k) && !ANNOTATIONS.has(k)) out.add(k);
      if (k === "enum" || k === "const" || k === "required" || k === "default" || k === "examples") continue;
      walk(v, k === "properties" || k === "patternProperties" || k === "definitions");
    }
  };
  walk(root, false);
  return [...out];
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function hasType(v: unknown, t: string): boolean {
  switch (t) {
    case "integer": return typeof v === "number" && Number.isInteger(v);
    case "number": return typeof v === "number";
    case "array": return Array.isArray(v);
    case "object": return typeOf(v) === "object";
    case "null": return v === null;
    default: return typeof v === t;
  }
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const escape = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");

export class SchemaValidator {
  private readonly regexps = new Map<string, RegExp>();
  constructor(private readonly root: Schema) {}

  private re(p: string): RegExp {
    let r = this.regexps.get(p);
    if (!r) { r = new RegExp(p, "u"); this.regexps.set(p, r); }
    return r;
  }

  private ref(ref: string): Schema {
    if (!ref.startsWith("#")) throw new Error(`unsupported $ref ${ref}`);
    let s: unknown = this.root;
    for (const part of ref.slice(1).split("/").filter(Boolean)) s = (s as Record<string, unknown>)[decodeURIComponent(part).replace(/~1/g, "/").replace(/~0/g, "~")];
    if (s === undefined) throw new Error(`unresolvable $ref ${ref}`);
    return s as Schema;
  }

  /** Errors of `v` at `path` against `s` (empty: valid). Stops at the first failing keyword of a schema, as ajv without allErrors. */
  check(v: unknown, s: Schema = this.root, path = ""): SchemaError[] {
    if (s === true) return [];
    if (s === false) return [{ instancePath: path, keyword: "false", params: {} }];
    if (typeof s.$ref === "string") { const e = this.check(v, this.ref(s.$ref), path); if (e.length) return e; }
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => hasType(v, t))) return [{ instancePath: path, keyword: "type", params: { type: s.type } }];
    }
    if (Array.isArray(s.enum) && !s.enum.some((x) => equal(x, v))) return [{ instancePath: path, keyword: "enum", params: { allowedValues: s.enum } }];
    if ("const" in s && !equal(s.const, v)) return [{ instancePath: path, keyword: "const", params: { allowedValue: s.const } }];
    if (typeof v === "string") {
      if (typeof s.pattern === "string" && !this.re(s.pattern).test(v)) return [{ instancePath: path, keyword: "pattern", params: { pattern: s.pattern }, message: `must match pattern "${s.pattern}"` }];
      if (typeof s.minLength === "number" && [...v].length < s.minLength) return [{ instancePath: path, keyword: "minLength", params: { limit: s.minLength }, message: `must not have fewer than ${s.minLength} characters` }];
    }
    if (typeof v === "number") {
      if (typeof s.minimum === "number" && v < s.minimum) return [{ instancePath: path, keyword: "minimum", params: { limit: s.minimum }, message: `must be >= ${s.minimum}` }];
      if (typeof s.maximum === "number" && v > s.maximum) return [{ instancePath: path, keyword: "maximum", params: { limit: s.maximum }, message: `must be <= ${s.maximum}` }];
    }
    if (Array.isArray(v)) {
      if (typeof s.minItems === "number" && v.length < s.minItems) return [{ instancePath: path, keyword: "minItems", params: { limit: s.minItems }, message: `must not have fewer than ${s.minItems} items` }];
      if (typeof s.maxItems === "number" && v.length > s.maxItems) return [{ instancePath: path, keyword: "maxItems", params: { limit: s.maxItems }, message: `must not have more than ${s.maxItems} items` }];
      if (s.items !== undefined && !Array.isArray(s.items)) {
        for (let i = 0; i < v.length; i++) { const e = this.check(v[i], s.items as Schema, `${path}/${i}`); if (e.length) return e; }
      }
      if (s.uniqueItems === true) {
        for (let i = 1; i < v.length; i++) for (let j = 0; j < i; j++) if (equal(v[i], v[j])) return [{ instancePath: path, keyword: "uniqueItems", params: { i, j } }];
      }
    }
    if (typeOf(v) === "object") {
      const o = v as Record<string, unknown>;
      if (Array.isArray(s.required)) for (const k of s.required as string[]) if (!(k in o)) return [{ instancePath: path, keyword: "required", params: { missingProperty: k } }];
      const props = (s.properties ?? {}) as Record<string, Schema>;
      const pats = Object.entries((s.patternProperties ?? {}) as Record<string, Schema>);
      for (const [k, x] of Object.entries(o)) {
        let matched = false;
        if (Object.prototype.hasOwnProperty.call(props, k)) { matched = true; const e = this.check(x, props[k], `${path}/${escape(k)}`); if (e.length) return e; }
        for (const [p, ps] of pats) if (this.re(p).test(k)) { matched = true; const e = this.check(x, ps, `${path}/${escape(k)}`); if (e.length) return e; }
        if (!matched && s.additionalProperties !== undefined) {
          if (s.additionalProperties === false) return [{ instancePath: path, keyword: "additionalProperties", params: { additionalProperty: k } }];
          const e = this.check(x, s.additionalProperties as Schema, `${path}/${escape(k)}`);
          if (e.length) return e;
        }
      }
    }
    if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) { const e = this.check(v, sub, path); if (e.length) return e; }
    if (Array.isArray(s.anyOf)) {
      const all: SchemaError[] = [];
      let ok = false;
      for (const sub of s.anyOf as Schema[]) { const e = this.check(v, sub, path); if (!e.length) { ok = true; break; } all.push(...e); }
      if (!ok) return [...all, { instancePath: path, keyword: "anyOf", params: {} }];
    }
    if (Array.isArray(s.oneOf)) {
      const all: SchemaError[] = [];
      const passing: number[] = [];
      (s.oneOf as Schema[]).forEach((sub, i) => { const e = this.check(v, sub, path); if (e.length) all.push(...e); else passing.push(i); });
      if (!passing.length) return [...all, { instancePath: path, keyword: "oneOf", params: { passingSchemas: null } }];
      if (passing.length > 1) return [{ instancePath: path, keyword: "oneOf", params: { passingSchemas: passing }, message: "must match exactly one schema in oneOf" }];
    }
    if (s.not !== undefined && !this.check(v, s.not as Schema, path).length) return [{ instancePath: path, keyword: "not", params: {}, message: "must NOT be valid" }];
    return [];
  }
}
