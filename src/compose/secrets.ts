/**
 * Service `secrets` and `configs`, mounted where the Compose Specification
 * says: a secret at /run/secrets/<target or source> (a relative target is
 * under /run/secrets), a config at /<target or source>. A `file` source is
 * bound read-only as it is; an `environment` or `content` source is written
 * to a file in the project's runtime directory (mode 0444) and that file is
 * bound read-only, so the value never lands in the container's image layer.
 *
 * The model comes from the loader (Project.secrets / Project.configs and
 * Service.secrets / Service.configs, compose-go's shapes); it is read
 * defensively here, so the short form (a list of names) works too.
 */
import { mkdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { isAbsolute, join, posix, resolve } from "node:path";
import { ComposeError, type Project, type Service } from "./loader.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

export interface FileObjectDef { name?: string; file?: string; environment?: string; content?: string; external?: boolean | Obj }
export interface FileObjectRef { source: string; target?: string; uid?: string; gid?: string; mode?: number | string }

/** Where the project keeps the files it binds for environment/content secrets and configs. */
export function runtimeDir(project: string): string {
  return join(process.env.XDG_RUNTIME_DIR || "/run", "berth-compose", project);
}

/** Removes the project's runtime directory (at `down`). */
export function removeRuntimeDir(project: string): void {
  rmSync(runtimeDir(project), { recursive: true, force: true });
}

function refs(v: unknown): FileObjectRef[] {
  if (!Array.isArray(v)) return [];
  return v.map((x) => (typeof x === "string" ? { source: x } : isObj(x) ? (x as unknown as FileObjectRef) : undefined)).filter((x): x is FileObjectRef => !!x && typeof x.source === "string");
}

/** The "source:target:ro" binds of a service's secrets and configs (the files are written here for environment/content sources). */
export function fileObjectBinds(p: Project, s: Service): string[] {
  const pj = p as unknown as Obj, sv = s as unknown as Obj;
  const binds: string[] = [];
  for (const kind of ["secrets", "configs"] as const) {
    const defs = (isObj(pj[kind]) ? pj[kind] : {}) as Record<string, FileObjectDef>;
    for (const ref of refs(sv[kind])) {
      const def = defs[ref.source];
      if (!def) throw new ComposeError(`service "${s.name}" refers to undefined ${kind.slice(0, -1)} ${ref.source}: invalid compose project`);
      if (def.external) throw new ComposeError(`unsupported external ${kind.slice(0, -1)} ${def.name ?? ref.source}`);
      const target = kind === "secrets"
        ? (ref.target ? (ref.target.startsWith("/") ? ref.target : posix.join("/run/secrets", ref.target)) : posix.join("/run/secrets", ref.source))
        : (ref.target ? (ref.target.startsWith("/") ? ref.target : `/${ref.target}`) : `/${ref.source}`);
      let host: string;
      if (def.file) host = isAbsolute(def.file) ? def.file : resolve(p.workingDir, def.file);
      else {
        let content: string | undefined = def.content;
        if (content === undefined && def.environment) {
          const penv = (isObj(pj.environment) ? pj.environment : {}) as Record<string, string | undefined>;
          content = penv[def.environment] ?? process.env[def.environment];
          if (content === undefined) throw new ComposeError(`environment variable "${def.environment}" required by ${kind.slice(0, -1)} "${ref.source}" is not set`);
        }
        if (content === undefined) throw new ComposeError(`${kind}.${ref.source}: one of file, environment or content is required`);
        const dir = join(runtimeDir(p.name), kind);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        host = join(dir, ref.source);
        writeFileSync(host, content);
        const mode = typeof ref.mode === "number" ? ref.mode : typeof ref.mode === "string" ? parseInt(ref.mode, 8) : 0o444;
        chmodSync(host, mode);
      }
      binds.push(`${host}:${target}:ro`);
    }
  }
  return binds;
}
