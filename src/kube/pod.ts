/**
 * `berth pod create/ps/inspect/start/stop/rm` and `berth run --pod`, as Podman has them, composed from
 * containers (the Docker API has no pods): a pod is its infra container `<pod>-infra` (busybox, a shell
 * that waits) holding the network, IPC and UTS namespaces and the pod's published ports, labelled
 * io.berth.pod=<pod>; its members are containers run with --network/--ipc container:<pod>-infra and the
 * same label. Nothing is stored anywhere else, so any Docker client sees the same pods.
 */
import { parseFlags, flagHelp, UsageError, type FlagSpec, type Flags } from "../lib/args.js";
import { formatRows } from "../lib/template.js";
import { humanDuration } from "../lib/format.js";
import type { Ctx } from "./cli.js";
import { KubeError } from "./cli.js";
import { INFRA_CMD, INFRA_IMAGE, L as KL } from "./play.js";

type Obj = Record<string, any>;

export const POD_LABEL = "io.berth.pod";
const infraName = (pod: string) => `${pod}-infra`;
const notFound = (e: unknown) => (e as { status?: number })?.status === 404;

interface PodInfo { name: string; infra: Obj; members: Obj[] }

async function pods(c: Ctx, names?: string[]): Promise<PodInfo[]> {
  const all = await c.api.json<Obj[]>("GET", "/containers/json", { query: { all: true, filters: JSON.stringify({ label: [POD_LABEL] }) } });
  const by = new Map<string, PodInfo>();
  for (const x of all) {
    const n = x.Labels[POD_LABEL] as string;
    const p = by.get(n) ?? { name: n, infra: undefined as unknown as Obj, members: [] };
    if (x.Labels[KL.role] === "infra") p.infra = x; else p.members.push(x);
    by.set(n, p);
  }
  const list = [...by.values()].filter((p) => p.infra);
  if (!names) return list;
  return names.map((n) => {
    const p = list.find((x) => x.name === n || x.infra.Id.startsWith(n));
    if (!p) throw new KubeError(`Error: no pod with name or ID ${n} found: no such pod`);
    return p;
  });
}

/** A pod's status as Podman words it: Running (all), Degraded (some), Exited, Created. */
function status(p: PodInfo): string {
  const cs = [p.infra, ...p.members];
  const running = cs.filter((x) => x.State === "running").length;
  if (running === cs.length) return "Running";
  if (running > 0) return "Degraded";
  return cs.every((x) => x.State === "created") ? "Created" : "Exited";
}

const subs: { name: string; usage: string; desc: string; flags: FlagSpec[]; run(c: Ctx, f: Flags, a: string[]): Promise<number> }[] = [
  {
    name: "create", usage: "create [OPTIONS]", desc: "Create a new empty pod",
    flags: [
      { long: "name", type: "string", desc: "Assign a name to the pod" },
      { long: "publish", short: "p", type: "list", desc: "Publish a container's port, or a range of ports, to the host" },
      { long: "hostname", type: "string", desc: "Set the pod's hostname" },
      { long: "label", short: "l", type: "list", desc: "Set metadata on the pod" },
      { long: "network", type: "string", desc: "Connect the pod to a network" },
    ],
    run: async (c, f) => {
      const name = (f.name as string | undefined) ?? `pod-${Math.random().toString(16).slice(2, 10)}`;
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) throw new KubeError(`Error: invalid pod name "${name}"`);
      const exposed: Obj = {}, bindings: Obj = {};
      for (const spec of (f.publish as string[]) ?? []) {
        const [addr, proto = "tcp"] = spec.split("/");
        const i = addr.lastIndexOf(":");
        const ctr = addr.slice(i + 1), hostPart = i < 0 ? "" : addr.slice(0, i);
        const j = hostPart.lastIndexOf(":");
        const hostPort = j < 0 ? hostPart : hostPart.slice(j + 1), hostIp = j < 0 ? "" : hostPart.slice(0, j).replace(/^\[|\]$/g, "");
        if (!/^\d+$/.test(ctr) || !/^\d*$/.test(hostPort) || !["tcp", "udp", "sctp"].includes(proto)) throw new KubeError(`Error: invalid publish spec ${spec}`);
        const key = `${ctr}/${proto}`;
        exposed[key] = {};
        bindings[key] = [...(bindings[key] ?? []), { HostIp: hostIp, HostPort: hostPort }];
      }
      const labels: Record<string, string> = {};
      for (const l of (f.label as string[]) ?? []) { const i = l.indexOf("="); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? "" : l.slice(i + 1); }
      await ensureImage(c, INFRA_IMAGE);
      const r = await c.api.json<{ Id: string }>("POST", "/containers/create", {
        query: { name: infraName(name) },
        body: {
          Image: INFRA_IMAGE, Cmd: INFRA_CMD, Hostname: (f.hostname as string | undefined) ?? name, ExposedPorts: exposed,
          Labels: { ...labels, [POD_LABEL]: name, [KL.role]: "infra" },
          HostConfig: { IpcMode: "shareable", PortBindings: bindings, ...(f.network ? { NetworkMode: f.network } : {}) },
        },
      }).catch((e) => { if ((e as { status?: number }).status === 409) throw new KubeError(`Error: ${name}: the pod already exists`); throw e; });
      c.out(`${r.Id}\n`);
      return 0;
    },
  },
  {
    name: "ps", usage: "ps [OPTIONS]", desc: "List pods",
    flags: [{ long: "quiet", short: "q", type: "bool", desc: "Print the pod IDs only" }, { long: "format", type: "string", desc: "Format the output with a Go template" }, { long: "no-trunc", type: "bool", desc: "Do not truncate the IDs" }],
    run: async (c, f) => {
      const list = (await pods(c)).sort((a, b) => b.infra.Created - a.infra.Created);
      const id = (s: string) => (f["no-trunc"] ? s : s.slice(0, 12));
      if (f.quiet) { c.out(list.map((p) => `${id(p.infra.Id)}\n`).join("")); return 0; }
      const rows = list.map((p) => ({
        ID: id(p.infra.Id), Name: p.name, Status: status(p), Created: `${humanDuration(Date.now() - p.infra.Created * 1000)} ago`, InfraID: id(p.infra.Id),
        NumberOfContainers: String(p.members.length + 1), Labels: p.infra.Labels,
      }));
      c.out(formatRows((f.format as string | undefined) ?? "table {{.ID}}\t{{.Name}}\t{{.Status}}\t{{.Created}}\t{{.InfraID}}\t{{.NumberOfContainers}}", rows,
        { ID: "POD ID", Name: "NAME", Status: "STATUS", Created: "CREATED", InfraID: "INFRA ID", NumberOfContainers: "# OF CONTAINERS", Labels: "LABELS" }));
      return 0;
    },
  },
  {
    name: "inspect", usage: "inspect POD [POD...]", desc: "Display a pod's configuration", flags: [],
    run: async (c, _f, a) => {
      if (!a.length) throw new UsageError(`"pod inspect" requires at least 1 argument.`);
      const out = [];
      for (const p of await pods(c, a)) {
        const infra = await c.api.json<Obj>("GET", `/containers/${p.infra.Id}/json`);
        out.push({
          Id: p.infra.Id, Name: p.name, Created: infra.Created, State: status(p), Hostname: infra.Config.Hostname,
          Labels: Object.fromEntries(Object.entries(infra.Config.Labels ?? {}).filter(([k]) => k !== POD_LABEL && k !== KL.role)),
          InfraContainerID: p.infra.Id, SharedNamespaces: ["ipc", "net", "uts"], NumContainers: p.members.length + 1,
          Ports: infra.HostConfig.PortBindings ?? {},
          Containers: [p.infra, ...p.members].map((x) => ({ Id: x.Id, Name: String(x.Names[0]).replace(/^\//, ""), State: x.State })),
        });
      }
      c.out(`${JSON.stringify(out, null, 4)}\n`);
      return 0;
    },
  },
  {
    name: "start", usage: "start POD [POD...]", desc: "Start one or more pods", flags: [],
    run: async (c, _f, a) => {
      if (!a.length) throw new UsageError(`"pod start" requires at least 1 argument.`);
      for (const p of await pods(c, a)) {
        await c.api.request("POST", `/containers/${p.infra.Id}/start`);
        for (const m of p.members) await c.api.request("POST", `/containers/${m.Id}/start`);
        c.out(`${p.infra.Id}\n`);
      }
      return 0;
    },
  },
  {
    name: "stop", usage: "stop [OPTIONS] POD [POD...]", desc: "Stop one or more pods", flags: [{ long: "time", short: "t", type: "int", desc: "Seconds to wait before killing the containers" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"pod stop" requires at least 1 argument.`);
      for (const p of await pods(c, a)) {
        const q = f.time !== undefined ? { t: f.time as number } : undefined;
        await Promise.all(p.members.map((m) => c.api.request("POST", `/containers/${m.Id}/stop`, { query: q })));
        await c.api.request("POST", `/containers/${p.infra.Id}/stop`, { query: q });
        c.out(`${p.infra.Id}\n`);
      }
      return 0;
    },
  },
  {
    name: "rm", usage: "rm [OPTIONS] POD [POD...]", desc: "Remove one or more stopped pods and their containers", flags: [{ long: "force", short: "f", type: "bool", desc: "Stop running containers and remove them" }],
    run: async (c, f, a) => {
      if (!a.length) throw new UsageError(`"pod rm" requires at least 1 argument.`);
      for (const p of await pods(c, a)) {
        if (!f.force && [p.infra, ...p.members].some((x) => x.State === "running")) throw new KubeError(`Error: pod ${p.name} has running containers: stop it first, or use --force`);
        for (const m of p.members) await c.api.request("DELETE", `/containers/${m.Id}`, { query: { force: true, v: true } }).catch((e) => { if (!notFound(e)) throw e; });
        await c.api.request("DELETE", `/containers/${p.infra.Id}`, { query: { force: true, v: true } });
        c.out(`${p.infra.Id}\n`);
      }
      return 0;
    },
  },
];

async function ensureImage(c: Ctx, image: string): Promise<void> {
  const have = await c.api.request("GET", `/images/${encodeURIComponent(image)}/json`).then(() => true, (e) => { if (notFound(e)) return false; throw e; });
  if (have) return;
  const at = image.lastIndexOf(":");
  const res = await c.api.stream("POST", "/images/create", { query: { fromImage: image.slice(0, at), tag: image.slice(at + 1) }, headers: { "X-Registry-Auth": "e30=" } });
  for await (const chunk of res) { const s = String(chunk); if (/"error"/.test(s)) throw new KubeError(`pull ${image}: ${s.trim()}`); }
}

export async function podCommand(c: Ctx, argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help") {
    c.out(`\nUsage:  berth pod COMMAND\n\nManage pods (containers sharing network, IPC and UTS namespaces)\n\nCommands:\n${subs.map((s) => `  ${s.name.padEnd(12)}${s.desc}`).join("\n")}\n\nRun 'berth pod COMMAND --help' for more information on a command.\n`);
    return 0;
  }
  const sub = subs.find((s) => s.name === name || (name === "ls" && s.name === "ps") || (name === "list" && s.name === "ps") || (name === "remove" && s.name === "rm"));
  if (!sub) { c.err(`berth: 'pod ${name}' is not a berth command.\nSee 'berth pod --help'\n`); return 1; }
  let parsed;
  try { parsed = parseFlags(rest, [...sub.flags, { long: "help", type: "bool" }]); } catch (e) { c.err(`${(e as Error).message}\nSee 'berth pod ${name} --help'.\n`); return 125; }
  if (parsed.flags.help) { c.out(`\nUsage:  berth pod ${sub.usage}\n\n${sub.desc}\n${flagHelp(sub.flags)}`); return 0; }
  try { return await sub.run(c, parsed.flags, parsed.args); } catch (e) {
    if (e instanceof KubeError) { c.err(`${e.message}\n`); return 125; }
    throw e;
  }
}

/**
 * `berth run --pod POD ...` / `create --pod`: the flags that put a container into the pod (its network,
 * IPC and UTS namespaces, and the pod's label), in place of --pod. Needs no daemon: the infra container
 * is named after the pod.
 */
export function podRunArgs(args: string[]): { args: string[]; pod?: string } {
  const out: string[] = [];
  let pod: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") { out.push(...args.slice(i)); break; }
    if (pod === undefined && a === "--pod" && i + 1 < args.length) { pod = args[++i]; continue; }
    if (pod === undefined && a.startsWith("--pod=")) { pod = a.slice(6); continue; }
    out.push(a);
  }
  if (!pod) return { args };
  const infra = infraName(pod);
  return { pod, args: ["--network", `container:${infra}`, "--ipc", `container:${infra}`, "--label", `${POD_LABEL}=${pod}`, ...out] };
}

/** Starts the pod's infra container if it is not running (Podman starts the pod of a container that runs). */
export async function ensurePodRunning(c: Ctx, pod: string): Promise<void> {
  const info = await c.api.json<Obj>("GET", `/containers/${encodeURIComponent(infraName(pod))}/json`).catch((e) => { if (notFound(e)) return undefined; throw e; });
  if (!info || info.Config?.Labels?.[POD_LABEL] !== pod) throw new KubeError(`Error: no pod with name or ID ${pod} found: no such pod`);
  if (!info.State.Running) await c.api.request("POST", `/containers/${info.Id}/start`);
}
