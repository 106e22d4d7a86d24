/**
 * `berth kube generate`: a compose project (the compose loader's Project) → Kubernetes manifests.
 *
 * Pure: no daemon, no files written (env files and secret/config files are read). Every compose
 * feature either maps onto a Kubernetes field or is named in `notes` (printed on stderr by the CLI):
 * nothing is dropped in silence (kompose's #1323 bind mounts, #1520 networks, #1513 depends_on).
 *
 * The mapping, per service:
 * - the workload: a Deployment; a StatefulSet when the service mounts a named volume; a DaemonSet for
 *   deploy.mode: global; a Job for restart: on-failure; a Pod (restartPolicy Never) for restart: "no".
 * - a ClusterIP Service named after the service with the container ports (so `redis:6379` resolves in
 *   the cluster as it does on the compose network); a headless one when the service has no ports but
 *   others depend on it; a LoadBalancer Service `<name>-published` for published ports (port = the host port).
 * - a PersistentVolumeClaim per named volume, ConfigMaps for env_file and configs, Secrets for secrets.
 * - healthcheck → liveness and readiness probes; deploy.resources → resources; depends_on → init
 *   containers that wait until the dependency's Service answers.
 */
import { readFileSync, existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Project, Service } from "../compose/loader.js";
import { yamlLib } from "../compose/loader.js";
import { parseDotEnv } from "../compose/dotenv.js";
import { parseGoDuration } from "../lib/duration.js";

export type Obj = Record<string, unknown>;

export interface GenerateOptions {
  /** Service name → the image reference to use (the pushed digest from --push). */
  images?: Record<string, string>;
  /** The image of the init containers that wait for a dependency (default busybox:latest). */
  waitImage?: string;
}

export interface Generated { docs: Obj[]; notes: string[] }

/** The label every generated object carries, and the selector label of a service's pods. */
export const LABEL_PROJECT = "io.berth.compose.project";
export const LABEL_SERVICE = "io.berth.compose.service";

/** A DNS-1123 label (lowercase alphanumerics and '-', at most 63 characters): Kubernetes object names. */
export function kubeName(s: string): string {
  const n = s.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/-{2,}/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
  return n || "x";
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
function validLabel(k: string, v: string): boolean {
  const [prefix, name] = k.includes("/") ? [k.slice(0, k.indexOf("/")), k.slice(k.indexOf("/") + 1)] : ["", k];
  return LABEL_KEY.test(k) && prefix.length <= 253 && name.length <= 63 && v.length <= 63 && LABEL_VALUE.test(v);
}

/** Compose byte sizes ("512m", "1g", "100000") → Kubernetes quantities (binary suffixes, as compose reads them). */
export function quantity(v: unknown): string {
  const s = String(v).trim().toLowerCase();
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/.exec(s);
  if (!m) throw new Error(`invalid size: ${JSON.stringify(v)}`);
  const unit = { "": "", b: "", k: "Ki", m: "Mi", g: "Gi", t: "Ti" }[m[2]]!;
  return `${m[1]}${unit}`;
}

/** Compose cpus ("0.5", 2) → a Kubernetes CPU quantity ("500m", "2"). */
export function cpuQuantity(v: unknown): string {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`invalid cpus: ${JSON.stringify(v)}`);
  return Number.isInteger(n) ? String(n) : `${Math.round(n * 1000)}m`;
}

const seconds = (ns: number | undefined, dflt: number) => (ns === undefined ? dflt : Math.max(1, Math.round(ns / 1e9)));

/** Docker's HealthConfig → a probe (Docker's defaults: every 30 s, 30 s timeout, 3 retries). */
function probe(h: NonNullable<Service["healthcheck"]>): Obj | undefined {
  const [kind, ...rest] = h.Test;
  if (!kind || kind === "NONE") return undefined;
  const command = kind === "CMD-SHELL" ? ["/bin/sh", "-c", rest.join(" ")] : rest;
  return {
    exec: { command }, periodSeconds: seconds(h.Interval, 30), timeoutSeconds: seconds(h.Timeout, 30), failureThreshold: h.Retries || 3,
    ...(h.StartPeriod ? { initialDelaySeconds: seconds(h.StartPeriod, 0) } : {}),
  };
}

/** "8000-8001" → [8000, 8001]; "" / undefined → []. */
function portRange(p: string | undefined): number[] {
  if (!p) return [];
  const [a, b] = p.split("-").map(Number);
  const out: number[] = [];
  for (let x = a; x <= (b || a); x++) out.push(x);
  return out;
}

/** env_file entries of each service as written in the project's files (the loader folds them into environment). */
function envFileVars(p: Project): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const lookup = (k: string) => p.environment?.[k];
  for (const f of p.configFiles) {
    if (f === "-" || !existsSync(f)) continue;
    let doc: unknown;
    try { doc = yamlLib().parse(readFileSync(f, "utf8")); } catch { continue; }
    const services = (doc as Obj | null)?.services as Obj | undefined;
    if (!services || typeof services !== "object") continue;
    for (const [n, raw] of Object.entries(services)) {
      const ef = (raw as Obj | null)?.env_file;
      if (ef === undefined || ef === null) continue;
      const vars: Record<string, string> = {};
      for (const e of Array.isArray(ef) ? ef : [ef]) {
        const path = typeof e === "string" ? e : (e as Obj)?.path;
        if (typeof path !== "string") continue;
        const abs = resolve(dirname(f), path);
        if (!existsSync(abs)) continue;
        try { Object.assign(vars, parseDotEnv(readFileSync(abs, "utf8"), lookup)); } catch { /* the loader reported it */ }
      }
      out.set(n, vars);
    }
  }
  return out;
}

/** The file behind a secret or config: its bytes, or undefined (external) with a note. */
function fileObject(p: Project, kind: "secrets" | "configs", name: string, notes: string[]): Buffer | undefined {
  const def = p[kind]?.[name];
  if (!def) return undefined;
  if (def.external) { notes.push(`${kind}.${name}: external, not generated (the manifests refer to a ${kind === "secrets" ? "Secret" : "ConfigMap"} named ${kubeName(def.name)} that must exist in the cluster)`); return undefined; }
  if (def.content !== undefined) return Buffer.from(def.content);
  if (def.environment !== undefined) return Buffer.from(p.environment?.[def.environment] ?? "");
  if (def.file) {
    try { return readFileSync(def.file); } catch { notes.push(`${kind}.${name}: cannot read ${def.file}; an empty one is generated`); return Buffer.alloc(0); }
  }
  return Buffer.alloc(0);
}

/** Service keys the generator maps (or reports itself); the loader's warnings name the others. */
const LOADER_WARNINGS_MAPPED = /^services\.[^.]+\.deploy\.(resources|mode|labels|restart_policy)\b/;

export function generate(p: Project, o: GenerateOptions = {}): Generated {
  const notes: string[] = [];
  const docs: { order: number; doc: Obj }[] = [];
  const add = (order: number, doc: Obj) => docs.push({ order, doc });
  const projectLabels = { [LABEL_PROJECT]: kubeName(p.name) };
  const meta = (name: string, extra: Obj = {}) => ({ name, labels: { ...projectLabels, ...(extra.labels as Obj | undefined) }, ...(extra.annotations ? { annotations: extra.annotations } : {}) });

  for (const w of p.warnings) {
    if (LOADER_WARNINGS_MAPPED.test(w)) continue;
    notes.push(w.replace(/is not supported by berth and is ignored/, "is not mapped"));
  }
  // Networks → NetworkPolicies. A cluster has one pod network; when the project has networks of its own, each
  // network's pods carry its label and admit traffic only from pods with the same label (compose's isolation:
  // services reach each other only over a network they share); published ports admit anyone (see below).
  const isolated = Object.keys(p.networks).some((n) => n !== "default");
  const netLabel = (n: string) => `io.berth.compose.network/${kubeName(n)}`;
  if (isolated) {
    for (const [n, net] of Object.entries(p.networks)) {
      if (!Object.values(p.services).some((s) => !s.network_mode && n in s.networks)) continue;
      const sel = { matchLabels: { [netLabel(n)]: "true" } };
      add(5, { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta(kubeName(`net-${n}`)), spec: { podSelector: sel, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: sel }] }] } });
      if (net.internal) notes.push(`networks.${n}.internal: not mapped (the NetworkPolicy net-${kubeName(n)} limits ingress; egress out of the cluster is not limited)`);
      if (net.driver !== "bridge") notes.push(`networks.${n}.driver ${net.driver}: not mapped`);
    }
  }
  // Named volumes → claims.
  const claims = new Map<string, string>();
  for (const [key, v] of Object.entries(p.volumes)) {
    const name = kubeName(key);
    claims.set(key, v.external ? kubeName(v.name) : name);
    if (v.external) { notes.push(`volumes.${key}: external, no PersistentVolumeClaim generated (the manifests claim ${kubeName(v.name)}, which must exist)`); continue; }
    if (v.driver !== "local") notes.push(`volumes.${key}.driver ${v.driver}: not mapped (choose a storageClassName)`);
    add(2, { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: meta(name, { labels: v.labels && Object.fromEntries(Object.entries(v.labels).filter(([k, x]) => validLabel(k, x))) }), spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } });
  }
  // Secrets and configs, one object each.
  const secretNames = new Map<string, string>(), configNames = new Map<string, string>();
  for (const [kind, names] of [["secrets", secretNames], ["configs", configNames]] as const) {
    for (const n of Object.keys(p[kind] ?? {})) {
      const def = p[kind]![n];
      const name = kubeName(def.external ? def.name : `${kind === "secrets" ? "secret" : "config"}-${n}`);
      names.set(n, name);
      const bytes = fileObject(p, kind, n, notes);
      if (bytes === undefined) continue;
      if (kind === "secrets") add(1, { apiVersion: "v1", kind: "Secret", metadata: meta(name), type: "Opaque", data: { [n]: bytes.toString("base64") } });
      else add(1, { apiVersion: "v1", kind: "ConfigMap", metadata: meta(name), ...(isUtf8(bytes) ? { data: { [n]: bytes.toString("utf8") } } : { binaryData: { [n]: bytes.toString("base64") } }) });
    }
  }
  const envFiles = envFileVars(p);
  const dependedOn = new Set(Object.values(p.services).flatMap((s) => Object.keys(s.depends_on)));

  for (const s of Object.values(p.services).sort((a, b) => a.name.localeCompare(b.name))) {
    const name = kubeName(s.name);
    const where = `services.${s.name}`;
    if (name !== s.name) notes.push(`${where}: named ${name} in Kubernetes (object names are DNS labels)`);
    const sel = { [LABEL_SERVICE]: name };
    // Labels: valid Kubernetes labels as labels, the others as annotations.
    const labels: Record<string, string> = {}, annotations: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.labels)) (validLabel(k, v) ? labels : annotations)[k] = v;
    const deploy = (s.deploy ?? {}) as Obj;
    const deployLabels = (deploy.labels && typeof deploy.labels === "object" ? Array.isArray(deploy.labels) ? Object.fromEntries((deploy.labels as string[]).map((x) => [x.split("=")[0], x.split("=").slice(1).join("=")])) : deploy.labels : {}) as Record<string, string>;
    const workloadLabels: Record<string, string> = { ...labels }, workloadAnnotations: Record<string, string> = { ...annotations };
    for (const [k, v] of Object.entries(deployLabels)) (validLabel(k, String(v)) ? workloadLabels : workloadAnnotations)[k] = String(v);

    // The container.
    const c: Obj = { name, image: o.images?.[s.name] ?? s.image ?? `${p.name}-${s.name}` };
    if (s.build && !o.images?.[s.name]) notes.push(`${where}.build: not built (a cluster pulls images; use --push REGISTRY to build and push it); the image ${String(c.image)} is used`);
    if (s.entrypoint?.length) c.command = s.entrypoint;
    if (s.command?.length) c.args = s.command;
    if (s.working_dir) c.workingDir = s.working_dir;
    const fromFile = envFiles.get(s.name) ?? {};
    const inFile = Object.keys(fromFile).filter((k) => s.environment[k] === fromFile[k]);
    if (inFile.length) {
      const cm = kubeName(`${s.name}-env`);
      add(1, { apiVersion: "v1", kind: "ConfigMap", metadata: meta(cm), data: Object.fromEntries(inFile.sort().map((k) => [k, fromFile[k]])) });
      c.envFrom = [{ configMapRef: { name: cm } }];
    }
    const env = Object.entries(s.environment).filter(([k]) => !inFile.includes(k)).sort(([a], [b]) => a.localeCompare(b));
    if (env.length) c.env = env.map(([k, v]) => ({ name: k, value: v }));
    // Ports.
    const containerPorts = new Map<string, Obj>();
    const clusterPorts = new Map<string, Obj>(), publishedPorts: Obj[] = [];
    const proto = (x: string) => x.toUpperCase() === "UDP" ? "UDP" : x.toUpperCase() === "SCTP" ? "SCTP" : "TCP";
    for (const pc of s.ports) {
      const pr = proto(pc.protocol);
      containerPorts.set(`${pc.target}/${pr}`, { containerPort: pc.target, protocol: pr });
      clusterPorts.set(`${pc.target}/${pr}`, { name: `${pc.target}-${pr.toLowerCase()}`, port: pc.target, targetPort: pc.target, protocol: pr });
      if (pc.host_ip) notes.push(`${where}.ports: host_ip ${pc.host_ip} not mapped (a LoadBalancer Service listens on the cluster's addresses)`);
      const hosts = portRange(pc.published);
      if (!hosts.length) notes.push(`${where}.ports: ${pc.target} has no published port; the LoadBalancer Service publishes it on ${pc.target}`);
      for (const h of hosts.length ? hosts : [pc.target]) publishedPorts.push({ name: `${h}-${pr.toLowerCase()}`, port: h, targetPort: pc.target, protocol: pr });
    }
    for (const e of s.expose) {
      const [portPart, protoPart] = e.split("/");
      const pr = proto(protoPart ?? "tcp");
      for (const n of portRange(portPart)) {
        if (!containerPorts.has(`${n}/${pr}`)) containerPorts.set(`${n}/${pr}`, { containerPort: n, protocol: pr });
        if (!clusterPorts.has(`${n}/${pr}`)) clusterPorts.set(`${n}/${pr}`, { name: `${n}-${pr.toLowerCase()}`, port: n, targetPort: n, protocol: pr });
      }
    }
    if (containerPorts.size) c.ports = [...containerPorts.values()];
    // Probes, resources, security.
    if (s.healthcheck) {
      const pr = probe(s.healthcheck);
      if (pr) { c.livenessProbe = pr; c.readinessProbe = pr; }
    }
    const resources = deploy.resources as { limits?: Obj; reservations?: Obj } | undefined;
    if (resources) {
      const r: Obj = {};
      for (const [from, to] of [["limits", "limits"], ["reservations", "requests"]] as const) {
        const x = resources[from];
        if (!x) continue;
        const q: Obj = {};
        if (x.cpus !== undefined) q.cpu = cpuQuantity(x.cpus);
        if (x.memory !== undefined) q.memory = quantity(x.memory);
        for (const k of Object.keys(x)) if (!["cpus", "memory"].includes(k)) notes.push(`${where}.deploy.resources.${from}.${k}: not mapped`);
        if (Object.keys(q).length) r[to] = q;
      }
      for (const k of Object.keys(resources)) if (!["limits", "reservations"].includes(k)) notes.push(`${where}.deploy.resources.${k}: not mapped`);
      if (Object.keys(r).length) c.resources = r;
    }
    const sc: Obj = {};
    if (s.privileged) sc.privileged = true;
    if (s.read_only) sc.readOnlyRootFilesystem = true;
    if (s.cap_add.length || s.cap_drop.length) sc.capabilities = { ...(s.cap_add.length ? { add: s.cap_add.map((x) => x.replace(/^CAP_/i, "").toUpperCase()) } : {}), ...(s.cap_drop.length ? { drop: s.cap_drop.map((x) => x.replace(/^CAP_/i, "").toUpperCase()) } : {}) };
    if (s.user) {
      const m = /^(\d+)(?::(\d+))?$/.exec(s.user);
      if (m) { sc.runAsUser = Number(m[1]); if (m[2]) sc.runAsGroup = Number(m[2]); } else notes.push(`${where}.user: "${s.user}" not mapped (Kubernetes takes a numeric runAsUser)`);
    }
    if (Object.keys(sc).length) c.securityContext = sc;
    if (s.tty) c.tty = true;
    if (s.stdin_open) c.stdin = true;
    if (s.pull_policy) {
      const pp = { always: "Always", never: "Never", missing: "IfNotPresent", if_not_present: "IfNotPresent" }[s.pull_policy];
      if (pp) c.imagePullPolicy = pp; else notes.push(`${where}.pull_policy: ${s.pull_policy} not mapped`);
    }
    for (const so of s.security_opt) notes.push(`${where}.security_opt: ${so} not mapped (use the pod's securityContext)`);
    if (s.stop_signal) notes.push(`${where}.stop_signal: ${s.stop_signal} not mapped (Kubernetes sends SIGTERM)`);
    if (s.init) notes.push(`${where}.init: not mapped (add an init such as tini or catatonit to the image)`);
    if (s.container_name) notes.push(`${where}.container_name: not mapped (Kubernetes names the pods)`);
    if (s.network_mode) notes.push(`${where}.network_mode: ${s.network_mode} not mapped (containers share a network only within one pod${isolated ? "; in no network's NetworkPolicy" : ""})`);
    for (const [n, net] of Object.entries(s.networks)) {
      if (net.aliases.length) notes.push(`${where}.networks.${n}.aliases: ${net.aliases.join(", ")} not mapped (the Service is named ${name})`);
      if (net.ipv4_address) notes.push(`${where}.networks.${n}.ipv4_address: not mapped`);
    }
    if (s.develop) notes.push(`${where}.develop: not mapped (a development-time setting)`);
    for (const k of Object.keys(deploy)) if (!["replicas", "resources", "mode", "labels", "restart_policy"].includes(k) && !k.startsWith("x-")) notes.push(`${where}.deploy.${k}: not mapped`);

    // Volumes: named → claims, anonymous → emptyDir, tmpfs → emptyDir in memory, binds → reported.
    const volumes: Obj[] = [], mounts: Obj[] = [];
    let named = false;
    s.volumes.forEach((m, i) => {
      if (m.type === "bind") { notes.push(`${where}.volumes: bind mount ${m.source}:${m.target} not mapped (a node has no such path: copy the files into the image, or a ConfigMap)`); return; }
      const vn = m.type === "volume" && m.source ? kubeName(`${m.source}`) : `${m.type === "tmpfs" ? "tmpfs" : "anon"}-${i}`;
      if (m.type === "volume" && m.source) { named = true; if (!volumes.some((v) => v.name === vn)) volumes.push({ name: vn, persistentVolumeClaim: { claimName: claims.get(m.source) ?? vn } }); }
      else volumes.push({ name: vn, emptyDir: m.type === "tmpfs" ? { medium: "Memory" } : {} });
      mounts.push({ name: vn, mountPath: m.target, ...(m.read_only ? { readOnly: true } : {}) });
    });
    s.tmpfs.forEach((t, i) => {
      const [path] = t.split(":");
      volumes.push({ name: `tmpfs-x${i}`, emptyDir: { medium: "Memory" } });
      mounts.push({ name: `tmpfs-x${i}`, mountPath: path });
    });
    for (const [kind, refs, names] of [["secrets", s.secrets, secretNames], ["configs", s.configs, configNames]] as const) {
      for (const r of refs) {
        const obj = names.get(r.source)!;
        const vn = kubeName(`${kind === "secrets" ? "secret" : "config"}-${r.source}`);
                const key = r.source;
        const target = kind === "secrets" ? (r.target?.startsWith("/") ? r.target : `/run/secrets/${r.target ?? r.source}`) : (r.target ?? `/${r.source}`);
        const item = { key, path: "f", ...(r.mode !== undefined ? { mode: r.mode } : {}) };
        if (!volumes.some((v) => v.name === vn)) volumes.push({ name: vn, ...(kind === "secrets" ? { secret: { secretName: obj, items: [item] } } : { configMap: { name: obj, items: [item] } }) });
        mounts.push({ name: vn, mountPath: target, subPath: "f", readOnly: true });
        if (r.uid || r.gid) notes.push(`${where}.${kind}.${r.source}: uid/gid not mapped (use the pod's fsGroup)`);
      }
    }
    if (mounts.length) c.volumeMounts = mounts;

    // depends_on: init containers that wait for the dependency's Service.
    const inits: Obj[] = [];
    for (const [d, dep] of Object.entries(s.depends_on).sort(([a], [b]) => a.localeCompare(b))) {
      const dn = kubeName(d);
      const ds = p.services[d];
      const port = ds?.ports[0]?.target ?? (ds?.expose[0] ? Number(ds.expose[0].split(/[/-]/)[0]) : undefined);
      if (dep.condition === "service_completed_successfully") notes.push(`${where}.depends_on.${d}: service_completed_successfully not mapped exactly (the init container waits for its Service's name only)`);
      const script = port
        ? `until nc -w 2 ${dn} ${port} </dev/null; do echo waiting for ${dn}:${port}; sleep 2; done`
        : `until nslookup ${dn} >/dev/null 2>&1; do echo waiting for ${dn}; sleep 2; done`;
      inits.push({ name: kubeName(`wait-for-${d}`), image: o.waitImage ?? "busybox:latest", command: ["sh", "-c", script] });
    }

    // The pod.
    const pod: Obj = {};
    if (inits.length) pod.initContainers = inits;
    pod.containers = [c];
    if (volumes.length) pod.volumes = volumes;
    if (s.hostname) pod.hostname = kubeName(s.hostname);
    if (s.extra_hosts.length) {
      const byIp = new Map<string, string[]>();
      for (const h of s.extra_hosts) {
        const i = h.includes("=") ? h.indexOf("=") : h.indexOf(":");
        const host = h.slice(0, i), ip = h.slice(i + 1).replace(/^\[|\]$/g, "");
        if (ip === "host-gateway") { notes.push(`${where}.extra_hosts: ${host}:host-gateway not mapped`); continue; }
        byIp.set(ip, [...(byIp.get(ip) ?? []), host]);
      }
      if (byIp.size) pod.hostAliases = [...byIp].map(([ip, hostnames]) => ({ ip, hostnames }));
    }
    if (s.dns.length) pod.dnsConfig = { nameservers: s.dns };
    if (s.stop_grace_period) {
      try { pod.terminationGracePeriodSeconds = Math.round(parseGoDuration(s.stop_grace_period) / 1e9); } catch { notes.push(`${where}.stop_grace_period: ${s.stop_grace_period} not mapped`); }
    }
    const rp = deploy.restart_policy as Obj | undefined;
    const restart = rp?.condition === "none" ? "no" : rp?.condition === "on-failure" ? `on-failure${rp.max_attempts ? `:${rp.max_attempts}` : ""}` : s.restart;
    const netLabels = isolated && !s.network_mode ? Object.fromEntries(Object.keys(s.networks).map((n) => [netLabel(n), "true"])) : {};
    const template = { metadata: { labels: { ...projectLabels, ...sel, ...netLabels, ...labels }, ...(Object.keys(annotations).length ? { annotations } : {}) }, spec: pod };
    const wmeta = meta(name, { labels: workloadLabels, annotations: Object.keys(workloadAnnotations).length ? workloadAnnotations : undefined });
    const replicas = s.scale ?? 1;
    if (restart === "no" || restart?.startsWith("on-failure")) {
      if (replicas !== 1) notes.push(`${where}: replicas ${replicas} not mapped for a run-once service (one ${restart === "no" ? "Pod" : "Job"})`);
      if (restart === "no") add(4, { apiVersion: "v1", kind: "Pod", metadata: { ...wmeta, labels: { ...wmeta.labels, ...sel, ...netLabels } }, spec: { ...pod, restartPolicy: "Never" } });
      else {
        const max = Number(restart.split(":")[1] ?? 6);
        add(4, { apiVersion: "batch/v1", kind: "Job", metadata: wmeta, spec: { backoffLimit: max, template: { ...template, spec: { ...pod, restartPolicy: "OnFailure" } } } });
      }
    } else if (deploy.mode === "global") {
      add(4, { apiVersion: "apps/v1", kind: "DaemonSet", metadata: wmeta, spec: { selector: { matchLabels: sel }, template } });
    } else if (named) {
      add(4, { apiVersion: "apps/v1", kind: "StatefulSet", metadata: wmeta, spec: { serviceName: name, replicas, selector: { matchLabels: sel }, template } });
      if (replicas > 1) notes.push(`${where}: ${replicas} replicas share one PersistentVolumeClaim (ReadWriteOnce: one node); use volumeClaimTemplates for a volume each`);
    } else {
      add(4, { apiVersion: "apps/v1", kind: "Deployment", metadata: wmeta, spec: { replicas, selector: { matchLabels: sel }, template } });
    }
    if (deploy.mode !== undefined && deploy.mode !== "global" && deploy.mode !== "replicated") notes.push(`${where}.deploy.mode: ${String(deploy.mode)} not mapped`);
    // Services.
    const statefulNeedsService = named && !(restart === "no" || restart?.startsWith("on-failure")) && deploy.mode !== "global";
    if (clusterPorts.size) add(3, { apiVersion: "v1", kind: "Service", metadata: meta(name), spec: { selector: sel, ports: [...clusterPorts.values()] } });
    else if (dependedOn.has(s.name) || statefulNeedsService) add(3, { apiVersion: "v1", kind: "Service", metadata: meta(name), spec: { clusterIP: "None", selector: sel } });
    if (publishedPorts.length && isolated) {
      add(5, { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: meta(kubeName(`${s.name}-published`)), spec: { podSelector: { matchLabels: sel }, policyTypes: ["Ingress"], ingress: [{ ports: [...new Map(publishedPorts.map((x) => [`${x.targetPort}/${x.protocol}`, { port: x.targetPort, protocol: x.protocol }])).values()] }] } });
    }
    if (publishedPorts.length) add(3, { apiVersion: "v1", kind: "Service", metadata: meta(kubeName(`${s.name}-published`)), spec: { type: "LoadBalancer", selector: sel, ports: publishedPorts } });
  }
  docs.sort((a, b) => a.order - b.order);
  return { docs: docs.map((d) => d.doc), notes };
}

function isUtf8(b: Buffer): boolean {
  try { new TextDecoder("utf-8", { fatal: true }).decode(b); return true; } catch { return false; }
}

/** The manifests as one YAML stream, `---` between documents. */
export function toYaml(docs: Obj[]): string {
  return docs.map((d) => yamlLib().stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join("---\n");
}

/** What `kube generate CONTAINER|POD...` reads of each container: its inspect answer and its image's config. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- inspect answers, read field by field
type Json = Record<string, any>;
export interface LiveContainer { info: Json; imageConfig?: Json }
/** A pod (an infra container's members) or a lone container. */
export interface LivePod { name: string; hostname?: string; ports: Json; containers: LiveContainer[] }

/**
 * Running containers and pods → Pods (Podman's `kube generate`): what the container was created with
 * beyond its image (entrypoint and command, environment, working directory, user), its mounts (volumes →
 * claims, binds → hostPath), published ports (hostPort, and with `service` a LoadBalancer Service),
 * restart policy, health check, limits and security settings. What does not map is in `notes`.
 */
export function generateFromContainers(pods: LivePod[], o: { service?: boolean } = {}): Generated {
  const notes: string[] = [];
  const docs: Obj[] = [];
  const claims = new Set<string>();
  for (const p of pods) {
    const name = kubeName(p.name);
    const containers: Obj[] = [], volumes: Obj[] = [];
    const labels: Record<string, string> = { app: name };
    let restart = "Never";
    for (const { info, imageConfig } of p.containers) {
      const cfg = (info.Config ?? {}) as Json, hc = (info.HostConfig ?? {}) as Json, img = (imageConfig ?? {}) as Json;
      const cname = kubeName(String(info.Name ?? "").replace(/^\//, "").replace(new RegExp(`^${p.name}-`), "")) || "main";
      const where = `container ${String(info.Name ?? "").replace(/^\//, "")}`;
      const c: Obj = { name: cname, image: cfg.Image };
      const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
      if (cfg.Entrypoint?.length && !same(cfg.Entrypoint, img.Entrypoint)) c.command = cfg.Entrypoint;
      if (cfg.Cmd?.length && (!same(cfg.Cmd, img.Cmd) || c.command)) c.args = cfg.Cmd;
      const imageEnv = new Set<string>((img.Env ?? []) as string[]);
      const env = ((cfg.Env ?? []) as string[]).filter((e) => !imageEnv.has(e)).map((e) => ({ name: e.split("=")[0], value: e.slice(e.indexOf("=") + 1) }));
      if (env.length) c.env = env;
      if (cfg.WorkingDir && cfg.WorkingDir !== (img.WorkingDir ?? "")) c.workingDir = cfg.WorkingDir;
      const ports: Obj[] = [];
      const bindings = { ...(hc.PortBindings ?? {}), ...p.ports } as Record<string, { HostIp?: string; HostPort?: string }[] | null>;
      if (p.containers.length === 1 || p.containers[0] === p.containers.find((x) => x.info === info)) {
        for (const [k, bs] of Object.entries(bindings)) {
          const [port, proto = "tcp"] = k.split("/");
          for (const b of bs ?? [{}]) ports.push({ containerPort: Number(port), protocol: proto.toUpperCase(), ...(b.HostPort ? { hostPort: Number(b.HostPort) } : {}), ...(b.HostIp && b.HostIp !== "0.0.0.0" ? { hostIP: b.HostIp } : {}) });
        }
      }
      if (ports.length) c.ports = ports;
      const mounts: Obj[] = [];
      for (const m of (info.Mounts ?? []) as Json[]) {
        const vn = kubeName(m.Type === "volume" ? `${m.Name}` : `${cname}-${String(m.Destination)}`);
        if (m.Type === "volume") {
          if (!volumes.some((v) => v.name === vn)) volumes.push({ name: vn, persistentVolumeClaim: { claimName: kubeName(m.Name) } });
          if (!claims.has(m.Name)) { claims.add(m.Name); docs.push({ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: kubeName(m.Name) }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } }); }
        } else if (m.Type === "bind") {
          volumes.push({ name: vn, hostPath: { path: m.Source } });
          notes.push(`${where}: bind mount ${m.Source} → hostPath (the path must exist on the node)`);
        } else if (m.Type === "tmpfs") volumes.push({ name: vn, emptyDir: { medium: "Memory" } });
        else { notes.push(`${where}: mount of type ${m.Type} at ${m.Destination} not mapped`); continue; }
        mounts.push({ name: vn, mountPath: m.Destination, ...(m.RW === false ? { readOnly: true } : {}) });
      }
      if (mounts.length) c.volumeMounts = mounts;
      if (cfg.Healthcheck?.Test?.length) {
        const pr = probe(cfg.Healthcheck);
        if (pr) c.livenessProbe = pr;
      }
      const sc: Obj = {};
      if (hc.Privileged) sc.privileged = true;
      if (hc.ReadonlyRootfs) sc.readOnlyRootFilesystem = true;
      if (hc.CapAdd?.length || hc.CapDrop?.length) sc.capabilities = { ...(hc.CapAdd?.length ? { add: hc.CapAdd } : {}), ...(hc.CapDrop?.length ? { drop: hc.CapDrop } : {}) };
      if (cfg.User && cfg.User !== (img.User ?? "")) {
        const m = /^(\d+)(?::(\d+))?$/.exec(cfg.User);
        if (m) { sc.runAsUser = Number(m[1]); if (m[2]) sc.runAsGroup = Number(m[2]); } else notes.push(`${where}: user "${cfg.User}" not mapped (Kubernetes takes a numeric runAsUser)`);
      }
      if (Object.keys(sc).length) c.securityContext = sc;
      const limits: Obj = {};
      if (hc.Memory) limits.memory = String(hc.Memory);
      if (hc.NanoCpus) limits.cpu = cpuQuantity(hc.NanoCpus / 1e9);
      if (Object.keys(limits).length) c.resources = { limits };
      if (cfg.Tty) c.tty = true;
      if (cfg.OpenStdin) c.stdin = true;
      const rp = hc.RestartPolicy?.Name ?? "no";
      restart = rp === "always" || rp === "unless-stopped" ? "Always" : rp === "on-failure" ? (restart === "Always" ? "Always" : "OnFailure") : restart;
      for (const [k, v] of Object.entries((cfg.Labels ?? {}) as Record<string, string>)) if (!k.startsWith("io.berth.") && !k.startsWith("com.docker.") && !(img.Labels ?? {})[k] && validLabel(k, v)) labels[k] = v;
      for (const k of ["Dns", "ExtraHosts", "SecurityOpt", "Devices", "Ulimits", "Sysctls"]) if (Array.isArray(hc[k]) ? hc[k].length : hc[k] && Object.keys(hc[k]).length) notes.push(`${where}: ${k} not mapped`);
      containers.push(c);
    }
    const pod: Obj = { apiVersion: "v1", kind: "Pod", metadata: { name, labels }, spec: { ...(p.hostname ? { hostname: kubeName(p.hostname) } : {}), restartPolicy: restart, containers, ...(volumes.length ? { volumes } : {}) } };
    docs.push(pod);
    if (o.service) {
      const sp = containers.flatMap((c) => ((c.ports ?? []) as Obj[]).filter((x) => x.hostPort).map((x) => ({ name: `${x.hostPort}-${String(x.protocol).toLowerCase()}`, port: x.hostPort, targetPort: x.containerPort, protocol: x.protocol })));
      if (sp.length) docs.push({ apiVersion: "v1", kind: "Service", metadata: { name }, spec: { type: "LoadBalancer", selector: { app: name }, ports: sp } });
    }
  }
  return { docs, notes };
}
