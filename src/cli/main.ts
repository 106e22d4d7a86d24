/**
 * `berth`: the command-line client. Global flags, command dispatch, Docker's
 * error wording and exit codes, and starting berthd when nothing answers on
 * the default socket.
 */
import { createRequire } from "node:module";
import { openSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiClient, ApiError, ConnectionError, DEFAULT_HOST, CLIENT_API_VERSION, jsonLines, socketCause } from "../api/client.js";
import { parseFlags, flagHelp, UsageError, filtersQuery, type FlagSpec } from "../lib/args.js";
import { ExitError, type Command, type Ctx } from "./command.js";
import type { ContainerPruneResponse, EventMessage, ImagePruneResponse, NetworkPruneResponse, SystemDfResponse, SystemInfo, SystemVersion, VolumePruneResponse } from "../api/types.js";
import { containerCommands } from "./containers.js";
import { imageCommands } from "./images.js";
import { volumeCommands } from "./volumes.js";
import { networkCommands } from "./networks.js";
import { buildCommand, builderPruneCommand } from "./build.js";
import { registryCommands } from "./registry.js";
import { manifestCommands } from "./manifest.js";
import { statsCommand } from "./stats.js";
import { cpCommand } from "./cp.js";
import { compile, formatRows } from "../lib/template.js";

declare const BERTHD_NODE_FLAGS: string[] | undefined;
declare const BERTHD_ENV: Record<string, string> | undefined;
import { humanSize } from "../lib/format.js";
import { readLine } from "../lib/stdio.js";

// bin/berth's shebang (scripts/build.mjs) starts node without NODE_EXTRA_CA_CERTS, which costs every start
// ~35 ms and which a client of a unix socket never needs, and keeps the user's value here: put it back, so
// what berth spawns (an auto-started berthd, which talks to registries; credential helpers) gets it.
{
  const saved = process.env.BERTH_NODE_EXTRA_CA_CERTS;
  if (saved !== undefined) {
    delete process.env.BERTH_NODE_EXTRA_CA_CERTS;
    if (saved !== "" && process.env.NODE_EXTRA_CA_CERTS === undefined) process.env.NODE_EXTRA_CA_CERTS = saved;
  }
}

const VERSION = "0.1.0";

const systemCommands: Command[] = [
  {
    name: "version", usage: "version [OPTIONS]", desc: "Show the berth version information",
    flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }, { long: "client", type: "bool", hidden: true }],
    run: async (c, f) => {
      const client = { Version: VERSION, ApiVersion: CLIENT_API_VERSION, GoVersion: `node${process.versions.node}`, Os: "linux", Arch: process.arch === "x64" ? "amd64" : process.arch };
      let server: SystemVersion | undefined;
      if (!f.client) server = await c.api.json<SystemVersion>("GET", "/version").catch((e) => { if (f.format) return undefined; throw e; });
      if (f.format) { c.out(compile(String(f.format))({ Client: client, Server: server }) + "\n"); return 0; }
      c.out(`Client:\n Version:           ${client.Version}\n API version:       ${client.ApiVersion}\n Node version:      ${process.versions.node}\n OS/Arch:           linux/${client.Arch}\n`);
      if (server) c.out(`\nServer: berth\n Engine:\n  Version:          ${server.Version}\n  API version:      ${server.ApiVersion} (minimum version ${server.MinAPIVersion})\n  OS/Arch:          ${server.Os}/${server.Arch}\n`);
      return 0;
    },
  },
  {
    name: "info", usage: "info [OPTIONS]", desc: "Display system-wide information", flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }],
    run: async (c, f) => {
      const i = await c.api.json<SystemInfo>("GET", "/info");
      if (f.format) { c.out(compile(String(f.format))(i) + "\n"); return 0; }
      c.out(`Server:\n Containers: ${i.Containers}\n  Running: ${i.ContainersRunning}\n  Paused: ${i.ContainersPaused}\n  Stopped: ${i.ContainersStopped}\n Images: ${i.Images}\n Server Version: ${i.ServerVersion}\n Storage Driver: ${i.Driver}\n Logging Driver: ${i.LoggingDriver}\n${i.LogOpts && Object.keys(i.LogOpts).length ? ` Logging Options: ${Object.entries(i.LogOpts).sort().map(([k, v]) => `${k}=${v}`).join(" ")}\n` : ""} Cgroup Driver: ${i.CgroupDriver}\n Cgroup Version: ${i.CgroupVersion}\n Default Runtime: ${i.DefaultRuntime}\n Kernel Version: ${i.KernelVersion}\n Operating System: ${i.OperatingSystem}\n OSType: ${i.OSType}\n Architecture: ${i.Architecture}\n CPUs: ${i.NCPU}\n Total Memory: ${humanSize(Number(i.MemTotal))}\n Name: ${i.Name}\n Docker Root Dir: ${i.DockerRootDir}\n Live Restore Enabled: ${i.LiveRestoreEnabled}\n`);
      return 0;
    },
  },
  {
    name: "events", usage: "events [OPTIONS]", desc: "Get real time events from the server",
    flags: [{ long: "since", type: "string", desc: "Show all events created since timestamp" }, { long: "until", type: "string", desc: "Stream events until this timestamp" }, { long: "filter", short: "f", type: "list", desc: "Filter output based on conditions provided" }, { long: "format", type: "string", desc: "Format the output using the given Go template" }],
    run: async (c, f) => {
      const { parseSince } = await import("../lib/format.js");
      const res = await c.api.stream("GET", "/events", { query: { since: f.since ? parseSince(String(f.since)) : undefined, until: f.until ? parseSince(String(f.until)) : undefined, filters: filtersQuery(f.filter as string[]) } });
      const tpl = f.format ? compile(String(f.format)) : undefined;
      for await (const e of jsonLines<EventMessage>(res)) {
        if (tpl) { c.out(tpl(e) + "\n"); continue; }
        const t = `${new Date(e.time * 1000).toISOString().slice(0, 19)}.${String(e.timeNano % 1e9).padStart(9, "0")}Z`;
        const attrs = Object.entries(e.Actor.Attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(", ");
        c.out(`${t} ${e.Type} ${e.Action} ${e.Actor.ID}${attrs ? ` (${attrs})` : ""}\n`);
      }
      return 0;
    },
  },
  {
    name: "system df", usage: "system df [OPTIONS]", desc: "Show docker disk usage", flags: [{ long: "verbose", short: "v", type: "bool", desc: "Show detailed information on space usage" }, { long: "format", type: "string", desc: "Format output using a custom template" }],
    run: async (c, f) => {
      const d = await c.api.json<SystemDfResponse>("GET", "/system/df");
      const imgSize = d.Images.reduce((a, i) => a + i.Size, 0);
      const active = d.Images.filter((i) => i.Containers > 0);
      const rows = [
        { Type: "Images", TotalCount: d.Images.length, Active: active.length, Size: humanSize(imgSize), Reclaimable: `${humanSize(imgSize - active.reduce((a, i) => a + i.Size, 0))}` },
        { Type: "Containers", TotalCount: d.Containers.length, Active: d.Containers.filter((x) => x.State === "running").length, Size: "0B", Reclaimable: "0B" },
        { Type: "Local Volumes", TotalCount: d.Volumes.length, Active: 0, Size: "0B", Reclaimable: "0B" },
        { Type: "Build Cache", TotalCount: 0, Active: 0, Size: "0B", Reclaimable: "0B" },
      ];
      c.out(formatRows((f.format as string) ?? "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", rows, { Type: "TYPE", TotalCount: "TOTAL", Active: "ACTIVE", Size: "SIZE", Reclaimable: "RECLAIMABLE" }));
      return 0;
    },
  },
];

const checkCmd: Command = {
  name: "system check", usage: "system check [OPTIONS]", desc: "Verify every blob against its digest and every image against its unpacked layers",
  flags: [{ long: "repair", type: "bool", desc: "Mend what is found: drop records whose blobs are gone, unpack missing layers again, remove what nothing references, rewrite damaged metadata" }],
  run: async (c, f) => {
    const r = await c.api.json<{ Blobs: number; Snapshots: number; Images: number; Problems: string[]; Repaired?: string[]; Unreferenced?: { Blobs: number; Snapshots: number } }>("POST", "/berth/system/check", { query: f.repair ? { repair: true } : {} });
    for (const p of r.Problems) c.out(`PROBLEM: ${p}\n`);
    for (const p of r.Repaired ?? []) c.out(`REPAIRED: ${p}\n`);
    const unref = r.Unreferenced && (r.Unreferenced.Blobs || r.Unreferenced.Snapshots) ? ` (${r.Unreferenced.Blobs} blob(s) and ${r.Unreferenced.Snapshots} snapshot(s) unreferenced, to be collected)` : "";
    c.out(`checked ${r.Blobs} blobs, ${r.Snapshots} snapshots, ${r.Images} images: ${r.Problems.length ? `${r.Problems.length} problem(s)${f.repair ? ", repaired" : ""}` : "all good"}${unref}\n`);
    return r.Problems.length && !f.repair ? 1 : 0;
  },
};
systemCommands.push(checkCmd);

const systemPrune: Command = {
  name: "system prune", usage: "system prune [OPTIONS]", desc: "Remove unused data",
  flags: [
    { long: "all", short: "a", type: "bool", desc: "Remove all unused images not just dangling ones" },
    { long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" },
    { long: "volumes", type: "bool", desc: "Prune anonymous volumes" },
    { long: "filter", type: "list", desc: "Provide filter values (e.g. \"label=<key>=<value>\")" },
  ],
  run: async (c, f) => {
    if (!f.force) {
      c.out(`WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n${f.volumes ? "  - all anonymous volumes not used by at least one container\n" : ""}  - ${f.all ? "all images without at least one container associated to them" : "all dangling images"}\n\nAre you sure you want to continue? [y/N] `);
      if (!/^y(es)?$/i.test((await readLine()).trim())) return 0;
    }
    const filters = filtersQuery(f.filter as string[]);
    let space = 0;
    const cs = await c.api.json<ContainerPruneResponse>("POST", "/containers/prune", { query: { filters } });
    if (cs.ContainersDeleted?.length) c.out(`Deleted Containers:\n${cs.ContainersDeleted.join("\n")}\n\n`);
    space += cs.SpaceReclaimed ?? 0;
    const ns = await c.api.json<NetworkPruneResponse>("POST", "/networks/prune", { query: { filters } });
    if (ns.NetworksDeleted?.length) c.out(`Deleted Networks:\n${ns.NetworksDeleted.join("\n")}\n\n`);
    if (f.volumes) {
      const vs = await c.api.json<VolumePruneResponse>("POST", "/volumes/prune", { query: { filters } });
      if (vs.VolumesDeleted?.length) c.out(`Deleted Volumes:\n${vs.VolumesDeleted.join("\n")}\n\n`);
      space += vs.SpaceReclaimed ?? 0;
    }
    const imgFilters = JSON.stringify({ ...JSON.parse(filters || "{}") as object, dangling: [f.all ? "false" : "true"] });
    const is = await c.api.json<ImagePruneResponse>("POST", "/images/prune", { query: { filters: imgFilters } });
    if (is.ImagesDeleted?.length) c.out(`Deleted Images:\n${is.ImagesDeleted.map((x) => (x.Untagged ? `untagged: ${x.Untagged}` : `deleted: ${x.Deleted}`)).join("\n")}\n\n`);
    space += is.SpaceReclaimed ?? 0;
    c.out(`Total reclaimed space: ${humanSize(space)}\n`);
    return 0;
  },
};
systemCommands.push(systemPrune);

const ALIASES: Record<string, string> = {
  "container run": "run", "container create": "create", "container start": "start", "container stop": "stop", "container restart": "restart",
  "container kill": "kill", "container rm": "rm", "container remove": "rm", "container wait": "wait", "container logs": "logs", "container exec": "exec",
  "container attach": "attach", "container ls": "ps", "container list": "ps", "container ps": "ps",
  "container top": "top", "container rename": "rename", "container commit": "commit", "container diff": "diff", "container pause": "pause", "container unpause": "unpause", "container port": "port", "container stats": "stats", "container cp": "cp", "container update": "update",
  "system info": "info", "system events": "events", "image inspect": "image inspect", "volume list": "volume ls", "volume remove": "volume rm", "image push": "push",
  "network list": "network ls", "network remove": "network rm", "image build": "build",
};

// Compose is a plugin, as in Docker: a program of its own (src/compose → bin/berth-compose.cjs),
// loaded only when `berth compose` runs, so other commands never pay for it.
const composeCommand: Command = {
  name: "compose", usage: "compose [OPTIONS] COMMAND", desc: "Define and run multi-container applications", flags: [], stop: true,
  run: async (c, _f, a) => {
    const k = composeKube(a);
    if (k) return kubePlugin().kube(c, k);
    const plugin = join(dirname(fileURLToPath(import.meta.url)), "berth-compose.cjs");
    if (!existsSync(plugin)) throw new Error(`the compose plugin is missing (${plugin}); run make build`);
    const req = createRequire(import.meta.url);
    return (req(plugin) as { compose: (c: Ctx, a: string[]) => Promise<number> }).compose(c, a);
  },
};

// The registry server is a program of its own too (src/registry → bin/berth-registry.cjs); it needs no daemon.
const registryServerCommand: Command = {
  name: "registry", usage: "registry COMMAND", desc: "Run an OCI registry (serve, gc)", flags: [], stop: true,
  run: async (_c, _f, a) => {
    const plugin = join(dirname(fileURLToPath(import.meta.url)), "berth-registry.cjs");
    if (!existsSync(plugin)) throw new Error(`the registry program is missing (${plugin}); run make build`);
    return (createRequire(import.meta.url)(plugin) as { registry: (a: string[]) => Promise<number> }).registry(a);
  },
};

// Kubernetes (src/kube → bin/berth-kube.cjs): `berth kube`, `berth pod`, and `berth compose [-f ...] kube` (= kube generate).
function kubePlugin(): {
  kube: (c: Ctx, a: string[]) => Promise<number>; pod: (c: Ctx, a: string[]) => Promise<number>;
  podRunArgs: (a: string[]) => { args: string[]; pod?: string }; ensurePodRunning: (c: Ctx, pod: string) => Promise<void>;
} {
  const plugin = join(dirname(fileURLToPath(import.meta.url)), "berth-kube.cjs");
  if (!existsSync(plugin)) throw new Error(`the kube plugin is missing (${plugin}); run make build`);
  return createRequire(import.meta.url)(plugin) as ReturnType<typeof kubePlugin>;
}
function composeKube(a: string[]): string[] | undefined {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === "kube") return ["generate", ...a.slice(0, i), ...a.slice(i + 1)];
    if (!a[i].startsWith("-")) return undefined;
    if (/^(-[fp]|--(file|project-name|project-directory|profile|env-file|ansi))$/.test(a[i])) i++;
  }
  return undefined;
}
const kubeCommand: Command = { name: "kube", usage: "kube COMMAND", desc: "Generate and play Kubernetes YAML", flags: [], stop: true, run: (c, _f, a) => kubePlugin().kube(c, a) };
const podCommand: Command = { name: "pod", usage: "pod COMMAND", desc: "Manage pods (containers sharing network, IPC and UTS namespaces)", flags: [], stop: true, run: (c, _f, a) => kubePlugin().pod(c, a) };

const commands: Command[] = [...containerCommands, cpCommand, buildCommand, builderPruneCommand, statsCommand, ...imageCommands, ...volumeCommands, ...networkCommands, ...registryCommands, ...manifestCommands, ...systemCommands, composeCommand, registryServerCommand, kubeCommand, podCommand];

const GLOBAL: FlagSpec[] = [
  { long: "host", short: "H", type: "string", desc: "Daemon socket to connect to" },
  { long: "debug", short: "D", type: "bool", desc: "Enable debug mode" },
  { long: "log-level", short: "l", type: "string", desc: "Set the logging level" },
  { long: "config", type: "string", desc: "Location of client config files" },
  { long: "context", short: "c", type: "string", desc: "Name of the context to use" },
  { long: "version", short: "v", type: "bool", desc: "Print version information and quit" },
  { long: "help", type: "bool", desc: "Print usage" },
];

function usage(): string {
  const main = commands.filter((c) => !c.name.includes(" ")).map((c) => `  ${c.name.padEnd(12)}${c.desc}`).join("\n");
  return `\nUsage:  berth [OPTIONS] COMMAND\n\nA Docker-compatible container engine\n\nCommands:\n${main}\n  image       Manage images (bootstrap, inspect, ls, rm, prune, ...)\n  container   Manage containers\n  system      Manage berth (df, info, events)\n  network     Manage networks\n  volume      Manage volumes\n  manifest    Manage image manifests and manifest lists\n${flagHelp(GLOBAL)}\nRun 'berth COMMAND --help' for more information on a command.\n`;
}

function commandHelp(cmd: Command): string {
  return `\nUsage:  berth ${cmd.usage}\n\n${cmd.desc}\n${flagHelp(cmd.flags)}`;
}

function daemonPath(): string {
  if (process.env.BERTH_DAEMON) return process.env.BERTH_DAEMON;
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, "berthd");
}

/** No daemon on the default socket: start one (detached) and wait for /_ping. */
async function ensureDaemon(host: string): Promise<void> {
  // A client of its own: the command's one waits on this (its whenUnreachable).
  const api = new ApiClient(host);
  if (await api.reachable()) return;
  const bin = daemonPath();
  if (!existsSync(bin)) throw new Error(`no daemon answers on ${DEFAULT_HOST} and ${bin} is missing`);
  if (process.getuid?.() !== 0) throw new Error(`no daemon answers on ${DEFAULT_HOST}; start berthd as root`);
  mkdirSync("/run/berth", { recursive: true });
  const log = openSync("/run/berth/berthd.log", "a");
  // berthd's node flags come from scripts/build.mjs (they are its shebang's too); none when run from sources.
  const flags: string[] = typeof BERTHD_NODE_FLAGS !== "undefined" ? BERTHD_NODE_FLAGS : [];
  const env: Record<string, string> = typeof BERTHD_ENV !== "undefined" ? BERTHD_ENV : {};
  // child_process only here: loading it costs every other command a few milliseconds.
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [...flags, bin], { detached: true, stdio: ["ignore", log, log], env: { ...process.env, ...env } });
  child.unref();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    try { await api.ping(); return; } catch { /* not yet */ }
  }
  throw new Error("berthd did not start; see /run/berth/berthd.log");
}

function resolveCommand(words: string[]): { cmd?: Command; rest: string[] } {
  for (const n of [2, 1]) {
    if (words.length < n) continue;
    const name = words.slice(0, n).join(" ");
    const target = ALIASES[name] ?? name;
    const cmd = commands.find((c) => c.name === target);
    if (cmd) return { cmd: name !== target ? { ...cmd, usage: cmd.usage.replace(target, name) } : cmd, rest: words.slice(n) };
  }
  return { rest: words };
}

async function main(argv: string[]): Promise<number> {
  const ctx: Ctx = { api: undefined as unknown as ApiClient, out: (s) => { process.stdout.write(s); }, err: (s) => { process.stderr.write(s); } };
  let global;
  try { global = parseFlags(argv, GLOBAL, { stopAtPositional: true }); } catch (e) {
    ctx.err(`${(e as Error).message}\nSee 'berth --help'.\n`);
    return 125;
  }
  if (global.flags.version) { ctx.out(`berth version ${VERSION}\n`); return 0; }
  if (global.flags.help || global.args.length === 0) { ctx.out(usage()); return global.args.length === 0 && !global.flags.help ? 0 : 0; }
  const resolved = resolveCommand(global.args);
  const cmd = resolved.cmd;
  let rest = resolved.rest;
  // `run --pod POD` / `create --pod POD`: the pod's namespaces and label instead (the kube plugin knows pods).
  let pod: string | undefined;
  if ((cmd?.name === "run" || cmd?.name === "create") && rest.some((x) => x === "--pod" || x.startsWith("--pod="))) ({ args: rest, pod } = kubePlugin().podRunArgs(rest));
  if (!cmd) {
    const word = global.args[0];
    if (["image", "container", "system", "volume", "network", "manifest"].includes(word)) {
      const subs = [...commands.filter((c) => c.name.startsWith(word + " ")).map((c) => [c.name.slice(word.length + 1), c.desc] as const),
        ...Object.entries(ALIASES).filter(([a]) => a.startsWith(word + " ")).map(([a, t]) => [a.slice(word.length + 1), commands.find((c) => c.name === t)?.desc ?? ""] as const)];
      const seen = new Set<string>();
      const list = subs.filter(([n]) => !seen.has(n) && !!seen.add(n)).sort(([a], [b]) => a.localeCompare(b)).map(([n, d]) => `  ${n.padEnd(12)}${d}`).join("\n");
      const help = `\nUsage:  berth ${word} COMMAND\n\nManage ${word === "system" ? "berth" : word + "s"}\n\nCommands:\n${list}\n\nRun 'berth ${word} COMMAND --help' for more information on a command.\n`;
      if (global.args.length === 1 || global.args[1] === "--help") { ctx.out(help); return 0; }
      ctx.err(`berth: '${global.args.slice(0, 2).join(" ")}' is not a berth command.\nSee 'berth ${word} --help'\n`);
      return 1;
    }
    ctx.err(`berth: '${word}' is not a berth command.\nSee 'berth --help'\n`);
    return 1;
  }
  let parsed;
  try {
    // compose parses its own flags (-f, -p, then the sub-command's).
    parsed = cmd === composeCommand || cmd === registryServerCommand || cmd === kubeCommand || cmd === podCommand ? { flags: {}, args: rest } : parseFlags(rest, [...cmd.flags, { long: "help", type: "bool" }], { stopAtPositional: cmd.stop });
  } catch (e) {
    ctx.err(`${(e as Error).message}\nSee 'berth ${cmd.name} --help'.\n`);
    return 125;
  }
  if (parsed.flags.help) { ctx.out(commandHelp(cmd)); return 0; }
  const explicit = (global.flags.host as string | undefined) ?? process.env.BERTH_HOST ?? process.env.DOCKER_HOST;
  ctx.api = new ApiClient(explicit ?? DEFAULT_HOST);
  // The default daemon is started by the first request that finds none (so help, `version --client`,
  // `kube generate` and `registry serve` never start one); an explicit -H/DOCKER_HOST is never started.
  if (!explicit) ctx.api.whenUnreachable = () => ensureDaemon(ctx.api.host);
  try {
    // As docker run's refusals before a container exists: 125.
    if (pod) try { await kubePlugin().ensurePodRunning(ctx, pod); } catch (e) { if (e instanceof ApiError || e instanceof ConnectionError) throw e; ctx.err(`${(e as Error).message}\n`); return 125; }
    return await cmd.run(ctx, parsed.flags, parsed.args);
  } catch (e) {
    if (e instanceof UsageError) {
      // The docker CLI's words (Debian's docker.io 20.10): a flag's bad value as any flag error, 125.
      if (/^invalid argument /.test(e.message)) { ctx.err(`${e.message}\nSee 'berth ${cmd.name} --help'.\n`); return 125; }
      ctx.err(`berth: ${e.message}\nSee 'berth ${cmd.name} --help'.\n\nUsage:  berth ${cmd.usage}\n\n${cmd.desc}\n`);
      return e.message.includes("requires") ? 1 : 125;
    }
    return report(ctx, e);
  } finally {
    ctx.api.close();
  }
}

/** Docker's one-line report of a failed command, and its exit status. Never a stack trace. */
function report(ctx: Ctx, e: unknown): number {
  if (e instanceof ExitError) { ctx.err(`${e.message}\n`); return e.code; }
  if (e instanceof ApiError) { ctx.err(`Error response from daemon: ${e.message}\n`); return 1; }
  if (e instanceof ConnectionError) { ctx.err(`${e.message}\n`); return 1; }
  const code = (e as NodeJS.ErrnoException)?.code;
  const host = ctx.api?.host ?? DEFAULT_HOST;
  if (code === "ENOENT" || code === "ECONNREFUSED") {
    ctx.err(`Cannot connect to the berth daemon at ${host}. Is the daemon running?\n`);
    return 1;
  }
  if (code === "EACCES") { ctx.err(`permission denied while trying to connect to the berth daemon socket at ${host}: ${socketCause(e)}\n`); return 1; }
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT") { ctx.err(`${socketCause(e)}\n`); return 1; }
  const msg = e instanceof Error ? e.message : String(e);
  ctx.err(`${msg.split("\n")[0] || "error"}\n`);
  return 1;
}

/** Flushes stdout, then exits: process.exit can cut a pending pipe write. */
function exit(code: number): void {
  process.exitCode = code;
  if (process.stdout.writableLength) process.stdout.once("drain", () => process.exit(code));
  else setImmediate(() => process.exit(code));
}

// The exit status is never left to chance: until main() answers, an exit (the event loop ran dry while a
// promise waits on an event that already passed) is a failure, 125 as docker's when it cannot learn a status.
let settled = false;
process.exitCode = 125;
process.on("beforeExit", () => {
  if (settled) return;
  settled = true;
  process.stderr.write("berth: the command ended without a result\n");
  process.exit(125);
});
// A write to a closed pipe (`berth logs | head`): stop quietly, as the docker CLI dies of SIGPIPE (128+13).
const onPipeError = (e: NodeJS.ErrnoException) => { if (e.code === "EPIPE") process.exit(141); };
process.stdout.on("error", onPipeError);
process.stderr.on("error", onPipeError);
process.on("uncaughtException", (e) => {
  if ((e as NodeJS.ErrnoException).code === "EPIPE") process.exit(141);
  settled = true;
  try { process.stderr.write(`berth: ${(e as Error)?.message ?? String(e)}\n`); } catch { /* stderr gone */ }
  process.exit(125);
});

main(process.argv.slice(2)).then((code) => { settled = true; exit(code); }, (e: unknown) => {
  settled = true;
  exit(report({ api: undefined as unknown as ApiClient, out: (s) => { process.stdout.write(s); }, err: (s) => { process.stderr.write(s); } }, e));
});
