/**
 * `berth compose`: Docker Compose v2's command set over the compose loader
 * and orchestrator. Like docker's compose plugin it is a program of its own:
 * built to bin/berth-compose.cjs and loaded by `berth` only when `berth
 * compose` runs (so `yaml` and the loader cost nothing to other commands,
 * and the berth CLI does not depend on this folder). It talks to the daemon
 * through the API client only.
 */
import { fstatSync } from "node:fs";
import { parseFlags, flagHelp, UsageError, type FlagSpec } from "../lib/args.js";
import { formatRows } from "../lib/template.js";
import { relayStreams } from "../lib/stdio.js";
import { humanDuration } from "../lib/format.js";
import type { ContainerInspectResponse, IdResponse } from "../api/types.js";
import { loadProject, projectModel, yamlLib, ComposeError, Orchestrator, L, streamLogs, type Project, type ContainerSummary } from "./index.js";
import { useColor } from "./logs.js";
import type { Started } from "./orchestrator.js";
import { timeoutFlag, PROJECT_FLAGS, type Ctx, type Sub } from "./command.js";
import { runSub } from "./run.js";
import { extraSubs, parseScale } from "./commands.js";
import { watchSub } from "./watch.js";

export type { Ctx };

const GLOBAL: FlagSpec[] = [
  ...PROJECT_FLAGS,
  { long: "ansi", type: "string", default: "auto", desc: "Control when to print ANSI control characters (\"never\"|\"always\"|\"auto\")" },
  { long: "help", type: "bool", hidden: true },
];

let ansi = "auto";

function psRows(o: Orchestrator, cs: ContainerSummary[]): Record<string, unknown>[] {
  return cs.map((c) => {
    const ports = c.Ports.map((p) => (p.PublicPort ? `${p.IP || "0.0.0.0"}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`));
    const cmd = c.Command.length > 20 ? `${c.Command.slice(0, 19)}…` : c.Command;
    return {
      ID: c.Id.slice(0, 12), Name: c.Names[0].replace(/^\//, ""), Image: c.Image, Command: JSON.stringify(cmd), Project: c.Labels[L.project],
      Service: c.Labels[L.service], CreatedAt: new Date(c.Created * 1000).toISOString(), RunningFor: `${humanDuration(Date.now() - c.Created * 1000)} ago`,
      State: c.State, Status: c.Status, Ports: [...new Set(ports)].join(", "), Labels: Object.entries(c.Labels).map(([k, v]) => `${k}=${v}`).join(","),
      _short: o.logName(c),
    };
  });
}

/**
 * Attached `up`: every container's log, prefixed, until they all exit.
 * Docker Compose's Ctrl-C: stop the containers; a second Ctrl-C kills them.
 * --abort-on-container-exit: the first container to exit stops them all, and
 * its exit code (or --exit-code-from's service's) is the answer.
 */
async function attachUntilInterrupt(c: Ctx, o: Orchestrator, started: Started[], a: { abort?: boolean; exitCodeFrom?: string; color?: boolean; timeout?: number } = {}): Promise<number> {
  let stopping = false;
  let code: number | undefined;
  let aborting: Promise<void> | undefined;
  const stopAll = async () => {
    c.err("Gracefully stopping... (press Ctrl+C again to force)\n");
    await o.stop(started.map((s) => s.service), a.timeout);
  };
  let interrupted: Promise<void> | undefined;
  const onSig = () => {
    if (stopping) { for (const s of started) void o.api.request("POST", `/containers/${s.id}/kill`).catch(() => {}); return; }
    stopping = true;
    interrupted = stopAll();
  };
  process.on("SIGINT", onSig);
  process.on("SIGTERM", onSig);
  try {
    const list = await o.containers({ all: true, services: [...new Set(started.map((s) => s.service))] });
    const nameOf = (id: string, fallback: string) => { const x = list.find((y) => y.Id === id); return x ? o.logName(x) : o.shortName(fallback); };
    c.err(`Attaching to ${started.map((s) => nameOf(s.id, s.name)).join(", ")}\n`);
    await streamLogs(o.api, started.map((s) => ({ id: s.id, name: nameOf(s.id, s.name), tty: s.tty })), { follow: true, color: a.color }, { write: (s) => c.out(s) }, async (t) => {
      const info = await o.api.json<ContainerInspectResponse>("GET", `/containers/${t.id}/json`).catch(() => undefined);
      if (!info || info.State.Running) return;
      c.out(`${t.name} exited with code ${info.State.ExitCode}\n`);
      const svc = started.find((s) => s.id === t.id)!.service;
      if (a.exitCodeFrom ? svc === a.exitCodeFrom : a.abort && code === undefined && !stopping) code = info.State.ExitCode;
      if (a.abort && !stopping && !aborting) {
        stopping = true;
        c.err("Aborting on container exit...\n");
        aborting = o.stop(started.map((s) => s.service), a.timeout);
      }
    });
    if (aborting) await aborting;
    if (interrupted) { await interrupted; return code ?? 130; }
    return code ?? 0;
  } finally {
    process.off("SIGINT", onSig);
    process.off("SIGTERM", onSig);
  }
}

const subs: Sub[] = [
  {
    name: "up", usage: "up [OPTIONS] [SERVICE...]", desc: "Create and start containers",
    flags: [
      { long: "detach", short: "d", type: "bool", desc: "Detached mode: Run containers in the background" },
      { long: "build", type: "bool", desc: "Build images before starting containers" },
      { long: "force-recreate", type: "bool", desc: "Recreate containers even if their configuration and image haven't changed" },
      { long: "no-recreate", type: "bool", desc: "If containers already exist, don't recreate them" },
      { long: "no-start", type: "bool", desc: "Don't start the services after creating them" },
      { long: "pull", type: "string", desc: "Pull image before running (\"always\"|\"missing\"|\"never\")" },
      { long: "no-deps", type: "bool", desc: "Don't start linked services" },
      { long: "remove-orphans", type: "bool", desc: "Remove containers for services not defined in the Compose file" },
      { long: "scale", type: "list", desc: "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present." },
      { long: "wait", type: "bool", desc: "Wait for services to be running|healthy. Implies detached mode." },
      { long: "wait-timeout", type: "int", desc: "Maximum duration in seconds to wait for the project to be running|healthy" },
      { long: "abort-on-container-exit", type: "bool", desc: "Stops all containers if any container was stopped. Incompatible with -d" },
      { long: "exit-code-from", type: "string", desc: "Return the exit code of the selected service container. Implies --abort-on-container-exit" },
      { long: "no-color", type: "bool", desc: "Produce monochrome output" },
      { long: "no-log-prefix", type: "bool", hidden: true },
      timeoutFlag,
    ],
    run: async (c, o, f, a) => {
      const pull = f.pull as "always" | "missing" | "never" | undefined;
      if (pull && !["always", "missing", "never"].includes(pull)) throw new UsageError(`invalid --pull option "${pull}"`);
      const abort = !!f["abort-on-container-exit"] || !!f["exit-code-from"];
      if (f.detach && abort) throw new UsageError("--abort-on-container-exit and --detach are incompatible");
      if (f["force-recreate"] && f["no-recreate"]) throw new UsageError("--force-recreate and --no-recreate are incompatible");
      const ecf = f["exit-code-from"] as string | undefined;
      if (ecf && !o.project.services[ecf]) throw new ComposeError(`no such service: ${ecf}`);
      const started = await o.up({
        services: a, build: !!f.build, forceRecreate: !!f["force-recreate"], noRecreate: !!f["no-recreate"], noStart: !!f["no-start"], pull,
        noDeps: !!f["no-deps"], removeOrphans: !!f["remove-orphans"], scale: parseScale(f.scale as string[] | undefined),
        wait: !!f.wait, waitTimeout: f["wait-timeout"] as number | undefined, timeout: f.timeout as number | undefined,
      });
      if (f.detach || f.wait || f["no-start"]) return 0;
      return attachUntilInterrupt(c, o, started, { abort, exitCodeFrom: ecf, color: useColor({ noColor: !!f["no-color"], ansi }), timeout: f.timeout as number | undefined });
    },
  },
  {
    name: "down", usage: "down [OPTIONS] [SERVICES]", desc: "Stop and remove containers, networks", noFile: true,
    flags: [
      { long: "volumes", short: "v", type: "bool", desc: "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers" },
      { long: "rmi", type: "string", desc: "Remove images used by services. \"local\" remove only images that don't have a custom tag (\"local\"|\"all\")" },
      { long: "remove-orphans", type: "bool", desc: "Remove containers for services not defined in the Compose file" },
      timeoutFlag,
    ],
    run: async (_c, o, f, a) => {
      const rmi = f.rmi as string | undefined;
      if (rmi && rmi !== "local" && rmi !== "all") throw new UsageError(`invalid value for --rmi: "${rmi}"`);
      await o.down({ volumes: !!f.volumes, rmi: rmi as "local" | "all" | undefined, timeout: f.timeout as number | undefined, removeOrphans: !!f["remove-orphans"], services: a });
      return 0;
    },
  },
  {
    name: "ps", usage: "ps [OPTIONS] [SERVICE...]", desc: "List containers", noFile: true,
    flags: [
      { long: "all", short: "a", type: "bool", desc: "Show all stopped containers (including those created by the run command)" },
      { long: "quiet", short: "q", type: "bool", desc: "Only display IDs" },
      { long: "services", type: "bool", desc: "Display services" },
      { long: "format", type: "string", desc: "Format output using a custom template: 'table', 'json', or a Go template" },
    ],
    run: async (c, o, f, a) => {
      const cs = await o.containers({ all: !!f.all, services: a, oneoff: !!f.all });
      if (f.quiet) { c.out(cs.map((x) => x.Id + "\n").join("")); return 0; }
      if (f.services) { c.out([...new Set(cs.map((x) => x.Labels[L.service]))].map((s) => s + "\n").join("")); return 0; }
      const rows = psRows(o, cs);
      const fmt = (f.format as string | undefined) ?? "table";
      if (fmt === "json") {
        c.out(rows.map(({ _short, ...r }) => JSON.stringify(r) + "\n").join(""));
        return 0;
      }
      c.out(formatRows(fmt === "table" ? "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}" : fmt, rows,
        { ID: "CONTAINER ID", Name: "NAME", Image: "IMAGE", Command: "COMMAND", Service: "SERVICE", RunningFor: "CREATED", CreatedAt: "CREATED AT", Status: "STATUS", State: "STATE", Ports: "PORTS", Project: "PROJECT", Labels: "LABELS" }));
      return 0;
    },
  },
  {
    name: "logs", usage: "logs [OPTIONS] [SERVICE...]", desc: "View output from containers", noFile: true,
    flags: [
      { long: "follow", short: "f", type: "bool", desc: "Follow log output" },
      { long: "tail", short: "n", type: "string", default: "all", desc: "Number of lines to show from the end of the logs for each container" },
      { long: "timestamps", short: "t", type: "bool", desc: "Show timestamps" },
      { long: "no-log-prefix", type: "bool", desc: "Don't print prefix in logs" },
      { long: "no-color", type: "bool", desc: "Produce monochrome output" },
      { long: "since", type: "string", desc: "Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)" },
      { long: "until", type: "string", desc: "Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)" },
      { long: "index", type: "int", desc: "index of the container if service has multiple replicas" },
    ],
    run: async (c, o, f, a) => {
      let cs = await o.containers({ all: true, services: a });
      if (f.index !== undefined) cs = cs.filter((x) => Number(x.Labels[L.number]) === f.index);
      const infos = await Promise.all(cs.map((x) => o.api.json<ContainerInspectResponse>("GET", `/containers/${x.Id}/json`)));
      await streamLogs(o.api, cs.map((x, i) => ({ id: x.Id, name: o.logName(x), tty: infos[i].Config.Tty })),
        { follow: !!f.follow, tail: f.tail as string, timestamps: !!f.timestamps, noPrefix: !!f["no-log-prefix"], since: f.since as string | undefined, until: f.until as string | undefined, color: useColor({ noColor: !!f["no-color"], ansi }) }, { write: (s) => c.out(s) });
      return 0;
    },
  },
  { name: "stop", usage: "stop [OPTIONS] [SERVICE...]", desc: "Stop services", flags: [timeoutFlag], noFile: true, run: async (_c, o, f, a) => { await o.stop(a, f.timeout as number | undefined); return 0; } },
  { name: "start", usage: "start [SERVICE...]", desc: "Start services", flags: [], noFile: true, run: async (_c, o, _f, a) => { await o.start(a); return 0; } },
  { name: "restart", usage: "restart [OPTIONS] [SERVICE...]", desc: "Restart service containers", flags: [timeoutFlag], noFile: true, run: async (_c, o, f, a) => { await o.restart(a, f.timeout as number | undefined); return 0; } },
  {
    name: "rm", usage: "rm [OPTIONS] [SERVICE...]", desc: "Removes stopped service containers", noFile: true,
    flags: [
      { long: "force", short: "f", type: "bool", desc: "Don't ask to confirm removal" },
      { long: "stop", short: "s", type: "bool", desc: "Stop the containers, if required, before removing" },
      { long: "volumes", short: "v", type: "bool", desc: "Remove any anonymous volumes attached to containers" },
    ],
    run: async (c, o, f, a) => {
      if (f.stop) await o.stop(a);
      const n = await o.rm(a, { force: !!f.force || !!f.stop, volumes: !!f.volumes });
      if (!n) c.err("No stopped containers\n");
      return 0;
    },
  },
  {
    name: "exec", usage: "exec [OPTIONS] SERVICE COMMAND [ARGS...]", desc: "Execute a command in a running container", stop: true, noFile: true,
    flags: [
      { long: "detach", short: "d", type: "bool", desc: "Detached mode: Run command in the background" },
      { long: "no-TTY", short: "T", type: "bool", desc: "Disable pseudo-TTY allocation (default: auto-detected)" },
      { long: "interactive", short: "i", type: "bool", default: true, desc: "Keep STDIN open even if not attached" },
      { long: "env", short: "e", type: "list", desc: "Set environment variables" },
      { long: "workdir", short: "w", type: "string", desc: "Path to workdir directory for this command" },
      { long: "user", short: "u", type: "string", desc: "Run the command as this user" },
      { long: "privileged", type: "bool", desc: "Give extended privileges to the process" },
      { long: "index", type: "int", default: 1, desc: "Index of the container if service has multiple replicas" },
    ],
    run: async (c, o, f, a) => {
      if (a.length < 2) throw new UsageError(`"exec" requires at least 2 arguments.`);
      const [service, ...cmd] = a;
      const cs = await o.containers({ services: [service] });
      const x = cs.find((y) => Number(y.Labels[L.number] ?? 1) === f.index) ?? (f.index === 1 ? cs[0] : undefined);
      if (!x) throw new ComposeError(`service "${service}" is not running`);
      const id = x.Id;
      const tty = !f["no-TTY"] && !!process.stdin.isTTY && !!process.stdout.isTTY;
      // Without a terminal, stdin is relayed only when something is piped in.
      const interactive = !!f.interactive && !f.detach && (tty || hasPipedStdin());
      const { Id } = await o.api.json<IdResponse>("POST", `/containers/${id}/exec`, {
        body: { AttachStdin: interactive, AttachStdout: !f.detach, AttachStderr: !f.detach, Tty: tty, Cmd: cmd, Env: f.env, WorkingDir: (f.workdir as string) ?? "", User: (f.user as string) ?? "", Privileged: !!f.privileged },
      });
      if (f.detach) { await o.api.request("POST", `/exec/${Id}/start`, { body: { Detach: true, Tty: tty } }); return 0; }
      const sock = await o.api.hijack(`/exec/${Id}/start`, { body: { Detach: false, Tty: tty } });
      await relayStreams(sock, { tty, stdin: interactive });
      // The process may be reaped a moment after its stream closed: ask until it no longer runs (never a made-up 0).
      const r = await o.api.execResult(Id);
      if (r.ExitCode === null) { c.err(`error getting exec exit status: the exec is ${r.Running ? "still running" : "without an exit code"}\n`); return 125; }
      return r.ExitCode;
    },
  },
  {
    name: "config", usage: "config [OPTIONS] [SERVICE...]", desc: "Parse, resolve and render compose file in canonical format",
    flags: [
      { long: "services", type: "bool", desc: "Print the service names, one per line" },
      { long: "volumes", type: "bool", desc: "Print the volume names, one per line" },
      { long: "profiles", type: "bool", desc: "Print the profile names, one per line" },
      { long: "quiet", short: "q", type: "bool", desc: "Only validate the configuration, don't print anything" },
      { long: "format", type: "string", desc: "Format the output. Values: [yaml | json]" },
    ],
    run: async (c, o, f) => {
      const p = o.project;
      if (f.quiet) return 0;
      if (f.services) { c.out(Object.keys(p.services).sort().map((s) => s + "\n").join("")); return 0; }
      if (f.volumes) { c.out(Object.keys(p.volumes).sort().map((s) => s + "\n").join("")); return 0; }
      if (f.profiles) { c.out((p.profiles ?? []).map((s) => s + "\n").join("")); return 0; }
      const model = projectModel(p);
      c.out(f.format === "json" ? JSON.stringify(model, null, 2) + "\n" : yamlLib().stringify(model, { aliasDuplicateObjects: false }));
      return 0;
    },
  },
  {
    name: "pull", usage: "pull [OPTIONS] [SERVICE...]", desc: "Pull service images", flags: [{ long: "quiet", short: "q", type: "bool", desc: "Pull without printing progress information" }],
    run: async (c, o, f, a) => {
      for (const n of a.length ? a : Object.keys(o.project.services).sort()) {
        const s = o.project.services[n];
        if (!s) throw new ComposeError(`no such service: ${n}`);
        if (!s.image) continue;
        if (!f.quiet) c.err(` ${n} Pulling\n`);
        await o.pull(s.image);
        if (!f.quiet) c.err(` ${n} Pulled\n`);
      }
      return 0;
    },
  },
  {
    name: "build", usage: "build [OPTIONS] [SERVICE...]", desc: "Build or rebuild services", flags: [{ long: "quiet", short: "q", type: "bool", desc: "Don't print anything to STDOUT" }],
    run: async (_c, o, _f, a) => {
      for (const n of a.length ? a : Object.keys(o.project.services).sort()) {
        const s = o.project.services[n];
        if (!s) throw new ComposeError(`no such service: ${n}`);
        if (s.build) await o.build(s);
      }
      return 0;
    },
  },
  runSub,
  ...extraSubs,
  watchSub,
];
subs.sort((a, b) => a.name.localeCompare(b.name));

function hasPipedStdin(): boolean {
  // A pipe or a non-empty file on fd 0 (not a terminal, not /dev/null).
  try { const st = fstatSync(0); return st.isFIFO() || (st.isFile() && st.size > 0); } catch { return false; }
}

function help(): string {
  return `\nUsage:  berth compose [OPTIONS] COMMAND\n\nDefine and run multi-container applications\n${flagHelp(GLOBAL)}\nCommands:\n${subs.map((s) => `  ${s.name.padEnd(12)}${s.desc}`).join("\n")}\n\nRun 'berth compose COMMAND --help' for more information on a command.\n`;
}

/** `berth compose ARGS...` */
export async function compose(c: Ctx, argv: string[]): Promise<number> {
  const g = parseFlags(argv, GLOBAL, { stopAtPositional: true });
  if (!g.args.length || g.flags.help) { c.out(help()); return 0; }
  const [name, ...rest] = g.args;
  const sub = subs.find((s) => s.name === name);
  if (!sub) { c.err(`unknown docker command: "compose ${name}"\n`); return 1; }
  let parsed;
  try { parsed = parseFlags(rest, [...sub.flags, { long: "help", type: "bool" }], { stopAtPositional: sub.stop }); } catch (e) {
    c.err(`${(e as Error).message}\nSee 'berth compose ${name} --help'.\n`);
    return 1;
  }
  if (parsed.flags.help) { c.out(`\nUsage:  berth compose ${sub.usage}\n\n${sub.desc}\n${flagHelp(sub.flags)}`); return 0; }
  const projectName = g.flags["project-name"] as string | undefined;
  ansi = g.flags.ansi as string;
  let project: Project;
  if (sub.noProject) project = { name: projectName ?? "", workingDir: process.cwd(), configFiles: [], services: {}, networks: {}, volumes: {}, warnings: [] };
  else try {
    // As docker compose: a service named on the command line runs even when its profiles are not active.
    const targets = name === "run" ? parsed.args.slice(0, 1) : ["up", "create", "start", "build", "pull", "push"].includes(name) ? parsed.args : [];
    project = loadProject({ files: g.flags.file as string[], projectName, projectDirectory: g.flags["project-directory"] as string | undefined, envFiles: g.flags["env-file"] as string[], profiles: g.flags.profile as string[], enableServices: targets });
  } catch (e) {
    if (!(e instanceof ComposeError)) throw e;
    if (sub.noFile && projectName && /no configuration file provided/.test(e.message)) {
      project = { name: projectName, workingDir: process.cwd(), configFiles: [], services: {}, networks: {}, volumes: {}, warnings: [] };
    } else { c.err(`${e.message}\n`); return 1; }
  }
  for (const w of project.warnings) c.err(`WARN[0000] ${w}\n`);
  const o = new Orchestrator(c.api, project, { progress: (s) => c.err(s), out: (s) => c.out(s) });
  try {
    return await sub.run(c, o, parsed.flags, parsed.args);
  } catch (e) {
    if (e instanceof ComposeError) { c.err(`${e.message}\n`); return 1; }
    throw e;
  }
}
