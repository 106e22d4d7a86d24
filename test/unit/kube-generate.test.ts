/**
 * compose → Kubernetes: each mapping of src/kube/generate.ts, and every generated manifest validated
 * against the Kubernetes API's OpenAPI schemas (kubernetes-models, generated from Kubernetes 1.34's
 * OpenAPI document; a devDependency used only here).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { parseAllDocuments } from "yaml";
import { loadProject } from "../../src/compose/loader.js";
import { generate, toYaml, kubeName, quantity, cpuQuantity, type Obj } from "../../src/kube/generate.js";

const base = mkdtempSync(join(tmpdir(), "kube-gen-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** Writes the files into a directory of their own and generates from its compose.yaml. */
function gen(compose: string, files: Record<string, string> = {}, images?: Record<string, string>) {
  const dir = join(base, `p${n++}`);
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "compose.yaml"), compose);
  for (const [f, t] of Object.entries(files)) writeFileSync(join(dir, f), t);
  const p = loadProject({ files: [join(dir, "compose.yaml")], projectName: "app", env: {} });
  const g = generate(p, { images });
  return { ...g, find: (kind: string, name: string) => g.docs.find((d) => d.kind === kind && (d.metadata as Obj).name === name) as any };
}

/** The Kubernetes OpenAPI validator of the object's kind; throws with the schema's message if invalid. */
async function validate(doc: Obj): Promise<void> {
  const api = String(doc.apiVersion);
  const path = api === "v1" ? `kubernetes-models/v1/${doc.kind}` : `kubernetes-models/${api}/${doc.kind}`;
  const mod = (await import(path)) as Record<string, new (x: unknown) => { validate(): void }>;
  const Kind = mod[String(doc.kind)] ?? mod.default;
  new Kind(doc).validate();
}

/** Every manifest validated here, for the strict check at the end (unknown fields). */
const seen: Obj[] = [];

async function validateAll(docs: Obj[]): Promise<void> {
  seen.push(...docs);
  for (const d of docs) {
    try { await validate(d); } catch (e) { assert.fail(`${d.kind}/${(d.metadata as Obj).name}: ${(e as Error).message}`); }
    assert.match(String((d.metadata as Obj).name), /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  }
}


test("the validator itself rejects a wrong manifest (so the checks below mean something)", async () => {
  await assert.rejects(validate({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" }, spec: { selector: {}, template: { spec: { containers: [{ name: "a", image: 3 }] } } } }), /image must be string/);
  await assert.rejects(validate({ apiVersion: "v1", kind: "Service", metadata: { name: "x" }, spec: { ports: [{ port: "80" }] } }), /port must be integer/);
});

test("names, sizes and cpus", () => {
  assert.equal(kubeName("My_Service.1"), "my-service-1");
  assert.equal(quantity("512m"), "512Mi");
  assert.equal(quantity("1g"), "1Gi");
  assert.equal(quantity("100000"), "100000");
  assert.equal(cpuQuantity("0.5"), "500m");
  assert.equal(cpuQuantity(2), "2");
});

test("a service → Deployment with replicas, labels, command/args, env, workingDir; published ports → LoadBalancer, container ports → ClusterIP", async () => {
  const g = gen(`services:
  web:
    image: nginx:1.27
    entrypoint: ["/docker-entrypoint.sh"]
    command: ["nginx", "-g", "daemon off;"]
    working_dir: /srv
    environment: { B: "2", A: "1" }
    labels: { tier: front, "com.example.description": "a web server with a long description that is not a label value" }
    ports: ["8080:80", "127.0.0.1:8443:443/tcp"]
    expose: ["9000"]
    deploy: { replicas: 3 }
`);
  const d = g.find("Deployment", "web");
  assert.equal(d.spec.replicas, 3);
  assert.deepEqual(d.spec.selector.matchLabels, { "io.berth.compose.service": "web" });
  assert.equal(d.spec.template.metadata.labels.tier, "front");
  assert.equal(d.metadata.labels.tier, "front");
  assert.match(d.spec.template.metadata.annotations["com.example.description"], /long description/);
  const c = d.spec.template.spec.containers[0];
  assert.deepEqual([c.image, c.command, c.args, c.workingDir], ["nginx:1.27", ["/docker-entrypoint.sh"], ["nginx", "-g", "daemon off;"], "/srv"]);
  assert.deepEqual(c.env, [{ name: "A", value: "1" }, { name: "B", value: "2" }]);
  assert.deepEqual(c.ports.map((p: any) => p.containerPort), [80, 443, 9000]);
  const svc = g.find("Service", "web");
  assert.equal(svc.spec.type, undefined);
  assert.deepEqual(svc.spec.ports.map((p: any) => [p.port, p.targetPort]), [[80, 80], [443, 443], [9000, 9000]]);
  const pub = g.find("Service", "web-published");
  assert.equal(pub.spec.type, "LoadBalancer");
  assert.deepEqual(pub.spec.ports.map((p: any) => [p.port, p.targetPort]), [[8080, 80], [8443, 443]]);
  assert.ok(g.notes.some((x) => /host_ip 127\.0\.0\.1 not mapped/.test(x)), g.notes.join("\n"));
  await validateAll(g.docs);
});

test("a named volume → PersistentVolumeClaim and a StatefulSet (with its governing Service); anonymous → emptyDir; tmpfs → memory; bind → reported", async () => {
  const g = gen(`services:
  db:
    image: redis:7
    volumes: ["data:/data", "/scratch", "./conf:/conf:ro", {type: tmpfs, target: /tmp}]
    tmpfs: ["/run"]
volumes:
  data: {}
`);
  assert.equal(g.find("Deployment", "db"), undefined);
  const s = g.find("StatefulSet", "db");
  assert.equal(s.spec.serviceName, "db");
  assert.equal(g.find("Service", "db").spec.clusterIP, "None");
  const pvc = g.find("PersistentVolumeClaim", "data");
  assert.deepEqual(pvc.spec.accessModes, ["ReadWriteOnce"]);
  const spec = s.spec.template.spec;
  assert.deepEqual(spec.volumes.find((v: any) => v.name === "data").persistentVolumeClaim, { claimName: "data" });
  assert.deepEqual(spec.containers[0].volumeMounts.map((m: any) => m.mountPath), ["/data", "/scratch", "/tmp", "/run"]);
  assert.deepEqual(spec.volumes.filter((v: any) => v.emptyDir).map((v: any) => v.emptyDir), [{}, { medium: "Memory" }, { medium: "Memory" }]);
  assert.ok(g.notes.some((x) => /bind mount .*conf:\/conf not mapped/.test(x)), g.notes.join("\n"));
  await validateAll(g.docs);
});

test("env_file → ConfigMap (envFrom), environment over it stays inline; configs → ConfigMap files; secrets → Secret files under /run/secrets", async () => {
  const g = gen(`services:
  app:
    image: busybox
    env_file: app.env
    environment: { B: over }
    configs: [{ source: conf, target: /etc/app.conf }]
    secrets: [pw, { source: key, target: api.key, mode: 0400 }]
configs:
  conf: { file: ./app.conf }
secrets:
  pw: { file: ./pw.txt }
  key: { environment: KEY }
`, { "app.env": "A=1\nB=2\n", "app.conf": "x = 1\n", "pw.txt": "hunter2" });
  const cm = g.find("ConfigMap", "app-env");
  assert.deepEqual(cm.data, { A: "1" });
  const c = g.find("Deployment", "app").spec.template.spec.containers[0];
  assert.deepEqual(c.envFrom, [{ configMapRef: { name: "app-env" } }]);
  assert.deepEqual(c.env, [{ name: "B", value: "over" }]);
  assert.deepEqual(g.find("ConfigMap", "config-conf").data, { conf: "x = 1\n" });
  assert.equal(Buffer.from(g.find("Secret", "secret-pw").data.pw, "base64").toString(), "hunter2");
  assert.deepEqual(c.volumeMounts.map((m: any) => [m.mountPath, m.subPath, m.readOnly]), [["/run/secrets/pw", "f", true], ["/run/secrets/api.key", "f", true], ["/etc/app.conf", "f", true]]);
  const vols = g.find("Deployment", "app").spec.template.spec.volumes;
  assert.equal(vols.find((v: any) => v.name === "secret-key").secret.items[0].mode, 0o400);
  await validateAll(g.docs);
});

test("healthcheck → liveness and readiness probes; disable → none", async () => {
  const g = gen(`services:
  a:
    image: busybox
    healthcheck: { test: "wget -q -O- localhost:80", interval: 5s, timeout: 2s, retries: 4, start_period: 10s }
  b:
    image: busybox
    healthcheck: { test: ["CMD", "true"] }
  c:
    image: busybox
    healthcheck: { disable: true }
`);
  const ca = g.find("Deployment", "a").spec.template.spec.containers[0];
  assert.deepEqual(ca.livenessProbe, { exec: { command: ["/bin/sh", "-c", "wget -q -O- localhost:80"] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 4, initialDelaySeconds: 10 });
  assert.deepEqual(ca.readinessProbe, ca.livenessProbe);
  const cb = g.find("Deployment", "b").spec.template.spec.containers[0];
  assert.deepEqual(cb.livenessProbe, { exec: { command: ["true"] }, periodSeconds: 30, timeoutSeconds: 30, failureThreshold: 3 });
  assert.equal(g.find("Deployment", "c").spec.template.spec.containers[0].livenessProbe, undefined);
  assert.doesNotMatch(toYaml(g.docs), /&a|\*a/, "no YAML aliases in the output");
  await validateAll(g.docs);
});

test("deploy.resources → resources; restart → Deployment / Job (OnFailure, backoffLimit) / Pod (Never); deploy.mode global → DaemonSet", async () => {
  const g = gen(`services:
  web:
    image: busybox
    restart: unless-stopped
    deploy:
      resources:
        limits: { cpus: "1.5", memory: 512M, pids: 10 }
        reservations: { cpus: "0.25", memory: 64m }
  migrate:
    image: busybox
    restart: on-failure:3
  once:
    image: busybox
    restart: "no"
  agent:
    image: busybox
    deploy: { mode: global }
`);
  assert.deepEqual(g.find("Deployment", "web").spec.template.spec.containers[0].resources, { limits: { cpu: "1500m", memory: "512Mi" }, requests: { cpu: "250m", memory: "64Mi" } });
  assert.ok(g.notes.some((x) => /deploy\.resources\.limits\.pids: not mapped/.test(x)), g.notes.join("\n"));
  const job = g.find("Job", "migrate");
  assert.deepEqual([job.spec.backoffLimit, job.spec.template.spec.restartPolicy], [3, "OnFailure"]);
  assert.equal(g.find("Pod", "once").spec.restartPolicy, "Never");
  assert.ok(g.find("DaemonSet", "agent"));
  assert.equal(g.find("Deployment", "agent"), undefined);
  assert.ok(!g.notes.some((x) => /deploy\.(resources|mode) is not/.test(x)), "the loader's warnings of what kube maps are not repeated");
  await validateAll(g.docs);
});

test("depends_on → init containers waiting for the dependency's Service; a dependency without ports gets a headless Service", async () => {
  const g = gen(`services:
  web:
    image: busybox
    depends_on: { db: { condition: service_healthy }, cache: { condition: service_started } }
  db:
    image: busybox
    expose: ["5432"]
  cache:
    image: busybox
`);
  const inits = g.find("Deployment", "web").spec.template.spec.initContainers;
  assert.deepEqual(inits.map((i: any) => i.name), ["wait-for-cache", "wait-for-db"]);
  assert.match(inits[0].command[2], /nslookup cache/);
  assert.match(inits[1].command[2], /until nc -w 2 db 5432 <\/dev\/null; do/);
  assert.equal(inits[0].image, "busybox:latest");
  assert.equal(g.find("Service", "cache").spec.clusterIP, "None");
  assert.equal(g.find("Service", "db").spec.clusterIP, undefined);
  assert.equal(g.find("Service", "web"), undefined, "nothing depends on web and it has no ports: no Service");
  await validateAll(g.docs);
});

test("security settings, hosts, dns, grace period map; what cannot map is reported, never dropped", async () => {
  const g = gen(`services:
  a:
    image: busybox
    build: .
    user: "1000:1000"
    privileged: true
    read_only: true
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    extra_hosts: ["db.local:10.0.0.5", "gw:host-gateway"]
    dns: [1.1.1.1]
    stop_grace_period: 1m30s
    stop_signal: SIGINT
    init: true
    container_name: the-a
    security_opt: ["no-new-privileges:true"]
    network_mode: host
    tty: true
    stdin_open: true
    pull_policy: always
    develop: { watch: [{ path: ., action: rebuild }] }
    ulimits: { nofile: 1024 }
    deploy: { placement: { constraints: [node.role==manager] } }
  b:
    image: busybox
    user: www-data
    networks: { back: { aliases: [bee] } }
networks:
  back: { internal: true }
`, { Dockerfile: "FROM busybox\n" });
  const spec = g.find("Deployment", "a").spec.template.spec;
  const c = spec.containers[0];
  assert.deepEqual(c.securityContext, { privileged: true, readOnlyRootFilesystem: true, capabilities: { add: ["NET_ADMIN"], drop: ["ALL"] }, runAsUser: 1000, runAsGroup: 1000 });
  assert.deepEqual([c.tty, c.stdin, c.imagePullPolicy], [true, true, "Always"]);
  assert.deepEqual(spec.hostAliases, [{ ip: "10.0.0.5", hostnames: ["db.local"] }]);
  assert.deepEqual(spec.dnsConfig, { nameservers: ["1.1.1.1"] });
  assert.equal(spec.terminationGracePeriodSeconds, 90);
  const expect = [/services\.a\.build: not built .*--push/, /host-gateway not mapped/, /stop_signal: SIGINT not mapped/, /services\.a\.init: not mapped/, /container_name: not mapped/,
    /security_opt: no-new-privileges:true not mapped/, /network_mode: host not mapped/, /develop: not mapped/, /ulimits is not mapped/, /deploy\.placement/, /services\.b\.user: "www-data" not mapped/,
    /networks\.back\.aliases: bee not mapped/, /networks\.back\.internal: not mapped/];
  for (const re of expect) assert.ok(g.notes.some((x) => re.test(x)), `${re} in:\n${g.notes.join("\n")}`);
  await validateAll(g.docs);
});

test("networks → NetworkPolicies: pods of a network admit only its members; published ports admit anyone; one network → none", async () => {
  const g = gen(`services:
  web:
    image: busybox
    ports: ["80:80"]
    networks: [front]
  api:
    image: busybox
    networks: [front, back]
  db:
    image: busybox
    networks: [back]
networks:
  front: {}
  back: {}
`);
  const label = (n: string) => `io.berth.compose.network/${n}`;
  assert.deepEqual(g.find("NetworkPolicy", "net-back").spec, { podSelector: { matchLabels: { [label("back")]: "true" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { [label("back")]: "true" } } }] }] });
  assert.ok(g.find("NetworkPolicy", "net-front"));
  const labels = (n: string) => g.find("Deployment", n).spec.template.metadata.labels;
  assert.deepEqual([labels("api")[label("front")], labels("api")[label("back")], labels("db")[label("front")], labels("web")[label("back")]], ["true", "true", undefined, undefined]);
  assert.deepEqual(g.find("NetworkPolicy", "web-published").spec.ingress, [{ ports: [{ port: 80, protocol: "TCP" }] }]);
  await validateAll(g.docs);
  const plain = gen(`services:\n  a: { image: busybox, ports: ["80:80"] }\n  b: { image: busybox }\n`);
  assert.equal(plain.docs.filter((d) => d.kind === "NetworkPolicy").length, 0);
});

test("--push's images are used by digest; the output is one YAML stream that parses back to the same objects", async () => {
  const g = gen(`services:
  web:
    build: .
    ports: ["5000:5000"]
`, { Dockerfile: "FROM busybox\n" }, { web: "127.0.0.1:5000/app-web@sha256:" + "a".repeat(64) });
  assert.equal(g.find("Deployment", "web").spec.template.spec.containers[0].image, "127.0.0.1:5000/app-web@sha256:" + "a".repeat(64));
  assert.ok(!g.notes.some((x) => /build/.test(x)));
  const back = parseAllDocuments(toYaml(g.docs)).map((d) => d.toJS());
  assert.deepEqual(back, g.docs);
  await validateAll(g.docs);
});

test("the seed application (Flask + Redis) generates valid manifests", async () => {
  const g = gen(`services:
  web:
    build: .
    ports: ["8000:5000"]
    depends_on: [redis]
    environment: { REDIS_HOST: redis }
  redis:
    image: redis:7
    volumes: ["redis-data:/data"]
volumes:
  redis-data: {}
`, { Dockerfile: "FROM busybox\n" });
  assert.deepEqual(g.docs.map((d) => `${d.kind}/${(d.metadata as Obj).name}`).sort(),
    ["Deployment/web", "PersistentVolumeClaim/redis-data", "Service/redis", "Service/web", "Service/web-published", "StatefulSet/redis"]);
  await validateAll(g.docs);
});

test("running containers → Pods: a pod's members in one Pod, the infra's ports on the first, what the image set left out, binds as hostPath (reported)", async () => {
  const { generateFromContainers } = await import("../../src/kube/generate.js");
  const image = { Entrypoint: null, Cmd: ["sh"], Env: ["PATH=/usr/bin"], WorkingDir: "", User: "", Labels: {} };
  const member = (name: string, extra: Record<string, unknown>) => ({
    info: { Name: `/${name}`, Config: { Image: "busybox:latest", Cmd: ["sh"], Env: ["PATH=/usr/bin"], WorkingDir: "", User: "", Labels: { "io.berth.pod": "p", tier: "x" }, ...extra }, HostConfig: { RestartPolicy: { Name: "on-failure" }, PortBindings: {} }, Mounts: [] as unknown[] },
    imageConfig: image,
  });
  const web = member("p-web", { Cmd: ["httpd", "-f"], Env: ["PATH=/usr/bin", "A=1"], User: "nobody" });
  web.info.Mounts = [{ Type: "bind", Source: "/srv/www", Destination: "/www", RW: false }];
  const g = generateFromContainers([{ name: "p", hostname: "p", ports: { "80/tcp": [{ HostIp: "", HostPort: "8080" }] }, containers: [web, member("p-side", {})] }], { service: true });
  const pod = g.docs.find((x) => x.kind === "Pod") as any;
  assert.deepEqual(pod.spec.containers.map((c: any) => c.name), ["web", "side"]);
  assert.deepEqual(pod.spec.containers[0].args, ["httpd", "-f"]);
  assert.equal(pod.spec.containers[1].args, undefined, "the image's own command is not repeated");
  assert.deepEqual(pod.spec.containers[0].env, [{ name: "A", value: "1" }]);
  assert.deepEqual(pod.spec.containers[0].ports, [{ containerPort: 80, protocol: "TCP", hostPort: 8080 }]);
  assert.equal(pod.spec.containers[1].ports, undefined);
  assert.deepEqual(pod.spec.volumes, [{ name: "web-www", hostPath: { path: "/srv/www" } }]);
  assert.deepEqual(pod.spec.containers[0].volumeMounts, [{ name: "web-www", mountPath: "/www", readOnly: true }]);
  assert.deepEqual([pod.spec.restartPolicy, pod.spec.hostname, pod.metadata.labels], ["OnFailure", "p", { app: "p", tier: "x" }]);
  assert.ok(g.notes.some((x) => /bind mount \/srv\/www → hostPath/.test(x)));
  assert.ok(g.notes.some((x) => /user "nobody" not mapped/.test(x)));
  assert.deepEqual((g.docs.find((x) => x.kind === "Service") as any).spec.ports, [{ name: "8080-tcp", port: 8080, targetPort: 80, protocol: "TCP" }]);
  await validateAll(g.docs);
});

test("berth compose kube / kube generate need no daemon: the manifests on stdout, the unmapped on stderr", () => {
  const dir = join(base, "cli");
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "compose.yaml"), "services:\n  a:\n    image: busybox\n    volumes: [\"./x:/x\"]\n");
  const bin = join(import.meta.dirname, "../../bin/berth");
  for (const args of [["compose", "kube"], ["kube", "generate", "-f", join(dir, "compose.yaml")]]) {
    const r = spawnSync(process.execPath, [bin, "-H", `unix://${join(dir, "no-daemon.sock")}`, ...args], { cwd: dir, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /kind: Deployment\n/);
    assert.match(r.stderr, /bind mount .*\/x:\/x not mapped/);
  }
});

test("no unknown field in any manifest above: each one type-checks as a literal of its kind's interface (generated from the same OpenAPI)", () => {
  // The schema validators accept unknown fields (as a server without strict validation does); TypeScript's
  // excess-property check on a literal does not: a misspelt field anywhere in a manifest fails here.
  assert.ok(seen.length > 40, `${seen.length} manifests`);
  const repo = join(import.meta.dirname, "../..");
  const dir = mkdtempSync(join(repo, "node_modules", ".kube-strict-"));
  try {
    const kinds = [...new Set(seen.map((d) => `${d.apiVersion}|${d.kind}`))];
    const imports = kinds.map((k) => { const [api, kind] = k.split("|"); return `import type { I${kind} } from "kubernetes-models/${api === "v1" ? "v1" : api}/${kind}";`; });
    const body = seen.map((d, i) => `export const m${i}: I${d.kind} = ${JSON.stringify(d)};`);
    writeFileSync(join(dir, "manifests.ts"), [...imports, ...body].join("\n") + "\n");
    const r = spawnSync(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", join(dir, "manifests.ts")], { encoding: "utf8", cwd: repo });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
