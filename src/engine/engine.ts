/**
 * The engine: one object that composes the store, the runtime and the event
 * bus into the services the API serves. Nothing above this layer touches the
 * store or the runtime directly.
 */
import { ManifestService } from "./manifests.js";
import { hostname, cpus, totalmem, release, machine } from "node:os";
import { existsSync, readFileSync, readdirSync, renameSync, statfsSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Store } from "../store/index.js";
import { createRuntime, runtimeNames, type RuntimeDriver } from "../runtime/driver.js";
import { detectCgroupMode } from "../runtime/cgroups.js";
import { securityOptions } from "../runtime/seccomp.js";
import { rootPair, usernsConflicts, type IdentityMapping } from "../runtime/userns.js";
import { ensureDir } from "../lib/fsutil.js";
import { EventBus } from "./events.js";
import { ContainerService, type CreateBody } from "./containers.js";
import { ImageService } from "./images.js";
import { VolumeService } from "./volumes.js";
import { NetworkService } from "./networks.js";
import { CommitService } from "./commit.js";
import { BuildService } from "./build.js";
import { BadParameterError, BerthError, NotFoundError } from "../lib/errors.js";
import { RegistryClient, type Credentials } from "../distribution/registry.js";
import { parseReference } from "../oci/reference.js";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { chainIdOf } from "../store/snapshots.js";
import { checkCreateBody } from "./create-checks.js";

export interface EngineOptions {
  dataRoot: string; execRoot: string; runtime?: string;
  /** Upstream resolvers of the embedded DNS (default: the host's resolv.conf). */
  dns?: string[];
  /** Registries reached over plain HTTP besides loopback ones: "host[:port]" or CIDR. */
  insecureRegistries?: string[];
  /** Remove this daemon's bridges and firewall table when it stops (tests; Docker keeps them). */
  teardownNetworks?: boolean;
  /** daemon.json "init": an init process for containers that do not say (HostConfig.Init null). */
  defaultInit?: boolean;
  /** --userns-remap: the id maps of containers' user namespaces (dataRoot is then already <root>/<uid>.<gid>). */
  userns?: IdentityMapping;
}

export const ENGINE_VERSION = "0.1.0";

export class Engine {
  private constructor(
    readonly opts: EngineOptions,
    readonly store: Store,
    readonly runtime: RuntimeDriver,
    readonly events: EventBus,
    readonly containers: ContainerService,
    readonly images: ImageService,
    readonly volumes: VolumeService,
    readonly networks: NetworkService,
    readonly commits: CommitService,
    readonly builds: BuildService,
  ) {}

  static async open(opts: EngineOptions): Promise<Engine> {
    await ensureDir(opts.dataRoot, 0o711);
    await ensureDir(opts.execRoot, 0o711);
    const store = await Store.open(opts.dataRoot);
    if (opts.userns) {
      // Layers unpack shifted into the maps; volumes are made owned by the remapped root.
      store.snapshots.setIdMaps(opts.userns);
      store.volumes.rootOwner = rootPair(opts.userns);
    }
    const runtime = createRuntime(opts.runtime ?? "runc", { runtimeRoot: join(opts.execRoot, "runc"), relaySocket: join(opts.execRoot, "attach-relay.sock") });
    const events = new EventBus();
    const networks = new NetworkService(store, events, { dataRoot: opts.dataRoot, dns: opts.dns, teardown: opts.teardownNetworks });
    await networks.init();
    const containers = new ContainerService(store, runtime, events, opts, networks);
    const images = new ImageService(store, events, containers, opts.insecureRegistries ?? []);
    const volumes = new VolumeService(store, events, containers);
    await containers.load();
    const commits = new CommitService(store, containers, events, opts.dataRoot);
    const builds = new BuildService(store, containers, images, commits, opts.dataRoot);
    await builds.init();
    // What a crash left unreferenced (blobs of a pull cut short, a sweep cut short) goes, in the background.
    void images.collect();
    return new Engine(opts, store, runtime, events, containers, images, volumes, networks, commits, builds);
  }

  private manifestService: ManifestService | undefined;
  /** Local manifest lists and indexes (`berth manifest`, multi-platform images). */
  get manifests(): ManifestService { return (this.manifestService ??= new ManifestService(this.store, this.images, this.opts.insecureRegistries ?? [])); }

  async close(): Promise<void> {
    await this.containers.close();
    await this.networks.close();
    await this.store.close();
  }

  async connectNetwork(net: string, container: string, cfg: Record<string, unknown> = {}): Promise<void> {
    await this.containers.withContainer(container, (c) => this.networks.connect(net, c, cfg));
  }

  async disconnectNetwork(net: string, container: string, force = false): Promise<void> {
    const c = this.containers.find(container);
    if (!c) { if (force) return; throw new NotFoundError(`No such container: ${container}`); }
    await this.containers.withContainer(c.Id, (rec) => this.networks.disconnect(net, rec));
  }

  /** Creates a container from an API create body: resolves the image (404 "No such image" when missing). */
  async createContainer(body: CreateBody, name?: string, platform?: string): Promise<{ Id: string; Warnings: string[] }> {
    checkCreateBody(body as Parameters<typeof checkCreateBody>[0]);
    if (this.opts.userns) usernsConflicts((body.HostConfig ?? {}) as Parameters<typeof usernsConflicts>[0]);
    if (!body.Image) throw new NotFoundError("No such image: ");
    return this.store.gc.lease(async () => {
      const image = this.images.resolve(body.Image!, platform);
      const cfg = await this.store.images.config(image);
      return this.containers.create(body, name, image, cfg);
    });
  }

  /**
   * `GET /distribution/{name}/json`: what the registry says about a name,
   * without pulling it (moby's distribution router): the manifest's
   * descriptor (media type, digest, size) and the platforms it serves (an
   * index's entries, or a single manifest's config os/architecture).
   */
  async distributionInspect(name: string, creds?: Credentials): Promise<{ Descriptor: Record<string, unknown>; Platforms: Record<string, unknown>[] | null }> {
    if (/^(sha256:)?[a-f0-9]{64}$/.test(name)) throw new BerthError("no manifest found for full image ID", 500);
    const ref = parseReference(name);
    const client = new RegistryClient(ref, { insecure: this.opts.insecureRegistries ?? [], creds });
    const got = await client.manifest(ref.digest ?? ref.tag!);
    const digest = ref.digest ?? got.digest ?? `sha256:${createHash("sha256").update(got.bytes).digest("hex")}`;
    let parsed: { mediaType?: string; manifests?: { platform?: Record<string, unknown> }[]; config?: { digest: string } };
    try { parsed = JSON.parse(got.bytes.toString()) as typeof parsed; } catch { throw new BerthError(`the registry's manifest for ${name} is not JSON`, 500); }
    const mediaType = got.mediaType || parsed.mediaType || "";
    const platform = (p: Record<string, unknown> | undefined): Record<string, unknown> => {
      const out: Record<string, unknown> = { architecture: p?.architecture ?? "", os: p?.os ?? "" };
      if (p?.["os.version"]) out["os.version"] = p["os.version"];
      if (Array.isArray(p?.["os.features"]) && (p["os.features"] as unknown[]).length) out["os.features"] = p["os.features"];
      if (p?.variant) out.variant = p.variant;
      return out;
    };
    let platforms: Record<string, unknown>[] | null = null;
    if (Array.isArray(parsed.manifests)) {
      platforms = parsed.manifests.map((m) => platform(m.platform));
    } else if (parsed.config?.digest) {
      try {
        const body = await client.blob(parsed.config.digest);
        const chunks: Buffer[] = [];
        for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
        const cfg = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
        if (cfg.os || cfg.architecture) platforms = [platform(cfg)];
      } catch { /* as dockerd: no platform when the config cannot be read */ }
    }
    return { Descriptor: { mediaType, digest, size: got.bytes.length }, Platforms: platforms };
  }

  /**
   * `GET /images/search`: the index's v1 search API (Docker Hub's
   * index.docker.io unless the term names a registry), with dockerd's `limit`
   * (1..100, default 25) and `filters` (is-official, is-automated, stars).
   * Offline, the error is dockerd's: `Get "<url>": <cause>` (500).
   */
  async searchImages(term: string, opts: { limit?: number; filters?: Record<string, string[]>; creds?: Credentials; signal?: AbortSignal } = {}): Promise<{ name: string; description: string; star_count: number; is_official: boolean; is_automated: boolean }[]> {
    const f = opts.filters ?? {};
    for (const k of Object.keys(f)) if (!["is-automated", "is-official", "stars"].includes(k)) throw new BadParameterError(`Invalid filter '${k}'`);
    const boolOf = (k: string): boolean | undefined => {
      const v = f[k];
      if (!v?.length) return undefined;
      if (v.length === 1 && (v[0] === "true" || v[0] === "false")) return v[0] === "true";
      throw new BadParameterError(`Invalid filter '${k}=[${v.join(" ")}]'`);
    };
    const official = boolOf("is-official");
    const automated = boolOf("is-automated");
    let stars = 0;
    for (const v of f.stars ?? []) {
      if (!/^-?\d+$/.test(v)) throw new BadParameterError(`Invalid filter 'stars=${v}'`);
      stars = Math.max(stars, Number(v));
    }
    const limit = opts.limit ?? 25;
    if (limit < 1 || limit > 100) throw new BadParameterError(`Limit ${limit} is outside the range of [1, 100]`);
    // "host/term": that registry's index; otherwise Docker Hub's.
    const slash = term.indexOf("/");
    const first = slash > 0 ? term.slice(0, slash) : "";
    const isHost = first.includes(".") || first.includes(":") || first === "localhost";
    const host = isHost ? first : "index.docker.io";
    const q = isHost ? term.slice(slash + 1) : term;
    const insecure = (this.opts.insecureRegistries ?? []).includes(host) || /^(localhost|127\.[0-9.]+)(:\d+)?$/.test(host);
    const url = `${insecure ? "http" : "https"}://${host}/v1/search?q=${encodeURIComponent(q)}&n=${limit}`;
    let res: Response;
    try {
      const headers: Record<string, string> = {};
      if (opts.creds?.username) headers.Authorization = `Basic ${Buffer.from(`${opts.creds.username}:${opts.creds.password}`).toString("base64")}`;
      res = await fetch(url, { headers, signal: opts.signal ?? AbortSignal.timeout(30_000) });
    } catch (e) {
      throw new BerthError(`Get "${url}": ${goDialError(e)}`, 500);
    }
    if (!res.ok) throw new BerthError(`Unexpected status code ${res.status}`, 500);
    const body = (await res.json()) as { results?: Record<string, unknown>[] };
    const out = (body.results ?? []).map((r) => ({
      star_count: Number(r.star_count ?? 0), is_official: Boolean(r.is_official), name: String(r.name ?? ""), is_automated: Boolean(r.is_automated), description: String(r.description ?? ""),
    })).filter((r) => (official === undefined || r.is_official === official) && (automated === undefined || r.is_automated === automated) && r.star_count >= stars);
    return out.slice(0, limit);
  }

  /**
   * An image's layer directories as Docker's overlay2 GraphDriver.Data names
   * them: the top layer is UpperDir (its merged and work dirs beside it), the
   * layers under it LowerDir (absent for a one-layer image, as Docker's).
   */
  async imageGraphDriverData(ref: string): Promise<Record<string, string> | null> {
    const rec = this.images.resolve(ref);
    if (!rec.diffIds?.length) return null;
    const dirs = await this.store.snapshots.lowerDirs(chainIdOf(rec.diffIds));
    if (!dirs.length) return null;
    const top = dirs[0];
    const base = dirname(top);
    const out: Record<string, string> = {};
    if (dirs.length > 1) out.LowerDir = dirs.slice(1).join(":");
    out.MergedDir = join(base, "merged");
    out.UpperDir = top;
    out.WorkDir = join(base, "work");
    return out;
  }

  /** A stable engine ID (Docker's `ID`, a UUID since 23.0), made once per data root. */
  private engineId(): string {
    const f = join(this.opts.dataRoot, "engine-id");
    try { const v = readFileSync(f, "utf8").trim(); if (v) return v; } catch { /* first time */ }
    const id = randomUUID();
    try { writeFileSync(`${f}.tmp`, id + "\n", { mode: 0o644 }); renameSync(`${f}.tmp`, f); } catch { /* read-only root: a fresh one each time */ }
    return id;
  }

  /**
   * `GET /info`: every field of Docker's SystemInfo (API 1.47), with this
   * host's values where berth has them and Docker's defaults elsewhere.
   */
  info(): Record<string, unknown> {
    const all = this.containers.all();
    const running = all.filter((c) => c.State.Running && !c.State.Paused).length;
    const paused = all.filter((c) => c.State.Paused).length;
    const mode = detectCgroupMode();
    const h = hostFacts();
    const warnings: string[] = [];
    if (!h.swapLimit) warnings.push("WARNING: No swap limit support");
    if (!h.ipForward) warnings.push("WARNING: IPv4 forwarding is disabled");
    if (!h.bridgeNfIptables) warnings.push("WARNING: bridge-nf-call-iptables is disabled");
    if (!h.bridgeNfIp6tables) warnings.push("WARNING: bridge-nf-call-ip6tables is disabled");
    const insecure = this.opts.insecureRegistries ?? [];
    return {
      ID: this.engineId(), Containers: all.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: all.length - running - paused,
      Images: this.store.images.count, Driver: "overlay2",
      DriverStatus: [["Backing Filesystem", backingFs(this.opts.dataRoot)], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
      Plugins: { Volume: ["local"], Network: ["bridge", "host", "null"], Authorization: null, Log: ["json-file", "local", "none"] },
      MemoryLimit: true, SwapLimit: h.swapLimit, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
      IPv4Forwarding: h.ipForward, BridgeNfIptables: h.bridgeNfIptables, BridgeNfIp6tables: h.bridgeNfIp6tables, Debug: false,
      NFd: openFds(), OomKillDisable: mode !== "v2", NGoroutines: process.getActiveResourcesInfo().length, SystemTime: new Date().toISOString(),
      LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: mode === "v2" ? "2" : "1", NEventsListener: this.events.listeners,
      KernelVersion: release(), OperatingSystem: h.osName, OSVersion: h.osVersion, OSType: "linux", Architecture: machine(),
      IndexServerAddress: "https://index.docker.io/v1/",
      RegistryConfig: {
        AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [],
        InsecureRegistryCIDRs: ["127.0.0.0/8", ...insecure.filter((r) => r.includes("/"))],
        IndexConfigs: {
          "docker.io": { Name: "docker.io", Mirrors: [], Secure: true, Official: true },
          ...Object.fromEntries(insecure.filter((r) => !r.includes("/")).map((r) => [r, { Name: r, Mirrors: [], Secure: false, Official: false }])),
        },
        Mirrors: [],
      },
      NCPU: cpus().length, MemTotal: totalmem(), GenericResources: null,
      DockerRootDir: this.opts.dataRoot, HttpProxy: proxyEnv("HTTP_PROXY"), HttpsProxy: proxyEnv("HTTPS_PROXY"), NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? "",
      Name: hostname(), Labels: [], ExperimentalBuild: false, ServerVersion: ENGINE_VERSION,
      Runtimes: {
        ...Object.fromEntries(["runc", "crun"].filter((r) => r === this.runtime.name || existsSync(`/usr/bin/${r}`) || existsSync(`/usr/sbin/${r}`)).map((r) => [r, { path: r }])),
        // Those of --add-runtime / daemon.json "runtimes", with their paths (as dockerd lists them).
        ...Object.fromEntries(Object.entries(runtimeNames()).filter(([n]) => n !== "runc" && n !== "crun").map(([n, path]) => [n, { path }])),
      },
      DefaultRuntime: this.runtime.name,
      Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
      LiveRestoreEnabled: true, Isolation: "", InitBinary: "catatonit",
      ContainerdCommit: { ID: "", Expected: "" }, RuncCommit: runcCommit(), InitCommit: { ID: "", Expected: "" },
      SecurityOptions: securityOptions(mode, { userns: !!this.opts.userns }), CDISpecDirs: [],
      Warnings: warnings.length ? warnings : null,
    };
  }

}

/** A fetch failure in Go's net words, as dockerd prints them ("dial tcp: lookup h: no such host"). */
function goDialError(e: unknown): string {
  const c = (e as Error & { cause?: NodeJS.ErrnoException & { hostname?: string; address?: string; port?: number } }).cause;
  if (c?.code === "ENOTFOUND" || c?.code === "EAI_AGAIN") return `dial tcp: lookup ${c.hostname ?? ""}: no such host`;
  if (c?.code === "ECONNREFUSED") return `dial tcp ${c.address}:${c.port}: connect: connection refused`;
  if ((e as Error).name === "TimeoutError") return "net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)";
  return c?.message ?? (e as Error).message;
}

function readText(path: string): string | undefined { try { return readFileSync(path, "utf8"); } catch { return undefined; } }

let facts: { osName: string; osVersion: string; swapLimit: boolean; ipForward: boolean; bridgeNfIptables: boolean; bridgeNfIp6tables: boolean } | undefined;
/** What /info reports about the host, read once (os-release, swap accounting) and the sysctls each time. */
function hostFacts(): NonNullable<typeof facts> {
  if (!facts) {
    const rel = readText("/etc/os-release") ?? readText("/usr/lib/os-release") ?? "";
    const field = (k: string) => /^"?(.*?)"?$/.exec((new RegExp(`^${k}=(.*)$`, "m").exec(rel)?.[1] ?? "").trim())?.[1] ?? "";
    const swapLimit = existsSync("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || existsSync("/sys/fs/cgroup/memory.swap.max") || readdirSafe("/sys/fs/cgroup").some((d) => existsSync(`/sys/fs/cgroup/${d}/memory.swap.max`));
    facts = { osName: field("PRETTY_NAME") || "Linux", osVersion: field("VERSION_ID"), swapLimit, ipForward: true, bridgeNfIptables: true, bridgeNfIp6tables: true };
  }
  const sysctl = (p: string) => readText(p)?.trim() === "1";
  return { ...facts, ipForward: sysctl("/proc/sys/net/ipv4/ip_forward"), bridgeNfIptables: sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables"), bridgeNfIp6tables: sysctl("/proc/sys/net/bridge/bridge-nf-call-ip6tables") };
}

function readdirSafe(p: string): string[] { try { return readdirSync(p); } catch { return []; } }

function openFds(): number { return readdirSafe("/proc/self/fd").length; }

/** Docker's names for the data root's filesystem (graphdriver.FsNames). */
const FS_NAMES: Record<number, string> = { 0xef53: "extfs", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x01021994: "tmpfs", 0x794c7630: "overlayfs", 0x2fc12fc1: "zfs", 0x6969: "nfs", 0x5346414f: "afs", 0xf2f52010: "f2fs" };
function backingFs(root: string): string {
  try { const t = statfsSync(root).type; return FS_NAMES[t] ?? "<unknown>"; } catch { return "<unknown>"; }
}

/** A proxy URL from the daemon's environment, its password masked as Docker's (user:xxxxx@host). */
function proxyEnv(k: string): string {
  const v = process.env[k] ?? process.env[k.toLowerCase()] ?? "";
  try { const u = new URL(v); if (u.password) { u.password = "xxxxx"; return u.toString().replace(/\/$/, v.endsWith("/") ? "/" : ""); } } catch { /* not a URL: as given */ }
  return v;
}

let runc: { ID: string; Expected: string } | undefined;
/** `runc --version`'s commit line, asked once. */
function runcCommit(): { ID: string; Expected: string } {
  if (!runc) {
    const r = spawnSync("runc", ["--version"], { encoding: "utf8", timeout: 3000 });
    const id = /^commit:\s*(\S+)/m.exec(r.stdout ?? "")?.[1] ?? "";
    runc = { ID: id, Expected: id };
  }
  return runc;
}

/** `GET /version`'s runc component: its version and commit. */
let runcVer: { Version: string; GitCommit: string } | undefined;
export function runcVersion(): { Version: string; GitCommit: string } {
  if (!runcVer) {
    const r = spawnSync("runc", ["--version"], { encoding: "utf8", timeout: 3000 });
    runcVer = { Version: /^runc version\s+(\S+)/m.exec(r.stdout ?? "")?.[1] ?? "", GitCommit: runcCommit().ID };
  }
  return runcVer;
}
