/**
 * RUN --mount and instruction flags: BuildKit's BFlags (each instruction's `--name=value` flags checked
 * against what it accepts) and instructions.Mount (a RUN --mount's CSV fields, checked with BuildKit's
 * wording).
 */
import { BadParameterError } from "../lib/errors.js";
import { ramInBytes } from "../lib/units.js";
import { NodeError } from "./errors.js";

export type FlagKind = "bool" | "string" | "strings";
export type FlagValues = Map<string, string | boolean | string[]>;

/** Checks flags against what the instruction accepts (BuildKit BFlags). */
export function parseFlags(raw: readonly string[], spec: Readonly<Record<string, FlagKind>>): FlagValues {
  const used: FlagValues = new Map();
  for (const a of raw) {
    if (!a.startsWith("--")) throw new NodeError(`arg should start with -- : ${a}`);
    if (a === "--") break;
    let name = a.slice(2);
    let value = "";
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (kind === undefined) throw new NodeError(`unknown flag: ${name}`);
    if (used.has(name) && kind !== "strings") throw new NodeError(`duplicate flag specified: ${name}`);
    switch (kind) {
      case "bool": {
        if (eq >= 0 && value === "") throw new NodeError(`missing a value on flag: ${name}`);
        const lower = value.toLowerCase();
        if (lower === "" || lower === "true") used.set(name, true);
        else if (lower === "false") used.set(name, false);
        else throw new NodeError(`expecting boolean value for flag ${name}, not: ${value}`);
        break;
      }
      case "string":
        if (eq < 0) throw new NodeError(`missing a value on flag: ${name}`);
        used.set(name, value);
        break;
      case "strings": {
        if (eq < 0) throw new NodeError(`missing a value on flag: ${name}`);
        const list = (used.get(name) as string[] | undefined) ?? [];
        list.push(value);
        used.set(name, list);
        break;
      }
    }
  }
  return used;
}

export const str = (f: FlagValues, name: string): string | undefined => f.get(name) as string | undefined;
export const bool = (f: FlagValues, name: string): boolean => f.get(name) === true;
export const strs = (f: FlagValues, name: string): string[] => (f.get(name) as string[] | undefined) ?? [];

export type MountType = "bind" | "cache" | "tmpfs" | "secret" | "ssh";

/** A parsed RUN --mount (BuildKit instructions.Mount). */
export interface RunMount {
  type: MountType;
  /** Stage or image to mount from (bind, cache). */
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  /** Cache id, secret id or ssh id. */
  id?: string;
  sharing?: "shared" | "private" | "locked";
  required: boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  /** tmpfs size in bytes. */
  size?: number;
  /** Secret exposed as this environment variable. */
  env?: string;
}

/**
 * Parses one RUN --mount value (`type=cache,target=/root/.cache,...`; CSV, so
 * a field may be double-quoted). `expand` is applied to every value first;
 * the executor passes its variable expansion (expand.ts expandString).
 * Throws BadParameterError with BuildKit's wording.
 */
export function parseRunMount(spec: string, expand: (value: string) => string = (v) => v): RunMount {
  const fields = parseCSVRecord(spec);
  const m: RunMount = { type: "bind", readOnly: false, required: false };
  let roAuto = true;
  const fail = (msg: string): never => {
    throw new BadParameterError(msg);
  };
  const parseBool = (key: string, v: string): boolean => {
    if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
    if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
    return fail(`invalid value for ${key}: ${v}`);
  };
  const parseUint = (key: string, v: string, radix: 8 | 10): number => {
    const ok = radix === 8 ? /^[0-7]+$/.test(v) : /^\d+$/.test(v);
    const n = ok ? parseInt(v, radix) : NaN;
    if (!ok || n > 0xffffffff) fail(`invalid value ${v} for ${key}`);
    return n;
  };
  for (const field of fields) {
    const eq = field.indexOf("=");
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      switch (key) {
        case "readonly":
        case "ro":
          m.readOnly = true;
          roAuto = false;
          continue;
        case "readwrite":
        case "rw":
          m.readOnly = false;
          roAuto = false;
          continue;
        case "required":
          if (m.type !== "secret" && m.type !== "ssh") fail(`unexpected key '${key}' for mount type '${m.type}'`);
          m.required = true;
          continue;
        default:
          fail(`invalid field '${field}' must be a key=value pair`);
      }
    }
    const value = expand(field.slice(eq + 1));
    switch (key) {
      case "type": {
        const t = value.toLowerCase();
        if (!["bind", "cache", "tmpfs", "secret", "ssh"].includes(t)) fail(`unsupported mount type ${JSON.stringify(value)}`);
        m.type = t as MountType;
        break;
      }
      case "from":
        m.from = value;
        break;
      case "source":
      case "src":
        m.source = value;
        break;
      case "target":
      case "dst":
      case "destination":
        m.target = value;
        break;
      case "readonly":
      case "ro":
        m.readOnly = parseBool(key, value);
        roAuto = false;
        break;
      case "readwrite":
      case "rw":
        m.readOnly = !parseBool(key, value);
        roAuto = false;
        break;
      case "required":
        if (m.type !== "secret" && m.type !== "ssh") fail(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = parseBool(key, value);
        break;
      case "size":
        if (m.type !== "tmpfs") fail(`unexpected key '${key}' for mount type '${m.type}'`);
        m.size = ramInBytes(value) ?? fail(`invalid value for ${key}: ${value}`);
        break;
      case "id":
        m.id = value;
        break;
      case "sharing": {
        const s = value.toLowerCase();
        if (s !== "shared" && s !== "private" && s !== "locked") fail(`unsupported sharing value ${JSON.stringify(value)}`);
        m.sharing = s as RunMount["sharing"];
        break;
      }
      case "mode":
        m.mode = parseUint("mode", value, 8);
        break;
      case "uid":
        m.uid = parseUint("uid", value, 10);
        break;
      case "gid":
        m.gid = parseUint("gid", value, 10);
        break;
      case "env":
        m.env = value;
        break;
      default:
        fail(`unexpected key '${key}' in '${field}'`);
    }
  }
  const fileInfoAllowed = m.type === "secret" || m.type === "ssh" || m.type === "cache";
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) fail(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) fail(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) fail(`gid not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === "cache" || m.type === "tmpfs");
  if (m.type === "secret") {
    if (m.from !== undefined) fail("secret mount should not have a from");
    if (m.sharing !== undefined) fail("secret mount should not define sharing");
    if (!m.source && !m.target && !m.id && !m.env) fail("invalid secret mount. one of source, target required");
    if (m.source && m.id) fail("both source and id can't be set");
  }
  if (m.sharing !== undefined && m.type !== "cache") fail(`invalid cache sharing set for ${m.type} mount`);
  return m;
}

/** Validation at parse time: full for mounts without variables, `from=$X` refused (as BuildKit). */
export function checkMountAtParse(spec: string): void {
  try {
    if (!spec.includes("$")) {
      parseRunMount(spec);
      return;
    }
    for (const field of parseCSVRecord(spec)) {
      const eq = field.indexOf("=");
      if (eq > 0 && field.slice(0, eq).toLowerCase() === "from" && /\$./.test(field.slice(eq + 1))) {
        throw new BadParameterError("'from' doesn't support variable expansion, define alias stage instead");
      }
    }
  } catch (e) {
    if (e instanceof BadParameterError) throw new NodeError(e.message);
    throw e;
  }
}

/** One CSV record (Go encoding/csv, default settings). */
function parseCSVRecord(s: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new BadParameterError('failed to parse csv mounts: extraneous or missing " in quoted-field');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ",") throw new BadParameterError('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      while (i < s.length && s[i] !== ",") {
        if (s[i] === '"') throw new BadParameterError('failed to parse csv mounts: bare " in non-quoted-field');
        field += s[i++];
      }
    }
    fields.push(field);
    if (i >= s.length) return fields;
    i++; // comma
  }
}

