/**
 * Runs a compose Project through the Docker Engine API (the api client only,
 * so it drives berthd or dockerd alike). Objects are found again by Docker
 * Compose's labels, so `docker compose` and `berth compose` see the same
 * project: networks `<project>_<name>`, volumes `<project>_<name>`,
 * containers `<project>-<service>-<n>` (numbered per service, label
 * com.docker.compose.container-number), one-off containers
 * `<project>-<service>-run-<hex>` (com.docker.compose.oneoff=True).
 *
 * Convergence is compose v2's: a container is recreated only when its
 * config hash (com.docker.compose.config-hash) or its image id
 * (com.docker.compose.image) changed, or with --force-recreate; replicas
 * beyond the wanted scale are removed, highest numbers first; containers of
 * services no longer in the file are orphans (a warning, removed only with
 * --remove-orphans).
 */
import { createHash } from "node:crypto";
import { relative, isAbsolute } from "node:path";
import { jsonLines, type ApiClient } from "../api/client.js";
import { dependencyOrder, ComposeError, type Project, type Service } from "./loader.js";
import { contextTar } from "../lib/build-context.js";
import { parseGoDuration } from "../lib/duration.js";
import { fileObjectBinds, removeRuntimeDir } from "./secrets.js";
import type { ContainerCreateResponse, ContainerInspectResponse, ContainerSummary, ContainerWaitResponse, ImageInspectResponse, Network, VolumeListResponse } from "../api/types.js";

export type { ContainerSummary };

export const L = {
  project: "com.docker.compose.project",
  service: "com.docker.compose.service",
  number: "com.docker.compose.container-number",
  oneoff: "com.docker.compose.oneoff",
  slug: "com.docker.compose.slug",
  configFiles: "com.docker.compose.project.config_files",
  workingDir: "com.docker.compose.project.working_dir",
  hash: "com.docker.compose.config-hash",
  image: "com.docker.compose.image",
  dependsOn: "com.docker.compose.depends_on",
  network: "com.docker.compose.network",
  volume: "com.docker.compose.volume",
  version: "com.docker.compose.version",
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

export interface Io { progress(s: string): void; out(s: string): void }

/** A container `up` made or found, in start order. */
export interface Started { service: string; id: string; name: string; tty: boolean; number: number }

export interface UpOptions {
  services?: string[]; build?: boolean; forceRecreate?: boolean; noRecreate?: boolean; noStart?: boolean;
  pull?: "always" | "missing" | "never"; noDeps?: boolean; removeOrphans?: boolean;
  /** --scale svc=N (over scale / deploy.replicas). */
  scale?: Record<string, number>;
  /** --wait: block until the containers run (and are healthy when they have a healthcheck); seconds, 0 = no limit. */
  wait?: boolean; waitTimeout?: number;
  /** -t: seconds to wait for a container to stop when it is recreated or scaled away. */
  timeout?: number;
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().filter((k) => (v as Obj)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stable((v as Obj)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/**
 * The hash docker compose keeps in com.docker.compose.config-hash: of the
 * service's resolved configuration less what does not change the container
 * (as compose v2's ServiceHash: build, pull_policy, scale, deploy.replicas,
 * depends_on, profiles and develop are left out; the image id is its own label).
 */
export function configHash(s: Service): string {
  const { build: _b, pull_policy: _pp, depends_on: _d, ...rest } = s as Service & Obj;
  const o: Obj = { ...rest };
  delete o.scale; delete o.profiles; delete o.develop;
  if (isObj(o.deploy)) { const { replicas: _r, ...dep } = o.deploy; o.deploy = dep; }
  return createHash("sha256").update(stable(o)).digest("hex");
}

/** stop_grace_period ("1m30s") in whole seconds, as StopTimeout takes it. */
function seconds(d: string | undefined): number | undefined {
  return d ? Math.round(parseGoDuration(d) / 1e9) : undefined;
}

/** A service's extra model fields (scale, deploy, develop...), read defensively: the loader may or may not have them. */
export function raw(s: Service): Obj { return s as unknown as Obj; }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Orchestrator {
  /** --scale overrides, by service. */
  scaleOverride: Record<string, number> = {};

  constructor(readonly api: ApiClient, readonly project: Project, readonly io: Io) {}

  imageName(s: Service): string { return s.image ?? `${this.project.name}-${s.name}`; }
  containerName(s: Service, n = 1): string { return s.container_name ?? `${this.project.name}-${s.name}-${n}`; }
  /** What logs and ps print: the container name less the project prefix (`web-1`). */
  shortName(containerName: string): string {
    const n = containerName.replace(/^\//, "");
    return n.startsWith(`${this.project.name}-`) ? n.slice(this.project.name.length + 1) : n;
  }
  /** compose v2's log prefix: `<service>-<n>` for a default name, the whole name when container_name set it. */
  logName(c: { Names: string[]; Labels: Record<string, string> }): string {
    const name = c.Names[0].replace(/^\//, "");
    const p = c.Labels[L.project] ?? this.project.name;
    if (name === `${p}-${c.Labels[L.service]}-${c.Labels[L.number]}` || c.Labels[L.oneoff] === "True" && name.startsWith(`${p}-`)) return name.slice(p.length + 1);
    return name;
  }

  /** How many containers a service runs: --scale, then `scale`, then deploy.replicas, else 1. */
  replicas(s: Service): number {
    const r = raw(s);
    const dep = isObj(r.deploy) ? r.deploy : undefined;
    const n = this.scaleOverride[s.name] ?? (typeof r.scale === "number" ? r.scale : undefined) ?? (typeof dep?.replicas === "number" ? dep.replicas : undefined) ?? 1;
    if (n > 1 && s.container_name) throw new ComposeError(`services.${s.name}: can't set container_name and ${s.name} as container name must be unique: invalid compose project`);
    return n;
  }

  /** The named services plus everything they depend on, in start order; all services when none are named. */
  selection(names: string[], noDeps = false): string[] {
    for (const n of names) if (!this.project.services[n]) throw new ComposeError(`no such service: ${n}`);
    const order = dependencyOrder(this.project.services);
    if (!names.length) return order;
    const want = new Set<string>();
    const add = (n: string) => {
      if (want.has(n)) return;
      want.add(n);
      if (!noDeps) for (const d of Object.keys(this.project.services[n].depends_on)) if (this.project.services[d]) add(d);
    };
    names.forEach(add);
    return order.filter((n) => want.has(n));
  }

  /** The project's containers (by label), optionally of some services only; one-off (`run`) containers only with oneoff. */
  async containers(o: { all?: boolean; services?: string[]; oneoff?: boolean } = {}): Promise<ContainerSummary[]> {
    const filters = { label: [`${L.project}=${this.project.name}`, ...(o.oneoff ? [] : [`${L.oneoff}=False`])] };
    const list = await this.api.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: !!o.all, filters: JSON.stringify(filters) } });
    const svc = o.services?.length ? new Set(o.services) : undefined;
    const num = (c: ContainerSummary) => Number(c.Labels[L.number] ?? 0);
    return list.filter((c) => !svc || svc.has(c.Labels[L.service]))
      .sort((a, b) => (a.Labels[L.service] ?? "").localeCompare(b.Labels[L.service] ?? "") || num(a) - num(b) || a.Names[0].localeCompare(b.Names[0]));
  }

  private images = new Map<string, ImageInspectResponse>();

  /** An image's inspect (cached for this command: `up` asks once per image), or undefined when there is none. */
  async imageInfo(name: string): Promise<ImageInspectResponse | undefined> {
    const hit = this.images.get(name);
    if (hit) return hit;
    try {
      const info = await this.api.json<ImageInspectResponse>("GET", `/images/${encodeURIComponent(name)}/json`);
      this.images.set(name, info);
      return info;
    } catch (e) { if (isNotFound(e)) return undefined; throw e; }
  }

  private async exists(path: string): Promise<boolean> {
    // (Structural, not instanceof: as a plugin this code has its own copy of ApiError, the client the berth CLI's.)
    try { await this.api.request("GET", path); return true; } catch (e) { if (isNotFound(e)) return false; throw e; }
  }

  async ensureNetworks(services: string[]): Promise<void> {
    const used = new Set(services.flatMap((n) => Object.keys(this.project.services[n].networks)));
    for (const key of [...used].sort()) {
      const n = this.project.networks[key];
      if (await this.exists(`/networks/${encodeURIComponent(n.name)}`)) continue;
      if (n.external) throw new ComposeError(`network ${n.name} declared as external, but could not be found`);
      await this.api.request("POST", "/networks/create", {
        body: { Name: n.name, Driver: n.driver, Internal: n.internal, CheckDuplicate: true, Attachable: true, Labels: { ...n.labels, [L.project]: this.project.name, [L.network]: key, [L.version]: "2" } },
      });
      this.io.progress(` Network ${n.name}  Created\n`);
    }
  }

  async ensureVolumes(services: string[]): Promise<void> {
    const used = new Set(services.flatMap((n) => this.project.services[n].volumes.filter((m) => m.type === "volume" && m.source).map((m) => m.source!)));
    for (const key of [...used].sort()) {
      const v = this.project.volumes[key];
      if (await this.exists(`/volumes/${encodeURIComponent(v.name)}`)) continue;
      if (v.external) throw new ComposeError(`external volume "${v.name}" not found`);
      await this.api.request("POST", "/volumes/create", { body: { Name: v.name, Driver: v.driver, Labels: { ...v.labels, [L.project]: this.project.name, [L.volume]: key, [L.version]: "2" } } });
      this.io.progress(` Volume "${v.name}"  Created\n`);
    }
  }

  async pull(name: string): Promise<void> {
    const at = name.lastIndexOf(":");
    const [repo, tag] = !name.includes("@") && at > name.lastIndexOf("/") ? [name.slice(0, at), name.slice(at + 1)] : [name, name.includes("@") ? undefined : "latest"];
    const res = await this.api.stream("POST", "/images/create", { query: { fromImage: repo, tag } });
    for await (const m of jsonLines<{ error?: string }>(res)) if (m.error) throw new ComposeError(m.error);
  }

  async build(s: Service): Promise<void> {
    const b = s.build!;
    // A remote context (a git or https URL, kept as written by the loader) is the daemon's to fetch: `remote=`, no body.
    const remote = /^(https?:\/\/|git@|git:\/\/|github\.com\/)/.test(b.context);
    const dockerfile = !remote && isAbsolute(b.dockerfile) ? relative(b.context, b.dockerfile) : b.dockerfile;
    const tag = this.imageName(s);
    this.io.progress(` Service ${s.name}  Building\n`);
    await this.api.json("GET", "/version"); // settle the API version: a streamed context cannot be sent twice
    const query = { t: tag, dockerfile, buildargs: JSON.stringify(b.args), target: b.target, labels: JSON.stringify({ [L.project]: this.project.name, [L.service]: s.name }) };
    const res = remote
      ? await this.api.stream("POST", "/build", { query: { ...query, remote: b.context } })
      : await this.api.stream("POST", "/build", { query, raw: contextTar(b.context, dockerfile), headers: { "Content-Type": "application/x-tar" } });
    let error: string | undefined;
    for await (const m of jsonLines<{ stream?: string; error?: string }>(res)) {
      if (m.error) error = m.error;
      else if (m.stream) this.io.progress(m.stream);
    }
    this.images.delete(tag);
    if (error) throw new ComposeError(`failed to build service "${s.name}": ${error}`);
    this.io.progress(` Service ${s.name}  Built\n`);
  }

  /** Builds or pulls what each service needs. */
  async ensureImages(services: string[], o: { build?: boolean; pull?: "always" | "missing" | "never" } = {}): Promise<void> {
    await Promise.all(services.map((n) => this.imageInfo(this.imageName(this.project.services[n]))));
    for (const n of services) {
      const s = this.project.services[n];
      const name = this.imageName(s);
      if (s.build && (o.build || s.pull_policy === "build" || !(await this.imageInfo(name)))) { await this.build(s); continue; }
      if (s.build) continue;
      const policy = o.pull ?? (s.pull_policy === "always" ? "always" : s.pull_policy === "never" ? "never" : "missing");
      if (policy === "always" || (policy === "missing" && !(await this.imageInfo(name)))) {
        this.io.progress(` ${n} Pulling\n`);
        this.images.delete(name);
        await this.pull(name);
        this.io.progress(` ${n} Pulled\n`);
      }
    }
  }

  /** The POST /containers/create body of a service's container number `n` (networks beyond the first are connected after create). */
  createBody(s: Service, imageId: string, o: { number?: number; hash?: string } = {}): Obj {
    const p = this.project;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const port of s.ports) {
      const key = `${port.target}/${port.protocol}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: port.host_ip ?? "", HostPort: port.published ?? "" });
    }
    for (const e of s.expose) exposed[e.includes("/") ? e : `${e}/tcp`] = {};
    const binds: string[] = [], mounts: Obj[] = [], anon: Record<string, object> = {};
    for (const m of s.volumes) {
      if (m.type === "tmpfs") mounts.push({ Type: "tmpfs", Target: m.target, ReadOnly: m.read_only });
      else if (m.type === "volume" && !m.source) anon[m.target] = {};
      else binds.push(`${m.type === "volume" ? p.volumes[m.source!].name : m.source}:${m.target}${m.read_only ? ":ro" : ""}`);
    }
    binds.push(...fileObjectBinds(p, s));
    const nets = Object.keys(s.networks);
    let networkMode = s.network_mode;
    if (networkMode?.startsWith("service:")) {
      const dep = p.services[networkMode.slice(8)];
      if (!dep) throw new ComposeError(`service "${s.name}": network_mode refers to undefined service ${networkMode.slice(8)}`);
      networkMode = `container:${this.containerName(dep)}`;
    }
    const first = nets[0];
    const deps = Object.entries(s.depends_on);
    const labels = {
      ...s.labels, [L.project]: p.name, [L.service]: s.name, [L.number]: String(o.number ?? 1), [L.oneoff]: "False",
      [L.configFiles]: p.configFiles.join(","), [L.workingDir]: p.workingDir, [L.hash]: o.hash ?? configHash(s), [L.image]: imageId, [L.version]: "2",
      ...(deps.length ? { [L.dependsOn]: deps.map(([d, c]) => `${d}:${c.condition}:${(c as Obj).restart === true}`).join(",") } : {}),
    };
    const [rpName, rpMax] = (s.restart ?? "no").split(":");
    const endpoint = (key: string) => ({ Aliases: [s.name, ...s.networks[key].aliases], ...(s.networks[key].ipv4_address ? { IPAMConfig: { IPv4Address: s.networks[key].ipv4_address } } : {}) });
    return {
      Image: this.imageName(s),
      Cmd: s.command, Entrypoint: s.entrypoint,
      Env: Object.entries(s.environment).map(([k, v]) => `${k}=${v}`),
      WorkingDir: s.working_dir ?? "", User: s.user ?? "", Hostname: s.hostname ?? "",
      Labels: labels,
      Tty: !!s.tty, OpenStdin: !!s.stdin_open, AttachStdin: false, AttachStdout: false, AttachStderr: false,
      ExposedPorts: exposed, Volumes: anon,
      StopSignal: s.stop_signal, StopTimeout: seconds(s.stop_grace_period),
      ...(s.healthcheck ? { Healthcheck: s.healthcheck } : {}),
      HostConfig: {
        NetworkMode: networkMode ?? p.networks[first].name,
        PortBindings: bindings, Binds: binds, Mounts: mounts,
        Tmpfs: Object.fromEntries(s.tmpfs.map((t) => { const i = t.indexOf(":"); return i < 0 ? [t, ""] : [t.slice(0, i), t.slice(i + 1)]; })),
        ReadonlyRootfs: !!s.read_only, Init: s.init ?? null, Privileged: !!s.privileged,
        CapAdd: s.cap_add.length ? s.cap_add : null, CapDrop: s.cap_drop.length ? s.cap_drop : null,
        SecurityOpt: s.security_opt.length ? s.security_opt : null,
        ExtraHosts: s.extra_hosts.length ? s.extra_hosts : null, Dns: s.dns,
        RestartPolicy: { Name: rpName === "no" ? "no" : rpName, MaximumRetryCount: rpMax ? Number(rpMax) : 0 },
      },
      NetworkingConfig: networkMode ? undefined : { EndpointsConfig: { [p.networks[first].name]: endpoint(first) } },
      _extraNetworks: networkMode ? [] : nets.slice(1).map((k) => ({ name: p.networks[k].name, config: endpoint(k) })),
    };
  }

  /** Creates a container from a createBody() (connecting its extra networks); returns its id. */
  async createContainer(name: string, body: Obj): Promise<string> {
    const extra = (body._extraNetworks ?? []) as { name: string; config: Obj }[];
    delete body._extraNetworks;
    const r = await this.api.json<ContainerCreateResponse>("POST", "/containers/create", { query: { name }, body });
    for (const x of extra) await this.api.request("POST", `/networks/${encodeURIComponent(x.name)}/connect`, { body: { Container: r.Id, EndpointConfig: x.config } });
    return r.Id;
  }

  private async inspect(id: string): Promise<ContainerInspectResponse> {
    return this.api.json<ContainerInspectResponse>("GET", `/containers/${id}/json`);
  }

  /**
   * compose v2's isServiceHealthy: true once every container is healthy (or,
   * with fallbackRunning, running without a healthcheck); an exited or
   * unhealthy container is an error at once, not after a timeout.
   */
  private async healthy(ids: string[], fallbackRunning: boolean): Promise<boolean> {
    for (const id of ids) {
      const info = await this.inspect(id);
      const name = info.Name.replace(/^\//, "");
      if (info.State.Status === "exited" || info.State.Status === "dead") throw new ComposeError(`container ${name} exited (${info.State.ExitCode})`);
      if (!info.State.Running) return false;
      const h = info.State.Health?.Status;
      if (!h || h === "none") {
        if (fallbackRunning) continue;
        throw new ComposeError(`container ${name} has no healthcheck configured`);
      }
      if (h === "unhealthy") throw new ComposeError(`container ${name} is unhealthy`);
      if (h !== "healthy") return false;
    }
    return true;
  }

  private async waitExit(id: string): Promise<number> {
    const res = await this.api.stream("POST", `/containers/${id}/wait`, { query: { condition: "not-running" } });
    let text = "";
    for await (const c of res) text += c;
    return (JSON.parse(text || "{}") as Partial<ContainerWaitResponse>).StatusCode ?? 0;
  }

  /** Waits for a service's depends_on conditions; `ids` are the containers of each dependency. */
  async waitFor(s: Service, ids: Map<string, string[]>, only?: Set<string>): Promise<void> {
    for (const [dep, cfg] of Object.entries(s.depends_on)) {
      if (only && !only.has(dep)) continue; // --no-deps: dependencies left out are not waited for
      const cs = ids.get(dep) ?? (await this.containers({ all: true, services: [dep] })).map((c) => c.Id);
      const required = cfg.required !== false;
      if (!cs.length) {
        if (!required) { this.io.progress(` Container ${dep}  Skipped - optional dependency "${dep}" is not running\n`); continue; }
        if (cfg.condition !== "service_started") throw new ComposeError(`dependency failed to start: service "${dep}" has no container`);
        continue;
      }
      try {
        if (cfg.condition === "service_completed_successfully") {
          for (const id of cs) {
            const code = await this.waitExit(id);
            if (code !== 0) throw new ComposeError(`service "${dep}" didn't complete successfully: exit ${code}`);
          }
        } else if (cfg.condition === "service_healthy") {
          for (const id of cs) this.io.progress(` Container ${(await this.inspect(id)).Name.replace(/^\//, "")}  Waiting\n`);
          while (!(await this.healthy(cs, false))) await sleep(200);
          for (const id of cs) this.io.progress(` Container ${(await this.inspect(id)).Name.replace(/^\//, "")}  Healthy\n`);
        }
      } catch (e) {
        if (!(e instanceof ComposeError)) throw e;
        if (!required) { this.io.progress(` Container ${dep}  Skipped - optional dependency "${dep}" failed: ${e.message}\n`); continue; }
        throw cfg.condition === "service_healthy" ? new ComposeError(`dependency failed to start: ${e.message}`) : e;
      }
    }
  }

  /** Orphans: the project's containers whose service is not in the file. */
  async orphans(): Promise<ContainerSummary[]> {
    return (await this.containers({ all: true })).filter((c) => !this.project.services[c.Labels[L.service]]);
  }

  private async removeContainer(c: { Id: string; State?: string }, name: string, timeout?: number): Promise<void> {
    if (c.State === undefined || c.State === "running" || c.State === "restarting" || c.State === "paused") {
      this.io.progress(` Container ${name}  Stopping\n`);
      await this.api.request("POST", `/containers/${c.Id}/stop`, { query: { t: timeout } }).catch(() => {});
      this.io.progress(` Container ${name}  Stopped\n`);
    }
    await this.api.request("DELETE", `/containers/${c.Id}`, { query: { force: true } });
    this.io.progress(` Container ${name}  Removed\n`);
  }

  /** Creates (or recreates, when its configuration changed) and starts the services' containers. Returns the containers, in start order. */
  async up(o: UpOptions): Promise<Started[]> {
    Object.assign(this.scaleOverride, o.scale ?? {});
    for (const n of Object.keys(o.scale ?? {})) if (!this.project.services[n]) throw new ComposeError(`no such service: ${n}`);
    const order = this.selection(o.services ?? [], o.noDeps);
    await this.ensureImages(order, { build: o.build, pull: o.pull });
    const [, , all] = await Promise.all([
      this.ensureNetworks(order.filter((n) => !this.project.services[n].network_mode)),
      this.ensureVolumes(order),
      this.containers({ all: true }),
    ]);
    const orphans = all.filter((c) => !this.project.services[c.Labels[L.service]]);
    if (orphans.length) {
      if (o.removeOrphans) for (const c of orphans) await this.removeContainer(c, c.Names[0].replace(/^\//, ""));
      else this.io.progress(`WARN[0000] Found orphan containers ([${orphans.map((c) => c.Names[0].replace(/^\//, "")).join(" ")}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n`);
    }
    const ids = new Map<string, string[]>();
    const recreated = new Set<string>();
    const result: Started[] = [];
    for (const n of order) {
      const s = this.project.services[n];
      const want = this.replicas(s);
      const img = await this.imageInfo(this.imageName(s));
      if (!img) throw new ComposeError(`No such image: ${this.imageName(s)}`);
      const hash = configHash(s);
      const mine = all.filter((c) => c.Labels[L.service] === n);
      // Scale down: the highest numbers go first.
      const extra = mine.filter((c) => Number(c.Labels[L.number] ?? 1) > want).sort((a, b) => Number(b.Labels[L.number]) - Number(a.Labels[L.number]));
      for (const c of extra) await this.removeContainer(c, c.Names[0].replace(/^\//, ""), o.timeout);
      const toStart: Started[] = [];
      const svcIds: string[] = [];
      for (let i = 1; i <= want; i++) {
        const name = this.containerName(s, i);
        const cur = mine.find((c) => Number(c.Labels[L.number] ?? 1) === i);
        let id: string | undefined = cur?.Id;
        if (cur) {
          const changed = cur.Labels[L.hash] !== hash || cur.Labels[L.image] !== img.Id;
          if (o.forceRecreate || (changed && !o.noRecreate)) {
            this.io.progress(` Container ${name}  Recreate\n`);
            await this.api.request("POST", `/containers/${cur.Id}/stop`, { query: { t: o.timeout } }).catch(() => {});
            await this.api.request("DELETE", `/containers/${cur.Id}`, { query: { force: true } });
            id = undefined;
            recreated.add(n);
          }
        }
        const wasRunning = !!id && cur?.State === "running";
        if (!id) {
          id = await this.createContainer(name, this.createBody(s, img.Id, { number: i, hash }));
          this.io.progress(` Container ${name}  ${cur ? "Recreated" : "Created"}\n`);
        } else if (wasRunning) this.io.progress(` Container ${name}  Running\n`);
        const st = { service: n, id, name, tty: !!s.tty, number: i };
        svcIds.push(id);
        result.push(st);
        if (!wasRunning) toStart.push(st);
        else if (!recreated.has(n) && Object.entries(s.depends_on).some(([d, c]) => (c as Obj).restart === true && recreated.has(d))) {
          // depends_on.restart: a dependency was recreated, so this one restarts too.
          await this.api.request("POST", `/containers/${id}/restart`);
          this.io.progress(` Container ${name}  Restarted\n`);
        }
      }
      ids.set(n, svcIds);
      if (o.noStart || !toStart.length) continue;
      await this.waitFor(s, ids, o.noDeps ? new Set(order) : undefined);
      for (const st of toStart) {
        this.io.progress(` Container ${st.name}  Starting\n`);
        await this.api.request("POST", `/containers/${st.id}/start`);
        this.io.progress(` Container ${st.name}  Started\n`);
      }
    }
    if (o.wait && !o.noStart) await this.waitHealthy(result, o.waitTimeout);
    return result;
  }

  /** `up --wait`: every container running, and healthy when it has a healthcheck (an exited one is an error). */
  async waitHealthy(cs: Started[], timeoutSec?: number): Promise<void> {
    const deadline = timeoutSec ? Date.now() + timeoutSec * 1000 : Infinity;
    for (const c of cs) this.io.progress(` Container ${c.name}  Waiting\n`);
    const pending = new Set(cs);
    while (pending.size) {
      for (const c of [...pending]) {
        if (await this.healthy([c.id], true)) { pending.delete(c); this.io.progress(` Container ${c.name}  Healthy\n`); }
      }
      if (!pending.size) break;
      if (Date.now() > deadline) throw new ComposeError(`application not healthy after ${timeoutSec}s`);
      await sleep(200);
    }
  }

  async stop(services: string[] = [], timeout?: number): Promise<void> {
    const cs = await this.containers({ services });
    // Reverse start order: dependents stop before what they depend on.
    const order = dependencyOrder(this.project.services);
    const rank = (c: ContainerSummary) => -order.indexOf(c.Labels[L.service]);
    await this.inOrder(cs.sort((a, b) => rank(a) - rank(b)), rank, async (c) => {
      const name = c.Names[0].replace(/^\//, "");
      this.io.progress(` Container ${name}  Stopping\n`);
      await this.api.request("POST", `/containers/${c.Id}/stop`, { query: { t: timeout } });
      this.io.progress(` Container ${name}  Stopped\n`);
    });
  }

  /** Runs fn over containers grouped by rank: one rank after the other, the replicas of one rank together. */
  private async inOrder(cs: ContainerSummary[], rank: (c: ContainerSummary) => number, fn: (c: ContainerSummary) => Promise<void>): Promise<void> {
    const groups = new Map<number, ContainerSummary[]>();
    for (const c of cs) { const r = rank(c); groups.set(r, [...(groups.get(r) ?? []), c]); }
    for (const r of [...groups.keys()].sort((a, b) => a - b)) await Promise.all(groups.get(r)!.map(fn));
  }

  async start(services: string[] = []): Promise<void> {
    const cs = await this.containers({ all: true, services });
    const order = dependencyOrder(this.project.services);
    for (const c of cs.sort((a, b) => order.indexOf(a.Labels[L.service]) - order.indexOf(b.Labels[L.service]))) {
      if (c.State === "running") continue;
      const name = c.Names[0].replace(/^\//, "");
      await this.api.request("POST", `/containers/${c.Id}/start`);
      this.io.progress(` Container ${name}  Started\n`);
    }
  }

  async restart(services: string[] = [], timeout?: number): Promise<void> {
    // depends_on.restart: dependents of a restarted service restart too.
    const names = new Set(services);
    if (services.length) {
      let grew = true;
      while (grew) {
        grew = false;
        for (const s of Object.values(this.project.services)) {
          if (names.has(s.name)) continue;
          if (Object.entries(s.depends_on).some(([d, c]) => names.has(d) && (c as Obj).restart === true)) { names.add(s.name); grew = true; }
        }
      }
    }
    const order = dependencyOrder(this.project.services);
    const cs = (await this.containers({ all: true, services: [...names] })).sort((a, b) => order.indexOf(a.Labels[L.service]) - order.indexOf(b.Labels[L.service]));
    for (const c of cs) {
      await this.api.request("POST", `/containers/${c.Id}/restart`, { query: { t: timeout } });
      this.io.progress(` Container ${c.Names[0].replace(/^\//, "")}  Restarted\n`);
    }
  }

  /** Removes stopped containers (all of them with force). */
  async rm(services: string[] = [], o: { force?: boolean; volumes?: boolean } = {}): Promise<number> {
    const cs = (await this.containers({ all: true, services })).filter((c) => o.force || c.State !== "running");
    for (const c of cs) {
      await this.api.request("DELETE", `/containers/${c.Id}`, { query: { force: !!o.force, v: !!o.volumes } });
      this.io.progress(` Container ${c.Names[0].replace(/^\//, "")}  Removed\n`);
    }
    return cs.length;
  }

  async down(o: { volumes?: boolean; rmi?: "local" | "all"; timeout?: number; removeOrphans?: boolean; services?: string[] } = {}): Promise<void> {
    const p = this.project;
    const known = Object.keys(p.services).length > 0;
    let cs = await this.containers({ all: true, oneoff: true, services: o.services });
    // Without a compose file every container of the project goes; with one, orphans only with --remove-orphans.
    if (known && !o.removeOrphans) {
      const orphans = cs.filter((c) => !p.services[c.Labels[L.service]]);
      if (orphans.length) this.io.progress(`WARN[0000] Found orphan containers ([${orphans.map((c) => c.Names[0].replace(/^\//, "")).join(" ")}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.\n`);
      cs = cs.filter((c) => p.services[c.Labels[L.service]]);
    }
    const order = dependencyOrder(p.services);
    const rank = (c: ContainerSummary) => -order.indexOf(c.Labels[L.service]);
    await this.inOrder(cs, rank, async (c) => {
      const name = c.Names[0].replace(/^\//, "");
      if (c.State === "running" || c.State === "restarting" || c.State === "paused") {
        this.io.progress(` Container ${name}  Stopping\n`);
        await this.api.request("POST", `/containers/${c.Id}/stop`, { query: { t: o.timeout } }).catch(() => {});
        this.io.progress(` Container ${name}  Stopped\n`);
      }
      await this.api.request("DELETE", `/containers/${c.Id}`, { query: { force: true, v: !!o.volumes } });
      this.io.progress(` Container ${name}  Removed\n`);
    });
    if (o.services?.length) return;
    // Networks: the project's own (declared, non-external) and any others labelled with the project.
    const nets = new Set(Object.values(p.networks).filter((n) => !n.external).map((n) => n.name));
    const labelled = await this.api.json<Network[]>("GET", "/networks", { query: { filters: JSON.stringify({ label: [`${L.project}=${p.name}`] }) } });
    for (const n of labelled) nets.add(n.Name);
    for (const n of [...nets].sort()) {
      try { await this.api.request("DELETE", `/networks/${encodeURIComponent(n)}`); this.io.progress(` Network ${n}  Removed\n`); }
      catch (e) { if (isInUse(e)) this.io.progress(` Network ${n}  Resource is still in use\n`); else if (!(isNotFound(e))) throw e; }
    }
    if (o.volumes) {
      const vols = new Set(Object.values(p.volumes).filter((v) => !v.external).map((v) => v.name));
      const lv = await this.api.json<VolumeListResponse>("GET", "/volumes", { query: { filters: JSON.stringify({ label: [`${L.project}=${p.name}`] }) } });
      for (const v of lv.Volumes ?? []) vols.add(v.Name);
      for (const v of [...vols].sort()) {
        try { await this.api.request("DELETE", `/volumes/${encodeURIComponent(v)}`); this.io.progress(` Volume ${v}  Removed\n`); }
        catch (e) { if (isInUse(e)) this.io.progress(` Volume ${v}  Resource is still in use\n`); else if (!(isNotFound(e))) throw e; }
      }
    }
    if (o.rmi) {
      const imgs = new Set(Object.values(p.services).filter((s) => o.rmi === "all" || !s.image).map((s) => this.imageName(s)));
      for (const i of [...imgs].sort()) {
        try { await this.api.request("DELETE", `/images/${encodeURIComponent(i)}`); this.io.progress(` Image ${i}  Removed\n`); }
        catch (e) { if (!(isNotFound(e))) throw e; }
      }
    }
    removeRuntimeDir(p.name);
  }
}

/** In use (a kept orphan still holds it): Docker answers 403 for a network with endpoints, 409 for a volume in use. */
function isInUse(e: unknown): boolean {
  const st = (e as Error & { status?: number }).status;
  return e instanceof Error && e.name === "ApiError" && (st === 403 || st === 409);
}

/** A 404 from the API client, whichever bundle's ApiError class made it. */
export function isNotFound(e: unknown): boolean {
  return e instanceof Error && e.name === "ApiError" && (e as Error & { status?: number }).status === 404;
}
