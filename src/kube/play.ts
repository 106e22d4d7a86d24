/**
 * `berth kube play FILE|-`: Kubernetes YAML run on berth, through the Docker API only.
 *
 * - A pod is an infra container (busybox, a shell that sleeps until TERM) holding the network, IPC and
 *   UTS namespaces, and one container per spec.containers joined to it (NetworkMode and IpcMode
 *   container:<infra>): they talk over localhost and share one hostname and one set of published ports.
 *   Init containers run in it one after the other, to completion, before the others start.
 * - Pod, Deployment (replicas), StatefulSet (ordinal names), DaemonSet (one pod: one node), Job
 *   (restartPolicy OnFailure/Never → the daemon's on-failure restarts, backoffLimit of them).
 * - Service: the infra container of every selected pod joins the play's network with the Service's name
 *   as an alias (so containers reach a Service by its name), and LoadBalancer/NodePort ports (and
 *   hostPort) are published on the host.
 * - ConfigMap and Secret: env (valueFrom, envFrom) and files (written into the container before it starts).
 * - PersistentVolumeClaim: a named volume of the claim's name; emptyDir: a volume of the pod's;
 *   hostPath: a bind mount. Probes: the container's health check.
 *
 * Every object made carries io.berth.kube.play=<play name>; `--down` removes exactly those. Unsupported
 * kinds and fields are reported on stderr, never skipped in silence.
 */
import { basename } from "node:path";
import { jsonLines } from "../api/client.js";
import type { ApiClient } from "../api/client.js";
import { yamlLib } from "../compose/loader.js";
import { writeTar, type TarEntry } from "../lib/tar-writer.js";
import type { Ctx } from "./cli.js";
import { KubeError } from "./cli.js";

type Obj = Record<string, any>;

export const L = { play: "io.berth.kube.play", kind: "io.berth.kube.kind", object: "io.berth.kube.object", pod: "io.berth.kube.pod", role: "io.berth.kube.role" };
export const INFRA_IMAGE = "busybox:latest";
/** The infra container's process: a shell that waits, and exits at once on TERM (pid 1 ignores signals it has no handler for). */
export const INFRA_CMD = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"];

/** The play's name: the file's base name without .yaml/.yml (stdin: "stdin"), as a DNS label. */
export function playName(file: string): string {
  const b = file === "-" ? "stdin" : basename(file).replace(/\.(ya?ml|json)$/i, "");
  return b.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "play";
}

export interface PlayOptions { name: string; down?: boolean; replace?: boolean; wait?: boolean }

/** One pod to make: where it came from, its name, its pod spec and labels. */
interface PodPlan { kind: string; object: string; name: string; spec: Obj; labels: Record<string, string>; restart: { Name: string; MaximumRetryCount: number }; job: boolean }

/** Known fields, per place; anything else is reported as not supported. */
const KNOWN = {
  meta: ["name", "namespace", "labels", "annotations", "generateName", "uid", "resourceVersion", "creationTimestamp"],
  pod: ["containers", "initContainers", "volumes", "restartPolicy", "hostname", "subdomain", "hostAliases", "dnsConfig", "terminationGracePeriodSeconds", "shareProcessNamespace", "securityContext", "dnsPolicy", "enableServiceLinks", "serviceAccountName", "automountServiceAccountToken", "hostNetwork", "hostIPC", "hostPID"],
  container: ["name", "image", "command", "args", "env", "envFrom", "ports", "workingDir", "volumeMounts", "resources", "securityContext", "livenessProbe", "readinessProbe", "startupProbe", "imagePullPolicy", "tty", "stdin", "stdinOnce", "terminationMessagePath", "terminationMessagePolicy"],
  workload: ["replicas", "selector", "template", "serviceName", "backoffLimit", "completions", "parallelism", "strategy", "revisionHistoryLimit", "minReadySeconds", "updateStrategy", "podManagementPolicy", "ttlSecondsAfterFinished", "activeDeadlineSeconds", "progressDeadlineSeconds", "volumeClaimTemplates"],
  service: ["selector", "ports", "type", "clusterIP", "clusterIPs", "sessionAffinity", "ipFamilies", "ipFamilyPolicy", "publishNotReadyAddresses", "externalTrafficPolicy", "internalTrafficPolicy"],
};

export async function play(c: Ctx, text: string, o: PlayOptions): Promise<number> {
  const p = new Play(c, o.name);
  if (o.down || o.replace) {
    await p.down();
    if (o.down) return 0;
  }
  const docs = parse(text);
  return p.up(docs, !!o.wait);
}

/** Every document of the stream (List items flattened); nulls skipped. */
export function parse(text: string): Obj[] {
  const out: Obj[] = [];
  // YAML 1.1, as Kubernetes reads it (sigs.k8s.io/yaml, go-yaml v2): 0400 is octal, as file modes are written.
  for (const d of yamlLib().parseAllDocuments(text, { version: "1.1" })) {
    if (d.errors.length) throw new KubeError(`invalid YAML: ${d.errors[0].message.split("\n")[0]}`);
    const v = d.toJS() as Obj | null;
    if (v === null || v === undefined) continue;
    if (typeof v !== "object" || Array.isArray(v)) throw new KubeError("a document is not a mapping");
    if (v.kind === "List" || (typeof v.kind === "string" && v.kind.endsWith("List") && Array.isArray(v.items))) out.push(...(v.items as Obj[]));
    else out.push(v);
  }
  return out;
}

/** A 404 from the daemon (by status: the API client that berth hands this bundle has its own ApiError class). */
const notFound = (e: unknown) => (e as { status?: number })?.status === 404;

const b64 = (s: string) => Buffer.from(s, "base64");

class Play {
  private warn: (s: string) => void;
  private configMaps = new Map<string, Record<string, Buffer>>();
  private secrets = new Map<string, Record<string, Buffer>>();
  private claims = new Set<string>();
  private network = "";
  private images = new Set<string>();
  private failed = false;

  constructor(private c: Ctx, readonly name: string) { this.warn = (s) => c.err(`WARN: ${s}\n`); }

  get api(): ApiClient { return this.c.api; }
  private labels(kind: string, object: string, extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, [L.play]: this.name, [L.kind]: kind, [L.object]: object };
  }

  /** Removes every container, volume and network this play made (by its label). */
  async down(): Promise<void> {
    const filter = (k: string) => JSON.stringify({ label: [`${L.play}=${this.name}`], ...(k ? {} : {}) });
    const cs = await this.api.json<Obj[]>("GET", "/containers/json", { query: { all: true, filters: filter("") } });
    // Apps first, infra last (their namespaces hold the others').
    cs.sort((a, b) => Number(a.Labels?.[L.role] === "infra") - Number(b.Labels?.[L.role] === "infra"));
    for (const x of cs) {
      await this.api.request("DELETE", `/containers/${x.Id}`, { query: { force: true, v: true } }).catch((e) => { if (!(notFound(e))) throw e; });
      this.c.out(`Removed container ${String(x.Names?.[0] ?? x.Id).replace(/^\//, "")}\n`);
    }
    const nets = await this.api.json<Obj[]>("GET", "/networks", { query: { filters: filter("") } });
    for (const n of nets) { await this.api.request("DELETE", `/networks/${n.Id}`); this.c.out(`Removed network ${n.Name}\n`); }
    const vols = (await this.api.json<{ Volumes: Obj[] | null }>("GET", "/volumes", { query: { filters: filter("") } })).Volumes ?? [];
    for (const v of vols) { await this.api.request("DELETE", `/volumes/${encodeURIComponent(v.Name)}`); this.c.out(`Removed volume ${v.Name}\n`); }
  }

  async up(docs: Obj[], wait: boolean): Promise<number> {
    const existing = await this.api.json<Obj[]>("GET", "/containers/json", { query: { all: true, filters: JSON.stringify({ label: [`${L.play}=${this.name}`] }) } });
    if (existing.length) throw new KubeError(`kube play "${this.name}" is already running (${existing.length} containers): use --replace, or kube play --down first`);
    const pods: PodPlan[] = [];
    const services: Obj[] = [];
    for (const d of docs) {
      const kind = String(d.kind ?? ""), meta = (d.metadata ?? {}) as Obj, name = String(meta.name ?? "");
      const where = `${kind}/${name}`;
      if (!kind || !name) { this.warn(`a document without kind or metadata.name is not supported (ignored)`); continue; }
      this.unknown(meta, KNOWN.meta, `${where}: metadata`);
      if (meta.namespace) this.warn(`${where}: metadata.namespace ${meta.namespace} not supported (one namespace per play)`);
      const spec = (d.spec ?? {}) as Obj;
      if (!["ConfigMap", "Secret"].includes(kind)) for (const k of Object.keys(d)) if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(k)) this.warn(`${where}: ${k} not supported (ignored)`);
      switch (kind) {
        case "ConfigMap": case "Secret": {
          const data: Record<string, Buffer> = {};
          for (const [k, v] of Object.entries((d.data ?? {}) as Obj)) data[k] = kind === "Secret" ? b64(String(v)) : Buffer.from(String(v));
          for (const [k, v] of Object.entries((d.binaryData ?? {}) as Obj)) data[k] = b64(String(v));
          for (const [k, v] of Object.entries((d.stringData ?? {}) as Obj)) data[k] = Buffer.from(String(v));
          for (const k of Object.keys(d)) if (!["apiVersion", "kind", "metadata", "data", "binaryData", "stringData", "type", "immutable"].includes(k)) this.warn(`${where}: ${k} not supported (ignored)`);
          (kind === "Secret" ? this.secrets : this.configMaps).set(name, data);
          break;
        }
        case "PersistentVolumeClaim":
          this.claims.add(name);
          for (const k of Object.keys(spec)) if (!["accessModes", "resources", "volumeMode", "storageClassName"].includes(k)) this.warn(`${where}: spec.${k} not supported (ignored)`);
          break;
        case "Service":
          this.unknown(spec, KNOWN.service, `${where}: spec`);
          services.push(d);
          break;
        case "Pod":
          pods.push(this.podPlan(kind, name, name, spec, (meta.labels ?? {}) as Record<string, string>, false));
          break;
        case "Deployment": case "StatefulSet": case "DaemonSet": case "ReplicaSet": case "Job": {
          this.unknown(spec, KNOWN.workload, `${where}: spec`);
          const t = (spec.template ?? {}) as Obj;
          const labels = ((t.metadata ?? {}).labels ?? {}) as Record<string, string>;
          const sel = (spec.selector?.matchLabels ?? {}) as Record<string, string>;
          if (kind !== "Job" && Object.entries(sel).some(([k, v]) => labels[k] !== v)) throw new KubeError(`${where}: spec.selector does not match the template's labels`);
          if (spec.selector?.matchExpressions) this.warn(`${where}: spec.selector.matchExpressions not supported (matchLabels only)`);
          if (spec.volumeClaimTemplates) this.warn(`${where}: spec.volumeClaimTemplates not supported (use a PersistentVolumeClaim)`);
          const n = kind === "DaemonSet" || kind === "Job" ? 1 : Number(spec.replicas ?? 1);
          if (kind === "DaemonSet") this.warn(`${where}: one node, so one pod`);
          if (kind === "Job" && (Number(spec.completions ?? 1) > 1 || Number(spec.parallelism ?? 1) > 1)) this.warn(`${where}: completions/parallelism above 1 not supported (one pod runs)`);
          for (let i = 0; i < n; i++) {
            const podName = kind === "StatefulSet" ? `${name}-${i}` : kind === "Job" || kind === "DaemonSet" ? name : n === 1 ? name : `${name}-${i}`;
            const plan = this.podPlan(kind, name, podName, (t.spec ?? {}) as Obj, labels, kind === "Job");
            if (kind === "Job") {
              const backoff = Number(spec.backoffLimit ?? 6);
              plan.restart = plan.spec.restartPolicy === "Always" || !plan.spec.restartPolicy ? (() => { throw new KubeError(`${where}: a Job's restartPolicy must be OnFailure or Never`); })() : backoff > 0 ? { Name: "on-failure", MaximumRetryCount: backoff } : { Name: "no", MaximumRetryCount: 0 };
            }
            pods.push(plan);
          }
          break;
        }
        default:
          this.warn(`${where}: kind ${kind} is not supported by kube play (ignored)`);
      }
    }
    // One network per play: Services are names on it.
    this.network = `kube-${this.name}`;
    await this.api.request("POST", "/networks/create", { body: { Name: this.network, Driver: "bridge", CheckDuplicate: true, Labels: this.labels("Network", this.network) } });
    this.c.out(`Network ${this.network}  Created\n`);
    for (const claim of this.claims) await this.volume(claim, "PersistentVolumeClaim", claim);
    // Which pods a Service selects; its published ports go to the first of them.
    const aliases = new Map<PodPlan, string[]>(), ports = new Map<PodPlan, Obj>();
    for (const s of services) {
      const name = s.metadata.name as string, spec = (s.spec ?? {}) as Obj;
      const sel = (spec.selector ?? {}) as Record<string, string>;
      const chosen = Object.keys(sel).length ? pods.filter((p) => Object.entries(sel).every(([k, v]) => p.labels[k] === v)) : [];
      if (!chosen.length) { this.warn(`Service/${name}: selects no pod of this play`); continue; }
      for (const p of chosen) aliases.set(p, [...(aliases.get(p) ?? []), name]);
      const type = String(spec.type ?? "ClusterIP");
      if (!["ClusterIP", "NodePort", "LoadBalancer"].includes(type)) this.warn(`Service/${name}: type ${type} not supported (its name resolves; nothing is published)`);
      for (const sp of (spec.ports ?? []) as Obj[]) {
        const target = this.targetPort(sp.targetPort ?? sp.port, chosen[0]);
        const proto = String(sp.protocol ?? "TCP").toLowerCase();
        if (type === "ClusterIP" && target !== Number(sp.port)) this.warn(`Service/${name}: port ${sp.port} → targetPort ${target}: by name the pods answer on ${target} (no cluster IP translates ports)`);
        if (type === "LoadBalancer" || type === "NodePort") {
          const host = type === "NodePort" && sp.nodePort ? Number(sp.nodePort) : Number(sp.port);
          const pb = ports.get(chosen[0]) ?? {};
          pb[`${target}/${proto}`] = [...(pb[`${target}/${proto}`] ?? []), { HostIp: "", HostPort: String(host) }];
          ports.set(chosen[0], pb);
          if (chosen.length > 1) this.warn(`Service/${name}: port ${host} is published by pod ${chosen[0].name} only (one host port, no load balancer)`);
        }
      }
    }
    // The pods, all at once (init containers wait for each other's Services).
    const results = await Promise.allSettled(pods.map((p) => this.runPod(p, aliases.get(p) ?? [], ports.get(p) ?? {})));
    for (const [i, r] of results.entries()) if (r.status === "rejected") { this.failed = true; this.c.err(`Error: pod ${pods[i].name}: ${(r.reason as Error).message}\n`); }
    if (wait) {
      for (const p of pods.filter((x) => x.job)) {
        const ok = await this.waitJob(p);
        this.c.out(`Job ${p.object}  ${ok ? "Completed" : "Failed"}\n`);
        if (!ok) this.failed = true;
      }
    }
    return this.failed ? 1 : 0;
  }

  private unknown(o: Obj, known: string[], where: string): void {
    for (const k of Object.keys(o ?? {})) if (!known.includes(k)) this.warn(`${where}.${k} not supported (ignored)`);
  }

  private podPlan(kind: string, object: string, name: string, spec: Obj, labels: Record<string, string>, job: boolean): PodPlan {
    const where = `${kind}/${object}: ${kind === "Pod" ? "spec" : "spec.template.spec"}`;
    if (!Array.isArray(spec.containers) || !spec.containers.length) throw new KubeError(`${kind}/${object}: the pod has no containers`);
    this.unknown(spec, KNOWN.pod, where);
    for (const k of ["hostNetwork", "hostIPC", "hostPID"]) if (spec[k]) this.warn(`${where}.${k} not supported (ignored)`);
    for (const k of ["securityContext", "dnsPolicy", "serviceAccountName"] as const) if (spec[k] && k !== "dnsPolicy") this.warn(`${where}.${k} not supported (ignored)`);
    for (const ct of [...(spec.initContainers ?? []), ...spec.containers] as Obj[]) this.unknown(ct, KNOWN.container, `${where}.containers[${ct.name}]`);
    const rp = String(spec.restartPolicy ?? "Always");
    const restart = rp === "Always" ? { Name: "always", MaximumRetryCount: 0 } : rp === "OnFailure" ? { Name: "on-failure", MaximumRetryCount: 0 } : { Name: "no", MaximumRetryCount: 0 };
    return { kind, object, name, spec, labels, restart, job };
  }

  /** A Service's targetPort: a number, or the name of a container port of the pod. */
  private targetPort(t: unknown, p: PodPlan): number {
    if (typeof t === "number" || /^\d+$/.test(String(t))) return Number(t);
    for (const ct of p.spec.containers as Obj[]) for (const cp of (ct.ports ?? []) as Obj[]) if (cp.name === t) return Number(cp.containerPort);
    throw new KubeError(`Service targetPort ${String(t)}: no container port of pod ${p.name} has that name`);
  }

  private async volume(name: string, kind: string, object: string): Promise<void> {
    const have = await this.api.json<Obj>("GET", `/volumes/${encodeURIComponent(name)}`).catch((e) => { if (notFound(e)) return undefined; throw e; });
    if (have) {
      if (have.Labels?.[L.play] !== this.name) this.warn(`${kind}/${object}: volume ${name} exists and is used as it is (kube play --down will not remove it)`);
      return;
    }
    await this.api.request("POST", "/volumes/create", { body: { Name: name, Labels: this.labels(kind, object) } });
    this.c.out(`Volume ${name}  Created\n`);
  }

  private async ensureImage(image: string, policy?: string): Promise<void> {
    if (this.images.has(image) && policy !== "Always") return;
    const have = policy === "Always" ? false : await this.api.request("GET", `/images/${encodeURIComponent(image)}/json`).then(() => true, (e) => { if (notFound(e)) return false; throw e; });
    if (!have) {
      if (policy === "Never") throw new KubeError(`image ${image} is not present and imagePullPolicy is Never`);
      const at = image.lastIndexOf(":");
      const [repo, tag] = image.includes("@") ? [image, undefined] : at > image.lastIndexOf("/") ? [image.slice(0, at), image.slice(at + 1)] : [image, "latest"];
      const res = await this.api.stream("POST", "/images/create", { query: { fromImage: repo, tag }, headers: { "X-Registry-Auth": "e30=" } });
      for await (const m of jsonLines<{ error?: string }>(res)) if (m.error) throw new KubeError(`pull ${image}: ${m.error}`);
    }
    this.images.add(image);
  }

  private async runPod(p: PodPlan, aliases: string[], portBindings: Obj): Promise<void> {
    const spec = p.spec;
    const podLabels = { ...p.labels, [L.pod]: p.name };
    const hostname = String(spec.hostname ?? p.name);
    // Pod volumes: claims, emptyDir (a volume of the pod's), hostPath (bind), configMap/secret (files).
    const vols = new Map<string, Obj>();
    for (const v of (spec.volumes ?? []) as Obj[]) vols.set(v.name, v);
    const podVolumes = new Map<string, string>();
    for (const v of vols.values()) {
      if (v.emptyDir && v.emptyDir.medium !== "Memory") {
        const vn = `${this.name}-${p.name}-${v.name}`;
        await this.volume(vn, p.kind, p.object);
        podVolumes.set(v.name, vn);
      }
      const known = ["name", "persistentVolumeClaim", "emptyDir", "hostPath", "configMap", "secret"];
      for (const k of Object.keys(v)) if (!known.includes(k)) this.warn(`${p.kind}/${p.object}: volume ${v.name}: ${k} not supported (ignored)`);
    }
    const exposed: Obj = {};
    for (const ct of spec.containers as Obj[]) {
      for (const cp of (ct.ports ?? []) as Obj[]) {
        const key = `${cp.containerPort}/${String(cp.protocol ?? "TCP").toLowerCase()}`;
        exposed[key] = {};
        // A hostPort a Service already publishes (kube generate -s writes both) is bound once.
        if (cp.hostPort && !(portBindings[key] ?? []).some((b: Obj) => b.HostPort === String(cp.hostPort))) portBindings[key] = [...(portBindings[key] ?? []), { HostIp: cp.hostIP ?? "", HostPort: String(cp.hostPort) }];
      }
    }
    for (const k of Object.keys(portBindings)) exposed[k] = {};
    await this.ensureImage(INFRA_IMAGE);
    const hostAliases = ((spec.hostAliases ?? []) as Obj[]).flatMap((h) => ((h.hostnames ?? []) as string[]).map((n) => `${n}:${h.ip}`));
    const infra = await this.create(`${p.name}-infra`, {
      Image: INFRA_IMAGE, Cmd: INFRA_CMD, Hostname: hostname, Labels: { ...this.labels(p.kind, p.object, podLabels), [L.role]: "infra" }, ExposedPorts: exposed,
      HostConfig: { NetworkMode: this.network, IpcMode: "shareable", PortBindings: portBindings, ExtraHosts: hostAliases, Dns: spec.dnsConfig?.nameservers ?? [], DnsSearch: spec.dnsConfig?.searches ?? [], RestartPolicy: p.job ? { Name: "no" } : { Name: "always" } },
      NetworkingConfig: { EndpointsConfig: { [this.network]: { Aliases: [...new Set([p.name, hostname, ...aliases])] } } },
    });
    await this.api.request("POST", `/containers/${infra}/start`);
    this.c.out(`Pod ${p.name}  Started (infra ${infra.slice(0, 12)})\n`);
    const join: Obj = { NetworkMode: `container:${infra}`, IpcMode: `container:${infra}`, ...(spec.shareProcessNamespace ? { PidMode: `container:${infra}` } : {}) };
    // dockerd gives a container of NetworkMode container:<x> x's resolv.conf; berthd (for now) writes its own, without the
    // network's DNS: say the network's DNS server (a daemon that refuses --dns there shares them, see create()).
    const ns = await this.nameservers();
    if (ns.length) join.Dns = ns;
    // Init containers: one after the other, each to success.
    for (const ct of (spec.initContainers ?? []) as Obj[]) {
      const id = await this.container(p, ct, vols, podVolumes, join, { Name: "no", MaximumRetryCount: 0 }, "init");
      await this.api.request("POST", `/containers/${id}/start`);
      const w = await this.api.json<{ StatusCode: number }>("POST", `/containers/${id}/wait`);
      if (w.StatusCode !== 0) throw new KubeError(`init container ${ct.name} exited with ${w.StatusCode}`);
      await this.api.request("DELETE", `/containers/${id}`, { query: { v: true } });
    }
    for (const ct of spec.containers as Obj[]) {
      const id = await this.container(p, ct, vols, podVolumes, join, p.restart, "app");
      await this.api.request("POST", `/containers/${id}/start`);
      this.c.out(`Container ${p.name}-${ct.name}  Started\n`);
    }
  }

  private async create(name: string, body: Obj): Promise<string> {
    try {
      return (await this.api.json<{ Id: string }>("POST", "/containers/create", { query: { name }, body })).Id;
    } catch (e) {
      if (!body.HostConfig?.Dns || !/conflicting options: dns/.test((e as Error).message)) throw e;
      const { Dns: _d, ...hc } = body.HostConfig as Obj;
      return (await this.api.json<{ Id: string }>("POST", "/containers/create", { query: { name }, body: { ...body, HostConfig: hc } })).Id;
    }
  }

  /** berthd's embedded DNS for a network answers on its gateway (what a container on it has in resolv.conf). */
  private async nameservers(): Promise<string[]> {
    const n = await this.api.json<Obj>("GET", `/networks/${encodeURIComponent(this.network)}`).catch(() => undefined);
    return ((n?.IPAM?.Config ?? []) as Obj[]).map((x) => x.Gateway).filter((g): g is string => typeof g === "string" && !!g && !g.includes(":"));
  }

  private lookup(kind: "configMap" | "secret", name: string, key: string | undefined, where: string, optional?: boolean): Buffer | undefined {
    const m = (kind === "secret" ? this.secrets : this.configMaps).get(name);
    if (!m) { if (optional) return undefined; throw new KubeError(`${where}: no ${kind === "secret" ? "Secret" : "ConfigMap"} named ${name} in the file`); }
    if (key === undefined) return undefined;
    if (!(key in m)) { if (optional) return undefined; throw new KubeError(`${where}: ${kind === "secret" ? "Secret" : "ConfigMap"} ${name} has no key ${key}`); }
    return m[key];
  }

  private async container(p: PodPlan, ct: Obj, vols: Map<string, Obj>, podVolumes: Map<string, string>, join: Obj, restart: Obj, role: string): Promise<string> {
    const where = `${p.kind}/${p.object}: container ${ct.name}`;
    await this.ensureImage(String(ct.image), ct.imagePullPolicy);
    const env: string[] = [];
    for (const ef of (ct.envFrom ?? []) as Obj[]) {
      const ref = ef.configMapRef ?? ef.secretRef;
      const map = (ef.configMapRef ? this.configMaps : this.secrets).get(ref?.name);
      if (!map) { if (ref?.optional) continue; throw new KubeError(`${where}: envFrom: no ${ef.configMapRef ? "ConfigMap" : "Secret"} named ${ref?.name}`); }
      for (const [k, v] of Object.entries(map)) env.push(`${ef.prefix ?? ""}${k}=${v.toString()}`);
    }
    for (const e of (ct.env ?? []) as Obj[]) {
      if (e.valueFrom) {
        const ref = e.valueFrom.configMapKeyRef ?? e.valueFrom.secretKeyRef;
        if (!ref) { this.warn(`${where}: env ${e.name}: valueFrom ${Object.keys(e.valueFrom).join(",")} not supported (ignored)`); continue; }
        const v = this.lookup(e.valueFrom.configMapKeyRef ? "configMap" : "secret", ref.name, ref.key, `${where}: env ${e.name}`, ref.optional);
        if (v !== undefined) env.push(`${e.name}=${v.toString()}`);
      } else env.push(`${e.name}=${expandEnv(String(e.value ?? ""), env)}`);
    }
    const mounts: Obj[] = [];
    const files: TarEntry[] = [];
    for (const m of (ct.volumeMounts ?? []) as Obj[]) {
      const v = vols.get(m.name);
      if (!v) throw new KubeError(`${where}: volumeMount ${m.name}: no such volume in the pod`);
      const ro = !!m.readOnly;
      if (v.persistentVolumeClaim) {
        const claim = String(v.persistentVolumeClaim.claimName);
        if (!this.claims.has(claim)) { this.claims.add(claim); await this.volume(claim, "PersistentVolumeClaim", claim); }
        mounts.push({ Type: "volume", Source: claim, Target: m.mountPath, ReadOnly: ro, ...(m.subPath ? { VolumeOptions: { Subpath: m.subPath } } : {}) });
        if (m.subPath) this.warn(`${where}: volumeMount ${m.name} subPath ${m.subPath} not supported on a claim (the whole volume is mounted)`), mounts[mounts.length - 1] = { Type: "volume", Source: claim, Target: m.mountPath, ReadOnly: ro };
      } else if (v.emptyDir) {
        if (v.emptyDir.medium === "Memory") mounts.push({ Type: "tmpfs", Target: m.mountPath });
        else mounts.push({ Type: "volume", Source: podVolumes.get(v.name), Target: m.mountPath, ReadOnly: ro });
      } else if (v.hostPath) {
        mounts.push({ Type: "bind", Source: v.hostPath.path, Target: m.mountPath, ReadOnly: ro });
      } else if (v.configMap || v.secret) {
        const kind = v.configMap ? "configMap" : "secret";
        const ref = v.configMap ?? v.secret;
        const objName = String(v.configMap ? ref.name : ref.secretName);
        const map = (kind === "secret" ? this.secrets : this.configMaps).get(objName);
        if (!map) { if (ref.optional) continue; throw new KubeError(`${where}: volume ${v.name}: no ${kind === "secret" ? "Secret" : "ConfigMap"} named ${objName}`); }
        const items: { key: string; path: string; mode?: number }[] = ref.items ?? Object.keys(map).map((k) => ({ key: k, path: k }));
        const dflt = Number(ref.defaultMode ?? 0o644);
        const base = String(m.mountPath).replace(/^\/+/, "").replace(/\/+$/, "");
        for (const it of items) {
          const data = map[it.key];
          if (data === undefined) throw new KubeError(`${where}: volume ${v.name}: no key ${it.key} in ${objName}`);
          if (m.subPath && it.path !== m.subPath) continue;
          files.push({ name: m.subPath ? base : `${base}/${it.path}`, type: "file", mode: Number(it.mode ?? dflt), size: data.length, source: data });
        }
      }
    }
    const probe = ct.livenessProbe ?? ct.readinessProbe ?? ct.startupProbe;
    const probes = ["livenessProbe", "readinessProbe", "startupProbe"].filter((k) => ct[k]);
    if (probes.length > 1 && probes.some((k) => JSON.stringify(ct[k]) !== JSON.stringify(probe))) this.warn(`${where}: one health check per container: ${probes[0]} is used, ${probes.slice(1).join(", ")} ignored`);
    const limits = ct.resources?.limits ?? {}, requests = ct.resources?.requests ?? {};
    for (const [k, m] of [["limits", limits], ["requests", requests]] as const) for (const r of Object.keys(m)) if (r !== "cpu" && r !== "memory") this.warn(`${where}: resources.${k}.${r} not supported (ignored)`);
    const sc = (ct.securityContext ?? {}) as Obj;
    for (const k of Object.keys(sc)) if (!["privileged", "readOnlyRootFilesystem", "capabilities", "runAsUser", "runAsGroup", "allowPrivilegeEscalation", "runAsNonRoot"].includes(k)) this.warn(`${where}: securityContext.${k} not supported (ignored)`);
    const user = sc.runAsUser !== undefined ? `${sc.runAsUser}${sc.runAsGroup !== undefined ? `:${sc.runAsGroup}` : ""}` : undefined;
    const body: Obj = {
      Image: ct.image, Env: env, Labels: { ...this.labels(p.kind, p.object, { ...p.labels, [L.pod]: p.name }), [L.role]: role },
      ...(ct.command ? { Entrypoint: ct.command.map(String) } : {}), ...(ct.args ? { Cmd: ct.args.map(String) } : ct.command ? { Cmd: [] } : {}),
      ...(ct.workingDir ? { WorkingDir: ct.workingDir } : {}), ...(user ? { User: user } : {}),
      ...(ct.tty ? { Tty: true } : {}), ...(ct.stdin ? { OpenStdin: true } : {}),
      ...(probe ? { Healthcheck: this.health(probe, where) } : {}),
      ...(p.spec.terminationGracePeriodSeconds !== undefined ? { StopTimeout: Number(p.spec.terminationGracePeriodSeconds) } : {}),
      HostConfig: {
        ...join, Mounts: mounts, RestartPolicy: restart,
        ...(sc.privileged ? { Privileged: true } : {}), ...(sc.readOnlyRootFilesystem ? { ReadonlyRootfs: true } : {}),
        ...(sc.capabilities?.add ? { CapAdd: sc.capabilities.add } : {}), ...(sc.capabilities?.drop ? { CapDrop: sc.capabilities.drop } : {}),
        ...(sc.allowPrivilegeEscalation === false ? { SecurityOpt: ["no-new-privileges"] } : {}),
        ...(limits.memory ? { Memory: bytes(limits.memory) } : {}), ...(limits.cpu ? { NanoCpus: Math.round(cpus(limits.cpu) * 1e9) } : {}),
        // Requests as Docker's soft settings: a memory reservation, CPU shares (1024 a core).
        ...(requests.memory ? { MemoryReservation: bytes(requests.memory) } : {}), ...(requests.cpu ? { CpuShares: Math.max(2, Math.round(cpus(requests.cpu) * 1024)) } : {}),
      },
    };
    const id = await this.create(`${p.name}-${ct.name}${role === "init" ? "-init" : ""}`, body);
    if (files.length) await this.api.putArchive(id, "/", Buffer.concat(await collect(writeTar(withDirs(files)))));
    return id;
  }

  /** A probe as the container's health check: exec as it is, httpGet and tcpSocket through the image's wget/nc. */
  private health(pr: Obj, where: string): Obj {
    let test: string[];
    if (pr.exec) test = ["CMD", ...(pr.exec.command ?? []).map(String)];
    else if (pr.httpGet) {
      this.warn(`${where}: the httpGet probe runs wget in the container`);
      test = ["CMD-SHELL", `wget -q -O /dev/null http://localhost:${pr.httpGet.port}${pr.httpGet.path ?? "/"} || exit 1`];
    } else if (pr.tcpSocket) {
      this.warn(`${where}: the tcpSocket probe runs nc in the container`);
      test = ["CMD-SHELL", `nc -z localhost ${pr.tcpSocket.port} || exit 1`];
    } else { this.warn(`${where}: a probe of kind ${Object.keys(pr).join(",")} is not supported (ignored)`); return {}; }
    const s = (n: unknown, d: number) => (n === undefined ? d : Number(n)) * 1e9;
    return { Test: test, Interval: s(pr.periodSeconds, 10), Timeout: s(pr.timeoutSeconds, 1), Retries: Number(pr.failureThreshold ?? 3), StartPeriod: s(pr.initialDelaySeconds, 0) };
  }

  /** A Job's pod: done when its containers exited 0 and no restart is pending. */
  private async waitJob(p: PodPlan): Promise<boolean> {
    const cs = await this.api.json<Obj[]>("GET", "/containers/json", { query: { all: true, filters: JSON.stringify({ label: [`${L.play}=${this.name}`, `${L.pod}=${p.name}`, `${L.role}=app`] }) } });
    let ok = true;
    for (const x of cs) {
      for (;;) {
        const w = await this.api.json<{ StatusCode: number }>("POST", `/containers/${x.Id}/wait`);
        const info = await this.api.json<Obj>("GET", `/containers/${x.Id}/json`);
        if (w.StatusCode === 0) break;
        const max = Number(info.HostConfig?.RestartPolicy?.MaximumRetryCount ?? 0);
        if (info.HostConfig?.RestartPolicy?.Name !== "on-failure" || Number(info.RestartCount ?? 0) >= max) { ok = false; break; }
        // A restart is coming: wait for the container to run again (or give up with the policy).
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          const i2 = await this.api.json<Obj>("GET", `/containers/${x.Id}/json`);
          if (i2.State?.Running || Number(i2.RestartCount ?? 0) > Number(info.RestartCount ?? 0)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    // The infra container has nothing more to hold.
    const infra = await this.api.json<Obj[]>("GET", "/containers/json", { query: { filters: JSON.stringify({ label: [`${L.play}=${this.name}`, `${L.pod}=${p.name}`, `${L.role}=infra`] }) } });
    for (const x of infra) await this.api.request("POST", `/containers/${x.Id}/stop`, { query: { t: 1 } }).catch(() => {});
    return ok;
  }
}

/** $(VAR) references to earlier env entries, as Kubernetes expands them. */
function expandEnv(v: string, env: string[]): string {
  return v.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string | undefined) => {
    if (m === "$$") return "$";
    const e = [...env].reverse().find((x) => x.startsWith(`${n}=`));
    return e ? e.slice(n!.length + 1) : m;
  });
}

/** Kubernetes quantities → bytes ("256Mi", "1G", "128974848"). */
export function bytes(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)([KMGTPE]i?|[kmgtpe])?$/.exec(String(q));
  if (!m) throw new KubeError(`invalid quantity ${String(q)}`);
  const u = m[2] ?? "";
  const pow = "KMGTPE".indexOf(u[0]?.toUpperCase() ?? "") + 1;
  return Math.round(Number(m[1]) * (u.endsWith("i") ? 1024 ** pow : u ? 1000 ** pow : 1));
}

/** CPU quantities → cores ("500m" → 0.5, "2" → 2). */
export function cpus(q: unknown): number {
  const s = String(q);
  return s.endsWith("m") ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

/** The parent directories of files, as tar entries before them. */
function withDirs(files: TarEntry[]): TarEntry[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.name.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...[...dirs].sort().map((d): TarEntry => ({ name: `${d}/`, type: "directory", mode: 0o755 })), ...files];
}

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return out;
}
