/**
 * Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`,
 * and `$$` for a literal `$`. Defaults may themselves hold interpolations.
 * Applied to every string value of a compose file (never to keys); then the
 * values compose-go casts (booleans, integers at known paths) are cast, so
 * `read_only: "${RO}"` is a boolean. Errors are worded as compose-go's:
 * "error while interpolating services.web.image: required variable X is missing a value: why",
 * "invalid interpolation format for services.web.image.\nYou may need to escape any $ with another $.\n${1A}".
 */

export class InterpolationError extends Error {}

/** The loader's stand-ins for the YAML tags !reset (a string) and !override (a one-key mapping): never interpolated nor part of a path. */
export const TAG_PREFIX = "\u0000berth:";

/** `where` (the value's path) and the reason, formatted as compose-go formats them. */
function fail(kind: "invalid" | "required" | "cast", where: string, template: string, reason: string): never {
  if (kind === "invalid") throw new InterpolationError(where ? `invalid interpolation format for ${where}.\nYou may need to escape any $ with another $.\n${template}` : `Invalid template: ${JSON.stringify(template)}`);
  throw new InterpolationError(where ? `error while interpolating ${where}: ${reason}` : reason);
}

export type Env = Record<string, string | undefined>;

/** Interpolates one string; `where` names the value in errors ("services.web.image"). */
export function interpolate(s: string, env: Env, where = ""): string {
  let out = "";
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch !== "$") { out += ch; i++; continue; }
    const next = s[i + 1];
    if (next === "$") { out += "$"; i += 2; continue; }
    if (next === "{") {
      // Find the matching brace (defaults may nest ${...}).
      let depth = 1, j = i + 2;
      for (; j < s.length && depth; j++) {
        if (s[j] === "{") depth++;
        else if (s[j] === "}") depth--;
      }
      if (depth) fail("invalid", where, s, "");
      out += substitute(s.slice(i + 2, j - 1), env, where, s);
      i = j;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1));
    if (m) { out += env[m[0]] ?? ""; i += 1 + m[0].length; continue; }
    out += "$";
    i++;
  }
  return out;
}

function substitute(expr: string, env: Env, where: string, whole: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(expr);
  if (!m) fail("invalid", where, whole, "");
  const [, name, op, arg = ""] = m;
  const v = env[name];
  const set = v !== undefined, nonEmpty = set && v !== "";
  switch (op) {
    case undefined: return v ?? "";
    case ":-": return nonEmpty ? v! : interpolate(arg, env, where);
    case "-": return set ? v! : interpolate(arg, env, where);
    case ":+": return nonEmpty ? interpolate(arg, env, where) : "";
    case "+": return set ? interpolate(arg, env, where) : "";
    case ":?":
    case "?":
      if (op === ":?" ? nonEmpty : set) return v!;
      fail("required", where, whole, `required variable ${name} is missing a value${arg ? `: ${interpolate(arg, env, where)}` : ""}`);
  }
  return v ?? "";
}

const BOOL = (v: string): boolean => {
  const l = v.toLowerCase();
  if (["y", "yes", "true", "on"].includes(l)) return true;
  if (["n", "no", "false", "off"].includes(l)) return false;
  throw new Error(`invalid boolean: ${v}`);
};
const INT = (v: string): number => {
  if (!/^[+-]?\d+$/.test(v.trim())) throw new Error(`strconv.Atoi: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
};
const FLOAT = (v: string): number => {
  const n = Number(v);
  if (v.trim() === "" || Number.isNaN(n)) throw new Error(`strconv.ParseFloat: parsing ${JSON.stringify(v)}: invalid syntax`);
  return n;
};

/** compose-go's interpolateTypeCastMapping ("[]" a list item, "*" any key). */
const CASTS: [string[], (v: string) => unknown][] = ([
["services.*.cpu_count", INT], ["services.*.cpu_percent", FLOAT], ["services.*.cpu_period", INT],
  ["services.*.cpu_quota", INT], ["services.*.cpu_rt_period", INT], ["services.*.cpu_rt_runtime", INT], ["services.*.cpus", FLOAT],
  ["services.*.cpu_shares", INT], ["services.*.init", BOOL], ["services.*.deploy.replicas", INT], ["services.*.deploy.restart_policy.max_attempts", INT],
  ["services.*.healthcheck.retries", INT], ["services.*.healthcheck.disable", BOOL], ["services.*.oom_kill_disable", BOOL], ["services.*.oom_score_adj", INT],
  ["services.*.pids_limit", INT], ["services.*.ports.[].target", INT], ["services.*.privileged", BOOL], ["services.*.read_only", BOOL],
  ["services.*.scale", INT], ["services.*.stdin_open", BOOL], ["services.*.tty", BOOL],
  ["services.*.ulimits.*", INT], ["services.*.ulimits.*.hard", INT], ["services.*.ulimits.*.soft", INT], ["services.*.volumes.[].read_only", BOOL],
  ["services.*.volumes.[].volume.nocopy", BOOL], ["networks.*.external", BOOL], ["networks.*.internal", BOOL], ["networks.*.attachable", BOOL],
  ["networks.*.enable_ipv6", BOOL], ["networks.*.enable_ipv4", BOOL], ["volumes.*.external", BOOL], ["secrets.*.external", BOOL], ["configs.*.external", BOOL],
] as [string, (v: string) => unknown][]).map(([p, f]) => [p.split("."), f]);

function castFor(path: string[]): ((v: string) => unknown) | undefined {
  for (const [p, f] of CASTS) if (p.length === path.length && p.every((x, i) => x === "*" ? path[i] !== "[]" : x === path[i])) return f;
  return undefined;
}

/** Interpolates every string value of a parsed YAML tree (keys are left alone), then casts as compose-go does. */
export function interpolateTree(node: unknown, env: Env, path: string[] = []): unknown {
  if (typeof node === "string") {
    if (node.startsWith(TAG_PREFIX)) return node;
    const where = path.join(".");
    const v = interpolate(node, env, where);
    const cast = castFor(path);
    if (!cast) return v;
    try { return cast(v); } catch (e) { return fail("cast", where, node, `failed to cast to expected type: ${(e as Error).message}`); }
  }
  if (Array.isArray(node)) return node.map((x) => interpolateTree(x, env, [...path, "[]"]));
  if (node && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateTree(v, env, k.startsWith(TAG_PREFIX) ? path : [...path, k]);
    return out;
  }
  return node;
}
