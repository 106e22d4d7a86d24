/**
 * Compose variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`,
 * and `$$` for a literal `$`. Defaults may themselves hold interpolations.
 * Applied to every string value of a compose file (never to keys).
 */

export class InterpolationError extends Error {}

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
      if (depth) throw new InterpolationError(`${where ? `${where}: ` : ""}invalid interpolation format for "${s}": unterminated \${`);
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
  if (!m) throw new InterpolationError(`${where ? `${where}: ` : ""}invalid interpolation format for "${whole}": "\${${expr}}"`);
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
      throw new InterpolationError(`${where ? `${where}: ` : ""}required variable ${name} is missing a value${arg ? `: ${interpolate(arg, env, where)}` : ""}`);
  }
  return v ?? "";
}

/** Interpolates every string value of a parsed YAML tree (keys are left alone). */
export function interpolateTree(node: unknown, env: Env, path = ""): unknown {
  if (typeof node === "string") return interpolate(node, env, path);
  if (Array.isArray(node)) return node.map((x, i) => interpolateTree(x, env, `${path}[${i}]`));
  if (node && typeof node === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) out[k] = interpolateTree(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return node;
}
