/**
 * The engine: one object that composes the store, the runtime and the event
 * bus into the services the API serves. Nothing above this layer touches the
 * store or the runtime directly.
 */
import { hostname, cpus, totalmem, release } from "node:os";
import { Store } from "../store/index.js";
import { createRuntime, type RuntimeDriver } from "../runtime/driver.js";
import { detectCgroupMode } from "../runtime/cgroups.js";
import { ensureDir } from "../lib/fsutil.js";
import { EventBus } from "./events.js";
import { ContainerService, type CreateBody } from "./containers.js";
import { ImageService } from "./images.js";
import { VolumeService } from "./volumes.js";
import { NetworkService } from "./networks.js";
import { CommitService } from "./commit.js";
import { BuildService } from "./build.js";
import { NotFoundError } from "../lib/errors.js";
import { join } from "node:path";

export interface EngineOptions {
  dataRoot: string; execRoot: string; runtime?: string;
  /** Upstream resolvers of the embedded DNS (default: the host's resolv.conf). */
  dns?: string[];
  /** Registries reached over plain HTTP besides loopback ones: "host[:port]" or CIDR. */
  insecureRegistries?: string[];
  /** Remove this daemon's bridges and firewall table when it stops (tests; Docker keeps them). */
  teardownNetworks?: boolean;
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
    const runtime = createRuntime(opts.runtime ?? "runc", { runtimeRoot: join(opts.execRoot, "runc") });
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
  async createContainer(body: CreateBody, name?: string): Promise<{ Id: string; Warnings: string[] }> {
    if (!body.Image) throw new NotFoundError("No such image: ");
    return this.store.gc.lease(async () => {
      const image = this.images.resolve(body.Image!);
      const cfg = await this.store.images.config(image);
      return this.containers.create(body, name, image, cfg);
    });
  }

  info(): Record<string, unknown> {
    const all = this.containers.all();
    const running = all.filter((c) => c.State.Running && !c.State.Paused).length;
    const paused = all.filter((c) => c.State.Paused).length;
    const mode = detectCgroupMode();
    return {
      ID: "berth", Containers: all.length, ContainersRunning: running, ContainersPaused: paused, ContainersStopped: all.length - running - paused,
      Images: this.store.images.count, Driver: "overlay2", DriverStatus: [["Backing Filesystem", "extfs"]],
      Plugins: { Volume: ["local"], Network: ["bridge", "host", "null"], Authorization: null, Log: ["k8s-file"] },
      MemoryLimit: true, SwapLimit: false, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
      IPv4Forwarding: true, Debug: false, NFd: 0, OomKillDisable: false, NGoroutines: 0, SystemTime: new Date().toISOString(),
      LoggingDriver: "k8s-file", CgroupDriver: "cgroupfs", CgroupVersion: mode === "v2" ? "2" : "1", NEventsListener: 0,
      KernelVersion: release(),
      OperatingSystem: "Debian GNU/Linux", OSVersion: "12", OSType: "linux", Architecture: process.arch === "x64" ? "x86_64" : process.arch,
      IndexServerAddress: "https://index.docker.io/v1/", RegistryConfig: {
        IndexConfigs: Object.fromEntries((this.opts.insecureRegistries ?? []).filter((r) => !r.includes("/")).map((r) => [r, { Name: r, Mirrors: [], Secure: false, Official: false }])),
        InsecureRegistryCIDRs: ["127.0.0.0/8", ...(this.opts.insecureRegistries ?? []).filter((r) => r.includes("/"))], Mirrors: [],
      },
      NCPU: cpus().length, MemTotal: totalmem(),
      DockerRootDir: this.opts.dataRoot, Name: hostname(), Labels: [], ExperimentalBuild: false, ServerVersion: ENGINE_VERSION,
      Runtimes: { runc: { path: "runc" } }, DefaultRuntime: this.runtime.name, Swarm: { LocalNodeState: "inactive" },
      LiveRestoreEnabled: true, Isolation: "", InitBinary: "catatonit", SecurityOptions: ["name=cgroupns"], Warnings: [],
    };
  }
}
