/**
 * Docker-style flag parsing: short flags bundle (-it, -dit), --flag=value and
 * --flag value, -e=X, repeatable list flags, bool flags with =false, and for
 * run/exec/create parsing stops at the first positional so the container's
 * own flags pass through (`run busybox ls -l`).
 */

export type FlagType = "bool" | "string" | "list" | "int";
export interface FlagSpec { long: string; short?: string; type: FlagType; default?: string | boolean | number; desc?: string; hidden?: boolean }
export type Flags = Record<string, string | boolean | number | string[] | undefined>;

export class UsageError extends Error {}

export function parseFlags(argv: string[], specs: FlagSpec[], opts: { stopAtPositional?: boolean } = {}): { flags: Flags; args: string[] } {
  const flags: Flags = {};
  for (const s of specs) {
    if (s.type === "list") flags[s.long] = [];
    else if (s.default !== undefined) flags[s.long] = s.default;
  }
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const args: string[] = [];
  const set = (s: FlagSpec, v: string | boolean, _typed: string) => {
    // pflag names the flag "-n, --last" when it has a shorthand, however it was typed.
    const name = s.short ? `-${s.short}, --${s.long}` : `--${s.long}`;
    if (s.type === "bool") {
      if (typeof v === "string") {
        if (!/^(true|false|1|0)$/i.test(v)) throw new UsageError(`invalid argument "${v}" for "${name}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
        flags[s.long] = /^(true|1)$/i.test(v);
      } else flags[s.long] = v;
    } else if (s.type === "list") (flags[s.long] as string[]).push(String(v));
    else if (s.type === "int") {
      if (!/^-?\d+$/.test(String(v))) throw new UsageError(`invalid argument "${v}" for "${name}" flag: strconv.ParseInt: parsing "${v}": invalid syntax`);
      flags[s.long] = Number(v);
    } else flags[s.long] = String(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") { args.push(...argv.slice(i + 1)); break; }
    if (a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      const s = byLong.get(name);
      if (!s) throw new UsageError(`unknown flag: --${name}`);
      if (eq > 0) set(s, a.slice(eq + 1), `--${name}`);
      else if (s.type === "bool") set(s, true, `--${name}`);
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(s, argv[++i], `--${name}`);
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const ch = a[j];
        const s = byShort.get(ch);
        if (!s) throw new UsageError(`unknown shorthand flag: '${ch}' in ${a}`);
        if (s.type === "bool") {
          if (a[j + 1] === "=") { set(s, a.slice(j + 2), `-${ch}`); break; }
          set(s, true, `-${ch}`);
          continue;
        }
        let v = a.slice(j + 1);
        if (v.startsWith("=")) v = v.slice(1);
        if (!v) {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${ch}' in -${ch}`);
          v = argv[++i];
        }
        set(s, v, `-${ch}`);
        break;
      }
      continue;
    }
    args.push(a);
    if (opts.stopAtPositional) { args.push(...argv.slice(i + 1)); break; }
  }
  return { flags, args };
}

export function flagHelp(specs: FlagSpec[]): string {
  const lines = specs.filter((s) => !s.hidden).map((s) => {
    const left = `${s.short ? `-${s.short}, ` : "    "}--${s.long}${s.type === "bool" ? "" : s.type === "list" ? " list" : s.type === "int" ? " int" : " string"}`;
    return `  ${left.padEnd(28)} ${s.desc ?? ""}${s.default !== undefined && s.default !== false && s.default !== "" ? ` (default ${typeof s.default === "string" ? JSON.stringify(s.default) : s.default})` : ""}`;
  });
  return lines.length ? `\nOptions:\n${lines.join("\n")}\n` : "";
}

/** `--filter k=v` flags → Docker's filters map. */
export function filterMap(list: string[]): Record<string, string[]> {
  const f: Record<string, string[]> = {};
  for (const x of list) {
    const i = x.indexOf("=");
    if (i < 0) throw new UsageError("bad format of filter (expected name=value)");
    (f[x.slice(0, i)] ??= []).push(x.slice(i + 1));
  }
  return f;
}

/** The `filters` query parameter (JSON), or undefined when there are none. */
export function filtersQuery(list: string[]): string | undefined {
  return list.length ? JSON.stringify(filterMap(list)) : undefined;
}

