/**
 * `berth kube ...` and `berth pod ...`: a program of its own (bin/berth-kube.cjs), loaded by `berth`
 * only when one of these runs, as compose is. Talks to the daemon through the API client only.
 *
 *   berth kube generate [-f compose.yaml] [-o FILE] [--push REGISTRY]   (also `berth compose kube`)
 *   berth kube play [--down] [--replace] FILE|-
 *   berth kube down FILE|-                                              (= play --down)
 */
import { writeFileSync, readFileSync } from "node:fs";
import { parseFlags, flagHelp, UsageError, type FlagSpec, type Flags } from "../lib/args.js";
import type { ApiClient } from "../api/client.js";
import { loadProject, ComposeError } from "../compose/index.js";
import { PROJECT_FLAGS } from "../compose/command.js";
import { generate, generateFromContainers, toYaml, type LivePod } from "./generate.js";
import { buildAndPush, PushError } from "./push.js";

/** What the berth CLI hands the plugin: the API client and its output. */
export interface Ctx { api: ApiClient; out(s: string): void; err(s: string): void }

interface Sub { name: string; usage: string; desc: string; flags: FlagSpec[]; run(c: Ctx, f: Flags, a: string[]): Promise<number> }

const projectFlags: FlagSpec[] = [...PROJECT_FLAGS, { long: "ansi", type: "string", hidden: true }];

export class KubeError extends Error {}

const subs: Sub[] = [
  {
    name: "generate", usage: "generate [OPTIONS] [CONTAINER|POD...]", desc: "Generate Kubernetes YAML from a compose project",
    flags: [
      ...projectFlags,
      { long: "output", short: "o", type: "string", desc: "Write the manifests to a file (default: standard output)" },
      { long: "push", type: "string", desc: "Build the services that build, push them to REGISTRY and use the pushed digests" },
      { long: "service", short: "s", type: "bool", desc: "With containers or pods: a LoadBalancer Service for their published ports" },
      { long: "wait-image", type: "string", desc: "Image of the init containers that wait for a dependency (default busybox:latest)" },
    ],
    run: async (c, f, a) => {
      if (a.length) {
        const { docs, notes } = generateFromContainers(await livePods(c, a), { service: !!f.service });
        for (const n of notes) c.err(`WARN: ${n}\n`);
        const text = toYaml(docs);
        if (f.output) writeFileSync(f.output as string, text); else c.out(text);
        return 0;
      }
      const p = loadProject({ files: f.file as string[], projectName: f["project-name"] as string | undefined, projectDirectory: f["project-directory"] as string | undefined, envFiles: f["env-file"] as string[], profiles: f.profile as string[] });
      const images = f.push ? await buildAndPush(c.api, p, f.push as string, (s) => c.err(s)) : undefined;
      const { docs, notes } = generate(p, { images, waitImage: f["wait-image"] as string | undefined });
      for (const n of notes) c.err(`WARN: ${n}\n`);
      const text = toYaml(docs);
      if (f.output) writeFileSync(f.output as string, text); else c.out(text);
      return 0;
    },
  },
  {
    name: "play", usage: "play [OPTIONS] FILE|-", desc: "Run Kubernetes YAML (pods, deployments, jobs, services, claims...) on berth",
    flags: [
      { long: "down", type: "bool", desc: "Remove what a previous play of the file made" },
      { long: "replace", type: "bool", desc: "Remove what a previous play of the file made, then play it" },
      { long: "name", type: "string", desc: "Name of the play (default: the file's name)" },
      { long: "wait", type: "bool", desc: "Wait for Jobs to complete" },
    ],
    run: async (c, f, a) => {
      if (a.length !== 1) throw new UsageError(`"kube play" requires exactly 1 argument.`);
      const { play, playName } = await import("./play.js");
      // --down needs only the play's name (what it made is found by label), not the file.
      const text = f.down ? "" : a[0] === "-" ? readFileSync(0, "utf8") : readFileSync(a[0], "utf8");
      const name = (f.name as string | undefined) ?? playName(a[0]);
      return play(c, text, { name, down: !!f.down, replace: !!f.replace, wait: !!f.wait });
    },
  },
  {
    name: "down", usage: "down FILE|-", desc: "Remove what `kube play` of the file made", flags: [{ long: "name", type: "string", desc: "Name of the play (default: the file's name)" }],
    run: async (c, f, a) => {
      if (a.length !== 1) throw new UsageError(`"kube down" requires exactly 1 argument.`);
      const { play, playName } = await import("./play.js");
      return play(c, "", { name: (f.name as string | undefined) ?? playName(a[0]), down: true });
    },
  },
];

/** The containers and pods named (a pod: its infra container `<pod>-infra` and the members labelled with it). */
async function livePods(c: Ctx, names: string[]): Promise<LivePod[]> {
  type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const inspect = (ref: string) => c.api.json<J>("GET", `/containers/${encodeURIComponent(ref)}/json`).catch((e) => { if ((e as { status?: number }).status === 404) return undefined; throw e; });
  const image = async (ref: string) => (await c.api.json<J>("GET", `/images/${encodeURIComponent(ref)}/json`).catch(() => ({ Config: {} }))).Config as J;
  const out: LivePod[] = [];
  for (const n of names) {
    let info = await inspect(n);
    if (!info || (info.Config?.Labels?.["io.berth.pod"] && info.Config.Labels["io.berth.kube.role"] !== "infra")) {
      const infra = await inspect(`${n}-infra`);
      if (infra?.Config?.Labels?.["io.berth.pod"] === n) info = infra;
    }
    if (!info) throw new KubeError(`Error: ${n}: no such container or pod`);
    const podName = info.Config?.Labels?.["io.berth.kube.role"] === "infra" ? info.Config.Labels["io.berth.pod"] as string | undefined : undefined;
    if (podName) {
      const members = await c.api.json<J[]>("GET", "/containers/json", { query: { all: true, filters: JSON.stringify({ label: [`io.berth.pod=${podName}`] }) } });
      const infos = (await Promise.all(members.filter((m) => m.Id !== info!.Id).map((m) => inspect(m.Id)))).filter((x): x is J => !!x);
      out.push({ name: podName, hostname: info.Config.Hostname, ports: info.HostConfig?.PortBindings ?? {}, containers: await Promise.all(infos.map(async (x) => ({ info: x, imageConfig: await image(x.Image) }))) });
    } else out.push({ name: String(info.Name).replace(/^\//, ""), ports: {}, containers: [{ info, imageConfig: await image(info.Image) }] });
  }
  return out;
}

function help(): string {
  return `\nUsage:  berth kube COMMAND\n\nGenerate Kubernetes YAML from compose projects, and play Kubernetes YAML on berth\n\nCommands:\n${subs.map((s) => `  ${s.name.padEnd(12)}${s.desc}`).join("\n")}\n\nRun 'berth kube COMMAND --help' for more information on a command.\n`;
}

async function runSub(c: Ctx, sub: Sub, rest: string[], prefix: string): Promise<number> {
  let parsed;
  try { parsed = parseFlags(rest, [...sub.flags, { long: "help", type: "bool" }]); } catch (e) {
    c.err(`${(e as Error).message}\nSee 'berth ${prefix} --help'.\n`);
    return 125;
  }
  if (parsed.flags.help) { c.out(`\nUsage:  berth ${prefix.replace(/ \S+$/, "")} ${sub.usage}\n\n${sub.desc}\n${flagHelp(sub.flags)}`); return 0; }
  try {
    return await sub.run(c, parsed.flags, parsed.args);
  } catch (e) {
    if (e instanceof ComposeError || e instanceof KubeError || e instanceof PushError) { c.err(`${e.message}\n`); return 1; }
    if ((e as NodeJS.ErrnoException).code === "ENOENT" && (e as NodeJS.ErrnoException).path) { c.err(`open ${(e as NodeJS.ErrnoException).path}: no such file or directory\n`); return 1; }
    throw e;
  }
}

/** `berth kube ARGS...` */
export async function kube(c: Ctx, argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") { c.out(help()); return 0; }
  const sub = subs.find((s) => s.name === name);
  if (!sub) { c.err(`berth: 'kube ${name}' is not a berth command.\nSee 'berth kube --help'\n`); return 1; }
  return runSub(c, sub, rest, `kube ${name}`);
}

export { podRunArgs, ensurePodRunning } from "./pod.js";

/** `berth pod ARGS...` */
export async function pod(c: Ctx, argv: string[]): Promise<number> {
  const { podCommand } = await import("./pod.js");
  return podCommand(c, argv);
}
