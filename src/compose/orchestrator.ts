/**
 * Runs a compose Project through the Docker Engine API (the api client only,
 * so it drives berthd or dockerd alike). Objects are found again by Docker
 * Compose's labels, so `docker compose` and `berth compose` see the same
 * project: networks `<project>_<name>`, volumes `<project>_<name>`,
 * containers `<project>-<service>-1`.
 */
import { createHash } from "node:crypto";
import { relative, isAbsolute } from "node:path";
import { jsonLines, type ApiClient } from "../api/client.js";
import { dependencyOrder, ComposeError, type Project, type Service } from "./loader.js";
import { contextTar } from "../lib/build-context.js";
import { parseGoDuration } from "../lib/duration.js";
import type { ContainerCreateResponse, ContainerInspectResponse, ContainerSummary, ContainerWaitResponse, ImageInspectResponse, Network, VolumeListResponse } from "../api/types.js";

export type { ContainerSummary };

export const L = {
  project: "com.docker.compose.project",
  service: "com.docker.compose.service",
  number: "com.docker.compose.container-number",
  oneoff: "com.docker.compose.oneoff",
  configFiles: "com.docker.compose.project.config_files",
  workingDir: "com.docker.compose.project.working_dir",
  hash: "com.docker.compose.config-hash",
  image: "com.docker.compose.image",
  network: "com.docker.compose.network",
  volume: "com.docker.compose.volume",
  version: "com.docker.compose.version",
};

type Obj = Record<string, unknown>;

export interface Io { progress(s: string): void; out(s: string): void }

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stable((v as Obj)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/** The hash docker compose keeps in com.docker.compose.config-hash: of the service's resolved configuration. */
export function configHash(s: Service): string {
  return createHash("sha256").update(stable(s)).digest("hex");
}

/** stop_grace_period ("1m30s") in whole seconds, as StopTimeout takes it. */
function seconds(d: string | undefined): number | undefined {
  return d ? Math.round(parseGoDuration(d) / 1e9) : undefined;
}

export class Orchestrator {
  constructor(readonly api: ApiClient, readonly project: Project, readonly io: Io) {}

  imageName(s: Service): string { return s.image ?? `${this.project.name}-${s.name}`; }
  containerName(s: Service): string { return s.container_name ?? `${this.project.name}-${s.name}-1`; }
  /** What logs and ps print: the container name less the project prefix (`web-1`). */
  shortName(containerName: string): string {
    const n = containerName.replace(/^\//, "");
    return n.startsWith(`${this.project.name}-`) ? n.slice(this.project.name.length + 1) : n;
  }

  /** The named services plus everything they depend on, in start order; all services when none are named. */
  selection(names: string[]): string[] {
    for (const n of names) if (!this.project.services[n]) throw new ComposeError(`no such service: ${n}`);
    const order = dependencyOrder(this.project.services);
    if (!names.length) return order;
    const want = new Set<string>();
    const add = (n: string) => { if (want.has(n)) return; want.add(n); for (const d of Object.keys(this.project.services[n].depends_on)) add(d); };
    names.forEach(add);
    return order.filter((n) => want.has(n));
  }

  /** The project's containers (by label), optionally of some services only. */
  async containers(o: { all?: boolean; services?: string[] } = {}): Promise<ContainerSummary[]> {
    const filters = { label: [`${L.project}=${this.project.name}`, `${L.oneoff}=False`] };
    const list = await this.api.json<ContainerSummary[]>("GET", "/containers/json", { query: { all: !!o.all, filters: JSON.stringify(filters) } });
    const svc = o.services?.length ? new Set(o.services) : undefined;
    return list.filter((c) => !svc || svc.has(c.Labels[L.service])).sort((a, b) => a.Names[0].localeCompare(b.Names[0]));
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
    const dockerfile = isAbsolute(b.dockerfile) ? relative(b.context, b.dockerfile) : b.dockerfile;
    const tag = this.imageName(s);
    this.io.progress(` Service ${s.name}  Building\n`);
    await this.api.json("GET", "/version"); // settle the API version: a streamed context cannot be sent twice
    const res = await this.api.stream("POST", "/build", {
      query: { t: tag, dockerfile, buildargs: JSON.stringify(b.args), target: b.target, labels: JSON.stringify({ [L.project]: this.project.name, [L.service]: s.name }) },
      raw: contextTar(b.context, dockerfile), headers: { "Content-Type": "application/x-tar" },
    });
    let error: string | undefined;
    for await (const m of jsonLines<{ stream?: string; error?: string }>(res)) {
      if (m.error) error = m.error;
      else if (m.stream) this.io.progress(m.stream);
    }
    if (error) throw new ComposeError(`failed to build service "${s.name}": ${error}`);
    this.io.progress(` Service ${s.name}  Built\n`);
  }

  /** Builds or pulls what each service needs. */
  async ensureImages(services: string[], o: { build?: boolean; pull?: "always" | "missing" | "never" } = {}): Promise<void> {
    for (const n of services) {
      const s = this.project.services[n];
      const name = this.imageName(s);
      if (s.build && (o.build || s.pull_policy === "build" || !(await this.exists(`/images/${encodeURIComponent(name)}/json`)))) { await this.build(s); continue; }
      if (s.build) continue;
      const policy = o.pull ?? (s.pull_policy === "always" ? "always" : s.pull_policy === "never" ? "never" : "missing");
      if (policy === "always" || (policy === "missing" && !(await this.exists(`/images/${encodeURIComponent(name)}/json`)))) {
        this.io.progress(` ${n} Pulling\n`);
        await this.pull(name);
        this.io.progress(` ${n} Pulled\n`);
      }
    }
  }

  /** The POST /containers/create body of a service (networks beyond the first are connected after create). */
  createBody(s: Service, imageId: string): Obj {
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
    const nets = Object.keys(s.networks);
    let networkMode = s.network_mode;
    if (networkMode?.startsWith("service:")) {
      const dep = p.services[networkMode.slice(8)];
      if (!dep) throw new ComposeError(`service "${s.name}": network_mode refers to undefined service ${networkMode.slice(8)}`);
      networkMode = `container:${this.containerName(dep)}`;
    }
    const first = nets[0];
    const labels = {
      ...s.labels, [L.project]: p.name, [L.service]: s.name, [L.number]: "1", [L.oneoff]: "False",
      [L.configFiles]: p.configFiles.join(","), [L.workingDir]: p.workingDir, [L.hash]: configHash(s), [L.image]: imageId, [L.version]: "2",
      ...(Object.keys(s.depends_on).length ? { "com.docker.compose.depends_on": Object.entries(s.depends_on).map(([d, c]) => `${d}:${c.condition}:false`).join(",") } : {}),
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

  private async waitFor(s: Service, started: Map<string, string>): Promise<void> {
    for (const [dep, { condition }] of Object.entries(s.depends_on)) {
      const id = started.get(dep);
      if (!id) continue;
      if (condition === "service_completed_successfully") {
        const res = await this.api.stream("POST", `/containers/${id}/wait`, { query: { condition: "not-running" } });
        let text = "";
        for await (const c of res) text += c;
        const code = (JSON.parse(text || "{}") as Partial<ContainerWaitResponse>).StatusCode ?? 0;
        if (code !== 0) throw new ComposeError(`service "${dep}" didn't complete successfully: exit ${code}`);
      } else if (condition === "service_healthy") {
        const deadline = Date.now() + 120_000;
        for (;;) {
          const info = await this.api.json<ContainerInspectResponse>("GET", `/containers/${id}/json`);
          const h = info.State.Health?.Status;
          if (!h || h === "healthy") break; // no healthcheck: treated as started
          if (h === "unhealthy") throw new ComposeError(`dependency failed to start: container ${this.containerName(this.project.services[dep])} is unhealthy`);
          if (Date.now() > deadline) throw new ComposeError(`timed out waiting for ${dep} to be healthy`);
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    }
  }

  /** Creates (or recreates, when its configuration changed) and starts the services' containers. Returns the containers, in start order. */
  async up(o: { services?: string[]; build?: boolean; forceRecreate?: boolean; noRecreate?: boolean; noStart?: boolean; pull?: "always" | "missing" | "never" }): Promise<{ service: string; id: string; name: string; tty: boolean }[]> {
    const order = this.selection(o.services ?? []);
    await this.ensureImages(order, { build: o.build, pull: o.pull });
    await this.ensureNetworks(order.filter((n) => !this.project.services[n].network_mode));
    await this.ensureVolumes(order);
    const existing = await this.containers({ all: true, services: order });
    const started = new Map<string, string>();
    const result: { service: string; id: string; name: string; tty: boolean }[] = [];
    for (const n of order) {
      const s = this.project.services[n];
      const name = this.containerName(s);
      const img = await this.api.json<ImageInspectResponse>("GET", `/images/${encodeURIComponent(this.imageName(s))}/json`);
      const body = this.createBody(s, img.Id);
      const labels = body.Labels as Record<string, string>;
      const cur = existing.find((c) => c.Labels[L.service] === n);
      let id: string | undefined = cur?.Id;
      if (cur) {
        const changed = cur.Labels[L.hash] !== labels[L.hash] || cur.Labels[L.image] !== labels[L.image];
        if (o.forceRecreate || (changed && !o.noRecreate)) {
          this.io.progress(` Container ${name}  Recreate\n`);
          await this.api.request("POST", `/containers/${cur.Id}/stop`).catch(() => {});
          await this.api.request("DELETE", `/containers/${cur.Id}`, { query: { force: true } });
          id = undefined;
        }
      }
      const wasRunning = !!id && cur?.State === "running";
      if (!id) {
        const extra = body._extraNetworks as { name: string; config: Obj }[];
        delete body._extraNetworks;
        const r = await this.api.json<ContainerCreateResponse>("POST", "/containers/create", { query: { name }, body });
        id = r.Id;
        for (const x of extra) await this.api.request("POST", `/networks/${encodeURIComponent(x.name)}/connect`, { body: { Container: id, EndpointConfig: x.config } });
        this.io.progress(` Container ${name}  ${cur ? "Recreated" : "Created"}\n`);
      } else if (wasRunning) this.io.progress(` Container ${name}  Running\n`);
      started.set(n, id);
      result.push({ service: n, id, name, tty: !!s.tty });
      if (o.noStart || wasRunning) continue;
      await this.waitFor(s, started);
      this.io.progress(` Container ${name}  Starting\n`);
      await this.api.request("POST", `/containers/${id}/start`);
      this.io.progress(` Container ${name}  Started\n`);
    }
    return result;
  }

  async stop(services: string[] = [], timeout?: number): Promise<void> {
    const cs = await this.containers({ services });
    // Reverse start order: dependents stop before what they depend on.
    const order = dependencyOrder(this.project.services);
    const rank = (c: ContainerSummary) => -order.indexOf(c.Labels[L.service]);
    for (const c of cs.sort((a, b) => rank(a) - rank(b))) {
      const name = c.Names[0].replace(/^\//, "");
      this.io.progress(` Container ${name}  Stopping\n`);
      await this.api.request("POST", `/containers/${c.Id}/stop`, { query: { t: timeout } });
      this.io.progress(` Container ${name}  Stopped\n`);
    }
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
    for (const c of await this.containers({ all: true, services })) {
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

  async down(o: { volumes?: boolean; rmi?: "local" | "all"; timeout?: number } = {}): Promise<void> {
    const p = this.project;
    const cs = await this.containers({ all: true });
    const order = dependencyOrder(p.services);
    const rank = (c: ContainerSummary) => -order.indexOf(c.Labels[L.service]);
    for (const c of cs.sort((a, b) => rank(a) - rank(b))) {
      const name = c.Names[0].replace(/^\//, "");
      if (c.State === "running" || c.State === "restarting" || c.State === "paused") {
        this.io.progress(` Container ${name}  Stopping\n`);
        await this.api.request("POST", `/containers/${c.Id}/stop`, { query: { t: o.timeout } }).catch(() => {});
        this.io.progress(` Container ${name}  Stopped\n`);
      }
      await this.api.request("DELETE", `/containers/${c.Id}`, { query: { force: true, v: !!o.volumes } });
      this.io.progress(` Container ${name}  Removed\n`);
    }
    // Networks: the project's own (declared, non-external) and any others labelled with the project.
    const nets = new Set(Object.values(p.networks).filter((n) => !n.external).map((n) => n.name));
    const labelled = await this.api.json<Network[]>("GET", "/networks", { query: { filters: JSON.stringify({ label: [`${L.project}=${p.name}`] }) } });
    for (const n of labelled) nets.add(n.Name);
    for (const n of [...nets].sort()) {
      try { await this.api.request("DELETE", `/networks/${encodeURIComponent(n)}`); this.io.progress(` Network ${n}  Removed\n`); }
      catch (e) { if (!(isNotFound(e))) throw e; }
    }
    if (o.volumes) {
      const vols = new Set(Object.values(p.volumes).filter((v) => !v.external).map((v) => v.name));
      const lv = await this.api.json<VolumeListResponse>("GET", "/volumes", { query: { filters: JSON.stringify({ label: [`${L.project}=${p.name}`] }) } });
      for (const v of lv.Volumes ?? []) vols.add(v.Name);
      for (const v of [...vols].sort()) {
        try { await this.api.request("DELETE", `/volumes/${encodeURIComponent(v)}`); this.io.progress(` Volume ${v}  Removed\n`); }
        catch (e) { if (!(isNotFound(e))) throw e; }
      }
    }
    if (o.rmi) {
      const imgs = new Set(Object.values(p.services).filter((s) => o.rmi === "all" || !s.image).map((s) => this.imageName(s)));
      for (const i of [...imgs].sort()) {
        try { await this.api.request("DELETE", `/images/${encodeURIComponent(i)}`); this.io.progress(` Image ${i}  Removed\n`); }
        catch (e) { if (!(isNotFound(e))) throw e; }
      }
    }
  }
}

/** A 404 from the API client, whichever bundle's ApiError class made it. */
function isNotFound(e: unknown): boolean {
  return e instanceof Error && e.name === "ApiError" && (e as Error & { status?: number }).status === 404;
}
