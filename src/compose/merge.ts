/**
 * Merging compose models, as the Compose Specification's 13-merge.md and
 * compose-go's override package do it: for several `-f` files (later ones
 * override earlier ones), for `extends` (the service over its base) and for
 * `include`.
 *
 * - mappings merge key by key, scalars are replaced, sequences are appended;
 * - environment, labels, annotations, sysctls, build.args, build.labels,
 *   extra_hosts, deploy.labels... merge as maps whatever their form (list or map);
 * - command, entrypoint and healthcheck.test are replaced, never appended;
 * - depends_on and networks merge as maps (a list's entries become keys);
 * - then sequences are made unique by their key, the later entry taking the
 *   earlier one's place: ports (ip:published:target/protocol), volumes (target),
 *   secrets and configs (target), expose, dns, cap_add, tmpfs, env_file (path)...;
 * - the YAML tags `!reset` (drop the value, whatever the files before said)
 *   and `!override` (replace the value instead of merging) are honoured.
 */

export type Obj = Record<string, unknown>;

/** A value tagged `!reset` in YAML. */
export const RESET: unique symbol = Symbol("!reset");
/** A value tagged `!override` in YAML. */
export class Override { constructor(readonly value: unknown) {} }

/** A plain mapping (not a list, not a tag marker). */
export const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v) && !(v instanceof Override);

type Merger = (base: unknown, over: unknown, path: string[]) => unknown;

function match(path: string[], pattern: string): boolean {
  const p = pattern.split(".");
  return p.length === path.length && p.every((x, i) => x === "*" || x === path[i]);
}

/** "K=V" list or map → map (a bare "K" is K: null). */
export function listOrDict(v: unknown, sep = "="): Obj {
  if (isObj(v)) return { ...v };
  const out: Obj = {};
  if (Array.isArray(v)) {
    for (const x of v) {
      if (x === RESET) continue;
      const s = String(x);
      const i = s.indexOf(sep);
      out[i < 0 ? s : s.slice(0, i)] = i < 0 ? null : s.slice(i + 1);
    }
  }
  return out;
}

const toMapMerge: Merger = (b, o) => mergeMaps(listOrDict(b), listOrDict(o), []);
const extraHostsMerge: Merger = (b, o) => {
  const m = (v: unknown) => (isObj(v) ? { ...v } : listOrDict(v, v && Array.isArray(v) && v.some((x) => String(x).includes("=")) ? "=" : ":"));
  return mergeMaps(m(b), m(o), []);
};
const replace: Merger = (_b, o) => o;
const namesMap = (v: unknown): Obj => (Array.isArray(v) ? Object.fromEntries(v.map((x) => [String(x), null])) : isObj(v) ? { ...v } : {});
const dependsOnMerge: Merger = (b, o, p) => {
  const dep = (v: unknown) => (Array.isArray(v) ? Object.fromEntries(v.map((x) => [String(x), { condition: "service_started", required: true }])) : isObj(v) ? { ...v } : {});
  return mergeYaml(dep(b), dep(o), p, true);
};
const networksMerge: Merger = (b, o, p) => mergeYaml(namesMap(b), namesMap(o), p, true);
const buildMerge: Merger = (b, o, p) => {
  const ctx = (v: unknown) => (typeof v === "string" ? { context: v } : v);
  return mergeYaml(ctx(b), ctx(o), p, true);
};
const loggingMerge: Merger = (b, o, p) => {
  if (isObj(b) && isObj(o) && b.driver !== undefined && o.driver !== undefined && b.driver !== o.driver) return o;
  return mergeYaml(b, o, p, true);
};

const SPECIALS: [string, Merger][] = [
  ["networks.*.labels", toMapMerge], ["volumes.*.labels", toMapMerge], ["secrets.*.labels", toMapMerge], ["configs.*.labels", toMapMerge],
  ["services.*.annotations", toMapMerge], ["services.*.build", buildMerge], ["services.*.build.args", toMapMerge],
  ["services.*.build.additional_contexts", toMapMerge], ["services.*.build.extra_hosts", extraHostsMerge], ["services.*.build.labels", toMapMerge],
  ["services.*.command", replace], ["services.*.entrypoint", replace], ["services.*.depends_on", dependsOnMerge],
  ["services.*.deploy.labels", toMapMerge], ["services.*.environment", toMapMerge], ["services.*.extra_hosts", extraHostsMerge],
  ["services.*.healthcheck.test", replace], ["services.*.labels", toMapMerge], ["services.*.logging", loggingMerge],
  ["services.*.networks", networksMerge], ["services.*.sysctls", toMapMerge], ["services.*.volumes.*.volume.labels", toMapMerge],
  ["services.*.dns", (b, o) => [...strs(b), ...strs(o)]], ["services.*.dns_search", (b, o) => [...strs(b), ...strs(o)]],
  ["services.*.tmpfs", (b, o) => [...strs(b), ...strs(o)]], ["services.*.env_file", (b, o) => [...strs(b), ...strs(o)]],
  ["services.*.label_file", (b, o) => [...strs(b), ...strs(o)]],
];

/** A string-or-list value as a list. */
function strs(v: unknown): unknown[] { return v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]; }

function mergeMaps(b: Obj, o: Obj, path: string[]): Obj {
  const out: Obj = { ...b };
  for (const [k, v] of Object.entries(o)) {
    if (v === RESET) { delete out[k]; continue; }
    out[k] = k in out ? mergeYaml(out[k], v, [...path, k]) : v;
  }
  return out;
}

/** Merges `over` onto `base` at `path` (["services", "web", "ports"]). */
export function mergeYaml(base: unknown, over: unknown, path: string[], skipSpecial = false): unknown {
  if (over === RESET) return RESET;
  if (over instanceof Override) return over.value;
  if (base === undefined || base === RESET) return over;
  if (over === undefined) return base;
  if (!skipSpecial) for (const [pat, m] of SPECIALS) if (match(path, pat)) return m(base, over, path);
  if (over === null) return base;
  if (isObj(base) && isObj(over)) return mergeMaps(base, over, path);
  if (Array.isArray(base) && Array.isArray(over)) return [...base, ...over];
  return over;
}

// ---------- unicity ----------

type Indexer = (entry: unknown) => string;

const keyValue: Indexer = (e) => (typeof e === "string" ? e.split("=")[0] : JSON.stringify(e));
const volumeKey: Indexer = (e) => {
  if (isObj(e)) return String(e.target ?? "");
  if (typeof e !== "string") return JSON.stringify(e);
  const parts = e.split(":");
  if (parts.length === 1) return parts[0];
  if (parts.length === 2 && !parts[1].startsWith("/")) return parts[0];
  return parts[1];
};
const portKey: Indexer = (e) => {
  if (isObj(e)) return `${e.host_ip ?? ""}:${e.published ?? ""}:${e.target}/${e.protocol ?? "tcp"}`;
  const s = String(e);
  const slash = s.lastIndexOf("/");
  const proto = slash >= 0 ? s.slice(slash + 1) : "tcp", rest = slash >= 0 ? s.slice(0, slash) : s;
  const parts = rest.split(":");
  const target = parts.pop(), published = parts.pop() ?? "", ip = parts.join(":");
  return `${ip}:${published}:${target}/${proto}`;
};
const mountKey = (base: string): Indexer => (e) => {
  if (typeof e === "string") return `${base}/${e}`;
  if (isObj(e)) {
    const t = e.target === undefined || e.target === null ? undefined : String(e.target);
    if (t === undefined) return `${base}/${String(e.source)}`;
    return t.startsWith("/") || !base ? t : `${base}/${t}`;
  }
  return JSON.stringify(e);
};
const envFileKey: Indexer = (e) => (isObj(e) ? String(e.path) : String(e));

const UNIQUE: [string, Indexer][] = [
  ["services.*.annotations", keyValue], ["services.*.build.args", keyValue], ["services.*.build.labels", keyValue], ["services.*.build.tags", keyValue],
  ["services.*.build.platforms", keyValue], ["services.*.cap_add", keyValue], ["services.*.cap_drop", keyValue], ["services.*.configs", mountKey("")],
  ["services.*.deploy.labels", keyValue], ["services.*.dns", keyValue], ["services.*.dns_opt", keyValue], ["services.*.dns_search", keyValue],
  ["services.*.environment", keyValue], ["services.*.env_file", envFileKey], ["services.*.expose", (e) => String(e)], ["services.*.labels", keyValue],
  ["services.*.links", keyValue], ["services.*.networks.*.aliases", keyValue], ["services.*.ports", portKey], ["services.*.profiles", keyValue],
  ["services.*.secrets", mountKey("/run/secrets")], ["services.*.sysctls", keyValue], ["services.*.tmpfs", keyValue], ["services.*.volumes", volumeKey],
  ["services.*.security_opt", keyValue], ["services.*.extra_hosts", keyValue],
];

/** Makes sequences unique by their key (the later entry replaces the earlier one, in its place); drops `!reset` values, unwraps `!override`. */
export function finalize(v: unknown, path: string[] = [], unique = true): unknown {
  if (v instanceof Override) return finalize(v.value, path, unique);
  if (Array.isArray(v)) {
    const items = v.filter((x) => x !== RESET).map((x, i) => finalize(x, [...path, String(i)], unique));
    const idx = unique && UNIQUE.find(([p]) => match(path, p));
    if (!idx) return items;
    const out: unknown[] = [];
    const seen = new Map<string, number>();
    for (const x of items) {
      const k = idx[1](x);
      const at = seen.get(k);
      if (at !== undefined) out[at] = x;
      else { seen.set(k, out.length); out.push(x); }
    }
    return out;
  }
  if (isObj(v)) {
    const out: Obj = {};
    for (const [k, x] of Object.entries(v)) if (x !== RESET) out[k] = finalize(x, [...path, k], unique);
    return out;
  }
  return v;
}

/** Merges whole models (top-level documents), later over earlier. Markers stay until finalize(). */
export function mergeModels(docs: Obj[]): Obj {
  let out: Obj = {};
  for (const d of docs) out = mergeYaml(out, d, []) as Obj;
  return out;
}
