/**
 * Containers: the state machine behind create/start/stop/kill/rm/wait/attach/
 * logs/exec. State lives in memory (ps and inspect never touch the runtime)
 * and is persisted per container as containers/<id>/config.json on every
 * change. Locks are per container: a hung runtime call for one container
 * never blocks requests about another.
 *
 * Lifecycle: create (record only) → start (mount overlay, write /etc files,
 * conmon + runc create, connect waiting attachers, runc start) → exit (conmon
 * writes the exit file; the exit watcher records it, deletes the runc state,
 * unmounts) → rm.
 */
import { promises as fsp } from "node:fs";
import { hostname as osHostname } from "node:os";
import { join } from "node:path";
import { BerthError, ConflictError, NotFoundError, BadParameterError, NotModifiedError, SystemError, errorMessage } from "../lib/errors.js";
import { KeyedMutex } from "../lib/mutex.js";
import { newId, randomName } from "../lib/ids.js";
import { ensureDir, readJsonIfExists, writeJson } from "../lib/fsutil.js";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import type { ImageConfig } from "../oci/image.js";
import type { RuntimeSpec } from "../oci/spec.js";
import type { AttachStreams, ContainerPaths, RuntimeDriver } from "../runtime/driver.js";
import { RuntimeTimeoutError, runtimeTimeout } from "../runtime/driver.js";
import { specResources, type SpecResourcesInput } from "../runtime/spec.js";
import { parseSecurityOpt } from "../runtime/seccomp.js";
import { blkioWeightSupported, oomKillCount, removeCgroup } from "../runtime/cgroups.js";
import type { LogEntry } from "../runtime/logs.js";
import { LogManager, settingsFor, logPathFor, mergeLogConfig, type LogSettings, type LogPaths } from "./logging.js";
import { hostLimitWarnings, type HostLimits } from "../runtime/limits.js";
import { toHost, type IdentityMapping } from "../runtime/userns.js";
import type { EventBus } from "./events.js";
import { etcPaths, writeEtcFiles, type EtcPaths } from "./etc-files.js";
import type { ContainerRecord, ExecRecord, HostConfig } from "./types.js";
import { parseSignal } from "../lib/signals.js";
import { trace } from "../lib/trace.js";
import { mountFs, unmountFs, makeNetns, removeNetns } from "../lib/mounter.js";
import { checkFilters, pruneLabelsMatch, untilLimit, type Filters } from "./filters.js";
import { publicMounts, releaseVolumes, resolveMounts, type MountPoint, type MountRequest } from "./mounts.js";
import { ANON_LABEL } from "../store/volumes.js";
import type { NetworkService, EndpointSettings } from "./networks.js";
import { checkCpusets, checkHostConfig, dockerEnvMerge, inspectHostConfig } from "./hostconfig.js";
import { HealthChecks, execProbe, mergeHealth, type HealthConfig } from "./health.js";
import { ExecService, type ExecCreateBody, type ExecStarted } from "./exec.js";
import { launchSpec, linkSettings, networkDonor, resourcesOf } from "./launch-spec.js";
import { ZERO_TIME, listContainers, sortedKeys, type ListOptions } from "./container-list.js";
import { containerStats } from "./container-stats.js";

export interface EnginePaths {
  dataRoot: string; execRoot: string;
  /** daemon.json "init": containers whose HostConfig.Init is not set run with an init (as dockerd's). */
  defaultInit?: boolean;
  /** --userns-remap: containers' user-namespace maps. */
  userns?: IdentityMapping;
}

/** What a create request carries (Docker's ContainerCreateRequest, loosely typed: it is user input). */
export interface CreateBody {
  Hostname?: string; Domainname?: string; User?: string;
  AttachStdin?: boolean; AttachStdout?: boolean; AttachStderr?: boolean;
  ExposedPorts?: Record<string, object>; Tty?: boolean; OpenStdin?: boolean; StdinOnce?: boolean;
  Env?: string[] | null; Cmd?: string[] | string | null; Entrypoint?: string[] | string | null;
  Image?: string; Volumes?: Record<string, object> | null; WorkingDir?: string; Labels?: Record<string, string> | null;
  MacAddress?: string; OnBuild?: string[] | null;
  StopSignal?: string; StopTimeout?: number; Healthcheck?: HealthConfig;
  HostConfig?: Partial<HostConfig> & Record<string, unknown>;
  NetworkingConfig?: unknown;
}

/** POST /containers/{id}/update's body (Docker's container.UpdateConfig: Resources and RestartPolicy). */
export interface UpdateBody {
  CpuShares?: number; Memory?: number; MemoryReservation?: number; MemorySwap?: number; KernelMemory?: number;
  CpuPeriod?: number; CpuQuota?: number; NanoCpus?: number; CpuRealtimePeriod?: number; CpuRealtimeRuntime?: number;
  CpusetCpus?: string; CpusetMems?: string; BlkioWeight?: number; PidsLimit?: number | null;
  RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
}

export type WaitCondition = "not-running" | "next-exit" | "removed";

interface Waiter { condition: WaitCondition; resolve: (r: { StatusCode: number; Error: { Message: string } | null }) => void }
interface PendingAttach { stdin: boolean; resolve: (a: AttachStreams) => void; reject: (e: Error) => void }

const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

function nowIso(): string { return new Date().toISOString(); }

/** Whether a process exists (a zombie counts: its exit is not reported yet). */
function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}

function asArray(v: string[] | string | null | undefined): string[] | null {
  if (v === undefined || v === null) return null;
  return typeof v === "string" ? [v] : v;
}

/** --dns, --dns-search, --dns-option as Docker validates them. */
function dnsList(v: unknown, flag: string, ips = false): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) throw new BadParameterError(`invalid --${flag}: expected a list of strings`);
  for (const x of v as string[]) {
    if (ips && !/^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-fA-F:]+$/.test(x)) throw new BadParameterError(`${x} is not an ip address`);
    if (!ips && (!x || /\s/.test(x))) throw new BadParameterError(`invalid --${flag}: "${x}"`);
  }
  return v as string[];
}

export class ContainerService {
  private byId = new Map<string, ContainerRecord>();
  private names = new Map<string, string>();
  private locks = new KeyedMutex();
  private waiters = new Map<string, Waiter[]>();
  private pendingAttach = new Map<string, PendingAttach[]>();
  private readonly execs: ExecService;
  private stopWatch: (() => void) | undefined;
  /** `runc delete` of exited containers runs after waiters are told; a restart waits for it. */
  private cleanups = new Map<string, Promise<void>>();
  /** Health checks of running containers: stop functions. */
  private readonly health = new HealthChecks();
  /** Restart managers (Docker's restartmanager): the back-off of the next policy restart and its timer. */
  private restarts = new Map<string, { timeout: number; timer?: NodeJS.Timeout }>();
  /** The pumps that turn conmon's spool into each container's log (engine/logging.ts). */
  private readonly logMgr = new LogManager();

  constructor(
    private readonly store: Store,
    private readonly runtime: RuntimeDriver,
    private readonly events: EventBus,
    private readonly paths: EnginePaths,
    private readonly networks: NetworkService,
  ) {
    networks.setContainerSource(() => this.all());
    this.execs = new ExecService({
      runtime, execRoot: paths.execRoot, get: (ref) => this.get(ref),
      bundle: (id) => this.rtPaths(id).bundle, rootfs: (id) => join(this.dir(id), "rootfs"),
      publish: (c, action, extra) => this.events.publish("container", action, c.Id, this.attrs(c, extra)),
    });
  }

  // ---------------------------------------------------------------- paths

  private dir(id: string): string { return join(this.paths.dataRoot, "containers", id); }
  private exitDir(): string { return join(this.paths.execRoot, "exits"); }
  /** The file that keeps a running container's network namespace (made before `runc create`, so the plug runs beside it). */
  private netnsFile(id: string): string { return join(this.paths.execRoot, "netns", id); }
  private rtPaths(id: string): ContainerPaths {
    const d = this.dir(id);
    return {
      bundle: join(d, "bundle"), logPath: join(d, "container.log"), exitDir: this.exitDir(),
      socketDir: join(this.paths.execRoot, "s"), pidFile: join(d, "pid"), conmonPidFile: join(d, "conmon.pid"),
    };
  }

  private logPaths(id: string): LogPaths { const d = this.dir(id); return { dir: d, spool: join(d, "container.log"), ctl: join(d, "bundle", "ctl") }; }
  /** The container's log driver and options, read as a start reads them (throws dockerd's 500 for a bad value). */
  private logSettings(c: ContainerRecord): LogSettings { return settingsFor(mergeLogConfig(c.HostConfig.LogConfig), this.dir(c.Id), c.Id, c); }

  // ---------------------------------------------------------------- load / reconcile

  /** Loads every container record and reconciles it with what is really running (re-adoption after a daemon restart or crash). */
  async load(): Promise<void> {
    const root = join(this.paths.dataRoot, "containers");
    await ensureDir(root);
    await ensureDir(this.exitDir());
    await ensureDir(join(this.paths.execRoot, "s"));
    await ensureDir(join(this.paths.execRoot, "netns"));
    for (const id of await fsp.readdir(root)) {
      const rec = await readJsonIfExists<ContainerRecord>(join(root, id, "config.json")).catch(() => undefined);
      if (!rec || rec.Id !== id) continue;
      if (rec.State.Status === "removing") { await this.purge(rec).catch(() => {}); continue; }
      // Records written by older versions: Docker's every HostConfig field, and the json-file name of the log.
      rec.HostConfig = { ...inspectHostConfig({ Privileged: rec.HostConfig.Privileged }, {}), ...rec.HostConfig };
      if (rec.HostConfig.LogConfig?.Type === "k8s-file") rec.HostConfig.LogConfig = { Type: "json-file", Config: rec.HostConfig.LogConfig.Config ?? {} };
      if (rec.LogPath.endsWith("/container.log")) rec.LogPath = logPathFor(mergeLogConfig(rec.HostConfig.LogConfig), join(root, id), id);
      this.byId.set(id, rec);
      this.names.set(rec.Name.slice(1), id);
    }
    // As dockerd's restore: --rm containers that had exited (their removal cut short) go now, with their anonymous volumes.
    for (const rec of [...this.byId.values()]) {
      if (!rec.HostConfig.AutoRemove || rec.State.Running || rec.State.StartedAt === ZERO_TIME) continue;
      this.byId.delete(rec.Id);
      if (this.names.get(rec.Name.slice(1)) === rec.Id) this.names.delete(rec.Name.slice(1));
      await this.purge(rec).catch(() => {});
      await this.dropAnonymousVolumes(rec).catch(() => {});
    }
    // Exits recorded by conmon while we were away are delivered by the watcher (it reports existing files first).
    this.stopWatch = this.runtime.watchExits(this.exitDir(), (id, code) => { void this.onExit(id, code); });
    // Attach-socket links of containers that are gone.
    for (const name of await fsp.readdir(join(this.paths.execRoot, "s")).catch(() => [] as string[])) {
      if (!this.byId.has(name)) await fsp.rm(join(this.paths.execRoot, "s", name), { force: true });
    }
    // Runtime state of containers that are gone or stopped (a cleanup cut short by a crash).
    // Side by side, each under the runtime deadline: one container whose runtime does not answer
    // delays the daemon's start by one deadline at most, whatever the number of containers.
    await Promise.all((await this.runtime.known()).map(async (id) => {
      const rec = this.byId.get(id);
      if (!rec || !rec.State.Running) await this.runtime.delete(id, true).catch((e) => trace(`load: ${errorMessage(e)}`));
    }));
    const states = new Map(await Promise.all([...this.byId.values()].filter((r) => r.State.Running).map(async (r) =>
      [r.Id, await this.runtime.state(r.Id).then((st) => st, (e) => (e instanceof RuntimeTimeoutError ? "unknown" as const : null))] as const)));
    for (const rec of this.byId.values()) {
      if (!rec.State.Running) continue;
      const code = await this.runtime.exitCode(this.rtPaths(rec.Id), rec.Id);
      if (code !== undefined) { await this.onExit(rec.Id, code); continue; }
      let st = states.get(rec.Id) ?? null;
      // A runtime that did not answer: the record stands while its process lives (conmon still reports its exit).
      if (st === "unknown") st = rec.State.Pid > 0 && pidAlive(rec.State.Pid) ? { status: rec.State.Paused ? "paused" : "running", pid: rec.State.Pid } : null;
      if (!st || st.status === "stopped") await this.onExit(rec.Id, 255);
      else if (st.status === "running" || st.status === "paused") {
        rec.State.Pid = st.pid;
        rec.State.Paused = st.status === "paused";
        rec.State.Status = st.status;
        await this.networks.adopt(rec);
        this.watchHealth(rec);
        // What the container wrote while we were away is in the spool (bounded by conmon's --log-size-max): convert it and go on.
        try { await this.logMgr.start(rec.Id, this.logSettings(rec), this.logPaths(rec.Id)); } catch { /* a log that cannot be kept does not stop the adoption */ }
      }
    }
    await this.networks.adopted();
    // Network namespaces kept for containers that are not running (gone, or exited while we were away).
    for (const id of await fsp.readdir(join(this.paths.execRoot, "netns")).catch(() => [] as string[])) {
      if (!this.byId.get(id)?.State.Running) await removeNetns(this.netnsFile(id)).catch(() => {});
    }
    // As dockerd's restore: stopped containers that were started before and whose policy says so
    // start again (always: even after a user's stop; unless-stopped: unless the user stopped it;
    // on-failure: a failure within the retry count). Containers that died while we were away
    // went through onExit above and are scheduled by their policy already.
    for (const rec of this.byId.values()) {
      // One that was waiting out its back-off when the daemon went is exited now; its policy decides below.
      if (rec.State.Status === "restarting" && !this.restarts.has(rec.Id)) { rec.State.Status = "exited"; rec.State.Restarting = false; }
      if (rec.State.Running || rec.State.Status === "restarting" || rec.State.StartedAt === ZERO_TIME || rec.HostConfig.AutoRemove) continue;
      if (!shouldRestart(rec, rec.State.ExitCode, rec.Berth.ManualStop)) continue;
      const c = rec;
      void this.locks.run(c.Id, async () => {
        if (c.State.Running || !this.byId.has(c.Id)) return;
        c.Berth.ManualStop = false;
        c.RestartCount = 0;
        await this.launch(c);
      }).catch((e) => trace(`restore start ${c.Id.slice(0, 12)}: ${errorMessage(e)}`));
    }
  }

  /** Stops watching exits and waits for runtime cleanups still running in the background. */
  async close(): Promise<void> {
    this.stopWatch?.();
    await this.logMgr.closeAll();
    this.health.stopAll();
    for (const r of this.restarts.values()) if (r.timer) clearTimeout(r.timer);
    await Promise.allSettled([...this.cleanups.values()]);
    await this.runtime.close?.().catch(() => {});
  }

  // ---------------------------------------------------------------- lookup

  /** By full ID, name, or unique ID prefix, as Docker resolves them. */
  get(ref: string): ContainerRecord {
    const c = this.find(ref);
    if (!c) throw new NotFoundError(`No such container: ${ref}`);
    return c;
  }

  find(ref: string): ContainerRecord | undefined {
    if (!ref) return undefined;
    const exact = this.byId.get(ref);
    if (exact) return exact;
    const byName = this.names.get(ref.replace(/^\//, ""));
    if (byName) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(ref)) return undefined;
    const hits = [...this.byId.keys()].filter((id) => id.startsWith(ref));
    if (hits.length > 1) throw new BadParameterError(`multiple IDs found with provided prefix: ${ref}`);
    return hits.length ? this.byId.get(hits[0]) : undefined;
  }

  all(): ContainerRecord[] { return [...this.byId.values()]; }

  /** `GET /containers/{id}/json`: the record as Docker's ContainerInspectResponse (berth's bookkeeping left out). */
  inspect(ref: string): Omit<ContainerRecord, "Berth"> {
    const { Berth: _b, ...rec } = this.get(ref);
    // As dockerd: a container waiting out its restart back-off is Running (and Restarting), with no Pid.
    if (rec.State.Status === "restarting") rec.State = { ...rec.State, Running: true, Restarting: true };
    return { ...rec, Mounts: publicMounts(rec.Mounts as MountPoint[]), NetworkSettings: { ...rec.NetworkSettings, Networks: sortedKeys(rec.NetworkSettings.Networks as Record<string, unknown> | undefined) } };
  }

  /**
   * A request's turn at a container's lock. The wait is bounded (six runtime deadlines, a minute by
   * default: longer than any start, stop or removal whose runtime answers): a holder that is stuck
   * anyway (a umount that never returns) turns later requests about that container into a 409, not
   * a hang, and container prune goes on to the next container.
   */
  private op<T>(c: ContainerRecord, fn: () => Promise<T>): Promise<T> {
    const ms = runtimeTimeout() * 6;
    return this.locks.run(c.Id, fn, { waitMs: ms, busy: () => new ConflictError(`container ${c.Id} is busy: an operation on it has not finished within ${Math.round(ms / 1000)}s`) });
  }

  /** Runs fn on a container under its lock and persists the record afterwards (network connect/disconnect). */
  async withContainer(ref: string, fn: (c: ContainerRecord) => Promise<void>): Promise<void> {
    const c = this.get(ref);
    await this.op(c, async () => { await fn(c); await this.persist(c); });
  }

  usingImage(imageId: string): ContainerRecord[] { return this.all().filter((c) => c.Image === imageId); }

  /** How many containers use each image (one pass, for lists of every image). */
  imageUseCounts(): Map<string, number> {
    const n = new Map<string, number>();
    for (const c of this.byId.values()) n.set(c.Image, (n.get(c.Image) ?? 0) + 1);
    return n;
  }

  /**
   * Writes the record (atomically: a temporary file renamed over it). Only the
   * record's creation is fsynced (the file, as dockerd's config.v2.json; not the
   * directory): a state change lost to a host crash is reconciled by load()
   * (conmon and runc say what is running), and every fsync costs a `run --rm`
   * milliseconds (bench/run-latency).
   */
  private async persist(c: ContainerRecord, durable: boolean | "file" = false): Promise<void> {
    if (!this.byId.has(c.Id)) return;
    await writeJson(join(this.dir(c.Id), "config.json"), c, durable);
  }

  private attrs(c: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
    return { ...c.Config.Labels, image: c.Config.Image, name: c.Name.slice(1), ...extra };
  }

  // ---------------------------------------------------------------- create

  /** Under a store lease: the collector never removes the image's layers between resolving it and the record landing. */
  create(body: CreateBody, name: string | undefined, image: ImageRecord, imageConfig: ImageConfig): Promise<{ Id: string; Warnings: string[] }> {
    return this.store.gc.lease(() => this.createLeased(body, name, image, imageConfig));
  }

  private async createLeased(body: CreateBody, name: string | undefined, image: ImageRecord, imageConfig: ImageConfig): Promise<{ Id: string; Warnings: string[] }> {
    if (name !== undefined && name !== "") {
      if (!NAME_RE.test(name)) throw new BadParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      name = name.replace(/^\//, "");
    }
    const ic = imageConfig.config ?? {};
    // Docker's merge (daemon/commit.go merge): an empty Entrypoint (null, [] or omitted) takes the
    // image's Cmd when Cmd is empty too; only a null/omitted one takes the image's Entrypoint; [""] is none.
    const userEntrypoint = body.Entrypoint === undefined || body.Entrypoint === null ? null : asArray(body.Entrypoint);
    let entrypoint: string[] | null;
    let cmd = asArray(body.Cmd);
    if (!userEntrypoint || userEntrypoint.length === 0) {
      if (!cmd || cmd.length === 0) cmd = ic.Cmd ?? null;
      entrypoint = userEntrypoint ?? ic.Entrypoint ?? null;
    } else entrypoint = userEntrypoint;
    if (entrypoint && entrypoint.length === 1 && entrypoint[0] === "") entrypoint = null;
    const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
    if (argv.length === 0) throw new BadParameterError("No command specified");
    const hc = body.HostConfig ?? {};
    if (hc.AutoRemove && hc.RestartPolicy && hc.RestartPolicy.Name && hc.RestartPolicy.Name !== "no") {
      throw new BadParameterError("Conflicting options: cannot specify both --restart and --rm");
    }
    const restart = hc.RestartPolicy ?? { Name: "", MaximumRetryCount: 0 };
    if (!["", "no", "always", "unless-stopped", "on-failure"].includes(restart.Name)) {
      throw new BadParameterError(`invalid restart policy: unknown policy '${restart.Name}'; use one of 'no', 'always', 'on-failure' or 'unless-stopped'`);
    }
    checkHostConfig(hc);
    const limitWarnings = hostLimitWarnings(hc as HostLimits & { Memory?: number });
    for (const [k, ref] of [["IpcMode", hc.IpcMode], ["PidMode", hc.PidMode]] as const) {
      if (typeof ref === "string" && ref.startsWith("container:")) {
        const target = this.find(ref.slice("container:".length));
        if (!target) throw new BadParameterError(`No such container: ${ref.slice("container:".length)}`);
        void k;
      }
    }
    // Per-network MAC addresses (API 1.44+ clients send them in the endpoint config).
    const macs: Record<string, string> = {};
    for (const [net, ep] of Object.entries((body.NetworkingConfig as { EndpointsConfig?: Record<string, { MacAddress?: string }> } | undefined)?.EndpointsConfig ?? {})) {
      if (ep?.MacAddress) macs[net] = ep.MacAddress;
    }
    for (const m of [body.MacAddress, ...Object.values(macs)]) {
      if (m && !/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(m)) throw new BadParameterError(`invalid MAC address: ${m}`);
    }
    const links = this.resolveLinks(hc.Links as string[] | null | undefined, name);
    const fromMounts = this.volumesFromMounts(hc.VolumesFrom as string[] | null | undefined);
    const netMode = hc.NetworkMode || "default";
    const exposedKeys = Object.keys({ ...(ic.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) });
    const published = Object.values(hc.PortBindings ?? {}).some((b) => (b ?? []).length > 0);
    if (published && /^(none|container:.+)$/.test(netMode)) {
      throw new BadParameterError("conflicting options: port publishing and the container type network mode");
    }
    for (const k of Object.keys(hc.PortBindings ?? {})) if (!/^\d+(\/(tcp|udp|sctp))?$/i.test(k)) throw new BadParameterError(`invalid port specification: "${k}"`);
    // dockerd's validateNetContainerMode, in its order: a container that joins another's network takes that one's
    // hostname, /etc/hosts and resolv.conf, so nothing that would change them may be given.
    if (netMode.startsWith("container:")) {
      if (body.Hostname) throw new BadParameterError("conflicting options: hostname and the network mode");
      if ((hc.Links as string[] | null | undefined)?.length) throw new BadParameterError("conflicting options: container type network can't be used with links. This would result in undefined behavior");
      if ((hc.Dns as string[] | null | undefined)?.length) throw new BadParameterError("conflicting options: dns and the network mode");
      if ((hc.ExtraHosts as string[] | null | undefined)?.length) throw new BadParameterError("conflicting options: custom host-to-IP mapping and the network mode");
    }
    // The MAC in the body (API < 1.44) or in an endpoint's settings (the CLI's since 1.44).
    const epMacs = Object.values((body.NetworkingConfig as { EndpointsConfig?: Record<string, { MacAddress?: string } | null> } | undefined)?.EndpointsConfig ?? {}).map((e) => e?.MacAddress);
    if (/^(host|container:.+)$/.test(netMode) && (body.MacAddress || epMacs.some(Boolean))) throw new BadParameterError("conflicting options: mac-address and the network mode");
    if (netMode.startsWith("container:") && hc.PublishAllPorts) throw new BadParameterError("conflicting options: port publishing and the container type network mode");
    if (netMode.startsWith("container:") && Object.keys(body.ExposedPorts ?? {}).length) throw new BadParameterError("conflicting options: port exposing and the container type network mode");
    const endpointsConfig = (body.NetworkingConfig as { EndpointsConfig?: Record<string, Partial<EndpointSettings>> } | undefined)?.EndpointsConfig;
    const networkSettings = this.networks.initialSettings(netMode, endpointsConfig ?? undefined, exposedKeys);
    if (hc.Memory !== undefined && (typeof hc.Memory !== "number" || (hc.Memory > 0 && hc.Memory < 6 * 1024 * 1024))) {
      throw new BadParameterError("Minimum memory limit allowed is 6MB");
    }

    const id = newId();
    // Reserve the name before any await, so concurrent creates cannot both take it.
    if (!name) { do { name = randomName(); } while (this.names.has(name)); }
    const holder = this.names.get(name);
    if (holder) {
      throw new ConflictError(`Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    this.names.set(name, id);
    // From here on a failure undoes everything this create made: the name, the record and its
    // directory, and the volumes it created (never a volume that existed before, or that another
    // container has taken since).
    const madeVolumes: string[] = [];
    const d = this.dir(id);
    const reservedName = name;
    const undo = async () => {
      this.byId.delete(id);
      if (this.names.get(reservedName) === id) this.names.delete(reservedName);
      await fsp.rm(d, { recursive: true, force: true }).catch(() => {});
      const used = this.volumesInUse();
      await releaseVolumes(madeVolumes.filter((v) => !used.has(v)), this.store.volumes);
    };
    let rec: ContainerRecord;
    try {
      const own = await resolveMounts(hc as MountRequest, [...Object.keys(body.Volumes ?? {}), ...Object.keys(ic.Volumes ?? {})], this.store.volumes, madeVolumes);
      // --volumes-from: the other container's mounts, less those this one mounts itself.
      const mounts = [...own, ...fromMounts.filter((m) => !own.some((o) => o.Destination === m.Destination))];

      const etc = etcPaths(d);
      const utsHost = hc.UTSMode === "host";
      const envList = dockerEnvMerge(body.Env, ic.Env);
      const volumes = { ...(ic.Volumes ?? {}), ...(body.Volumes ?? {}) };
      const exposed = { ...(ic.ExposedPorts ?? {}), ...(body.ExposedPorts ?? {}) };
      const config: ContainerRecord["Config"] = {
        Hostname: utsHost ? osHostname() : body.Hostname || id.slice(0, 12),
        Domainname: body.Domainname ?? "",
        User: body.User || ic.User || "",
        AttachStdin: !!body.AttachStdin, AttachStdout: body.AttachStdout ?? false, AttachStderr: body.AttachStderr ?? false,
        ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
        Tty: !!body.Tty, OpenStdin: !!body.OpenStdin, StdinOnce: !!body.StdinOnce,
        Env: envList.length ? envList : null,
        Cmd: cmd, Image: body.Image ?? "", Volumes: Object.keys(volumes).length ? volumes : null,
        WorkingDir: body.WorkingDir || ic.WorkingDir || "",
        Entrypoint: entrypoint, OnBuild: body.OnBuild?.length ? body.OnBuild : null,
        Labels: { ...(ic.Labels ?? {}), ...(body.Labels ?? {}) },
      };
      if (body.MacAddress) config.MacAddress = body.MacAddress;
      const stopSignal = body.StopSignal || ic.StopSignal;
      if (stopSignal) config.StopSignal = stopSignal;
      if (body.StopTimeout !== undefined) config.StopTimeout = body.StopTimeout;
      const health = mergeHealth(ic.Healthcheck as HealthConfig | undefined, body.Healthcheck);
      if (health) config.Healthcheck = health;
      rec = {
        Id: id,
        Created: nowIso(),
        Path: argv[0],
        Args: argv.slice(1),
        State: { Status: "created", Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: "", StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME },
        Image: image.id,
        ResolvConfPath: etc.resolv, HostnamePath: etc.hostname, HostsPath: etc.hosts,
        LogPath: logPathFor(mergeLogConfig(hc.LogConfig as ContainerRecord["HostConfig"]["LogConfig"] | undefined), d, id),
        Name: "/" + name,
        RestartCount: 0,
        Driver: "overlay2", Platform: "linux", MountLabel: "", ProcessLabel: "", AppArmorProfile: parseSecurityOpt(hc.SecurityOpt as string[] | undefined).apparmor ?? "",
        ExecIDs: null,
        HostConfig: inspectHostConfig(hc, {
          NetworkMode: netMode, RestartPolicy: { Name: restart.Name ?? "", MaximumRetryCount: restart.MaximumRetryCount ?? 0 },
          Runtime: this.runtime.name, BlkioWeight: hc.BlkioWeight && !blkioWeightSupported() ? 0 : (hc.BlkioWeight ?? 0), Links: links.length ? links.map((l) => `/${l.name}:/${name}/${l.alias}`) : null,
          Dns: hc.Dns == null ? null : dnsList(hc.Dns, "dns", true), DnsSearch: hc.DnsSearch == null ? null : dnsList(hc.DnsSearch, "dns-search"),
          DnsOptions: hc.DnsOptions == null ? null : dnsList(hc.DnsOptions, "dns-option"),
        }),
        GraphDriver: { Name: "overlay2", Data: { MergedDir: join(d, "rootfs"), UpperDir: join(d, "upper"), WorkDir: join(d, "work") } },
        Mounts: mounts,
        Config: config,
        NetworkSettings: networkSettings,
        Berth: { ChainId: image.chainId, ImageRef: body.Image ?? "", ConmonPid: 0, StartedByUser: false, ManualStop: false, ...(Object.keys(macs).length ? { MacAddresses: macs } : {}) },
      };
      await ensureDir(d, 0o710);
      // A remapped root walks down to its rootfs (dockerd: root:<remapped gid> 0710).
      if (this.paths.userns) await fsp.chown(d, 0, toHost(this.paths.userns.gids, 0));
      this.byId.set(id, rec);
      await this.persist(rec, "file");
    } catch (e) {
      await undo();
      throw e;
    }
    this.events.publish("container", "create", id, this.attrs(rec));
    trace(`created record ${id.slice(0, 12)}`);
    const warnings: string[] = [];
    if (netMode === "host" && published) warnings.push("Published ports are discarded when using host network mode");
    if (hc.BlkioWeight && !blkioWeightSupported()) warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
    if (hc.KernelMemory) warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.");
    warnings.push(...limitWarnings);
    return { Id: id, Warnings: warnings };
  }

  /** HostConfig.Links ("name[:alias]") resolved as Docker does at create: the container must exist. */
  private resolveLinks(list: string[] | null | undefined, self: string | undefined): { name: string; alias: string }[] {
    const out: { name: string; alias: string }[] = [];
    for (const l of list ?? []) {
      const [ref, alias0] = l.split(":", 2);
      const target = this.find(ref.replace(/^\//, ""));
      if (!target) throw new BadParameterError(`could not get container for ${ref}: No such container: ${ref}`);
      if (self && target.Name.slice(1) === self) throw new BadParameterError(`could not get container for ${ref}: a container cannot link to itself`);
      out.push({ name: target.Name.slice(1), alias: (alias0 || target.Name.slice(1)).replace(/^\/.*\//, "").replace(/^\//, "") });
    }
    return out;
  }

  /** HostConfig.VolumesFrom ("container[:ro|rw]"): that container's mounts, read-only where asked. */
  private volumesFromMounts(list: string[] | null | undefined): MountPoint[] {
    const out: MountPoint[] = [];
    for (const v of list ?? []) {
      const [ref, mode = ""] = v.split(":", 2);
      if (mode && mode !== "ro" && mode !== "rw") throw new BadParameterError(`invalid mode for volumes-from: ${mode}`);
      const src = this.find(ref);
      if (!src) throw new BadParameterError(`No such container: ${ref}`);
      for (const m of src.Mounts as MountPoint[]) {
        if (m.Type === "tmpfs" || out.some((o) => o.Destination === m.Destination)) continue;
        const rw = mode === "ro" ? false : mode === "rw" ? true : m.RW;
        out.push({ ...m, RW: rw, Mode: mode || m.Mode, CreateHostPath: m.CreateHostPath });
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- start

  async start(ref: string): Promise<void> {
    const c = this.get(ref);
    await this.op(c, async () => {
      if (c.State.Status === "removing") throw new ConflictError(`container is marked for removal and cannot be started`);
      if (c.State.Running) throw new NotModifiedError();
      c.Berth.ManualStop = false;
      // As dockerd: a start by the user resets the restart manager (back-off and RestartCount).
      this.cancelRestart(c);
      c.RestartCount = 0;
      await this.launch(c);
    }).catch(async (e) => {
      // As Docker: a --rm container that fails to start is removed (the CLI waits for that).
      if (c.HostConfig.AutoRemove && !(e instanceof NotModifiedError)) await this.remove(c.Id, { force: true }).catch(() => {});
      throw e;
    });
  }

  /** A start: the rootfs and /etc files, the spec, the runtime's create and start (network plugged between), the record. */
  private async launch(c: ContainerRecord): Promise<void> {
    const logSet = this.logSettings(c); // dockerd checks the log options' values when the logger starts: before anything is made
    const p = this.rtPaths(c.Id);
    const { rootfs, etc, links, etcDone } = await this.prepareRootfs(c, p);
    try {
      if (etcDone.status === "rejected") throw etcDone.reason;
      const spec = await launchSpec({
        c, rootfs, etc, linkEnv: links.env, volumes: this.store.volumes, defaultInit: !!this.paths.defaultInit,
        find: (ref) => this.find(ref), shmDir: (id) => this.shmDir(id), userns: this.paths.userns,
      });
      // A container on bridge networks gets its namespace now, so that plugging it runs beside runc create.
      // Not one in a user namespace of its own: a network namespace the host's user namespace owns would
      // not let its root mount sysfs (runc makes that one inside, and it is plugged after create).
      const nsSpec = spec.linux?.namespaces?.find((n) => n.type === "network");
      const ownUserns = !!spec.linux?.namespaces?.some((n) => n.type === "user");
      const netns = this.networks.needsPlug(c) && nsSpec && !nsSpec.path && !ownUserns ? this.netnsFile(c.Id) : undefined;
      if (netns) { await makeNetns(netns); nsSpec!.path = netns; }
      await this.mountShm(c);
      trace("spec built");
      const created = await this.createAndStart(c, spec, p, logSet, netns);
      await this.recordStarted(c, created);
    } catch (e) {
      throw await this.launchFailed(c, rootfs, e);
    }
  }

  /**
   * Before the spec: the previous run's leftovers cleared, addresses and ports taken, links resolved,
   * the rootfs mounted and the /etc files written (a failure to write them is the caller's to handle).
   */
  private async prepareRootfs(c: ContainerRecord, p: ContainerPaths): Promise<{ rootfs: string; etc: EtcPaths; links: { hosts: string[]; env: string[] }; etcDone: PromiseSettledResult<void> }> {
    const d = this.dir(c.Id);
    const rootfs = join(d, "rootfs");
    await this.cleanups.get(c.Id);
    if (c.State.StartedAt !== ZERO_TIME || c.State.Error) {
      // A restart: clear what the previous run may have left.
      await this.runtime.delete(c.Id, true).catch(() => {});
      await fsp.rm(join(p.exitDir, c.Id), { force: true });
    }
    await ensureDir(p.bundle);
    trace(`launch ${c.Id.slice(0, 12)}`);
    // As dockerd's initializeNetworking: a container on another's network takes its hostname, hosts and resolv.conf.
    const donor = networkDonor(String(c.HostConfig.NetworkMode ?? ""), (ref) => this.find(ref));
    const etc = donor ? { hostname: donor.HostnamePath, hosts: donor.HostsPath, resolv: donor.ResolvConfPath } : etcPaths(d);
    if (donor) {
      c.Config.Hostname = donor.Config.Hostname;
      c.Config.Domainname = donor.Config.Domainname;
      c.HostnamePath = etc.hostname; c.HostsPath = etc.hosts; c.ResolvConfPath = etc.resolv;
    }
    // Addresses and published host ports first: a port already taken fails here, before anything is made.
    const ips = await this.networks.prepare(c).catch(async (e) => {
      c.State.Error = errorMessage(e);
      await this.persist(c).catch(() => {});
      // Refusals (a bad or taken address, a network that is not available: 400/403/404/409) go out as they are; a port that cannot be bound is dockerd's 500.
      const refusal = e instanceof BadParameterError || e instanceof NotFoundError || e instanceof ConflictError || (e instanceof BerthError && e.status === 403);
      throw refusal ? e : new SystemError(`driver failed programming external connectivity on endpoint ${c.Name.slice(1)} (${c.Id.slice(0, 12)}): ${errorMessage(e)}`);
    });
    let links: { hosts: string[]; env: string[] };
    try {
      links = linkSettings(c, (ref) => this.find(ref));
      this.applyMacAddress(c);
    } catch (e) { await this.networks.release(c); throw e; }
    const [mounted, etcDone] = await Promise.allSettled([
      this.store.snapshots.mount(c.Berth.ChainId, d, rootfs),
      donor ? Promise.resolve() : writeEtcFiles(etc, c.Config.Hostname, ips, [...((c.HostConfig.ExtraHosts as string[] | null) ?? []), ...links.hosts], {
        embedded: this.networks.dnsServerFor(c), servers: c.HostConfig.Dns as string[] | undefined,
        search: c.HostConfig.DnsSearch as string[] | undefined, options: c.HostConfig.DnsOptions as string[] | undefined,
      }, c.Config.Domainname),
    ]);
    if (mounted.status === "rejected") { await this.networks.release(c); throw mounted.reason; }
    return { rootfs, etc, links, etcDone };
  }

  /** conmon + runc create (waiting attachers connect meanwhile), the network plugged into the new namespace, runc start. */
  private async createAndStart(c: ContainerRecord, spec: RuntimeSpec, p: ContainerPaths, logSet: LogSettings, netns: string | undefined): Promise<{ pid: number; conmonPid: number }> {
    // Attachers connect while runc creates the container (the helper waits for conmon's socket); they are
    // spawned once conmon is, so their spawn does not hold up conmon's.
    const waiting = this.pendingAttach.get(c.Id) ?? [];
    this.pendingAttach.delete(c.Id);
    let attaching: Promise<AttachStreams>[] = [];
    const startAttachers = (): void => { if (!attaching.length) attaching = waiting.map((w) => this.runtime.attach(c.Id, p, { stdin: w.stdin, tty: c.Config.Tty })); };
    // The namespace exists already: its veths are made while runc creates the container in it.
    const plugging = netns ? this.networks.plug(c, netns).then(() => trace("network plugged")) : undefined;
    plugging?.catch(() => { /* awaited below */ });
    let created: { pid: number; conmonPid: number };
    try {
      created = await this.runtime.create({ id: c.Id, spec, paths: p, terminal: c.Config.Tty, stdin: c.Config.OpenStdin, stdinOnce: c.Config.StdinOnce, log: { none: logSet.driver === "none", sizeMax: logSet.spoolMax }, onSpawned: startAttachers });
    } catch (e) {
      for (const a of attaching) void a.then((s) => s.close(), () => {});
      for (const w of waiting) w.reject(e as Error);
      await plugging?.catch(() => {});
      throw e;
    }
    try {
      trace("runtime created");
      startAttachers();
      // The log pump starts beside the network plug and the attachers: all three come before runc start.
      const logStarted = this.logMgr.start(c.Id, logSet, this.logPaths(c.Id));
      logStarted.catch(() => { /* awaited below */ });
      if (plugging) await plugging;
      else if (this.networks.needsPlug(c)) { await this.networks.plug(c, created.pid); trace("network plugged"); }
      await logStarted;
      const results = await Promise.allSettled(attaching);
      results.forEach((r, i) => (r.status === "fulfilled" ? waiting[i].resolve(r.value) : waiting[i].reject(r.reason as Error)));
      trace("created+attached");
      await this.runtime.start(c.Id);
      trace("started");
    } catch (e) {
      await this.runtime.delete(c.Id, true).catch(() => {});
      throw e;
    }
    return created;
  }

  /** The running state recorded, health checks started, the start events sent. */
  private async recordStarted(c: ContainerRecord, created: { pid: number; conmonPid: number }): Promise<void> {
    c.State = { ...c.State, Status: "running", Running: true, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: created.pid, ExitCode: 0, Error: "", StartedAt: nowIso(), FinishedAt: ZERO_TIME };
    c.Berth.ConmonPid = created.conmonPid;
    delete c.State.Health;
    this.watchHealth(c);
    await this.persist(c);
    this.attachEvents(c, "connect", "mount");
    this.events.publish("container", "start", c.Id, this.attrs(c));
  }

  /** A start that failed past the rootfs: everything it made undone, the error recorded (with Docker's exit code); returns what to throw. */
  private async launchFailed(c: ContainerRecord, rootfs: string, e: unknown): Promise<Error> {
    await this.store.snapshots.unmount(rootfs).catch(() => {});
    await this.unmountShm(c).catch(() => {});
    await removeCgroup(`/berth/${c.Id}`).catch(() => {});
    await this.networks.release(c).catch(() => {});
    await removeNetns(this.netnsFile(c.Id)).catch(() => {});
    const msg = errorMessage(e);
    c.State.Error = msg;
    c.State.ExitCode = /not found|no such file/i.test(msg) ? 127 : /permission denied/i.test(msg) ? 126 : 128;
    await this.persist(c).catch(() => {});
    for (const w of this.pendingAttach.get(c.Id) ?? []) w.reject(e as Error);
    this.pendingAttach.delete(c.Id);
    return e instanceof SystemError || e instanceof BadParameterError ? e : new SystemError(msg);
  }

  /** dockerd's network connect/disconnect and volume mount/unmount events of a container's start and exit (bind mounts send none). */
  private attachEvents(c: ContainerRecord, net: "connect" | "disconnect", vol: "mount" | "unmount"): void {
    for (const [name, ep] of Object.entries((c.NetworkSettings.Networks ?? {}) as Record<string, { NetworkID?: string }>)) {
      if (!ep?.NetworkID) continue;
      this.events.publish("network", net, ep.NetworkID, { container: c.Id, name, type: name === "host" ? "host" : name === "none" ? "null" : "bridge" });
    }
    for (const m of c.Mounts as MountPoint[]) {
      if (m.Type !== "volume" || !m.Name) continue;
      const attrs: Record<string, string> = vol === "mount"
        ? { container: c.Id, destination: m.Destination, driver: m.Driver || "local", propagation: m.Propagation ?? "", "read/write": String(m.RW) }
        : { container: c.Id, driver: m.Driver || "local" };
      this.events.publish("volume", vol, m.Name, attrs);
    }
  }

  private watchHealth(c: ContainerRecord): void {
    this.health.watch(c, {
      exec: (rec, argv, timeoutMs) => execProbe(this.execs, rec, argv, timeoutMs),
      changed: (rec, status) => this.events.publish("container", `health_status: ${status}`, rec.Id, this.attrs(rec)),
      persist: (rec) => this.persist(rec),
    });
  }

  /** A shareable container's /dev/shm: a tmpfs on the host that containers joining its IPC bind too (as Docker's mounts/shm). */
  private shmDir(id: string): string { return join(this.dir(id), "shm"); }

  private async mountShm(c: ContainerRecord): Promise<void> {
    if (c.HostConfig.IpcMode !== "shareable") return;
    const dir = this.shmDir(c.Id);
    await ensureDir(dir);
    const mounted = (await fsp.readFile("/proc/self/mountinfo", "utf8")).split("\n").some((l) => l.split(" ")[4] === dir);
    if (mounted) return;
    const size = (c.HostConfig.ShmSize as number) || 64 * 1024 * 1024;
    await mountFs("tmpfs", "shm", dir, ["nosuid", "nodev", "noexec", "mode=1777", `size=${size}`]);
  }

  private async unmountShm(c: ContainerRecord): Promise<void> {
    if (c.HostConfig.IpcMode !== "shareable") return;
    const dir = this.shmDir(c.Id);
    const mounted = (await fsp.readFile("/proc/self/mountinfo", "utf8").catch(() => "")).split("\n").some((l) => l.split(" ")[4] === dir);
    if (!mounted) return;
    await unmountFs(dir, { lazy: true });
  }

  /** Config.MacAddress: the address of the container's first network endpoint (eth0), as Docker applies it. */
  private applyMacAddress(c: ContainerRecord): void {
    const perNet = c.Berth.MacAddresses ?? {};
    if (!c.Config.MacAddress && !Object.keys(perNet).length) return;
    const nets = (c.NetworkSettings.Networks ?? {}) as Record<string, { IPAddress?: string; MacAddress?: string }>;
    const first = Object.entries(nets).find(([, e]) => e.IPAddress)?.[0];
    for (const [net, ep] of Object.entries(nets)) {
      // The endpoint config of `--network default` (the docker CLI's key) is the first network's.
      const mac = perNet[net] ?? (net === first ? perNet.default ?? perNet[c.HostConfig.NetworkMode] ?? c.Config.MacAddress : undefined);
      if (!mac || !ep.IPAddress) continue;
      ep.MacAddress = mac.toLowerCase();
      if (net === "bridge") (c.NetworkSettings as Record<string, unknown>).MacAddress = mac.toLowerCase();
    }
  }

  // ---------------------------------------------------------------- exit

  /** Called by the exit watcher when conmon records an exit. */
  private async onExit(id: string, code: number): Promise<void> {
    const c = this.byId.get(id);
    const p = this.rtPaths(id);
    if (!c) { if (/^[0-9a-f]{64}$/.test(id)) await fsp.rm(join(p.exitDir, id), { force: true }); return; }
    trace(`exit ${id.slice(0, 12)} ${code}`);
    let handled = false, restart = false, releaseCleanup = (): void => {};
    try {
      await this.locks.run(id, async () => {
        if (!c.State.Running) return;
        handled = true;
        this.health.stop(id);
        // conmon drained the container's output before it wrote the exit: the last of it goes into the log before anyone hears of the exit.
        await this.logMgr.finish(id).catch(() => {});
        // The OOM killer's count in the container's memory cgroup, read before runc delete removes it.
        const oomKilled = (oomKillCount(`/berth/${id}`) ?? 0) > 0;
        if (oomKilled) this.events.publish("container", "oom", id, this.attrs(c));
        c.State = { ...c.State, Status: "exited", Running: false, Paused: false, OOMKilled: oomKilled, Pid: 0, ExitCode: code, FinishedAt: nowIso() };
        // As dockerd (SetRestarting): a container its policy restarts goes from running straight to restarting.
        restart = !c.HostConfig.AutoRemove && !c.Berth.ManualStop && shouldRestart(c, code, false);
        if (restart) { c.State.Status = "restarting"; c.State.Restarting = true; }
        c.Berth.ConmonPid = 0;
        await this.networks.release(c).catch(() => {});
        // Side by side (each is one request to the mount helper): its network namespace (the kernel then
        // frees its veth pairs), its /dev/shm, and its rootfs (an --rm container's goes with its removal,
        // after its waiters are told).
        await Promise.all([
          removeNetns(this.netnsFile(id)).catch(() => {}),
          this.unmountShm(c).catch(() => {}),
          c.HostConfig.AutoRemove ? undefined : this.store.snapshots.unmount(join(this.dir(id), "rootfs")).catch(() => {}),
        ]);
        // The runtime's own state goes in the background: nothing a waiter sees depends on it. It starts once
        // the waiters have been answered (the spawn of runc holds the event loop for milliseconds, and a
        // `run --rm` waits for that answer).
        const gate = new Promise<void>((r) => { releaseCleanup = r; });
        const cleanup = gate.then(() => this.runtime.delete(id, true)).catch(() => {}).then(() => removeCgroup(`/berth/${id}`)).catch(() => {})
          .finally(() => { if (this.cleanups.get(id) === cleanup) this.cleanups.delete(id); });
        this.cleanups.set(id, cleanup);
        const running = this.volumesInUse(id, true);
        for (const m of c.Mounts as MountPoint[]) if (m.Type === "volume" && m.Name && !running.has(m.Name)) await this.store.volumes.deactivate(m.Name).catch(() => {});
        // An --rm container goes straight on to removal, which records its own state.
        if (!c.HostConfig.AutoRemove) await this.persist(c);
        await fsp.rm(join(p.exitDir, id), { force: true });
        this.events.publish("container", "die", id, this.attrs(c, { exitCode: String(code) }));
        this.attachEvents(c, "disconnect", "unmount");
        trace("exit handled");
      });
      if (!handled) return;
      this.notify(id, ["not-running", "next-exit"], code);
      if (c.HostConfig.AutoRemove) {
        await this.remove(id, { force: true }).catch(() => {});
        return;
      }
      // A stop, kill or rm since then has cancelled it (the status is no longer restarting).
      if (restart && c.State.Status === "restarting" && this.byId.has(id)) {
        // Docker's back-off: 100 ms, doubling up to a minute; back to 100 ms after a run of 10 s or more.
        const r = this.restarts.get(id) ?? { timeout: 0 };
        if (Date.parse(c.State.FinishedAt) - Date.parse(c.State.StartedAt) >= 10_000) r.timeout = 0;
        r.timeout = r.timeout === 0 ? 100 : Math.min(r.timeout * 2, 60_000);
        this.restarts.set(id, r);
        this.scheduleRestart(c, r.timeout);
      }
    } finally { releaseCleanup(); }
  }

  /** A policy restart after delay ms (as dockerd: a start event, no restart event; RestartCount counts it). */
  private scheduleRestart(c: ContainerRecord, delay: number): void {
    const id = c.Id;
    const r = this.restarts.get(id) ?? { timeout: 0 };
    if (r.timer) clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      void this.locks.run(id, async () => {
        if (!this.byId.has(id) || c.State.Running || c.Berth.ManualStop) return;
        c.RestartCount++;
        try { await this.launch(c); } catch (e) {
          c.State.Restarting = false;
          c.State.Status = "exited";
          await this.persist(c).catch(() => {});
          throw e;
        }
      }).catch((e) => trace(`restart ${id.slice(0, 12)}: ${errorMessage(e)}`));
    }, delay);
    r.timer.unref();
    this.restarts.set(id, r);
  }

  /** Cancels a scheduled policy restart (stop, kill, rm, a user's start); a restarting container is exited again. */
  private cancelRestart(c: ContainerRecord): boolean {
    const r = this.restarts.get(c.Id);
    if (r?.timer) { clearTimeout(r.timer); r.timer = undefined; }
    this.restarts.delete(c.Id);
    if (c.State.Status !== "restarting") return false;
    c.State.Restarting = false;
    c.State.Status = "exited";
    return true;
  }

  private notify(id: string, conditions: WaitCondition[], code: number): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const keep: Waiter[] = [];
    for (const w of list) {
      if (conditions.includes(w.condition)) w.resolve({ StatusCode: code, Error: null });
      else keep.push(w);
    }
    if (keep.length) this.waiters.set(id, keep); else this.waiters.delete(id);
  }

  // ---------------------------------------------------------------- wait / stop / kill / restart

  /**
   * Resolves when the condition holds. `signal` gives the wait up (the client went away: `docker run -d`
   * asks for next-exit and exits at once): the waiter is dropped, so a long-running container does not
   * keep a dead connection's request, response and socket for its whole life; the promise then never settles.
   */
  wait(ref: string, condition: WaitCondition = "not-running", signal?: AbortSignal): Promise<{ StatusCode: number; Error: { Message: string } | null }> {
    const c = this.get(ref);
    if (!["not-running", "next-exit", "removed"].includes(condition)) {
      throw new BadParameterError(`invalid condition: "${condition}"`);
    }
    if (condition === "not-running" && !c.State.Running && c.State.Status !== "restarting") return Promise.resolve({ StatusCode: c.State.ExitCode, Error: null });
    return new Promise((resolve) => {
      if (signal?.aborted) return;
      const w: Waiter = { condition, resolve };
      const list = this.waiters.get(c.Id) ?? [];
      list.push(w);
      this.waiters.set(c.Id, list);
      signal?.addEventListener("abort", () => {
        const l = this.waiters.get(c.Id);
        if (!l) return;
        const i = l.indexOf(w);
        if (i >= 0) l.splice(i, 1);
        if (!l.length) this.waiters.delete(c.Id);
      }, { once: true });
    });
  }

  /** Resolves true when the container has stopped within ms (-1: wait forever). */
  private waitStopped(c: ContainerRecord, ms: number): Promise<boolean> {
    // Not running, but its exit may still be being recorded (onExit holds the lock until its die
    // event is out): once that is done, so a stop's events come after the die, as dockerd's.
    if (!c.State.Running) return this.locks.run(c.Id, async () => true, { waitMs: 2000 }).catch(() => true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const list = this.waiters.get(c.Id) ?? [];
      const w: Waiter = { condition: "not-running", resolve: () => { if (timer) clearTimeout(timer); resolve(true); } };
      list.push(w);
      this.waiters.set(c.Id, list);
      if (ms >= 0) timer = setTimeout(() => {
        const l = this.waiters.get(c.Id);
        if (l) { const i = l.indexOf(w); if (i >= 0) l.splice(i, 1); }
        resolve(false);
      }, ms);
    });
  }

  async stop(ref: string, opts: { timeout?: number; signal?: string } = {}): Promise<void> {
    const c = this.get(ref);
    // Set even when it is not running: it cancels a restart the policy has scheduled.
    c.Berth.ManualStop = true;
    // Under the lock: a policy restart already launching finishes first, and is then stopped below.
    const wasRestarting = await this.op(c, async () => { const w = this.cancelRestart(c); await this.persist(c); return w; });
    if (wasRestarting) { this.notify(c.Id, ["not-running"], c.State.ExitCode); this.events.publish("container", "stop", c.Id, this.attrs(c)); return; }
    if (!c.State.Running) throw new NotModifiedError();
    const signal = opts.signal || c.Config.StopSignal || "SIGTERM";
    const timeout = opts.timeout ?? c.Config.StopTimeout ?? 10;
    // As dockerd: a kill event per signal sent (its number), then die (onExit), then stop.
    let sig: number | string = signal;
    try { sig = parseSignal(signal); } catch { /* the runtime refuses it below */ }
    // As dockerd's containerStop: a stop signal that could not be sent (a runtime past its deadline)
    // leaves the container 2 s, then the force; every step has a deadline, so a stuck runtime holds
    // up this call only, and only for a bounded time.
    let sendError: unknown;
    const sent = await this.runtime.kill(c.Id, sig).then(() => true, (e) => { sendError = e; return false; });
    if (sent) this.events.publish("container", "kill", c.Id, this.attrs(c, { signal: String(sig) }));
    const wait = sent ? (timeout < 0 ? -1 : timeout * 1000) : 2000;
    if (!(await this.waitStopped(c, wait))) {
      if (!sent && timeout < 0) throw new SystemError(`cannot stop container: ${ref}: ${errorMessage(sendError)}`);
      try { await this.forceKill(c); } catch (e) {
        // A kill error, but the container may still exit: 2 s more, as dockerd gives it.
        if (!(await this.waitStopped(c, 2000))) throw new SystemError(`cannot stop container: ${ref}: ${errorMessage(e)}`);
      }
    }
    this.events.publish("container", "stop", c.Id, this.attrs(c));
  }

  /**
   * dockerd's Kill: SIGKILL through the runtime and a wait for the exit (the runtime deadline, 10 s
   * by default, dockerd's); past it, or when the runtime did not answer, SIGKILL straight to the
   * container's process, and 2 s more for conmon to report the exit. A process that does not die
   * (D state) or a conmon that never reports fails with dockerd's words; it never waits forever.
   */
  private async forceKill(c: ContainerRecord, opts: { alwaysEvent?: boolean } = {}): Promise<void> {
    const viaRuntime = await this.runtime.kill(c.Id, "SIGKILL", true).then(() => true, (e) => { trace(`kill ${c.Id.slice(0, 12)}: ${errorMessage(e)}`); return false; });
    let told = false;
    const tell = () => { if (!told) { told = true; this.events.publish("container", "kill", c.Id, this.attrs(c, { signal: "9" })); } };
    if (viaRuntime || opts.alwaysEvent) tell();
    if (viaRuntime && (await this.waitStopped(c, runtimeTimeout()))) return;
    const pid = c.State.Pid;
    if (!c.State.Running) { await this.waitStopped(c, 2000); return; }
    if (pid > 1 && pid !== process.pid) {
      try { process.kill(pid, "SIGKILL"); } catch (e) {
        // No such process: it is gone, its exit is on the way (dockerd's errNoSuchProcess is a success).
        if ((e as NodeJS.ErrnoException).code === "ESRCH") { await this.waitStopped(c, 2000); return; }
        throw new SystemError(errorMessage(e));
      }
      tell();
    }
    if (!(await this.waitStopped(c, 2000))) throw new SystemError("tried to kill container, but did not receive an exit event");
  }

  async kill(ref: string, signal = "SIGKILL"): Promise<void> {
    // As Docker: an unknown signal is refused before the container is looked up; the runtime gets its number.
    const sig = parseSignal(signal);
    const c = this.get(ref);
    if (c.State.Status === "restarting") {
      // As dockerd's kill: a container waiting out its restart back-off has no process to signal; the kill
      // stops it as a user's stop does (no restart, Exited with its last exit code).
      c.Berth.ManualStop = true;
      const was = await this.op(c, async () => { const w = this.cancelRestart(c); await this.persist(c); return w; });
      if (was) {
        this.notify(c.Id, ["not-running"], c.State.ExitCode);
        this.events.publish("container", "kill", c.Id, this.attrs(c, { signal: String(sig) }));
        return;
      }
    }
    if (!c.State.Running) throw new ConflictError(`Cannot kill container: ${ref}: Container ${c.Id} is not running`);
    // As dockerd's kill: any signal marks the container stopped by the user, so its restart policy does not
    // bring it back when it exits (even after a signal it survives). A process that is already gone (the
    // container is exiting) is no error; its exit follows.
    c.Berth.ManualStop = true;
    if (sig === 9) {
      // As dockerd's Kill: SIGKILL returns once the exit is recorded (so `kill && rm` works); a runtime
      // past its deadline, and the process gets it straight.
      await this.op(c, () => this.persist(c));
      try { await this.forceKill(c, { alwaysEvent: true }); } catch (e) { throw new SystemError(`Cannot kill container ${c.Id}: ${errorMessage(e)}`); }
      return;
    }
    await this.op(c, async () => {
      await this.persist(c);
      await this.runtime.kill(c.Id, sig).catch((e: unknown) => {
        if (/does not exist|not running|process already finished|no such process/i.test(errorMessage(e))) return;
        throw e;
      });
    });
    this.events.publish("container", "kill", c.Id, this.attrs(c, { signal: String(sig) }));
  }

  async restart(ref: string, timeout?: number): Promise<void> {
    const c = this.get(ref);
    if (c.State.Running) await this.stop(c.Id, { timeout }).catch((e) => { if (!(e instanceof NotModifiedError)) throw e; });
    await this.start(c.Id);
    this.events.publish("container", "restart", c.Id, this.attrs(c));
  }

  async pause(ref: string): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Running) throw new ConflictError(`Container ${c.Id} is not running`);
    if (c.State.Paused) throw new ConflictError(`Container ${c.Id} is already paused`);
    await this.op(c, async () => { await this.runtime.pause(c.Id); c.State.Paused = true; c.State.Status = "paused"; await this.persist(c); });
    this.events.publish("container", "pause", c.Id, this.attrs(c));
  }

  async unpause(ref: string): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Paused) throw new ConflictError(`Container ${c.Id} is not paused`);
    await this.op(c, async () => { await this.runtime.resume(c.Id); c.State.Paused = false; c.State.Status = "running"; await this.persist(c); });
    this.events.publish("container", "unpause", c.Id, this.attrs(c));
  }

  // ---------------------------------------------------------------- update

  /**
   * `POST /containers/{id}/update`: resources and restart policy, live. As Docker, a zero (or "")
   * field is "unchanged"; a running container's cgroup changes at once (runc update), and the
   * record (so inspect, and the next start) carries the new values.
   */
  async update(ref: string, body: UpdateBody): Promise<{ Warnings: string[] }> {
    const c = this.get(ref);
    const rp = body.RestartPolicy;
    if (rp && rp.Name !== undefined && !["", "no", "always", "unless-stopped", "on-failure"].includes(rp.Name)) throw new BadParameterError(`invalid restart policy '${rp.Name}'`);
    if (rp?.Name && rp.Name !== "on-failure" && rp.MaximumRetryCount) throw new BadParameterError(`maximum retry count cannot be used with restart policy '${rp.Name}'`);
    if (rp?.MaximumRetryCount !== undefined && rp.MaximumRetryCount < 0) throw new BadParameterError("maximum retry count cannot be negative");
    if (body.Memory && body.Memory > 0 && body.Memory < 6 * 1024 * 1024) throw new BadParameterError("Minimum memory limit allowed is 6MB");
    checkCpusets(body.CpusetCpus, body.CpusetMems);
    return this.op(c, async () => {
      const hc = c.HostConfig;
      const fail = (msg: string) => new ConflictError(`Cannot update container ${c.Id}: ${msg}`);
      const num = (k: string): number => (typeof hc[k] === "number" ? (hc[k] as number) : 0);
      if (rp?.Name && rp.Name !== "no" && hc.AutoRemove) throw fail("Restart policy cannot be updated because AutoRemove is enabled for the container");
      const memory = body.Memory || num("Memory"), swap = body.MemorySwap || num("MemorySwap");
      if (body.Memory && !body.MemorySwap && num("MemorySwap") > 0 && body.Memory > num("MemorySwap")) {
        throw fail("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time");
      }
      if (swap > 0 && memory > 0 && swap < memory) throw new BadParameterError("Minimum memoryswap limit should be larger than memory limit, see usage");
      if (body.MemorySwap && body.MemorySwap > 0 && memory <= 0) throw new BadParameterError("You should always set the Memory limit when using Memoryswap limit, see usage");
      if (body.NanoCpus) {
        if (num("CpuPeriod") && !body.CpuPeriod) throw fail("Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
        if (num("CpuQuota") && !body.CpuQuota) throw fail("Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
      }
      if (body.CpuPeriod && num("NanoCpus") && !body.NanoCpus) throw fail("Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
      if (body.CpuQuota && num("NanoCpus") && !body.NanoCpus) throw fail("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
      const warnings: string[] = [];
      if (body.KernelMemory) warnings.push("Specifying a kernel memory limit is deprecated and will be removed in a future release.");
      const changed: Record<string, number | string> = {};
      for (const k of ["CpuShares", "Memory", "MemoryReservation", "MemorySwap", "KernelMemory", "CpuPeriod", "CpuQuota", "NanoCpus", "CpuRealtimePeriod", "CpuRealtimeRuntime", "BlkioWeight"] as const) {
        const v = body[k];
        if (typeof v === "number" && v !== 0) changed[k] = v;
      }
      for (const k of ["CpusetCpus", "CpusetMems"] as const) if (body[k]) changed[k] = body[k]!;
      if (changed.BlkioWeight !== undefined && !blkioWeightSupported()) {
        warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.");
        delete changed.BlkioWeight;
      }
      const pids = body.PidsLimit;
      const next: HostConfig = { ...hc, ...changed };
      if (pids !== undefined && pids !== null) next.PidsLimit = pids;
      if (c.State.Running) {
        const r = resourcesOf(next);
        const want: SpecResourcesInput = {};
        if (changed.Memory !== undefined || changed.MemorySwap !== undefined) {
          want.memory = r.memory; want.memorySwap = r.memorySwap ?? (r.memory ? r.memory * 2 : undefined);
        }
        if (changed.MemoryReservation !== undefined) want.memoryReservation = r.memoryReservation;
        if (changed.CpuShares !== undefined) want.cpuShares = r.cpuShares;
        if (changed.NanoCpus !== undefined) want.nanoCpus = r.nanoCpus;
        if (changed.CpuPeriod !== undefined || changed.CpuQuota !== undefined) { want.cpuPeriod = r.cpuPeriod; want.cpuQuota = r.cpuQuota; }
        if (changed.CpusetCpus !== undefined) want.cpusetCpus = r.cpusetCpus;
        if (changed.CpusetMems !== undefined) want.cpusetMems = r.cpusetMems;
        if (changed.BlkioWeight !== undefined) want.blkioWeight = r.blkioWeight;
        const res = specResources(want);
        if (pids !== undefined && pids !== null) res.pids = { limit: pids > 0 ? pids : -1 };
        if (Object.keys(res).length) await this.runtime.update(c.Id, res).catch((e) => { throw fail(errorMessage(e)); });
      }
      Object.assign(hc, next);
      // As Docker: an empty policy name (the docker CLI sends one when --restart is not given) changes nothing.
      if (rp?.Name) hc.RestartPolicy = { Name: rp.Name as HostConfig["RestartPolicy"]["Name"], MaximumRetryCount: rp.MaximumRetryCount ?? 0 };
      await this.persist(c);
      this.events.publish("container", "update", c.Id, this.attrs(c));
      return { Warnings: warnings };
    });
  }

  // ---------------------------------------------------------------- remove / rename

  async remove(ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const c = this.get(ref);
    if (c.State.Status === "removing") throw new ConflictError(`removal of container ${c.Id.slice(0, 12)} is already in progress`);
    if (c.State.Status === "restarting" && !opts.force) {
      throw new ConflictError(`cannot remove container "${c.Name}": container is restarting: stop the container before removing or force remove`);
    }
    c.Berth.ManualStop = c.Berth.ManualStop || !!opts.force;
    this.cancelRestart(c);
    if (c.State.Running) {
      if (!opts.force) {
        throw new ConflictError(`cannot remove container "${c.Name}": container is running: stop the container before removing or force remove`);
      }
      c.Berth.ManualStop = true;
      try { await this.forceKill(c); } catch (e) { throw new SystemError(`Could not kill running container ${c.Id}, cannot remove - ${errorMessage(e)}`); }
    }
    let mine = false;
    await this.op(c, async () => {
      if (!this.byId.has(c.Id)) return; // another removal (say --rm's) got there first
      mine = true;
      // Once "removing" is on disk the removal completes even across a crash (load() finishes it),
      // so the container is gone for everyone now and its files go after.
      c.State.Status = "removing";
      // An --rm container that has exited needs no marker: load() removes such records as dockerd's restore does.
      if (!(c.HostConfig.AutoRemove && !c.State.Running)) await this.persist(c);
      this.byId.delete(c.Id);
      if (this.names.get(c.Name.slice(1)) === c.Id) this.names.delete(c.Name.slice(1));
    });
    if (!mine) return;
    this.execs.forgetContainer(c.Id);
    this.events.publish("container", "destroy", c.Id, this.attrs(c));
    trace("removed");
    this.notify(c.Id, ["not-running", "next-exit", "removed"], c.State.ExitCode);
    await this.locks.run(c.Id, () => this.purge(c));
    if (opts.volumes || c.HostConfig.AutoRemove) await this.dropAnonymousVolumes(c);
  }

  /** Names of volumes mounted by any container other than `except`. */
  volumesInUse(except?: string, runningOnly = false): Map<string, string[]> {
    const used = new Map<string, string[]>();
    for (const c of this.byId.values()) {
      if (c.Id === except || (runningOnly && !c.State.Running)) continue;
      for (const m of c.Mounts as MountPoint[]) if (m.Type === "volume" && m.Name) used.set(m.Name, [...(used.get(m.Name) ?? []), c.Id]);
    }
    return used;
  }

  private async dropAnonymousVolumes(c: ContainerRecord): Promise<void> {
    const used = this.volumesInUse(c.Id);
    for (const m of c.Mounts as MountPoint[]) {
      if (m.Type !== "volume" || !m.Name || used.has(m.Name)) continue;
      const v = this.store.volumes.get(m.Name);
      if (v && ANON_LABEL in v.Labels) await this.store.volumes.remove(m.Name).catch(() => {});
    }
  }

  private async purge(c: ContainerRecord): Promise<void> {
    const d = this.dir(c.Id);
    await this.logMgr.finish(c.Id).catch(() => {});
    // A container that exited cleanly was already torn down by onExit; others may have left runtime state.
    const clean = c.State.FinishedAt !== ZERO_TIME && !c.State.Running && c.Berth.ConmonPid === 0;
    // ...unless that teardown's runtime call was cut short by its deadline: its state is still there. A teardown
    // still to run (an --rm container is removed before onExit lets its runtime cleanup go) does it itself.
    if (!this.cleanups.has(c.Id) && (!clean || (await this.runtime.known()).includes(c.Id))) {
      await this.runtime.delete(c.Id, true).catch(() => {});
      await removeCgroup(`/berth/${c.Id}`).catch(() => {});
    }
    await this.store.snapshots.unmount(join(d, "rootfs")).catch(() => {}); // no spawn when not mounted
    await this.unmountShm(c).catch(() => {});
    await removeNetns(this.netnsFile(c.Id)).catch(() => {});
    await fsp.rm(d, { recursive: true, force: true });
    // conmon's link to the attach socket (socketDir/<id> → bundle)
    await fsp.rm(this.rtPaths(c.Id).socketDir + "/" + c.Id, { force: true });
  }

  async rename(ref: string, newName: string): Promise<void> {
    const c = this.get(ref);
    if (!newName || !NAME_RE.test(newName)) throw new BadParameterError(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    newName = newName.replace(/^\//, "");
    if (c.Name === "/" + newName) throw new BadParameterError("Renaming a container with the same name as its current name");
    const holder = this.names.get(newName);
    if (holder) throw new ConflictError(`Conflict. The container name "/${newName}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`);
    const old = c.Name.slice(1);
    this.names.set(newName, c.Id);
    this.names.delete(old);
    c.Name = "/" + newName;
    await this.persist(c);
    this.events.publish("container", "rename", c.Id, this.attrs(c, { oldName: "/" + old }));
  }

  // ---------------------------------------------------------------- attach / logs / resize

  /**
   * Attaches to a container's stdio. For a created container the attach is
   * connected at start, before `runc start`, so no output is missed.
   */
  async attach(ref: string, opts: { stdin: boolean }): Promise<AttachStreams> {
    const c = this.get(ref);
    const stdin = opts.stdin && c.Config.OpenStdin;
    if (c.State.Running || c.State.Status === "created" || c.State.Status === "exited") this.events.publish("container", "attach", c.Id, this.attrs(c));
    if (c.State.Running) return this.runtime.attach(c.Id, this.rtPaths(c.Id), { stdin, tty: c.Config.Tty });
    if (c.State.Status !== "created" && c.State.Status !== "exited") throw new ConflictError(`You cannot attach to a stopped container, start it first`);
    return new Promise((resolve, reject) => {
      const list = this.pendingAttach.get(c.Id) ?? [];
      list.push({ stdin, resolve, reject });
      this.pendingAttach.set(c.Id, list);
    });
  }

  /** Cancels attaches still waiting for a start (the client went away). */
  cancelPendingAttach(id: string, reject: (e: Error) => void): void {
    const list = this.pendingAttach.get(id);
    if (!list) return;
    const rest = list.filter((p) => p.reject !== reject);
    if (rest.length) this.pendingAttach.set(id, rest); else this.pendingAttach.delete(id);
  }

  logs(ref: string, opts: { follow?: boolean; tail?: number; since?: number; until?: number; signal?: AbortSignal }): { tty: boolean; entries: AsyncIterable<LogEntry> } {
    const c = this.get(ref);
    if (c.HostConfig.LogConfig?.Type === "none") throw new BerthError("configured logging driver does not support reading", 501);
    let ls: LogSettings;
    // A container whose options never let it start has nothing logged; read where json-file would be.
    try { ls = this.logSettings(c); } catch { ls = settingsFor({ Type: "json-file", Config: {} }, this.dir(c.Id), c.Id); }
    const entries = this.logMgr.read(c.Id, ls, this.logPaths(c.Id), {
      follow: !!opts.follow && (c.State.Running || c.State.Status === "created"), tail: opts.tail ?? -1,
      since: opts.since, until: opts.until, signal: opts.signal,
      stopWhen: () => !c.State.Running && c.State.Status !== "created",
    });
    return { tty: c.Config.Tty, entries };
  }

  async resize(ref: string, h: number, w: number): Promise<void> {
    const c = this.get(ref);
    if (!c.State.Running) throw new ConflictError(`Container ${c.Id} is not running`);
    if (!Number.isInteger(h) || !Number.isInteger(w) || h < 0 || w < 0) throw new BadParameterError("invalid height or width");
    if (c.Config.Tty) await this.runtime.resize(c.Id, this.rtPaths(c.Id), h, w);
    this.events.publish("container", "resize", c.Id, this.attrs(c, { height: String(h), width: String(w) }));
  }

  async top(ref: string, psArgs = "-ef"): Promise<{ Titles: string[]; Processes: string[][] }> {
    const c = this.get(ref);
    if (!c.State.Running) throw new ConflictError(`Container ${c.Id} is not running`);
    const pids = await this.runtime.pids(c.Id);
    const { runOk } = await import("../lib/proc.js");
    const out = await runOk("ps", psArgs.split(/\s+/).filter(Boolean));
    const lines = out.trimEnd().split("\n");
    const titles = lines[0].trim().split(/\s+/);
    const pidCol = titles.indexOf("PID");
    const procs: string[][] = [];
    for (const line of lines.slice(1)) {
      const f = line.trim().split(/\s+/);
      const row = [...f.slice(0, titles.length - 1), f.slice(titles.length - 1).join(" ")];
      if (pidCol >= 0 && pids.includes(Number(row[pidCol]))) procs.push(row);
    }
    this.events.publish("container", "top", c.Id, this.attrs(c));
    return { Titles: titles, Processes: procs };
  }

  /** One stats sample in Docker's shape (precpu filled by the caller from the previous sample). */
  stats(ref: string): Record<string, unknown> { return containerStats(this.get(ref)); }

  /**
   * `export`: the container's filesystem as a tar stream (mounted for the occasion when stopped, held
   * as `cp` holds it). GNU tar never follows a symlink of the container's (no -h) and walks with
   * openat/O_NOFOLLOW; --one-file-system keeps anything mounted under the root out (Docker's export
   * has no volume contents either).
   */
  async export(ref: string): Promise<NodeJS.ReadableStream> {
    const c = this.get(ref);
    const { holdRootfs } = await import("./archive.js");
    const { rootfs, release } = await holdRootfs(this.store, c, this.dir(c.Id));
    const { spawn } = await import("node:child_process");
    // As dockerd's: entries named without a "./" prefix, in name order (the top-level names go in on stdin, NUL-separated, taken literally).
    const names = (await fsp.readdir(rootfs)).sort();
    const child = spawn("tar", ["--numeric-owner", "--xattrs", "--one-file-system", "--sort=name", "-C", rootfs, "-cf", "-", "--null", "--verbatim-files-from", "-T", "-"], { stdio: ["pipe", "pipe", "ignore"] });
    child.stdin.on("error", () => {});
    child.stdin.end(names.map((n) => n + "\0").join(""));
    child.on("close", () => { void release(); });
    child.on("error", () => { void release(); });
    this.events.publish("container", "export", c.Id, this.attrs(c));
    return child.stdout;
  }

  // ---------------------------------------------------------------- exec

  execCreate(ref: string, body: ExecCreateBody): { Id: string } { return this.execs.create(ref, body); }

  execInspect(id: string): ExecRecord & { Pid: number } { return this.execs.inspect(id); }

  /** Starts an exec; returns its attach streams (null when detached) and a promise of its exit code. */
  execStart(id: string, opts: { detach: boolean; tty?: boolean }): Promise<ExecStarted> { return this.execs.start(id, opts); }

  execResize(id: string, h: number, w: number): Promise<void> { return this.execs.resize(id, h, w); }

  // ---------------------------------------------------------------- listing

  /** `POST /containers/prune`: stopped containers, by label, label! and until (Docker's accepted keys). */
  async prune(filters: Filters = {}): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const f = checkFilters(filters, ["label", "label!", "until"]);
    const until = untilLimit(f);
    const deleted: string[] = [];
    for (const ct of this.all()) {
      if (ct.State.Running || ct.State.Status === "removing") continue;
      if (until !== undefined && Date.parse(ct.Created) >= until) continue;
      if (!pruneLabelsMatch(ct.Config.Labels, f)) continue;
      await this.remove(ct.Id).then(() => deleted.push(ct.Id), () => {});
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: 0 };
  }

  /** `docker ps` rows (Docker's ContainerSummary). */
  list(opts: ListOptions): Record<string, unknown>[] { return listContainers(this.all(), opts, (ref) => this.find(ref)); }
}

/** Docker's restartmanager.ShouldRestart: always; unless-stopped unless the user stopped it; on-failure on a non-zero exit within the retry count. */
function shouldRestart(c: ContainerRecord, exitCode: number, manuallyStopped: boolean): boolean {
  const rp = c.HostConfig.RestartPolicy;
  switch (rp.Name) {
    case "always": return true;
    case "unless-stopped": return !manuallyStopped;
    case "on-failure": return exitCode !== 0 && (!rp.MaximumRetryCount || c.RestartCount < rp.MaximumRetryCount);
    default: return false;
  }
}
