/** Container commands: run, create, start, stop, kill, restart, rm, wait, logs, exec, attach, ps, inspect, top, rename, pause, port. */
import { readFileSync } from "node:fs";
import { isatty } from "node:tty";
import { ExitError, type Command, type Ctx } from "./command.js";
import type { FlagSpec, Flags } from "../lib/args.js";
import { UsageError, filtersQuery } from "../lib/args.js";
import { parseGoDuration } from "../lib/duration.js";
import { ApiError, jsonLines } from "../api/client.js";
import { relayStreams, demux, copyRaw, initialResize } from "../lib/stdio.js";
import { formatRows, compile } from "../lib/template.js";
import { ellipsis, goTime, humanDuration, humanSize, parseSince } from "../lib/format.js";
import { ramInBytes } from "../lib/units.js";
import type { ContainerCreateResponse, ContainerInspectResponse, ContainerSummary, ContainerTopResponse, FilesystemChange, IdResponse, ContainerPruneResponse, Port, ProgressMessage } from "../api/types.js";

type Obj = Record<string, unknown>;

const CREATE_FLAGS: FlagSpec[] = [
  { long: "attach", short: "a", type: "list", desc: "Attach to STDIN, STDOUT or STDERR" },
  { long: "detach", short: "d", type: "bool", desc: "Run container in background and print container ID" },
  { long: "interactive", short: "i", type: "bool", desc: "Keep STDIN open even if not attached" },
  { long: "tty", short: "t", type: "bool", desc: "Allocate a pseudo-TTY" },
  { long: "rm", type: "bool", desc: "Automatically remove the container and its associated anonymous volumes when it exits" },
  { long: "name", type: "string", desc: "Assign a name to the container" },
  { long: "env", short: "e", type: "list", desc: "Set environment variables" },
  { long: "env-file", type: "list", desc: "Read in a file of environment variables" },
  { long: "entrypoint", type: "string", desc: "Overwrite the default ENTRYPOINT of the image" },
  { long: "workdir", short: "w", type: "string", desc: "Working directory inside the container" },
  { long: "user", short: "u", type: "string", desc: "Username or UID (format: <name|uid>[:<group|gid>])" },
  { long: "hostname", short: "h", type: "string", desc: "Container host name" },
  { long: "label", short: "l", type: "list", desc: "Set meta data on a container" },
  { long: "network", type: "string", desc: "Connect a container to a network" },
  { long: "net", type: "string", hidden: true },
  { long: "network-alias", type: "list", desc: "Add network-scoped alias for the container" },
  { long: "ip", type: "string", desc: "IPv4 address (e.g., 172.30.100.104)" },
  { long: "init", type: "bool", desc: "Run an init inside the container that forwards signals and reaps processes" },
  { long: "privileged", type: "bool", desc: "Give extended privileges to this container" },
  { long: "cap-add", type: "list", desc: "Add Linux capabilities" },
  { long: "cap-drop", type: "list", desc: "Drop Linux capabilities" },
  { long: "security-opt", type: "list", desc: "Security Options" },
  { long: "read-only", type: "bool", desc: "Mount the container's root filesystem as read only" },
  { long: "memory", short: "m", type: "string", desc: "Memory limit" },
  { long: "cpus", type: "string", desc: "Number of CPUs" },
  { long: "cpu-shares", short: "c", type: "int", desc: "CPU shares (relative weight)" },
  { long: "pids-limit", type: "int", desc: "Tune container pids limit (set -1 for unlimited)" },
  { long: "restart", type: "string", default: "no", desc: "Restart policy to apply when a container exits" },
  { long: "stop-signal", type: "string", desc: "Signal to stop the container" },
  { long: "stop-timeout", type: "int", desc: "Timeout (in seconds) to stop a container" },
  { long: "publish", short: "p", type: "list", desc: "Publish a container's port(s) to the host" },
  { long: "publish-all", short: "P", type: "bool", desc: "Publish all exposed ports to random ports" },
  { long: "expose", type: "list", desc: "Expose a port or a range of ports" },
  { long: "volume", short: "v", type: "list", desc: "Bind mount a volume" },
  { long: "mount", type: "list", desc: "Attach a filesystem mount to the container" },
  { long: "tmpfs", type: "list", desc: "Mount a tmpfs directory" },
  { long: "add-host", type: "list", desc: "Add a custom host-to-IP mapping (host:ip)" },
  { long: "dns", type: "list", desc: "Set custom DNS servers" },
  { long: "health-cmd", type: "string", desc: "Command to run to check health" },
  { long: "health-interval", type: "string", desc: "Time between running the check (ms|s|m|h) (default 0s)" },
  { long: "health-timeout", type: "string", desc: "Maximum time to allow one check to run (ms|s|m|h) (default 0s)" },
  { long: "health-start-period", type: "string", desc: "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)" },
  { long: "health-retries", type: "int", desc: "Consecutive failures needed to report unhealthy" },
  { long: "no-healthcheck", type: "bool", desc: "Disable any container-specified HEALTHCHECK" },
  { long: "dns-search", type: "list", desc: "Set custom DNS search domains" },
  { long: "dns-option", type: "list", desc: "Set DNS options" },
  { long: "sysctl", type: "list", desc: "Sysctl options" },
  { long: "pull", type: "string", default: "missing", desc: 'Pull image before running ("always", "missing", "never")' },
  { long: "platform", type: "string", desc: "Set platform if server is multi-platform capable" },
  { long: "runtime", type: "string", desc: "Runtime to use for this container" },
  { long: "sig-proxy", type: "bool", default: true, desc: "Proxy received signals to the process" },
  { long: "detach-keys", type: "string", desc: "Override the key sequence for detaching a container" },
  { long: "quiet", short: "q", type: "bool", desc: "Suppress the pull output" },
  { long: "link", type: "list", desc: "Add link to another container" },
  { long: "volumes-from", type: "list", desc: "Mount volumes from the specified container(s)" },
  { long: "pid", type: "string", desc: "PID namespace to use" },
  { long: "uts", type: "string", desc: "UTS namespace to use" },
  { long: "userns", type: "string", desc: "User namespace to use" },
  { long: "ipc", type: "string", desc: "IPC mode to use" },
  { long: "mac-address", type: "string", desc: "Container MAC address (e.g., 92:d0:c6:0a:29:33)" },
  { long: "group-add", type: "list", desc: "Add additional groups to join" },
  { long: "device-cgroup-rule", type: "list", desc: "Add a rule to the cgroup allowed devices list" },
  { long: "cpuset-cpus", type: "string", desc: "CPUs in which to allow execution (0-3, 0,1)" },
  { long: "cpuset-mems", type: "string", desc: "MEMs in which to allow execution (0-3, 0,1)" },
  { long: "cpu-period", type: "int", desc: "Limit CPU CFS (Completely Fair Scheduler) period" },
  { long: "cpu-quota", type: "int", desc: "Limit CPU CFS (Completely Fair Scheduler) quota" },
  { long: "memory-reservation", type: "string", desc: "Memory soft limit" },
  { long: "memory-swap", type: "string", desc: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { long: "blkio-weight", type: "int", desc: "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)" },
  { long: "log-driver", type: "string", desc: "Logging driver for the container" },
  { long: "log-opt", type: "list", desc: "Log driver options" },
  { long: "storage-opt", type: "list", desc: "Storage driver options for the container" },
  { long: "isolation", type: "string", desc: "Container isolation technology" },
  { long: "ip6", type: "string", desc: "IPv6 address (e.g., 2001:db8::33)" },
  { long: "link-local-ip", type: "list", desc: "Container IPv4/IPv6 link-local addresses" },
];

/** `k=v` options (--log-opt, --storage-opt) as docker's map; a missing '=' is docker's error. */
function optMap(list: string[], flag: string, what = "option"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of list) {
    const i = o.indexOf("=");
    if (i < 1) throw new UsageError(flag === "storage-opt" ? `invalid storage option` : `invalid argument "${o}" for "--${flag}" flag: invalid key value pair format in ${what}`);
    out[o.slice(0, i)] = o.slice(i + 1);
  }
  return out;
}

/** Memory sizes of --memory-reservation, --memory-swap ("-1": unlimited swap). */
function sizeFlag(v: unknown, flag: string): number {
  if (v === undefined || v === "") return 0;
  if (flag === "memory-swap" && String(v) === "-1") return -1;
  const n = ramInBytes(String(v));
  if (n === undefined) throw new UsageError(`invalid argument "${v}" for "--${flag}" flag: invalid size: '${v}'`);
  return n;
}

function macAddress(v: unknown): string | undefined {
  if (v === undefined || v === "") return undefined;
  const m = String(v);
  if (!/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(m)) throw new UsageError(`invalid argument "${m}" for "--mac-address" flag: ${m} is not a valid mac address`);
  return m;
}

function parseMemory(v: string): number {
  const n = ramInBytes(v);
  if (n === undefined) throw new UsageError(`invalid argument "${v}" for "-m, --memory" flag: invalid size: '${v}'`);
  return n;
}

function readEnvFile(path: string): string[] {
  let text: string;
  try { text = readFileSync(path, "utf8"); } catch (e) { throw new UsageError(`open ${path}: no such file or directory`); }
  return text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#")).map((l) => (l.includes("=") ? l : process.env[l] !== undefined ? `${l}=${process.env[l]}` : l));
}

/** --userns as the docker CLI takes it: "" or "host" (a remapped daemon's opt-out). */
function usernsMode(v: string | undefined): string {
  if (v && v !== "host") throw new UsageError("--userns: invalid USER mode");
  return v || "";
}

/** Docker's -p forms: [ip:][hostPort[-end]:]containerPort[-end][/proto], also [v6]:host:ctr. */
export function parsePorts(specs: string[]): { exposed: Record<string, object>; bindings: Record<string, { HostIp: string; HostPort: string }[]> } {
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  const range = (s: string, what: string): [number, number] => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(s);
    if (!m) throw new UsageError(`invalid ${what}: ${s}`);
    const a = Number(m[1]), b = m[2] ? Number(m[2]) : a;
    if (a < (what === "containerPort" ? 1 : 0) || b > 65535 || b < a) throw new UsageError(`invalid ${what}: ${s}`);
    return [a, b];
  };
  for (const s of specs) {
    const slash = s.lastIndexOf("/");
    const proto = slash >= 0 ? s.slice(slash + 1).toLowerCase() : "tcp";
    const rest = slash >= 0 ? s.slice(0, slash) : s;
    if (!["tcp", "udp", "sctp"].includes(proto)) throw new UsageError(`invalid proto: ${proto}`);
    let hip = "", hport = "", cport: string;
    const v6 = /^\[([0-9a-fA-F:.]+)\]:(\d*(?:-\d+)?):(.+)$/.exec(rest);
    if (v6) { [, hip, hport, cport] = v6; }
    else {
      const parts = rest.split(":");
      if (parts.length > 3) throw new UsageError(`invalid port format: ${s}`);
      cport = parts.pop()!;
      hport = parts.pop() ?? "";
      hip = parts.pop() ?? "";
    }
    if (hip && !/^[\d.]+$/.test(hip) && !v6) throw new UsageError(`invalid IP address: ${hip}`);
    const [c0, c1] = range(cport, "containerPort");
    const h = hport ? range(hport, "hostPort") : undefined;
    const n = c1 - c0 + 1;
    if (h && n > 1 && h[1] - h[0] + 1 !== n) throw new UsageError(`invalid ranges specified for container and host Ports: ${cport} and ${hport}`);
    for (let i = 0; i < n; i++) {
      const key = `${c0 + i}/${proto}`;
      exposed[key] = {};
      // One container port with a host range: the first free port of the range (the daemon picks).
      const hp = !h ? "" : n === 1 ? (h[0] === h[1] ? String(h[0]) : `${h[0]}-${h[1]}`) : String(h[0] + i);
      (bindings[key] ??= []).push({ HostIp: hip, HostPort: hp });
    }
  }
  return { exposed, bindings };
}

/** The docker CLI's --security-opt checks; seccomp=<file> sends the file's JSON with the whitespace taken out (Go's json.Compact). */
function securityOpts(opts: string[]): string[] | null {
  if (!opts.length) return null;
  return opts.map((opt) => {
    let i = opt.indexOf("=");
    if (i < 0 && opt !== "no-new-privileges") i = opt.indexOf(":");
    const k = i < 0 ? opt : opt.slice(0, i), v = i < 0 ? "" : opt.slice(i + 1);
    if ((i < 0 || v === "") && k !== "no-new-privileges") throw new UsageError(`Invalid --security-opt: ${JSON.stringify(opt)}`);
    if (k !== "seccomp" || v === "builtin" || v === "unconfined") return opt;
    let text: string;
    try { text = readFileSync(v, "utf8"); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`opening seccomp profile (${v}) failed: ${code === "EISDIR" ? "read" : "open"} ${v}: ${code === "ENOENT" ? "no such file or directory" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (e as Error).message}`);
    }
    try { JSON.parse(text); } catch (e) { throw new UsageError(`compacting json for seccomp profile (${v}) failed: ${(e as Error).message}`); }
    return `seccomp=${text.replace(/"(?:[^"\\]|\\.)*"|\s+/g, (m) => (m[0] === '"' ? m : ""))}`;
  });
}

export function createBody(f: Flags, args: string[]): Obj {
  const [image, ...cmd] = args;
  const env: string[] = [];
  for (const file of f["env-file"] as string[]) env.push(...readEnvFile(file));
  for (const e of f.env as string[]) env.push(e.includes("=") ? e : process.env[e] !== undefined ? `${e}=${process.env[e]}` : e);
  const labels: Record<string, string> = {};
  for (const l of f.label as string[]) { const i = l.indexOf("="); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? "" : l.slice(i + 1); }
  const restart = String(f.restart ?? "no");
  const [rpName, rpMax] = restart.split(":");
  const ports = parsePorts(f.publish as string[]);
  for (const e of f.expose as string[]) ports.exposed[e.includes("/") ? e : `${e}/tcp`] = {};
  const attach = f.attach as string[];
  const detached = !!f.detach;
  const stdinAttached = !!f.interactive && !detached && (attach.length === 0 || attach.includes("stdin"));
  const hostConfig: Obj = {
    AutoRemove: !!f.rm,
    NetworkMode: (f.network as string) || (f.net as string) || "default",
    Init: f.init ? true : null,
    Privileged: !!f.privileged,
    CapAdd: (f["cap-add"] as string[]).length ? f["cap-add"] : null,
    CapDrop: (f["cap-drop"] as string[]).length ? f["cap-drop"] : null,
    SecurityOpt: securityOpts((f["security-opt"] as string[] | undefined) ?? []),
    ReadonlyRootfs: !!f["read-only"],
    Memory: f.memory ? parseMemory(String(f.memory)) : 0,
    NanoCpus: nanoCpus(f.cpus),
    CpuShares: (f["cpu-shares"] as number) ?? 0,
    PidsLimit: (f["pids-limit"] as number | undefined) ?? null,
    RestartPolicy: { Name: rpName, MaximumRetryCount: rpMax ? Number(rpMax) : 0 },
    PortBindings: ports.bindings,
    PublishAllPorts: !!f["publish-all"],
    Binds: (f.volume as string[]).filter((v) => v.includes(":")),
    Mounts: (f.mount as string[]).map(parseMount),
    Tmpfs: Object.fromEntries((f.tmpfs as string[]).map((t) => { const i = t.indexOf(":"); return i < 0 ? [t, ""] : [t.slice(0, i), t.slice(i + 1)]; })),
    ExtraHosts: (f["add-host"] as string[]).length ? f["add-host"] : null,
    Dns: f.dns, DnsSearch: f["dns-search"], DnsOptions: f["dns-option"],
    Sysctls: Object.fromEntries((f.sysctl as string[]).map((s) => { const i = s.indexOf("="); return [s.slice(0, i), s.slice(i + 1)]; })),
    Runtime: f.runtime || undefined,
    Links: list(f.link),
    VolumesFrom: list(f["volumes-from"]),
    PidMode: (f.pid as string) || "",
    UTSMode: (f.uts as string) || "",
    UsernsMode: usernsMode(f.userns as string | undefined),
    IpcMode: (f.ipc as string) || "",
    GroupAdd: list(f["group-add"]),
    DeviceCgroupRules: list(f["device-cgroup-rule"]),
    CpusetCpus: (f["cpuset-cpus"] as string) || "",
    CpusetMems: (f["cpuset-mems"] as string) || "",
    CpuPeriod: (f["cpu-period"] as number | undefined) ?? 0,
    CpuQuota: (f["cpu-quota"] as number | undefined) ?? 0,
    MemoryReservation: sizeFlag(f["memory-reservation"], "memory-reservation"),
    MemorySwap: sizeFlag(f["memory-swap"], "memory-swap"),
    BlkioWeight: (f["blkio-weight"] as number | undefined) ?? 0,
    ...(f["log-driver"] || (f["log-opt"] as string[]).length ? { LogConfig: { Type: (f["log-driver"] as string) || "", Config: optMap(f["log-opt"] as string[], "log-opt", "log-opt") } } : {}),
    ...((f["storage-opt"] as string[]).length ? { StorageOpt: optMap(f["storage-opt"] as string[], "storage-opt") } : {}),
    Isolation: (f.isolation as string) || "",
    ConsoleSize: f.tty && process.stdout.isTTY ? [process.stdout.rows, process.stdout.columns] : [0, 0],
  };
  return {
    Image: image,
    Cmd: cmd.length ? cmd : undefined,
    Entrypoint: f.entrypoint !== undefined ? (f.entrypoint === "" ? [""] : [f.entrypoint]) : undefined,
    Env: env,
    WorkingDir: (f.workdir as string) ?? "",
    User: (f.user as string) ?? "",
    Hostname: (f.hostname as string) ?? "",
    Labels: labels,
    Tty: !!f.tty,
    OpenStdin: !!f.interactive,
    StdinOnce: stdinAttached,
    AttachStdin: stdinAttached,
    AttachStdout: !detached && (attach.length === 0 || attach.includes("stdout")),
    AttachStderr: !detached && (attach.length === 0 || attach.includes("stderr")),
    ExposedPorts: ports.exposed,
    Volumes: Object.fromEntries((f.volume as string[]).filter((v) => !v.includes(":")).map((v) => [v, {}])),
    StopSignal: f["stop-signal"] || undefined,
    StopTimeout: f["stop-timeout"],
    HostConfig: hostConfig,
    NetworkingConfig: networkingConfig(f),
    Healthcheck: healthcheck(f),
  };
}

/** --health-* and --no-healthcheck, as the docker CLI sends them (durations in ns; 0 inherits the image's). */
function healthcheck(f: Flags): Obj | undefined {
  const dur = (flag: string): number => {
    const v = f[flag] as string | undefined;
    if (!v) return 0;
    try { return parseGoDuration(v); } catch (e) { throw new UsageError(`invalid argument "${v}" for "--${flag}" flag: ${(e as Error).message}`); }
  };
  if (f["no-healthcheck"]) {
    if (f["health-cmd"]) throw new UsageError("--no-healthcheck conflicts with --health-* options");
    return { Test: ["NONE"] };
  }
  const h = { Test: f["health-cmd"] ? ["CMD-SHELL", String(f["health-cmd"])] : undefined, Interval: dur("health-interval"), Timeout: dur("health-timeout"), StartPeriod: dur("health-start-period"), Retries: (f["health-retries"] as number | undefined) ?? 0 };
  return h.Test || h.Interval || h.Timeout || h.StartPeriod || h.Retries ? h : undefined;
}

function list(v: unknown): string[] | null {
  return Array.isArray(v) && v.length ? (v as string[]) : null;
}

/** The endpoint's IPAMConfig of --ip, --ip6, --link-local-ip (as the docker CLI sends it), or undefined. */
export function ipamConfig(f: Flags): Obj | undefined {
  const ipam: Obj = {};
  if (f.ip) ipam.IPv4Address = f.ip;
  if (f.ip6) ipam.IPv6Address = f.ip6;
  if ((f["link-local-ip"] as string[] | undefined)?.length) ipam.LinkLocalIPs = f["link-local-ip"];
  return Object.keys(ipam).length ? ipam : undefined;
}

/**
 * --network-alias, --ip, --ip6, --link-local-ip, --mac-address (and --link on a user network) go to the
 * endpoint of the --network given, as the docker CLI sends them.
 */
function networkingConfig(f: Flags): Obj | undefined {
  const net = (f.network as string) || (f.net as string) || "default";
  const aliases = f["network-alias"] as string[];
  const ip = f.ip as string | undefined;
  const ipam = ipamConfig(f);
  const mac = macAddress(f["mac-address"]);
  const builtin = ["default", "bridge", "host", "none"].includes(net) || net.startsWith("container:");
  const links = builtin ? null : list(f.link);
  if (!aliases.length && !ipam && !mac && !links) return undefined;
  if (builtin && (aliases.length || ip)) {
    throw new UsageError(aliases.length ? "network-scoped aliases are only supported for user-defined networks" : "user specified IP address is supported on user defined networks only");
  }
  return { EndpointsConfig: { [net]: { Aliases: aliases.length ? aliases : undefined, IPAMConfig: ipam, Links: links ?? undefined, MacAddress: mac } } };
}

function parseMount(spec: string): Obj {
  const m: Obj = { Type: "volume" };
  const tmpfs: Obj = {};
  const vol: Obj = {};
  for (const kv of spec.split(",")) {
    const i = kv.indexOf("=");
    const k = i < 0 ? kv : kv.slice(0, i), v = i < 0 ? "true" : kv.slice(i + 1);
    switch (k) {
      case "type": m.Type = v; break;
      case "source": case "src": m.Source = v; break;
      case "target": case "destination": case "dst": m.Target = v; break;
      case "readonly": case "ro": m.ReadOnly = v !== "false" && v !== "0"; break;
      case "volume-nocopy": vol.NoCopy = v !== "false" && v !== "0"; break;
      case "tmpfs-size": tmpfs.SizeBytes = parseMemory(v); break;
      case "tmpfs-mode": tmpfs.Mode = parseInt(v, 8); break;
      case "bind-propagation": case "consistency": case "volume-driver": break;
      default: throw new UsageError(`invalid argument "${spec}" for "--mount" flag: unexpected key '${k}' in '${kv}'`);
    }
  }
  if (!m.Target) throw new UsageError(`invalid argument "${spec}" for "--mount" flag: target is required`);
  if (Object.keys(tmpfs).length) m.TmpfsOptions = tmpfs;
  if (Object.keys(vol).length) m.VolumeOptions = vol;
  return m;
}

/** create with Docker's "Unable to find image" dance (pull when missing). */
async function createContainer(c: Ctx, f: Flags, args: string[]): Promise<string> {
  const body = createBody(f, args);
  const image = String(body.Image);
  const create = () => c.api.json<ContainerCreateResponse>("POST", "/containers/create", { query: { name: (f.name as string) || undefined, platform: (f.platform as string) || undefined }, body });
  if (f.pull === "always") await pull(c, image, !!f.quiet, f.platform as string | undefined);
  try {
    const r = await create();
    for (const w of r.Warnings ?? []) c.err(`WARNING: ${w}\n`);
    return r.Id;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404 || !/No such image/i.test(e.message) || f.pull === "never") throw e;
    const ref = image.includes("@") || image.lastIndexOf(":") > image.lastIndexOf("/") ? image : `${image}:latest`;
    c.err(`Unable to find image '${ref}' locally\n`);
    await pull(c, image, !!f.quiet, f.platform as string | undefined);
    return (await create()).Id;
  }
}

async function pull(c: Ctx, image: string, quiet: boolean, platform?: string): Promise<void> {
  const [name, tag] = image.includes("@") ? [image, undefined] : splitTag(image);
  const { authHeader } = await import("./registry.js");
  const res = await c.api.stream("POST", "/images/create", { query: { fromImage: name, tag, platform: platform || undefined }, headers: authHeader(image) });
  const { progressPrinter } = await import("../lib/stdio.js");
  const show = progressPrinter(quiet, (s) => c.err(s));
  for await (const m of jsonLines<ProgressMessage>(res)) {
    if (m.error) throw new ApiError(500, m.error);
    show(m);
  }
}

function splitTag(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf("/");
  const colon = image.lastIndexOf(":");
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, "latest"];
}

function runExitCode(msg: string): number {
  if (/executable file not found|no such file or directory|not found/i.test(msg) && /exec|runtime create|start container/i.test(msg)) return 127;
  if (/permission denied/i.test(msg) && /exec|runtime create|start container/i.test(msg)) return 126;
  return 125;
}

async function runCmd(c: Ctx, f: Flags, args: string[]): Promise<number> {
  if (!args.length) throw new UsageError(`"run" requires at least 1 argument.`);
  if (f.rm && f.restart && f.restart !== "no") throw new UsageError("Conflicting options: cannot specify both --restart and --rm");
  checkTty(!!f.interactive && !f.detach, !!f.tty);
  let id: string;
  try { id = await createContainer(c, f, args); } catch (e) { return reportRun(c, e, "run"); }
  if (f.detach) {
    try { await c.api.request("POST", `/containers/${id}/start`); } catch (e) { return reportRun(c, e, "run"); }
    c.out(id + "\n");
    return 0;
  }
  const tty = !!f.tty, interactive = !!f.interactive;
  // Attach and wait are both in place before start (in parallel: each is one round trip).
  const [sock, waitRes] = await Promise.all([
    c.api.hijack(`/containers/${id}/attach`, { query: { stream: 1, stdin: interactive ? 1 : 0, stdout: 1, stderr: 1 } }),
    c.api.stream("POST", `/containers/${id}/wait`, { query: { condition: f.rm ? "removed" : "next-exit" } }),
  ]);
  sock.pause();
  const status = readWait(waitRes);
  status.catch(() => {}); // awaited below; an early failure must not be an unhandled rejection
  try {
    await c.api.request("POST", `/containers/${id}/start`);
  } catch (e) {
    sock.destroy();
    if (f.rm) await status.catch(() => {});
    return reportRun(c, e, "run");
  }
  if (tty) await initialResize(c.api, `/containers/${id}/resize`);
  const sigs = !tty && f["sig-proxy"] !== false ? proxySignals(c, id) : () => {};
  const how = await relayStreams(sock, { tty, stdin: interactive, detachKeys: f["detach-keys"] as string | undefined, resize: (h, w) => c.api.request("POST", `/containers/${id}/resize`, { query: { h, w } }) });
  sigs();
  if (how === "detached") { c.err("\nread escape sequence\n"); return 0; }
  const code = await status;
  return code;
}

function proxySignals(c: Ctx, id: string): () => void {
  const handlers: [NodeJS.Signals, () => void][] = (["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as NodeJS.Signals[]).map((s) => [s, () => { void c.api.request("POST", `/containers/${id}/kill`, { query: { signal: s } }).catch(() => {}); }]);
  for (const [s, h] of handlers) process.on(s, h);
  return () => { for (const [s, h] of handlers) process.off(s, h); };
}

/** docker's CheckTty: -i and -t with a stdin that is no terminal is an error (before anything is created). */
function checkTty(attachStdin: boolean, tty: boolean): void {
  if (attachStdin && tty && !isatty(0)) throw new ExitError("the input device is not a TTY", 1);
}

/** Thrown when the CLI cannot learn a container's exit status: docker exits 125 then. */
class WaitError extends ExitError { constructor(message: string) { super(message, 125); } }

/**
 * The StatusCode of a wait answer. An empty or broken answer (the daemon went away) or one that carries an
 * Error is no status: it throws WaitError, never a made-up 0.
 */
async function readWait(res: NodeJS.ReadableStream): Promise<number> {
  let text = "";
  try { for await (const c of res) text += c; } catch (e) { throw new WaitError(`error waiting for container: ${(e as Error).message}`); }
  let r: { StatusCode?: unknown; Error?: { Message?: string } | null };
  try { r = JSON.parse(text) as typeof r; } catch { throw new WaitError(`error waiting for container: ${text.trim() ? `invalid answer: ${text.trim().slice(0, 200)}` : "the daemon sent no status"}`); }
  if (r.Error?.Message) throw new WaitError(`Error waiting for container: ${r.Error.Message}`);
  if (typeof r.StatusCode !== "number") throw new WaitError("error waiting for container: the answer has no StatusCode");
  return r.StatusCode;
}

function reportRun(c: Ctx, e: unknown, cmd: string): number {
  // A flag's bad value (found while building the body) is reported as every usage error is, in main.
  if (e instanceof UsageError) throw e;
  const msg = e instanceof ApiError ? `Error response from daemon: ${e.message}` : (e as Error).message;
  c.err(`berth: ${msg}\n\nRun 'berth ${cmd} --help' for more information\n`);
  return e instanceof ApiError ? runExitCode(e.message) : 125;
}

/** Applies fn to each argument, Docker style: print the argument on success, the error on failure, exit 1 if any failed. */
async function each(c: Ctx, ids: string[], fn: (id: string) => Promise<unknown>, echo = true): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    try { await fn(id); if (echo) c.out(id + "\n"); } catch (e) {
      failed++;
      c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

function need(args: string[], n: number, cmd: string): void {
  if (args.length < n) throw new UsageError(`"${cmd}" requires at least ${n} argument${n > 1 ? "s" : ""}.`);
}

/** Placeholders `ps --format` offers, computed from a container summary (the docker CLI's containerContext). */
function psRow(s: ContainerSummary, noTrunc: boolean): Obj {
  const names = s.Names.map((n) => n.replace(/^\//, ""));
  const labels = s.Labels ?? {};
  const cmd = String(s.Command ?? "");
  return {
    ID: noTrunc ? s.Id : String(s.Id).slice(0, 12),
    Image: s.Image,
    Command: JSON.stringify(noTrunc ? cmd : ellipsis(cmd, 20)),
    CreatedAt: goTime(Number(s.Created)),
    RunningFor: `${humanDuration(Date.now() - Number(s.Created) * 1000)} ago`,
    Ports: formatPorts(s.Ports ?? []),
    State: s.State,
    Status: s.Status,
    Size: s.SizeRw !== undefined ? `${humanSize(s.SizeRw)} (virtual ${humanSize(s.SizeRootFs ?? 0)})` : "0B",
    Names: names.join(","),
    Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(","),
    Label: (k: string) => labels[k] ?? "",
    LocalVolumes: String((s.Mounts ?? []).filter((m) => m.Type === "volume").length),
    Mounts: "",
    Networks: Object.keys(s.NetworkSettings?.Networks ?? {}).join(","),
    // docker 28: the image manifest's platform (null: no ImageManifestDescriptor in the summary).
    Platform: null,
  };
}

function formatPorts(ports: Port[]): string {
  return ports.map((p) => (p.PublicPort ? `${p.IP ?? "0.0.0.0"}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`)).join(", ");
}

const PS_HEADERS: Record<string, string> = { ID: "CONTAINER ID", Image: "IMAGE", Command: "COMMAND", CreatedAt: "CREATED AT", RunningFor: "CREATED", Ports: "PORTS", State: "STATE", Status: "STATUS", Size: "SIZE", Names: "NAMES", Labels: "LABELS", Mounts: "MOUNTS", Networks: "NETWORKS" };


async function logsTo(c: Ctx, id: string, f: Flags): Promise<number> {
  const info = await c.api.json<ContainerInspectResponse>("GET", `/containers/${id}/json`);
  const res = await c.api.stream("GET", `/containers/${id}/logs`, {
    query: { stdout: 1, stderr: 1, follow: !!f.follow, timestamps: !!f.timestamps, tail: (f.tail as string) ?? "all", since: f.since ? parseSince(String(f.since)) : undefined, until: f.until ? parseSince(String(f.until)) : undefined },
  });
  // Both with backpressure: a slow reader of `logs -f` holds the daemon back rather than fill berth's memory.
  if (info.Config.Tty) await copyRaw(res, process.stdout);
  else await demux(res, process.stdout, process.stderr);
  return 0;
}

async function execCmd(c: Ctx, f: Flags, args: string[]): Promise<number> {
  need(args, 2, "exec");
  const [target, ...cmd] = args;
  const tty = !!f.tty, interactive = !!f.interactive, detach = !!f.detach;
  checkTty(interactive && !detach, tty);
  const env: string[] = [];
  for (const file of f["env-file"] as string[]) env.push(...readEnvFile(file));
  env.push(...(f.env as string[]));
  const { Id } = await c.api.json<IdResponse>("POST", `/containers/${target}/exec`, {
    body: { AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach, Tty: tty, Cmd: cmd, Env: env, WorkingDir: (f.workdir as string) ?? "", User: (f.user as string) ?? "", Privileged: !!f.privileged, DetachKeys: f["detach-keys"] as string | undefined, ConsoleSize: tty && process.stdout.isTTY ? [process.stdout.rows, process.stdout.columns] : undefined },
  });
  if (detach) { await c.api.request("POST", `/exec/${Id}/start`, { body: { Detach: true, Tty: tty } }); return 0; }
  const sock = await c.api.hijack(`/exec/${Id}/start`, { body: { Detach: false, Tty: tty } });
  if (tty) await initialResize(c.api, `/exec/${Id}/resize`);
  const how = await relayStreams(sock, { tty, stdin: interactive, detachKeys: f["detach-keys"] as string | undefined, resize: (h, w) => c.api.request("POST", `/exec/${Id}/resize`, { query: { h, w } }) });
  if (how === "detached") return 0;
  return execExitCode(c, Id);
}

/**
 * The exit status of an exec whose stream ended. The process may be reaped a moment after its output closes:
 * ask again (with a deadline) while the daemon says it runs; never make up a 0.
 */
async function execExitCode(c: Ctx, id: string): Promise<number> {
  const r = await c.api.execResult(id);
  if (r.ExitCode === null) throw new ExitError(`error getting exec exit status: the exec is ${r.Running ? "still running" : "without an exit code"}`, 125);
  return r.ExitCode;
}

async function inspectCmd(c: Ctx, f: Flags, args: string[], type?: string): Promise<number> {
  need(args, 1, "inspect");
  const kind = type ?? (f.type as string | undefined);
  const out: unknown[] = [];
  let failed = 0;
  for (const a of args) {
    try {
      if (kind === "image") out.push(await c.api.json("GET", `/images/${a}/json`));
      else if (kind === "container") out.push(await c.api.json("GET", `/containers/${a}/json`, { query: { size: !!f.size } }));
      else {
        try { out.push(await c.api.json("GET", `/containers/${a}/json`, { query: { size: !!f.size } })); }
        catch (e) { if (!(e instanceof ApiError) || e.status !== 404) throw e; out.push(await c.api.json("GET", `/images/${a}/json`).catch((e2) => { throw e2 instanceof ApiError && e2.status === 404 ? new ApiError(404, `No such object: ${a}`) : e2; })); }
      }
    } catch (e) {
      failed++;
      // "Error: No such object: x" (any object) or "Error: No such container: x" (a given type), as docker's 20.10 CLI.
      c.err(e instanceof ApiError ? `Error: ${e.message}\n` : `${(e as Error).message}\n`);
    }
  }
  if (f.format) {
    const tpl = compile(String(f.format));
    for (const o of out) c.out(tpl(o) + "\n");
  } else {
    c.out(JSON.stringify(out, null, 4) + "\n");
  }
  return failed ? 1 : 0;
}

const LOG_FLAGS: FlagSpec[] = [
  { long: "follow", short: "f", type: "bool", desc: "Follow log output" },
  { long: "tail", short: "n", type: "string", default: "all", desc: "Number of lines to show from the end of the logs" },
  { long: "since", type: "string", desc: "Show logs since timestamp or relative (e.g. 42m for 42 minutes)" },
  { long: "until", type: "string", desc: "Show logs before a timestamp or relative" },
  { long: "timestamps", short: "t", type: "bool", desc: "Show timestamps" },
  { long: "details", type: "bool", desc: "Show extra details provided to logs" },
];

const PS_FLAGS: FlagSpec[] = [
  { long: "all", short: "a", type: "bool", desc: "Show all containers (default shows just running)" },
  { long: "quiet", short: "q", type: "bool", desc: "Only display container IDs" },
  { long: "filter", short: "f", type: "list", desc: "Filter output based on conditions provided" },
  { long: "no-trunc", type: "bool", desc: "Don't truncate output" },
  { long: "format", type: "string", desc: "Format output using a custom template" },
  { long: "last", short: "n", type: "int", default: -1, desc: "Show n last created containers (includes all states)" },
  { long: "latest", short: "l", type: "bool", desc: "Show the latest created container (includes all states)" },
  { long: "size", short: "s", type: "bool", desc: "Display total file sizes" },
];

async function psCmd(c: Ctx, f: Flags): Promise<number> {
  const limit = f.latest ? 1 : (f.last as number);
  // As the docker CLI: a template that shows .Size (or marshals every field) asks for the sizes.
  const size = !!f.size || /\.Size\b|json\s+\.\s*\}\}/.test(String(f.format ?? ""));
  const list = await c.api.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: !!f.all, limit: limit > 0 ? limit : undefined, size, filters: filtersQuery(f.filter as string[]) } });
  const noTrunc = !!f["no-trunc"];
  if (f.quiet) { c.out(list.map((s) => (noTrunc ? s.Id : String(s.Id).slice(0, 12)) + "\n").join("")); return 0; }
  const fmt = (f.format as string | undefined) ?? `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${f.size ? "\t{{.Size}}" : ""}`;
  c.out(formatRows(fmt === "table" ? `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}` : fmt, list.map((s) => psRow(s, noTrunc)), PS_HEADERS));
  return 0;
}

const UPDATE_FLAGS: FlagSpec[] = [
  { long: "blkio-weight", type: "int", desc: "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)" },
  { long: "cpu-period", type: "int", desc: "Limit CPU CFS (Completely Fair Scheduler) period" },
  { long: "cpu-quota", type: "int", desc: "Limit CPU CFS (Completely Fair Scheduler) quota" },
  { long: "cpu-rt-period", type: "int", desc: "Limit the CPU real-time period in microseconds" },
  { long: "cpu-rt-runtime", type: "int", desc: "Limit the CPU real-time runtime in microseconds" },
  { long: "cpu-shares", short: "c", type: "int", desc: "CPU shares (relative weight)" },
  { long: "cpus", type: "string", desc: "Number of CPUs" },
  { long: "cpuset-cpus", type: "string", desc: "CPUs in which to allow execution (0-3, 0,1)" },
  { long: "cpuset-mems", type: "string", desc: "MEMs in which to allow execution (0-3, 0,1)" },
  { long: "kernel-memory", type: "string", hidden: true, desc: "Kernel memory limit (deprecated)" },
  { long: "memory", short: "m", type: "string", desc: "Memory limit" },
  { long: "memory-reservation", type: "string", desc: "Memory soft limit" },
  { long: "memory-swap", type: "string", desc: "Swap limit equal to memory plus swap: -1 to enable unlimited swap" },
  { long: "pids-limit", type: "int", desc: "Tune container pids limit (set -1 for unlimited)" },
  { long: "restart", type: "string", desc: "Restart policy to apply when a container exits" },
];

/** --cpus as NanoCpus (docker's decimal flag). */
function nanoCpus(v: unknown, flag = "cpus"): number {
  if (v === undefined || v === "") return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || !/^\s*[\d.]+\s*$/.test(String(v))) throw new UsageError(`invalid argument "${v}" for "--${flag}" flag: failed to parse ${v} as a rational number`);
  return Math.round(n * 1e9);
}

/** docker update: the same UpdateConfig for every container named; prints each one updated, then the errors. */
async function updateCmd(c: Ctx, f: Flags, args: string[]): Promise<number> {
  need(args, 1, "update");
  const given = UPDATE_FLAGS.some((s) => f[s.long] !== undefined);
  if (!given) throw new ExitError("you must provide one or more flags when using this command", 1);
  let rp = { Name: "", MaximumRetryCount: 0 };
  if (f.restart !== undefined) {
    const [name, max] = String(f.restart).split(":");
    rp = { Name: name, MaximumRetryCount: max ? Number(max) : 0 };
  }
  const body = {
    CpuShares: (f["cpu-shares"] as number | undefined) ?? 0,
    Memory: f.memory ? parseMemory(String(f.memory)) : 0,
    NanoCpus: nanoCpus(f.cpus),
    CgroupParent: "",
    BlkioWeight: (f["blkio-weight"] as number | undefined) ?? 0,
    BlkioWeightDevice: null, BlkioDeviceReadBps: null, BlkioDeviceWriteBps: null, BlkioDeviceReadIOps: null, BlkioDeviceWriteIOps: null,
    CpuPeriod: (f["cpu-period"] as number | undefined) ?? 0,
    CpuQuota: (f["cpu-quota"] as number | undefined) ?? 0,
    CpuRealtimePeriod: (f["cpu-rt-period"] as number | undefined) ?? 0,
    CpuRealtimeRuntime: (f["cpu-rt-runtime"] as number | undefined) ?? 0,
    CpusetCpus: (f["cpuset-cpus"] as string | undefined) ?? "",
    CpusetMems: (f["cpuset-mems"] as string | undefined) ?? "",
    Devices: null, DeviceCgroupRules: null, DeviceRequests: null,
    ...(f["kernel-memory"] !== undefined ? { KernelMemory: sizeFlag(f["kernel-memory"], "kernel-memory") } : {}),
    MemoryReservation: sizeFlag(f["memory-reservation"], "memory-reservation"),
    MemorySwap: sizeFlag(f["memory-swap"], "memory-swap"),
    MemorySwappiness: null, OomKillDisable: null,
    PidsLimit: (f["pids-limit"] as number | undefined) ?? null,
    Ulimits: null, CpuCount: 0, CpuPercent: 0, IOMaximumIOps: 0, IOMaximumBandwidth: 0,
    RestartPolicy: rp,
  };
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const id of args) {
    try {
      const r = await c.api.updateContainer(id, body);
      c.out(id + "\n");
      warnings.push(...(r.Warnings ?? []));
    } catch (e) {
      errors.push(e instanceof ApiError ? `Error response from daemon: ${e.message}` : (e as Error).message);
    }
  }
  if (warnings.length) c.out(warnings.join("\n") + "\n");
  if (errors.length) { c.err(errors.join("\n") + "\n"); return 1; }
  return 0;
}

const stopFlags: FlagSpec[] = [
  { long: "time", short: "t", type: "int", desc: "Seconds to wait before killing the container" },
  { long: "signal", short: "s", type: "string", desc: "Signal to send to the container" },
];

export const containerCommands: Command[] = [
  { name: "run", usage: "run [OPTIONS] IMAGE [COMMAND] [ARG...]", desc: "Create and run a new container from an image", flags: CREATE_FLAGS, stop: true, run: runCmd },
  {
    name: "create", usage: "create [OPTIONS] IMAGE [COMMAND] [ARG...]", desc: "Create a new container", flags: CREATE_FLAGS, stop: true,
    run: async (c, f, a) => {
      need(a, 1, "create");
      // docker create reports a daemon's refusal as any command does ("Error response from daemon: ...", exit 1).
      c.out((await createContainer(c, f, a)) + "\n");
      return 0;
    },
  },
  {
    name: "start", usage: "start [OPTIONS] CONTAINER [CONTAINER...]", desc: "Start one or more stopped containers",
    flags: [{ long: "attach", short: "a", type: "bool", desc: "Attach STDOUT/STDERR and forward signals" }, { long: "interactive", short: "i", type: "bool", desc: "Attach container's STDIN" }, { long: "detach-keys", type: "string", desc: "Override the key sequence for detaching a container" }],
    run: async (c, f, a) => {
      need(a, 1, "start");
      if (!f.attach && !f.interactive) {
        // docker start: each started one printed, each error, then "Error: failed to start containers: a, b".
        const failed: string[] = [];
        for (const id of a) {
          try { await c.api.request("POST", `/containers/${id}/start`); c.out(id + "\n"); } catch (e) {
            failed.push(id);
            c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`);
          }
        }
        if (failed.length) c.err(`Error: failed to start containers: ${failed.join(", ")}\n`);
        return failed.length ? 1 : 0;
      }
      const id = a[0];
      const info = await c.api.json<ContainerInspectResponse>("GET", `/containers/${id}/json`);
      const tty = !!info.Config.Tty;
      const sock = await c.api.hijack(`/containers/${id}/attach`, { query: { stream: 1, stdin: f.interactive ? 1 : 0, stdout: 1, stderr: 1 } });
      sock.pause();
      const status = readWait(await c.api.stream("POST", `/containers/${id}/wait`, { query: { condition: "next-exit" } }));
      status.catch(() => {});
      try { await c.api.request("POST", `/containers/${id}/start`); } catch (e) { sock.destroy(); throw e; }
      if (tty) await initialResize(c.api, `/containers/${id}/resize`);
      const how = await relayStreams(sock, { tty, stdin: !!f.interactive, detachKeys: f["detach-keys"] as string | undefined });
      return how === "detached" ? 0 : await status;
    },
  },
  { name: "stop", usage: "stop [OPTIONS] CONTAINER [CONTAINER...]", desc: "Stop one or more running containers", flags: stopFlags, run: (c, f, a) => { need(a, 1, "stop"); return each(c, a, (id) => c.api.request("POST", `/containers/${id}/stop`, { query: { t: f.time as number | undefined, signal: f.signal as string | undefined } })); } },
  { name: "restart", usage: "restart [OPTIONS] CONTAINER [CONTAINER...]", desc: "Restart one or more containers", flags: stopFlags, run: (c, f, a) => { need(a, 1, "restart"); return each(c, a, (id) => c.api.request("POST", `/containers/${id}/restart`, { query: { t: f.time as number | undefined, signal: f.signal as string | undefined } })); } },
  { name: "kill", usage: "kill [OPTIONS] CONTAINER [CONTAINER...]", desc: "Kill one or more running containers", flags: [{ long: "signal", short: "s", type: "string", desc: "Signal to send to the container" }], run: (c, f, a) => { need(a, 1, "kill"); return each(c, a, (id) => c.api.request("POST", `/containers/${id}/kill`, { query: { signal: f.signal as string | undefined } })); } },
  {
    name: "rm", usage: "rm [OPTIONS] CONTAINER [CONTAINER...]", desc: "Remove one or more containers",
    flags: [{ long: "force", short: "f", type: "bool", desc: "Force the removal of a running container (uses SIGKILL)" }, { long: "volumes", short: "v", type: "bool", desc: "Remove anonymous volumes associated with the container" }, { long: "link", short: "l", type: "bool", desc: "Remove the specified link" }],
    run: (c, f, a) => { need(a, 1, "rm"); return each(c, a, (id) => c.api.request("DELETE", `/containers/${id}`, { query: { force: !!f.force, v: !!f.volumes } })); },
  },
  {
    name: "wait", usage: "wait CONTAINER [CONTAINER...]", desc: "Block until one or more containers stop, then print their exit codes", flags: [],
    run: async (c, _f, a) => {
      need(a, 1, "wait");
      let failed = 0;
      for (const id of a) {
        try { c.out(`${await readWait(await c.api.stream("POST", `/containers/${id}/wait`))}\n`); } catch (e) { failed++; c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`); }
      }
      return failed ? 1 : 0;
    },
  },
  { name: "logs", usage: "logs [OPTIONS] CONTAINER", desc: "Fetch the logs of a container", flags: LOG_FLAGS, run: (c, f, a) => { need(a, 1, "logs"); return logsTo(c, a[0], f); } },
  {
    name: "exec", usage: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", desc: "Execute a command in a running container", stop: true,
    flags: [
      { long: "detach", short: "d", type: "bool", desc: "Detached mode: run command in the background" },
      { long: "interactive", short: "i", type: "bool", desc: "Keep STDIN open even if not attached" },
      { long: "tty", short: "t", type: "bool", desc: "Allocate a pseudo-TTY" },
      { long: "env", short: "e", type: "list", desc: "Set environment variables" },
      { long: "env-file", type: "list", desc: "Read in a file of environment variables" },
      { long: "workdir", short: "w", type: "string", desc: "Working directory inside the container" },
      { long: "user", short: "u", type: "string", desc: "Username or UID (format: <name|uid>[:<group|gid>])" },
      { long: "privileged", type: "bool", desc: "Give extended privileges to the command" },
      { long: "detach-keys", type: "string", desc: "Override the key sequence for detaching a container" },
    ],
    run: execCmd,
  },
  {
    name: "attach", usage: "attach [OPTIONS] CONTAINER", desc: "Attach local standard input, output, and error streams to a running container",
    flags: [{ long: "no-stdin", type: "bool", desc: "Do not attach STDIN" }, { long: "sig-proxy", type: "bool", default: true, desc: "Proxy all received signals to the process" }, { long: "detach-keys", type: "string", desc: "Override the key sequence for detaching a container" }],
    run: async (c, f, a) => {
      need(a, 1, "attach");
      const info = await c.api.json<ContainerInspectResponse>("GET", `/containers/${a[0]}/json`);
      if (!info.State.Running) throw new ApiError(409, "You cannot attach to a stopped container, start it first");
      const cfg = info.Config;
      const tty = !!cfg.Tty, stdin = !f["no-stdin"] && !!cfg.OpenStdin;
      // As the docker CLI: the wait is in place before the attach, and its answer is the exit status.
      const status = readWait(await c.api.stream("POST", `/containers/${a[0]}/wait`));
      status.catch(() => {});
      const sock = await c.api.hijack(`/containers/${a[0]}/attach`, { query: { stream: 1, stdin: stdin ? 1 : 0, stdout: 1, stderr: 1 } });
      if (tty) await initialResize(c.api, `/containers/${a[0]}/resize`);
      const how = await relayStreams(sock, { tty, stdin, detachKeys: f["detach-keys"] as string | undefined });
      if (how === "detached") return 0;
      try { return await status; } catch (e) { throw e instanceof ExitError ? new ExitError(e.message, 1) : e; }
    },
  },
  { name: "ps", usage: "ps [OPTIONS]", desc: "List containers", flags: PS_FLAGS, run: psCmd },
  {
    name: "container inspect", usage: "container inspect [OPTIONS] CONTAINER [CONTAINER...]", desc: "Display detailed information on one or more containers",
    flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }, { long: "size", short: "s", type: "bool", desc: "Display total file sizes" }],
    run: (c, f, a) => inspectCmd(c, f, a, "container"),
  },
  {
    name: "inspect", usage: "inspect [OPTIONS] NAME|ID [NAME|ID...]", desc: "Return low-level information on Docker objects",
    flags: [{ long: "format", short: "f", type: "string", desc: "Format output using a custom template" }, { long: "type", type: "string", desc: "Only inspect objects of the given type" }, { long: "size", short: "s", type: "bool", desc: "Display total file sizes if the type is container" }],
    run: (c, f, a) => inspectCmd(c, f, a),
  },
  {
    name: "top", usage: "top CONTAINER [ps OPTIONS]", desc: "Display the running processes of a container", flags: [], stop: true,
    run: async (c, _f, a) => {
      need(a, 1, "top");
      const r = await c.api.json<ContainerTopResponse>("GET", `/containers/${a[0]}/top`, { query: { ps_args: a.slice(1).join(" ") || undefined } });
      const { tabulate } = await import("../lib/template.js");
      c.out(tabulate([r.Titles, ...r.Processes]));
      return 0;
    },
  },
  {
    name: "commit", usage: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", desc: "Create a new image from a container's changes",
    flags: [
      { long: "author", short: "a", type: "string", desc: "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")" },
      { long: "change", short: "c", type: "list", desc: "Apply Dockerfile instruction to the created image" },
      { long: "message", short: "m", type: "string", desc: "Commit message" },
      { long: "pause", short: "p", type: "bool", default: true, desc: "Pause container during commit" },
    ],
    run: async (c, f, a) => {
      if (a.length < 1 || a.length > 2) throw new UsageError(`"commit" requires at least 1 and at most 2 arguments.`);
      let repo: string | undefined, tag: string | undefined;
      if (a[1]) {
        const at = a[1].lastIndexOf(":");
        if (at > a[1].lastIndexOf("/")) { repo = a[1].slice(0, at); tag = a[1].slice(at + 1); } else repo = a[1];
      }
      const r = await c.api.json<IdResponse>("POST", "/commit", {
        query: { container: a[0], repo, tag, comment: f.message as string | undefined, author: f.author as string | undefined, pause: f.pause ? "1" : "0", changes: f.change as string[] },
      });
      c.out(r.Id + "\n");
      return 0;
    },
  },
  {
    name: "diff", usage: "diff CONTAINER", desc: "Inspect changes to files or directories on a container's filesystem", flags: [],
    run: async (c, _f, a) => {
      if (a.length !== 1) throw new UsageError(`"diff" requires exactly 1 argument.`);
      const list = await c.api.json<FilesystemChange[]>("GET", `/containers/${encodeURIComponent(a[0])}/changes`);
      c.out(list.map((x) => `${"CAD"[x.Kind] ?? "?"} ${x.Path}\n`).join(""));
      return 0;
    },
  },
  {
    name: "rename", usage: "rename CONTAINER NEW_NAME", desc: "Rename a container", flags: [],
    run: async (c, _f, a) => {
      if (a.length !== 2) throw new UsageError(`"rename" requires exactly 2 arguments.`);
      try { await c.api.request("POST", `/containers/${a[0]}/rename`, { query: { name: a[1] } }); } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        c.err(`Error response from daemon: ${e.message}\nError: failed to rename container named ${a[0]}\n`);
        return 1;
      }
      return 0;
    },
  },
  { name: "pause", usage: "pause CONTAINER [CONTAINER...]", desc: "Pause all processes within one or more containers", flags: [], run: (c, _f, a) => { need(a, 1, "pause"); return each(c, a, (id) => c.api.request("POST", `/containers/${id}/pause`)); } },
  { name: "unpause", usage: "unpause CONTAINER [CONTAINER...]", desc: "Unpause all processes within one or more containers", flags: [], run: (c, _f, a) => { need(a, 1, "unpause"); return each(c, a, (id) => c.api.request("POST", `/containers/${id}/unpause`)); } },
  {
    name: "port", usage: "port CONTAINER [PRIVATE_PORT[/PROTO]]", desc: "List port mappings or a specific mapping for the container", flags: [],
    run: async (c, _f, a) => {
      need(a, 1, "port");
      const info = await c.api.json<ContainerInspectResponse>("GET", `/containers/${a[0]}/json`);
      const ports = info.NetworkSettings?.Ports ?? {};
      let found = false;
      for (const [k, v] of Object.entries(ports)) for (const b of v ?? []) if (!a[1] || k === a[1] || k === `${a[1]}/tcp`) { found = true; c.out(`${a[1] ? "" : `${k} -> `}${b.HostIp || "0.0.0.0"}:${b.HostPort}\n`); }
      if (a[1] && !found) { c.err(`Error: No public port '${a[1].includes("/") ? a[1] : `${a[1]}/tcp`}' published for ${a[0]}\n`); return 1; }
      return 0;
    },
  },
  {
    name: "update", usage: "update [OPTIONS] CONTAINER [CONTAINER...]", desc: "Update configuration of one or more containers", flags: UPDATE_FLAGS,
    run: updateCmd,
  },
  {
    name: "container prune", usage: "container prune [OPTIONS]", desc: "Remove all stopped containers", flags: [{ long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" }, { long: "filter", type: "list", desc: "Provide filter values" }],
    run: async (c) => {
      const r = await c.api.json<ContainerPruneResponse>("POST", "/containers/prune");
      if (r.ContainersDeleted?.length) c.out(`Deleted Containers:\n${r.ContainersDeleted.join("\n")}\n\n`);
      c.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed)}\n`);
      return 0;
    },
  },
];

export { inspectCmd, pull };
