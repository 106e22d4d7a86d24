/**
 * Validation of one compose document against the Compose Specification's JSON Schema
 * (compose-spec.json, shipped beside this file and bundled into bin/berth-compose.cjs as an object
 * literal), walked by interpreter.ts: nothing is compiled or read from disk at start.
 *
 * Errors read as compose-go words them: the path of the bad value joined with dots
 * (`services.web.ports.0`), then what is wrong ("must be a list", "additional properties
 * 'imgae' not allowed"); "(root)" for the top level. Of several errors the most specific
 * (deepest) is reported, as compose-go does.
 */
import spec from "./compose-spec.json" with { type: "json" };
import { SchemaValidator, type SchemaError } from "./interpreter.js";

let validator: SchemaValidator | undefined;

function humanType(t: unknown): string {
  const one = (x: string) => (x === "object" ? "mapping" : x === "array" ? "list" : x);
  if (Array.isArray(t)) return t.length === 1 ? one(t[0]) : `${t.slice(0, -1).map(one).join(", ")} or ${one(t[t.length - 1])}`;
  return one(String(t));
}

function pathOf(e: SchemaError): string {
  const p = e.instancePath.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  return p.length ? p.join(".") : "(root)";
}

function describe(e: SchemaError): string {
  const where = pathOf(e);
  switch (e.keyword) {
    case "additionalProperties": return `${where} additional properties '${String(e.params.additionalProperty)}' not allowed`;
    case "type": return `${where} must be a ${humanType(e.params.type)}`;
    case "enum": return `${where} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "required": return `${where} missing property '${String(e.params.missingProperty)}'`;
    case "uniqueItems": return `${where} must not contain duplicate items (items ${String(e.params.j)} and ${String(e.params.i)} are equal)`;
    default: return `${where} ${e.message ?? e.keyword}`;
  }
}

/** Validates a document (already interpolated, merge tags resolved); returns compose-go's message or undefined. */
export function schemaError(doc: unknown): string | undefined {
  validator ??= new SchemaValidator(spec as Record<string, unknown>);
  const errs = validator.check(doc);
  if (!errs.length) return undefined;
  if (!errs.length) return "(root) invalid";
  const depth = (e: SchemaError) => (e.instancePath ? e.instancePath.split("/").length : 0);
  // "oneOf"/"anyOf" only say no branch matched: a branch's own error is more telling; of those at one path, an
  // error from a branch whose type matched (additional property, enum...) says more than the other branches' type errors.
  const rank = (e: SchemaError) => depth(e) * 4 + (e.keyword === "oneOf" || e.keyword === "anyOf" ? 0 : e.keyword === "type" ? 1 : 2);
  let best = errs[0];
  for (const e of errs) if (rank(e) > rank(best)) best = e;
  if (best.keyword === "type") {
    // Every type the branches at this path would take: "must be a number, string or mapping".
    const types = [...new Set(errs.filter((e) => e.keyword === "type" && e.instancePath === best.instancePath).flatMap((e) => [e.params.type].flat() as string[]))];
    return describe({ ...best, params: { type: types } });
  }
  return describe(best);
}
