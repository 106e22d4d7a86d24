/**
 * API filters (`filters={"key":["value"]}`) as dockerd judges them: every list
 * and prune names the keys it accepts, and any other key is a 400
 * `Invalid filter 'key'` before anything is read or removed (dockerd 20.10,
 * asked route by route). Values Docker validates are checked here too, with
 * Docker's wording; where dockerd answers 500 for a bad value (an unparsable
 * `until` or `exited`), berth answers 400 with the same message: the request
 * is at fault, not the daemon.
 *
 * /events is the exception: dockerd accepts any key there and ignores the
 * ones it does not know, so events.ts does not call checkFilters.
 */
import { BadParameterError } from "../lib/errors.js";

export type Filters = Record<string, string[]>;

/** Go's invalidFilter.Error(): `Invalid filter 'k'` or, with a value, `Invalid filter 'k=v'` ([]string prints as [a b]). */
export function invalidFilter(key: string, value?: string | string[]): BadParameterError {
  if (value === undefined) return new BadParameterError(`Invalid filter '${key}'`);
  return new BadParameterError(`Invalid filter '${key}=${Array.isArray(value) ? `[${value.join(" ")}]` : value}'`);
}

/** Throws Docker's 400 for the first key not in allowed. */
export function checkFilters(filters: Filters | undefined, allowed: readonly string[]): Filters {
  const f = filters ?? {};
  for (const k of Object.keys(f)) if (!allowed.includes(k)) throw invalidFilter(k);
  return f;
}

/**
 * How Docker combines filters (moby api/types/filters), the one rule every
 * list, prune and the event stream follow:
 *
 * - different keys AND: a row must pass every key that has values;
 * - the values of one key OR (`name=a` `name=b`: either), except `label`
 *   (and prune's `label!`), whose values AND (`label=a=1` `label=b=2`: both);
 * - a key with no values does not filter.
 *
 * `matchFilters(f, tests, labels)` applies it: `tests` judges one value of
 * each non-label key (keys with no test are judged elsewhere, e.g. before/since);
 * `label` is Go's MatchKVList against `labels`.
 */
export function matchFilters(f: Filters, tests: Record<string, ((v: string) => boolean) | undefined>, labels?: Record<string, string> | null): boolean {
  for (const [key, values] of Object.entries(f)) {
    if (!values.length) continue;
    if (key === "label") { if (!matchKVList(f, "label", labels)) return false; continue; }
    const t = tests[key];
    if (t && !values.some(t)) return false;
  }
  return true;
}

/** Go's Args.ExactMatch: true when the key is absent or has no values, or one value equals v. */
export function exactMatch(f: Filters, key: string, v: string): boolean {
  const vals = f[key];
  return !vals || vals.length === 0 || vals.includes(v);
}

/** Go's Args.FuzzyMatch: ExactMatch, or one value is a prefix of v. */
export function fuzzyMatch(f: Filters, key: string, v: string): boolean {
  if (exactMatch(f, key, v)) return true;
  return f[key].some((p) => v.startsWith(p));
}

/** Go's Args.Match: ExactMatch, or one value, as a regular expression, matches v (a bad pattern matches nothing). */
export function regexMatch(f: Filters, key: string, v: string): boolean {
  if (exactMatch(f, key, v)) return true;
  return f[key].some((p) => { try { return new RegExp(p).test(v); } catch { return false; } });
}

/** One `label` value against a label set: `k` (present) or `k=v` (equal). */
export function labelMatches(labels: Record<string, string> | undefined | null, spec: string): boolean {
  const l = labels ?? {};
  const i = spec.indexOf("=");
  return i < 0 ? Object.hasOwn(l, spec) : Object.hasOwn(l, spec.slice(0, i)) && l[spec.slice(0, i)] === spec.slice(i + 1);
}

/** Go's Args.MatchKVList: every value of key (`k` or `k=v`) matches the label set; true when the key has no values. */
export function matchKVList(f: Filters, key: string, labels: Record<string, string> | undefined | null): boolean {
  const vals = f[key];
  if (!vals || vals.length === 0) return true;
  return vals.every((s) => labelMatches(labels, s));
}

/** A list's `label` filter: every value matches (they AND, as Docker's). */
export function labelsMatch(labels: Record<string, string> | undefined | null, f: Filters): boolean {
  return matchKVList(f, "label", labels);
}

/**
 * Prune's label filters (Docker's daemon matchLabels): every `label` matches,
 * and the object is kept out only when every `label!` matches (`label!=a`
 * `label!=b` spares what has a but not b, as dockerd does).
 */
export function pruneLabelsMatch(labels: Record<string, string> | undefined | null, f: Filters): boolean {
  if (!matchKVList(f, "label", labels)) return false;
  if (f["label!"]?.length && matchKVList(f, "label!", labels)) return false;
  return true;
}

const DURATION_RE = /^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Prune's `until` (Go's timetypes.GetTimestamp): a Go duration before now
 * (`10m`, `1h30m`), Unix seconds (`1700000000`, `1700000000.5`) or a date
 * (`2006-01-02`, RFC 3339). Returns the limit in ms, or undefined without the key.
 */
export function untilLimit(f: Filters, now = Date.now()): number | undefined {
  const vals = f.until;
  if (!vals || vals.length === 0) return undefined;
  if (vals.length > 1) throw new BadParameterError("more than one until filter specified");
  const v = vals[0];
  if (v !== "" && DURATION_RE.test(v)) {
    let ms = 0;
    for (const m of v.matchAll(/([0-9]*(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)/g)) {
      if (m[1] === "" || m[1] === ".") throw new BadParameterError(`failed to parse value as time or duration: ${JSON.stringify(v)}`);
      ms += Number(m[1]) * UNIT_MS[m[2]];
    }
    return now - ms;
  }
  if (/^[0-9]+(\.[0-9]+)?$/.test(v)) return Number(v) * 1000;
  if (/^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$/.test(v)) {
    const t = Date.parse(v.includes("T") || v.includes(" ") ? v.replace(" ", "T") : `${v}T00:00:00`);
    if (!Number.isNaN(t)) return t;
  }
  throw new BadParameterError(`failed to parse value as time or duration: ${JSON.stringify(v)}`);
}

/** Go's filters.GetBoolOrDefault as dockerd's network list uses it for `dangling`. */
export function boolFilter(f: Filters, key: string): boolean | undefined {
  const vals = f[key];
  if (!vals || vals.length === 0) return undefined;
  if (vals.length > 1) throw new BadParameterError(`got more than one value for filter key ${JSON.stringify(key)}`);
  const v = vals[0].toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new BadParameterError(`invalid value for filter '${key}', must be "true" (or "1"), or "false" (or "0")`);
}
