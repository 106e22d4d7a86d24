/**
 * The subset of Go's text/template the docker CLI's --format uses:
 * {{.A.B}}, {{json .}}, {{index .M "k"}}, {{join .L ","}}, {{lower}},
 * {{upper}}, {{title}}, {{len}}, {{printf "%s" .X}}, {{println}}, pipelines
 * ({{.X | json}}), {{range .L}}…{{end}}, {{if .X}}…{{else}}…{{end}}, and
 * methods with arguments ({{.Label "k"}}) when the value is a function,
 * variables ({{range $k, $v := .M}}, {{$x := .A}}, {{$.Root}}) and
 * (pipeline).Field.
 */

type Node =
  | { t: "text"; s: string }
  | { t: "expr"; e: Cmd[] }
  | { t: "assign"; name: string; e: Cmd[] }
  | { t: "if"; e: Cmd[]; then: Node[]; else: Node[] }
  | { t: "range"; e: Cmd[]; body: Node[]; keyVar?: string; valVar?: string }
  | { t: "with"; e: Cmd[]; then: Node[]; else: Node[] };
type Operand = { k: "field"; path: string[] } | { k: "str"; v: string } | { k: "num"; v: number } | { k: "ident"; v: string } | { k: "dot" } | { k: "sub"; e: Cmd[]; path?: string[] } | { k: "var"; name: string; path: string[] };
type Vars = Map<string, unknown>;
type Cmd = Operand[];

export class TemplateError extends Error {}

function tokenize(src: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '"' || c === "`") {
      let j = i + 1, s = "";
      while (j < src.length && src[j] !== c) {
        if (src[j] === "\\" && c === '"') { const n = src[++j]; s += n === "n" ? "\n" : n === "t" ? "\t" : n; j++; continue; }
        s += src[j++];
      }
      out.push(JSON.stringify(s));
      i = j + 1;
      continue;
    }
    if (c === "|" || c === "(" || c === ")") {
      out.push(c); i++;
      // (expr).Field.Sub: a field chain on the value of a parenthesised pipeline.
      if (c === ")" && src[i] === ".") { let j = i; while (j < src.length && !/[\s|()"]/.test(src[j])) j++; out.push("@" + src.slice(i, j)); i = j; }
      continue;
    }
    let j = i;
    while (j < src.length && !/[\s|()",]/.test(src[j])) j++;
    if (j === i) { i++; continue; } // a comma between range variables
    out.push(src.slice(i, j));
    i = j;
  }
  return out;
}

function parsePipeline(tokens: string[], pos = { i: 0 }): Cmd[] {
  const cmds: Cmd[] = [[]];
  while (pos.i < tokens.length) {
    const tok = tokens[pos.i++];
    if (tok === ")") break;
    if (tok === "|") { cmds.push([]); continue; }
    const cur = cmds[cmds.length - 1];
    if (tok === "(") {
      const sub: Operand = { k: "sub", e: parsePipeline(tokens, pos) };
      if (tokens[pos.i]?.startsWith("@.")) sub.path = tokens[pos.i++].slice(2).split(".");
      cur.push(sub);
      continue;
    }
    if (tok.startsWith('"')) cur.push({ k: "str", v: JSON.parse(tok) as string });
    else if (tok.startsWith("$")) { const [name, ...path] = tok.split("."); cur.push({ k: "var", name, path }); }
    else if (tok === ".") cur.push({ k: "dot" });
    else if (tok.startsWith(".")) cur.push({ k: "field", path: tok.slice(1).split(".") });
    else if (/^-?\d+(\.\d+)?$/.test(tok)) cur.push({ k: "num", v: Number(tok) });
    else cur.push({ k: "ident", v: tok });
  }
  return cmds;
}

function parse(src: string): Node[] {
  const root: Node[] = [];
  const stack: { nodes: Node[]; node?: Node & { then?: Node[]; else?: Node[]; body?: Node[] }; inElse?: boolean }[] = [{ nodes: root }];
  const re = /\{\{-?\s*([\s\S]*?)\s*-?\}\}/g;
  let last = 0;
  let m: RegExpExecArray | null;
  const top = () => stack[stack.length - 1];
  while ((m = re.exec(src))) {
    if (m.index > last) top().nodes.push({ t: "text", s: src.slice(last, m.index) });
    last = re.lastIndex;
    const body = m[1];
    const word = body.split(/\s+/, 1)[0];
    if (word === "if" || word === "range" || word === "with") {
      let rest = body.slice(word.length);
      let keyVar: string | undefined, valVar: string | undefined;
      const decl = word === "range" ? /^\s*(\$\w*)\s*(?:,\s*(\$\w*)\s*)?:=([\s\S]*)$/.exec(rest) : null;
      if (decl) { rest = decl[3]; if (decl[2]) { keyVar = decl[1]; valVar = decl[2]; } else valVar = decl[1]; }
      const e = parsePipeline(tokenize(rest));
      const node = word === "range" ? { t: "range" as const, e, body: [] as Node[], keyVar, valVar } : { t: word as "if" | "with", e, then: [] as Node[], else: [] as Node[] };
      top().nodes.push(node);
      stack.push({ nodes: node.t === "range" ? node.body : (node as { then: Node[] }).then, node });
    } else if (word === "else") {
      const f = top();
      if (!f.node || f.node.t === "range") throw new TemplateError("unexpected {{else}}");
      f.nodes = f.node.else!;
    } else if (word === "end") {
      if (stack.length === 1) throw new TemplateError("unexpected {{end}}");
      stack.pop();
    } else if (body.startsWith("/*")) {
      continue;
    } else {
      const a = /^(\$\w+)\s*:?=([\s\S]*)$/.exec(body);
      if (a) top().nodes.push({ t: "assign", name: a[1], e: parsePipeline(tokenize(a[2])) });
      else top().nodes.push({ t: "expr", e: parsePipeline(tokenize(body)) });
    }
  }
  if (stack.length !== 1) throw new TemplateError("unexpected EOF: missing {{end}}");
  if (last < src.length) root.push({ t: "text", s: src.slice(last) });
  return root;
}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v as object).length > 0;
  return true;
}

function str(v: unknown): string {
  if (v === null || v === undefined) return "<no value>";
  if (Array.isArray(v)) return `[${v.map(str).join(" ")}]`;
  if (typeof v === "object") return `map[${Object.entries(v as object).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => `${k}:${str(x)}`).join(" ")}]`;
  return String(v);
}

function sprintf(fmt: string, args: unknown[]): string {
  let i = 0;
  return fmt.replace(/%([-+ 0#]*\d*(?:\.\d+)?)([svdqf%])/g, (_all, _flags: string, verb: string) => {
    if (verb === "%") return "%";
    const a = args[i++];
    if (verb === "q") return JSON.stringify(str(a));
    if (verb === "d") return String(Math.trunc(Number(a)));
    return str(a);
  });
}

/**
 * Fields whose Go type is a map in moby's API types: encoding/json writes a map's keys sorted, a struct's
 * fields in their declared order (the order the daemon sends them in). The docker CLI decodes inspect answers
 * into those typed structs, so `{{json .Config.Labels}}` prints sorted keys and `{{json .Config}}` does not.
 */
const MAP_FIELDS = new Set([
  "Labels", "Options", "ExposedPorts", "Volumes", "PortBindings", "Ports", "StorageOpt", "Tmpfs", "Sysctls", "Data",
  "Networks", "DriverOpts", "AuxiliaryAddresses", "Containers", "Status", "Attributes", "Details", "IndexConfigs",
  "Runtimes", "Services", "networks", "stats",
]);
/** The field each object value was reached by (so `json` knows whether it is a Go map). */
const reachedBy = new WeakMap<object, string>();
/** Objects marshalled by the CLI as a Go map (the rows of ps/images/network ls/volume ls --format): keys sorted. */
const sortedObjects = new WeakSet<object>();

/** v rebuilt in the order Go's encoding/json writes it: map keys sorted (by byte order), struct fields as they are. */
function goOrder(v: unknown, isMap: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => goOrder(x, false));
  if (!v || typeof v !== "object") return v;
  const sorted = isMap || sortedObjects.has(v);
  const keys = Object.keys(v);
  if (sorted) keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === "function") continue;
    // A map's values are of the map's element type: a struct (EndpointSettings) or a plain value.
    out[k] = goOrder(x, !sorted && MAP_FIELDS.has(k) && !Array.isArray(x));
  }
  return out;
}

/** Go's json.Marshal: sorted map keys, and <, >, & and U+2028/9 escaped as \u003c... (HTML-safe, as Go writes them). */
export function goJson(v: unknown): string {
  const name = v && typeof v === "object" ? reachedBy.get(v) : undefined;
  const text = JSON.stringify(goOrder(v ?? null, name !== undefined && MAP_FIELDS.has(name) && !Array.isArray(v))) ?? "null";
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

const FUNCS: Record<string, (...a: unknown[]) => unknown> = {
  json: (v) => goJson(v),
  index: (v, ...keys) => keys.reduce<unknown>((o, k) => (o == null ? undefined : (o as Record<string, unknown>)[String(k)]), v),
  join: (v, sep) => (Array.isArray(v) ? v.map(str).join(String(sep)) : str(v)),
  lower: (v) => str(v).toLowerCase(),
  upper: (v) => str(v).toUpperCase(),
  title: (v) => str(v).replace(/\b\w/g, (c) => c.toUpperCase()),
  len: (v) => (Array.isArray(v) || typeof v === "string" ? v.length : v && typeof v === "object" ? Object.keys(v).length : 0),
  println: (...a) => a.map(str).join(" ") + "\n",
  print: (...a) => a.map(str).join(""),
  printf: (f, ...a) => sprintf(String(f), a),
  split: (v, sep) => str(v).split(String(sep)),
  truncate: (v, n) => str(v).slice(0, Number(n)),
  pad: (v, l, r) => " ".repeat(Number(l)) + str(v) + " ".repeat(Number(r)),
  eq: (a, ...b) => b.some((x) => x === a),
  ne: (a, b) => a !== b,
  not: (a) => !truthy(a),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
};

function field(dot: unknown, path: string[], args: unknown[]): unknown {
  let v: unknown = dot;
  for (let i = 0; i < path.length; i++) {
    if (v === null || v === undefined) return undefined;
    const obj = v as Record<string, unknown>;
    const key = path[i];
    let next: unknown = obj[key];
    if (next === undefined) {
      const k2 = Object.keys(obj).find((k) => k.toLowerCase() === key.toLowerCase());
      if (k2) next = obj[k2];
    }
    if (typeof next === "function") next = (next as (...a: unknown[]) => unknown).apply(obj, i === path.length - 1 ? args : []);
    if (next && typeof next === "object" && !sortedObjects.has(next)) reachedBy.set(next, key);
    v = next;
  }
  return v;
}

function evalCmd(cmd: Cmd, dot: unknown, piped: unknown[], vars: Vars): unknown {
  if (cmd.length === 0) throw new TemplateError("empty command");
  const operand = (o: Operand): unknown => {
    switch (o.k) {
      case "str": return o.v;
      case "num": return o.v;
      case "dot": return dot;
      case "field": return field(dot, o.path, []);
      case "sub": { const v = evalPipe(o.e, dot, vars); return o.path ? field(v, o.path, []) : v; }
      case "var": {
        if (!vars.has(o.name)) throw new TemplateError(`undefined variable "${o.name}"`);
        return o.path.length ? field(vars.get(o.name), o.path, []) : vars.get(o.name);
      }
      case "ident":
        if (o.v === "true") return true;
        if (o.v === "false") return false;
        if (o.v === "nil") return null;
        if (FUNCS[o.v]) return FUNCS[o.v]();
        throw new TemplateError(`function "${o.v}" not defined`);
    }
  };
  const [head, ...rest] = cmd;
  if (head.k === "ident" && FUNCS[head.v]) return FUNCS[head.v](...rest.map(operand), ...piped);
  if (head.k === "ident" && !["true", "false", "nil"].includes(head.v)) throw new TemplateError(`function "${head.v}" not defined`);
  if (head.k === "field") return field(dot, head.path, [...rest.map(operand), ...piped]);
  return operand(head);
}

function evalPipe(cmds: Cmd[], dot: unknown, vars: Vars): unknown {
  let v: unknown;
  cmds.forEach((c, i) => { v = evalCmd(c, dot, i === 0 ? [] : [v], vars); });
  return v;
}

function render(nodes: Node[], dot: unknown, vars: Vars): string {
  let out = "";
  for (const n of nodes) {
    switch (n.t) {
      case "text": out += n.s; break;
      case "expr": { const v = evalPipe(n.e, dot, vars); out += typeof v === "string" ? v : str(v); break; }
      case "assign": vars.set(n.name, evalPipe(n.e, dot, vars)); break;
      case "if": out += truthy(evalPipe(n.e, dot, vars)) ? render(n.then, dot, vars) : render(n.else, dot, vars); break;
      case "with": { const v = evalPipe(n.e, dot, vars); out += truthy(v) ? render(n.then, v, vars) : render(n.else, dot, vars); break; }
      case "range": {
        const v = evalPipe(n.e, dot, vars);
        const each = (k: unknown, x: unknown) => {
          const inner = new Map(vars);
          if (n.keyVar) inner.set(n.keyVar, k);
          if (n.valVar) inner.set(n.valVar, x);
          out += render(n.body, x, inner);
        };
        if (Array.isArray(v)) v.forEach((x, i) => each(i, x));
        else if (v && typeof v === "object") for (const k of Object.keys(v).sort()) each(k, (v as Record<string, unknown>)[k]);
        break;
      }
    }
  }
  return out;
}

export function compile(src: string): (dot: unknown) => string {
  const nodes = parse(src);
  return (dot) => render(nodes, dot, new Map([["$", dot]]));
}

/** docker's tabwriter: minwidth 10, padding 3, cells separated by tabs. */
export function tabulate(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => { if (i < r.length - 1) widths[i] = Math.max(widths[i] ?? 0, [...c].length); });
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c + " ".repeat(Math.max(10, widths[i] + 3) - [...c].length) : c)).join("").replace(/\s+$/, "")).join("\n") + (rows.length ? "\n" : "");
}

/**
 * Renders rows with a --format value: "table …" gives a header from `headers`
 * (placeholder → column title) and aligned columns; otherwise one line per row.
 */
export function formatRows(format: string, rows: unknown[], headers: Record<string, string>): string {
  // The docker CLI's formatter contexts marshal as maps: `{{json .}}` of a row has its keys sorted.
  for (const r of rows) if (r && typeof r === "object") sortedObjects.add(r);
  const isTable = format.startsWith("table");
  const body = isTable ? format.slice(5).trimStart() : format;
  const tpl = compile(body.replace(/\\t/g, "\t").replace(/\\n/g, "\n"));
  if (!isTable) return rows.map((r) => tpl(r) + "\n").join("");
  const header = body.replace(/\{\{\s*\.(\w+)\s*\}\}/g, (_m, k: string) => headers[k] ?? k.toUpperCase()).replace(/\{\{[^}]*\}\}/g, "").replace(/\\t/g, "\t");
  const lines = [header, ...rows.map((r) => tpl(r))];
  return tabulate(lines.map((l) => l.split("\t")));
}
