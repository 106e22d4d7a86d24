/**
 * `berth compose watch`: the services' `develop.watch` rules, as docker
 * compose runs them. After `up` (unless --no-up) every rule's `path` is
 * watched (recursively); a change that no `ignore` pattern matches runs the
 * rule's action:
 *  - sync: the changed files are copied into every container of the service
 *    at `target` (one tar through PUT /containers/{id}/archive; a deleted
 *    file is removed with an exec of rm -rf);
 *  - sync+restart: the same, then the containers restart;
 *  - rebuild: the image is built again and the service converged (its
 *    containers recreated, since the image id changed).
 * Changes are gathered for a short moment so a save that writes several
 * files is one sync. Ctrl-C ends the watch (the containers keep running).
 */
import { existsSync, lstatSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { join, posix, relative, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { DockerIgnore } from "../lib/dockerignore.js";
import { writeTar, type TarEntry } from "../lib/tar-writer.js";
import type { IdResponse } from "../api/types.js";
import { ComposeError, type Service } from "./loader.js";
import { raw, type Orchestrator } from "./orchestrator.js";
import type { Sub } from "./command.js";

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

export interface WatchRule { path: string; action: "sync" | "rebuild" | "restart" | "sync+restart" | "sync+exec" | string; target?: string; ignore: string[]; exec?: string[] }

/** develop.watch of a service, read defensively (paths absolute, from the project directory). */
export function watchRules(o: Orchestrator, s: Service): WatchRule[] {
  const dev = raw(s).develop;
  const list = isObj(dev) && Array.isArray(dev.watch) ? dev.watch : [];
  return list.filter(isObj).map((w) => ({
    path: resolve(o.project.workingDir, String(w.path ?? ".")),
    action: String(w.action ?? "sync"),
    ...(typeof w.target === "string" ? { target: w.target } : {}),
    ignore: Array.isArray(w.ignore) ? w.ignore.map(String) : [],
    ...(isObj(w.exec) ? { exec: Array.isArray(w.exec.command) ? w.exec.command.map(String) : ["/bin/sh", "-c", String(w.exec.command)] } : {}),
  }));
}

/** Default ignores of compose's watch: editor droppings and VCS metadata. */
const DEFAULT_IGNORE = [".git", ".git/**", "*~", "**/*~", "**/.*.swp", "**/.*.swx", "**/4913"];

function* walk(local: string, name: string): Generator<TarEntry> {
  const st = lstatSync(local);
  const mtime = st.mtime;
  if (st.isDirectory()) {
    yield { name: name + "/", type: "directory", mode: st.mode & 0o7777, mtime };
    for (const e of readdirSync(local)) yield* walk(join(local, e), `${name}/${e}`);
  } else if (st.isSymbolicLink()) {
    yield { name, type: "symlink", mode: st.mode & 0o7777, mtime, linkname: "" };
  } else if (st.isFile()) {
    yield { name, type: "file", mode: st.mode & 0o7777, mtime, size: st.size, source: local };
  }
}

export const watchSub: Sub = {
  name: "watch", usage: "watch [SERVICE...]", desc: "Watch build context for service and rebuild/refresh containers when files are updated",
  flags: [
    { long: "no-up", type: "bool", desc: "Do not build & start services before watching" },
    { long: "quiet", type: "bool", desc: "hide build output" },
    { long: "prune", type: "bool", hidden: true },
  ],
  run: async (c, o, f, a) => {
    const names = a.length ? a : Object.keys(o.project.services).sort();
    for (const n of names) if (!o.project.services[n]) throw new ComposeError(`no such service: ${n}`);
    const watched = names.map((n) => ({ s: o.project.services[n], rules: watchRules(o, o.project.services[n]) })).filter((x) => x.rules.length);
    if (!watched.length) throw new ComposeError("none of the selected services is configured for watch, consider setting an 'develop' section");
    for (const { s, rules } of watched) for (const r of rules) {
      if (r.action !== "rebuild" && r.action !== "restart" && !r.target) throw new ComposeError(`services.${s.name}.develop.watch: target is required for ${r.action} action`);
      if (r.action === "rebuild" && !s.build) throw new ComposeError(`can't watch service "${s.name}" with action rebuild without a build context`);
    }
    if (!f["no-up"]) await o.up({ services: a });
    const watchers: FSWatcher[] = [];
    const chains = new Map<string, Promise<void>>();
    const queue = (svc: string, job: () => Promise<void>) => {
      const next = (chains.get(svc) ?? Promise.resolve()).then(job).catch((e: unknown) => c.err(`${(e as Error).message}\n`));
      chains.set(svc, next);
    };

    const sync = async (s: Service, r: WatchRule, files: string[]) => {
      const cs = await o.containers({ services: [s.name] });
      const present: TarEntry[] = [];
      const gone: string[] = [];
      for (const rel of files) {
        const local = rel ? join(r.path, rel) : r.path;
        const inCtr = rel ? posix.join(r.target!, rel.split(sep).join("/")) : r.target!;
        if (existsSync(local)) present.push(...walk(local, inCtr.replace(/^\/+/, "")));
        else gone.push(inCtr);
      }
      for (const x of cs) {
        if (present.length) await o.api.putArchive(x.Id, "/", Readable.from(writeTar(present)));
        if (gone.length) {
          const { Id } = await o.api.json<IdResponse>("POST", `/containers/${x.Id}/exec`, { body: { Cmd: ["rm", "-rf", ...gone], AttachStdout: false, AttachStderr: false } });
          await o.api.request("POST", `/exec/${Id}/start`, { body: { Detach: true } });
        }
      }
      c.err(`Syncing service "${s.name}" after ${files.length} changes were detected\n`);
      return cs;
    };

    for (const { s, rules } of watched) {
      for (const r of rules) {
        const ig = new DockerIgnore([...DEFAULT_IGNORE, ...r.ignore]);
        const pending = new Set<string>();
        let timer: NodeJS.Timeout | undefined;
        const flush = () => {
          timer = undefined;
          const files = [...pending];
          pending.clear();
          queue(s.name, async () => {
            if (r.action === "rebuild") {
              c.err(`Rebuilding service "${s.name}" after changes were detected...\n`);
              await o.build(s);
              await o.up({ services: [s.name], noDeps: true });
              c.err(`service "${s.name}" successfully built\n`);
              return;
            }
            if (r.action === "restart") {
              for (const x of await o.containers({ services: [s.name] })) await o.api.request("POST", `/containers/${x.Id}/restart`);
              c.err(`service "${s.name}" restarted\n`);
              return;
            }
            const cs = await sync(s, r, files);
            if (r.action === "sync+exec" && r.exec) {
              for (const x of cs) {
                const { Id } = await o.api.json<IdResponse>("POST", `/containers/${x.Id}/exec`, { body: { Cmd: r.exec, AttachStdout: false, AttachStderr: false } });
                await o.api.request("POST", `/exec/${Id}/start`, { body: { Detach: true } });
              }
            }
            if (r.action === "sync+restart") {
              for (const x of cs) await o.api.request("POST", `/containers/${x.Id}/restart`);
              c.err(`service "${s.name}" restarted\n`);
            }
          });
        };
        if (!existsSync(r.path)) throw new ComposeError(`unable to watch ${r.path}: no such file or directory`);
        const isDir = lstatSync(r.path).isDirectory();
        const w = watch(r.path, { recursive: isDir }, (_ev, filename) => {
          const rel = isDir ? String(filename ?? "") : "";
          if (isDir && !rel) return;
          const relPosix = rel.split(sep).join("/");
          if (relPosix && ig.isIgnored(relPosix)) return;
          if (!isDir && ig.isIgnored(relative(o.project.workingDir, r.path).split(sep).join("/"))) return;
          pending.add(rel);
          if (!timer) timer = setTimeout(flush, 100);
        });
        watchers.push(w);
      }
    }
    c.err("Watch enabled\n");
    await new Promise<void>((done) => {
      const stop = () => { process.off("SIGINT", stop); process.off("SIGTERM", stop); done(); };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
    for (const w of watchers) w.close();
    await Promise.all(chains.values());
    return 0;
  },
};


