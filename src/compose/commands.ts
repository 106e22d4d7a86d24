/**
 * The smaller `berth compose` commands, each over the project's containers
 * (found by label) and the API: create, kill, pause, unpause, top, images,
 * port, push, ls, cp, events, wait. Output shapes follow docker compose v2.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { UsageError } from "../lib/args.js";
import { tabulate } from "../lib/template.js";
import { humanSize } from "../lib/format.js";
import { jsonLines } from "../api/client.js";
import type { ContainerInspectResponse, ContainerSummary, ImageInspectResponse } from "../api/types.js";
import { ComposeError } from "./loader.js";
import { L, type Orchestrator } from "./orchestrator.js";
import { readWait, timeoutFlag, type Sub } from "./command.js";

const bare = (c: ContainerSummary) => c.Names[0].replace(/^\//, "");

/** --scale svc=N (repeatable) → map. */
export function parseScale(list: string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of list ?? []) {
    const m = /^([^=]+)=(\d+)$/.exec(x);
    if (!m) throw new UsageError(`invalid --scale option "${x}": must be SERVICE=NUM`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}

async function running(o: Orchestrator, services: string[]): Promise<ContainerSummary[]> {
  for (const n of services) if (!o.project.services[n] && Object.keys(o.project.services).length) throw new ComposeError(`no such service: ${n}`);
  return o.containers({ services });
}

/** Credentials saved by `docker login`/`berth login` (auths only) as X-Registry-Auth. */
function registryAuth(image: string): Record<string, string> {
  const first = image.split("/")[0];
  const host = image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost") ? first : "https://index.docker.io/v1/";
  try {
    const cfg = JSON.parse(readFileSync(join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json"), "utf8")) as { auths?: Record<string, { auth?: string }> };
    const a = cfg.auths?.[host]?.auth;
    if (a) {
      const [username, ...pw] = Buffer.from(a, "base64").toString().split(":");
      return { "X-Registry-Auth": Buffer.from(JSON.stringify({ username, password: pw.join(":"), serveraddress: host })).toString("base64url") };
    }
  } catch { /* no saved logins */ }
  return { "X-Registry-Auth": Buffer.from("{}").toString("base64url") };
}

function run(cmd: string, args: string[], stdin?: NodeJS.ReadableStream): { done: Promise<void>; stdout: NodeJS.ReadableStream } {
  const p = spawn(cmd, args, { stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  let err = "";
  p.stderr!.on("data", (d) => { err += d; });
  if (stdin) stdin.pipe(p.stdin!);
  const done = new Promise<void>((res, rej) => p.on("close", (code) => (code === 0 ? res() : rej(new ComposeError(`${cmd}: ${err.trim() || `exit ${code}`}`)))));
  return { done, stdout: p.stdout! };
}

export const extraSubs: Sub[] = [
  {
    name: "create", usage: "create [OPTIONS] [SERVICE...]", desc: "Creates containers for a service",
    flags: [
      { long: "build", type: "bool", desc: "Build images before starting containers" },
      { long: "force-recreate", type: "bool", desc: "Recreate containers even if their configuration and image haven't changed" },
      { long: "no-recreate", type: "bool", desc: "If containers already exist, don't recreate them" },
      { long: "pull", type: "string", desc: "Pull image before running (\"always\"|\"missing\"|\"never\")" },
      { long: "remove-orphans", type: "bool", desc: "Remove containers for services not defined in the Compose file" },
      { long: "scale", type: "list", desc: "Scale SERVICE to NUM instances" },
    ],
    run: async (_c, o, f, a) => {
      await o.up({ services: a, build: !!f.build, forceRecreate: !!f["force-recreate"], noRecreate: !!f["no-recreate"], noStart: true, pull: f.pull as "always" | undefined, removeOrphans: !!f["remove-orphans"], scale: parseScale(f.scale as string[]) });
      return 0;
    },
  },
  {
    name: "scale", usage: "scale [SERVICE=REPLICAS...]", desc: "Scale services",
    flags: [{ long: "no-deps", type: "bool", desc: "Don't start linked services" }],
    run: async (_c, o, f, a) => {
      if (!a.length) throw new UsageError(`"scale" requires at least 1 argument.`);
      const scale = parseScale(a);
      await o.up({ services: Object.keys(scale), scale, noDeps: !!f["no-deps"] });
      return 0;
    },
  },
  {
    name: "kill", usage: "kill [OPTIONS] [SERVICE...]", desc: "Force stop service containers", noFile: true,
    flags: [
      { long: "signal", short: "s", type: "string", default: "SIGKILL", desc: "SIGNAL to send to the container" },
      { long: "remove-orphans", type: "bool", desc: "Remove containers for services not defined in the Compose file" },
    ],
    run: async (_c, o, f, a) => {
      const cs = await running(o, a);
      if (f["remove-orphans"]) for (const c of await o.orphans()) await o.api.request("DELETE", `/containers/${c.Id}`, { query: { force: true } });
      await Promise.all(cs.map(async (c) => {
        o.io.progress(` Container ${bare(c)}  Killing\n`);
        await o.api.request("POST", `/containers/${c.Id}/kill`, { query: { signal: f.signal as string } });
        o.io.progress(` Container ${bare(c)}  Killed\n`);
      }));
      return 0;
    },
  },
  ...(["pause", "unpause"] as const).map((verb): Sub => ({
    name: verb, usage: `${verb} [SERVICE...]`, desc: verb === "pause" ? "Pause services" : "Unpause services", flags: [], noFile: true,
    run: async (_c, o, _f, a) => {
      const cs = (await o.containers({ services: a })).filter((c) => (verb === "pause" ? c.State === "running" : c.State === "paused"));
      for (const c of cs) {
        await o.api.request("POST", `/containers/${c.Id}/${verb}`);
        o.io.progress(` Container ${bare(c)}  ${verb === "pause" ? "Paused" : "Unpaused"}\n`);
      }
      return 0;
    },
  })),
  {
    name: "top", usage: "top [SERVICES...]", desc: "Display the running processes", flags: [], noFile: true,
    run: async (c, o, _f, a) => {
      for (const x of await running(o, a)) {
        const t = await o.api.json<{ Titles: string[]; Processes: string[][] }>("GET", `/containers/${x.Id}/top`);
        c.out(`${bare(x)}\n${tabulate([t.Titles, ...t.Processes])}\n`);
      }
      return 0;
    },
  },
  {
    name: "images", usage: "images [OPTIONS] [SERVICE...]", desc: "List images used by the created containers", noFile: true,
    flags: [{ long: "quiet", short: "q", type: "bool", desc: "Only display IDs" }, { long: "format", type: "string", default: "table", desc: "Format the output. Values: [table | json]" }],
    run: async (c, o, f, a) => {
      const cs = await o.containers({ all: true, services: a });
      const rows = await Promise.all(cs.map(async (x) => {
        const img = await o.api.json<ImageInspectResponse>("GET", `/images/${x.ImageID}/json`).catch(() => undefined);
        const ref = x.Image.includes("@") || x.Image.startsWith("sha256:") ? "" : x.Image;
        const at = ref.lastIndexOf(":");
        const [repo, tag] = ref && at > ref.lastIndexOf("/") ? [ref.slice(0, at), ref.slice(at + 1)] : [ref || "<none>", ref ? "latest" : "<none>"];
        return { ContainerName: bare(x), Repository: repo, Tag: tag, ID: x.ImageID, Size: img?.Size ?? 0 };
      }));
      if (f.quiet) { c.out([...new Set(rows.map((r) => r.ID))].map((i) => i + "\n").join("")); return 0; }
      if (f.format === "json") { c.out(JSON.stringify(rows, null, 2) + "\n"); return 0; }
      c.out(tabulate([["CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE"], ...rows.map((r) => [r.ContainerName, r.Repository, r.Tag, r.ID.replace(/^sha256:/, "").slice(0, 12), humanSize(r.Size)])]));
      return 0;
    },
  },
  {
    name: "port", usage: "port [OPTIONS] SERVICE PRIVATE_PORT", desc: "Print the public port for a port binding", noFile: true,
    flags: [{ long: "protocol", type: "string", default: "tcp", desc: "tcp or udp" }, { long: "index", type: "int", default: 1, desc: "Index of the container if service has multiple replicas" }],
    run: async (c, o, f, a) => {
      if (a.length !== 2) throw new UsageError(`"port" requires exactly 2 arguments.`);
      const [service, port] = a;
      const x = (await o.containers({ services: [service] })).find((y) => Number(y.Labels[L.number] ?? 1) === f.index);
      if (!x) throw new ComposeError(`service "${service}" is not running`);
      const info = await o.api.json<ContainerInspectResponse>("GET", `/containers/${x.Id}/json`);
      const ports = (info.NetworkSettings.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
      const b = ports[`${port}/${f.protocol}`]?.find((p) => p.HostIp !== "::") ?? ports[`${port}/${f.protocol}`]?.[0];
      if (!b) throw new ComposeError(`no port ${port}/${f.protocol} for container ${bare(x)}: ${Object.keys(ports).filter((k) => ports[k]?.length).join(", ") || "none"}`);
      c.out(`${b.HostIp || "0.0.0.0"}:${b.HostPort}\n`);
      return 0;
    },
  },
  {
    name: "push", usage: "push [OPTIONS] [SERVICE...]", desc: "Push service images",
    flags: [{ long: "ignore-push-failures", type: "bool", desc: "Push what it can and ignores images with push failures" }, { long: "quiet", short: "q", type: "bool", desc: "Push without printing progress information" }],
    run: async (c, o, f, a) => {
      for (const n of a.length ? a : Object.keys(o.project.services).sort()) {
        const s = o.project.services[n];
        if (!s) throw new ComposeError(`no such service: ${n}`);
        if (!s.image) continue;
        const at = s.image.lastIndexOf(":");
        const [repo, tag] = at > s.image.lastIndexOf("/") ? [s.image.slice(0, at), s.image.slice(at + 1)] : [s.image, "latest"];
        if (!f.quiet) c.err(` ${n} Pushing\n`);
        try {
          const res = await o.api.stream("POST", `/images/${encodeURIComponent(repo)}/push`, { query: { tag }, headers: registryAuth(s.image) });
          for await (const m of jsonLines<{ error?: string }>(res)) if (m.error) throw new ComposeError(m.error);
        } catch (e) {
          if (!f["ignore-push-failures"]) throw e instanceof ComposeError ? e : new ComposeError((e as Error).message);
          c.err(`WARN[0000] failed to push ${s.image}: ${(e as Error).message}\n`);
          continue;
        }
        if (!f.quiet) c.err(` ${n} Pushed\n`);
      }
      return 0;
    },
  },
  {
    name: "ls", usage: "ls [OPTIONS]", desc: "List running compose projects", noProject: true,
    flags: [
      { long: "all", short: "a", type: "bool", desc: "Show all stopped Compose projects" },
      { long: "quiet", short: "q", type: "bool", desc: "Only display project names" },
      { long: "format", type: "string", default: "table", desc: "Format the output. Values: [table | json]" },
      { long: "filter", type: "list", desc: "Filter output based on conditions provided" },
    ],
    run: async (c, o, f) => {
      const list = await o.api.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: true, filters: JSON.stringify({ label: [L.project] }) } });
      const byName = new Map<string, ContainerSummary[]>();
      for (const x of list) byName.set(x.Labels[L.project], [...(byName.get(x.Labels[L.project]) ?? []), x]);
      const names = (f.filter as string[] | undefined ?? []).filter((x) => x.startsWith("name=")).map((x) => x.slice(5));
      let rows = [...byName.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, cs]) => {
        const counts = new Map<string, number>();
        for (const x of cs) counts.set(x.State, (counts.get(x.State) ?? 0) + 1);
        const files = [...new Set(cs.map((x) => x.Labels[L.configFiles]).filter(Boolean))].join(",");
        return { Name: name, Status: [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([s, n]) => `${s}(${n})`).join(", "), ConfigFiles: files, _running: counts.has("running") };
      });
      if (!f.all) rows = rows.filter((r) => r._running);
      if (names.length) rows = rows.filter((r) => names.some((n) => r.Name.includes(n)));
      if (f.quiet) { c.out(rows.map((r) => r.Name + "\n").join("")); return 0; }
      if (f.format === "json") { c.out(JSON.stringify(rows.map(({ _running, ...r }) => r)) + "\n"); return 0; }
      c.out(tabulate([["NAME", "STATUS", "CONFIG FILES"], ...rows.map((r) => [r.Name, r.Status, r.ConfigFiles])]));
      return 0;
    },
  },
  {
    name: "cp", usage: "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n\tberth compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH", desc: "Copy files/folders between a service container and the local filesystem", noFile: true,
    flags: [
      { long: "index", type: "int", default: 1, desc: "Index of the container if service has multiple replicas" },
      { long: "all", type: "bool", hidden: true },
      { long: "archive", short: "a", type: "bool", desc: "Archive mode (copy all uid/gid information)" },
      { long: "follow-link", short: "L", type: "bool", desc: "Always follow symbol link in SRC_PATH" },
    ],
    run: async (_c, o, f, a) => {
      if (a.length !== 2) throw new UsageError(`"cp" requires exactly 2 arguments.`);
      const split = (x: string) => { const i = x.indexOf(":"); return i > 0 && !x.startsWith("/") && !x.startsWith(".") ? { svc: x.slice(0, i), path: x.slice(i + 1) } : undefined; };
      const [src, dst] = a.map(split);
      if (!!src === !!dst) throw new UsageError("copying between services is not supported; one of the paths must be SERVICE:PATH");
      const svc = (src ?? dst)!.svc;
      const cs = await o.containers({ all: true, services: [svc] });
      const x = cs.find((y) => Number(y.Labels[L.number] ?? 1) === f.index);
      if (!x) throw new ComposeError(`service "${svc}" has no container with index ${f.index}`);
      if (src) {
        const { tar } = await o.api.getArchive(x.Id, src.path);
        if (a[1] === "-") { await pipeline(tar, process.stdout); return 0; }
        const dest = resolve(a[1]);
        const intoDir = existsSync(dest) && statSync(dest).isDirectory();
        const tmp = mkdtempSync(join(intoDir ? dest : dirname(dest), ".berth-cp-"));
        try {
          const t = run("tar", ["-x", "-C", tmp, ...(f.archive ? ["--same-owner"] : ["--no-same-owner"])], tar);
          await t.done;
          const got = join(tmp, basename(src.path.replace(/\/+$/, "")) || ".");
          renameSync(got, intoDir ? join(dest, basename(got)) : dest);
        } finally { rmSync(tmp, { recursive: true, force: true }); }
        return 0;
      }
      const local = resolve(a[0]);
      if (!existsSync(local)) throw new ComposeError(`lstat ${local}: no such file or directory`);
      let destDir = dst!.path, rename: string | undefined;
      try {
        const st = await o.api.statPath(x.Id, dst!.path);
        if (!(st.mode & 2 ** 31)) { destDir = dirname(dst!.path); rename = basename(dst!.path); }
      } catch { destDir = dirname(dst!.path); rename = basename(dst!.path); }
      const base = basename(local);
      const t = run("tar", ["-c", "-C", dirname(local), ...(rename ? [`--transform=s,^${base.replace(/[,\\&]/g, "\\$&")},${rename.replace(/[,\\&]/g, "\\$&")},`] : []), ...(f["follow-link"] ? ["-h"] : []), base]);
      await Promise.all([o.api.putArchive(x.Id, destDir, t.stdout), t.done]);
      return 0;
    },
  },
  {
    name: "events", usage: "events [OPTIONS] [SERVICE...]", desc: "Receive real time events from containers", noFile: true,
    flags: [{ long: "json", type: "bool", desc: "Output events as a stream of json objects" }, { long: "since", type: "string", desc: "Show all events created since timestamp" }, { long: "until", type: "string", desc: "Stream events until this timestamp" }],
    run: async (c, o, f, a) => {
      const label = [`${L.project}=${o.project.name}`];
      const res = await o.api.stream("GET", "/events", { query: { filters: JSON.stringify({ type: ["container"], label }), since: f.since as string | undefined, until: f.until as string | undefined } });
      const onSig = () => { (res as unknown as { destroy?: () => void }).destroy?.(); };
      process.once("SIGINT", onSig);
      try {
        for await (const e of jsonLines<{ Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> }; time: number; timeNano?: number }>(res)) {
          const svc = e.Actor.Attributes[L.service];
          if (a.length && !a.includes(svc)) continue;
          const attrs = Object.fromEntries(Object.entries(e.Actor.Attributes).filter(([k]) => !k.startsWith("com.docker.compose.")));
          const t = new Date(e.timeNano ? Math.floor(e.timeNano / 1e6) : e.time * 1000);
          if (f.json) c.out(JSON.stringify({ action: e.Action, attributes: attrs, id: e.Actor.ID, service: svc, time: t.toISOString(), type: "container" }) + "\n");
          else {
            const micro = String(e.timeNano ? Math.floor((e.timeNano % 1e9) / 1e3) : 0).padStart(6, "0");
            const p = (n: number) => String(n).padStart(2, "0");
            const ts = `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}.${micro}`;
            c.out(`${ts} container ${e.Action} ${e.Actor.ID} (${Object.keys(attrs).sort().map((k) => `${k}=${attrs[k]}`).join(", ")})\n`);
          }
        }
      } catch (e) { if (!(e instanceof Error && /aborted|destroyed|premature/i.test(e.message))) throw e; }
      finally { process.off("SIGINT", onSig); }
      return 0;
    },
  },
  {
    name: "wait", usage: "wait SERVICE [SERVICE...] [OPTIONS]", desc: "Block until containers of all (or specified) services stop.", noFile: true,
    flags: [{ long: "down-project", type: "bool", desc: "Drops project when the first container stops" }],
    run: async (_c, o, f, a) => {
      if (!a.length) throw new UsageError(`"wait" requires at least 1 argument.`);
      const cs = await o.containers({ all: true, services: a });
      if (!cs.length) throw new ComposeError("no containers for project");
      const code = await Promise.race(cs.map(async (x) => readWait(await o.api.stream("POST", `/containers/${x.Id}/wait`, { query: { condition: "not-running" } }))));
      if (f["down-project"]) await o.down({});
      return code;
    },
  },
];

export { timeoutFlag };
