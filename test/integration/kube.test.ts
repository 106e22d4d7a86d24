/**
 * `berth kube play` and `berth kube generate --push` against a real berthd: a pod of two containers
 * talking over localhost (ConfigMap and Secret as files and env), Jobs run to completion (and one that
 * fails past its backoffLimit), a Deployment behind Services reached on the host's published port and
 * by name from another pod, unsupported kinds reported, --down leaving nothing of the play, and the
 * round trip: a compose project → kube generate --push to `berth registry serve` on loopback → kube
 * play of that output → the application answers on its published port. Traffic only to loopback.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, until, freePort, type Result } from "./harness.js";

const d = new Daemon();
const work = mkdtempSync(join(tmpdir(), "berth-kube-it-"));

before(async () => { await d.start(); await d.bootstrap(); });
after(async () => { try { await d.stop(); } finally { rmSync(work, { recursive: true, force: true }); } });

function ok(r: Result, what: string): Result {
  assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);
  return r;
}

function file(name: string, text: string): string {
  const p = join(work, name);
  writeFileSync(p, text);
  return p;
}

async function httpGet(port: number): Promise<string | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    return r.ok ? await r.text() : undefined;
  } catch { return undefined; }
}

/** What is left with the play's label: containers, volumes, networks (names). */
function leftovers(play: string): string[] {
  const f = `label=io.berth.kube.play=${play}`;
  return [
    ...d.berth(["ps", "-a", "--filter", f, "--format", "{{.Names}}"]).stdout.split("\n"),
    ...d.berth(["volume", "ls", "--filter", f, "--format", "{{.Name}}"]).stdout.split("\n"),
    ...d.berth(["network", "ls", "--filter", f, "--format", "{{.Name}}"]).stdout.split("\n"),
  ].filter(Boolean);
}

test("a pod of two containers talking over localhost; ConfigMap and Secret as files and env; --down leaves nothing", async () => {
  const play = `duo${process.pid}`;
  const f = file(`${play}.yaml`, `apiVersion: v1
kind: ConfigMap
metadata: { name: site }
data:
  index.html: "hello from the pod\\n"
  greeting: hi
---
apiVersion: v1
kind: Secret
metadata: { name: creds }
type: Opaque
data: { password: ${Buffer.from("s3cret").toString("base64")} }
---
apiVersion: v1
kind: Pod
metadata: { name: ${play}, labels: { app: ${play} } }
spec:
  containers:
    - name: server
      image: busybox:latest
      command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
      volumeMounts: [{ name: www, mountPath: /www }]
    - name: client
      image: busybox:latest
      command: ["sh", "-c"]
      args: ["until wget -q -O /tmp/got http://localhost:8080/; do sleep 0.2; done; sleep 3600"]
      env:
        - { name: GREETING, valueFrom: { configMapKeyRef: { name: site, key: greeting } } }
        - { name: PLAIN, value: "x-$(GREETING)" }
      volumeMounts: [{ name: creds, mountPath: /run/secrets/db, readOnly: true }]
  volumes:
    - { name: www, configMap: { name: site } }
    - { name: creds, secret: { secretName: creds, defaultMode: 0400 } }
`);
  try {
    const r = ok(d.berth(["kube", "play", f]), "kube play");
    assert.match(r.stdout, new RegExp(`Pod ${play}  Started`));
    // The client reached the server over the pod's localhost.
    const got = await until("the client's download", () => {
      const x = d.berth(["exec", `${play}-client`, "cat", "/tmp/got"]);
      return x.code === 0 && x.stdout;
    }, 30_000);
    assert.equal(got, "hello from the pod\n");
    assert.equal(ok(d.berth(["exec", `${play}-client`, "sh", "-c", "echo $GREETING $PLAIN"]), "env").stdout, "hi x-hi\n");
    const secret = ok(d.berth(["exec", `${play}-client`, "sh", "-c", "cat /run/secrets/db/password; stat -c %a /run/secrets/db/password"]), "secret").stdout;
    assert.equal(secret, "s3cret400\n");
    // One network namespace: the client's and the infra container's are the same, and the infra holds the pod's hostname.
    const infra = JSON.parse(ok(d.berth(["inspect", `${play}-infra`]), "inspect").stdout)[0];
    const client = JSON.parse(ok(d.berth(["inspect", `${play}-client`]), "inspect").stdout)[0];
    assert.equal(client.HostConfig.NetworkMode, `container:${infra.Id}`);
    assert.equal(client.HostConfig.IpcMode, `container:${infra.Id}`);
    assert.equal(infra.Config.Hostname, play);
    // Playing it again is refused while it runs.
    const again = d.berth(["kube", "play", f]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already running .*--replace/);
    ok(d.berth(["kube", "play", "--replace", f]), "kube play --replace");
    await until("the client after --replace", () => d.berth(["exec", `${play}-client`, "cat", "/tmp/got"]).code === 0, 30_000);
  } finally {
    ok(d.berth(["kube", "play", "--down", f]), "kube play --down");
  }
  assert.deepEqual(leftovers(play), []);
});

test("Jobs run to completion (--wait); one that keeps failing stops at its backoffLimit and fails the play", async () => {
  const play = `jobs${process.pid}`;
  const f = file(`${play}.yaml`, `apiVersion: batch/v1
kind: Job
metadata: { name: ${play}-ok }
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{ name: main, image: busybox:latest, command: ["sh", "-c", "echo job done"] }]
---
apiVersion: batch/v1
kind: Job
metadata: { name: ${play}-bad }
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{ name: main, image: busybox:latest, command: ["sh", "-c", "echo try; exit 3"] }]
`);
  try {
    const r = d.berth(["kube", "play", "--wait", f], { timeout: 120_000 });
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Job ${play}-ok  Completed`));
    assert.match(r.stdout, new RegExp(`Job ${play}-bad  Failed`));
    assert.equal(ok(d.berth(["logs", `${play}-ok-main`]), "logs").stdout, "job done\n");
    const bad = JSON.parse(ok(d.berth(["inspect", `${play}-bad-main`]), "inspect").stdout)[0];
    assert.deepEqual([bad.State.Status, bad.State.ExitCode, bad.RestartCount], ["exited", 3, 2]);
    assert.equal(ok(d.berth(["logs", `${play}-bad-main`]), "logs").stdout, "try\ntry\ntry\n");
  } finally {
    ok(d.berth(["kube", "down", f]), "kube down");
  }
  assert.deepEqual(leftovers(play), []);
});

test("a Deployment behind Services: on the published port from the host, by name from another pod; unsupported kinds and fields reported", async () => {
  const play = `dep${process.pid}`;
  const port = await freePort();
  const f = file(`${play}.yaml`, `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: httpd
          image: busybox:latest
          command: ["sh", "-c", "mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 80 -h /www"]
          ports: [{ containerPort: 80, name: http }]
          readinessProbe: { exec: { command: ["true"] }, periodSeconds: 1 }
          lifecycle: { preStop: { exec: { command: ["true"] } } }
          resources: { limits: { memory: 64Mi, cpu: 500m }, requests: { memory: 32Mi, cpu: 250m, ephemeral-storage: 1Gi } }
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Service
metadata: { name: web-public }
spec:
  type: LoadBalancer
  selector: { app: web }
  ports: [{ port: ${port}, targetPort: 80 }]
---
apiVersion: v1
kind: Pod
metadata: { name: ${play}-client }
spec:
  containers:
    - name: c
      image: busybox:latest
      command: ["sh", "-c", "until wget -q -O /tmp/got http://web/; do sleep 0.2; done; sleep 3600"]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: web }
spec: {}
`);
  try {
    const r = ok(d.berth(["kube", "play", "--name", play, f]), "kube play");
    assert.match(r.stderr, /Ingress\/web: kind Ingress is not supported/);
    assert.match(r.stderr, /containers\[httpd\]\.lifecycle not supported/);
    assert.match(r.stdout, /Pod web-0  Started/);
    assert.match(r.stdout, /Pod web-1  Started/);
    assert.equal(await until("the published port", () => httpGet(port), 30_000), "served\n");
    const byName = await until("the client's download by the Service's name", () => {
      const x = d.berth(["exec", `${play}-client-c`, "cat", "/tmp/got"]);
      return x.code === 0 && x.stdout;
    }, 30_000);
    assert.equal(byName, "served\n");
    // Probes became health checks.
    const h = JSON.parse(ok(d.berth(["inspect", "web-0-httpd"]), "inspect").stdout)[0].Config.Healthcheck;
    assert.deepEqual([h.Test, h.Interval], [["CMD", "true"], 1e9]);
    // Limits and requests became the container's resources.
    const hc = JSON.parse(ok(d.berth(["inspect", "web-0-httpd"]), "inspect").stdout)[0].HostConfig;
    assert.deepEqual([hc.Memory, hc.NanoCpus, hc.MemoryReservation, hc.CpuShares], [64 * 1024 * 1024, 5e8, 32 * 1024 * 1024, 256]);
    assert.match(r.stderr, /resources\.requests\.ephemeral-storage not supported/);
  } finally {
    ok(d.berth(["kube", "play", "--down", "--name", play, f]), "kube play --down");
  }
  assert.deepEqual(leftovers(play), []);
  assert.equal(await httpGet(port), undefined);
});

test("round trip: compose project → kube generate --push to a local registry → kube play → it answers on the published port", async () => {
  const dir = join(work, "rt");
  const project = `rt${process.pid}`;
  const [regPort, webPort] = [await freePort(), await freePort()];
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "compose.yaml"), `name: ${project}
services:
  web:
    build: .
    ports: ["${webPort}:8080"]
    depends_on: [store]
  store:
    image: busybox:latest
    command: ["sh", "-c", "mkdir -p /data/www; n=$$(cat /data/n 2>/dev/null || echo 0); echo $$((n+1)) > /data/n; cp /data/n /data/www/index.html; exec httpd -f -p 9000 -h /data/www"]
    expose: ["9000"]
    volumes: ["data:/data"]
volumes:
  data: {}
`);
  writeFileSync(join(dir, "Dockerfile"), `FROM busybox:latest
CMD ["sh", "-c", "while :; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\nstore says %s\\n' \\"$(wget -q -O- http://store:9000/)\\" | nc -l -p 8080; done"]
`);
  let reg: ChildProcess | undefined;
  const out = join(dir, "k8s.yaml");
  try {
    reg = spawn(process.execPath, [BERTH, "registry", "serve", "--addr", `127.0.0.1:${regPort}`, "--root", join(work, "registry")], { stdio: "ignore" });
    await until("the registry", async () => (await fetch(`http://127.0.0.1:${regPort}/v2/`).catch(() => undefined))?.status === 200, 15_000);
    const g = ok(d.berth(["compose", "-f", join(dir, "compose.yaml"), "kube", "--push", `127.0.0.1:${regPort}`, "-o", out], { timeout: 180_000 }), "compose kube --push");
    assert.match(g.stderr, new RegExp(`Pushed 127\\.0\\.0\\.1:${regPort}/${project}-web@sha256:[0-9a-f]{64}`));
    const yaml = readFileSync(out, "utf8");
    assert.match(yaml, new RegExp(`image: 127\\.0\\.0\\.1:${regPort}/${project}-web@sha256:[0-9a-f]{64}`));
    assert.match(yaml, /kind: StatefulSet/);
    // The cluster (here: the same daemon, without the local images) pulls what the manifest names.
    ok(d.berth(["rmi", `127.0.0.1:${regPort}/${project}-web:latest`, `${project}-web`]), "rmi");
    ok(d.berth(["kube", "play", out], { timeout: 120_000 }), "kube play");
    assert.equal(await until("the application on its published port", () => httpGet(webPort), 60_000), "store says 1\n");
    assert.ok(leftovers("k8s").includes("data"), "the claim became a volume of the play");
  } finally {
    ok(d.berth(["kube", "play", "--down", out]), "kube play --down");
    reg?.kill();
  }
  assert.deepEqual(leftovers("k8s"), []);
});

test("berth pod create/ps/inspect/stop/start/rm and run --pod: members share the infra container's network and published port", async () => {
  const pod = `pod${process.pid}`;
  const port = await freePort();
  try {
    const id = ok(d.berth(["pod", "create", "--name", pod, "-p", `127.0.0.1:${port}:80`, "--label", "team=a"]), "pod create").stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(d.berth(["pod", "create", "--name", pod]).code, 125, "a second pod of the same name is refused");
    ok(d.berth(["run", "-d", "--pod", pod, "--name", `${pod}-web`, "busybox:latest", "sh", "-c", "mkdir -p /www && echo pod-web > /www/index.html && exec httpd -f -p 80 -h /www"]), "run --pod");
    // Another member reaches it over localhost; the host on the pod's published port.
    const got = await until("the member over localhost", () => {
      const r = d.berth(["run", "--rm", "--pod", pod, "busybox:latest", "wget", "-q", "-O-", "http://localhost:80/"]);
      return r.code === 0 && r.stdout;
    }, 30_000);
    assert.equal(got, "pod-web\n");
    assert.equal(await until("the pod's published port", () => httpGet(port), 30_000), "pod-web\n");
    const ps = ok(d.berth(["pod", "ps", "--format", "{{.Name}} {{.Status}} {{.NumberOfContainers}}"]), "pod ps").stdout.split("\n");
    assert.ok(ps.includes(`${pod} Running 2`), ps.join("\n"));
    const info = JSON.parse(ok(d.berth(["pod", "inspect", pod]), "pod inspect").stdout)[0];
    assert.deepEqual([info.Name, info.Id, info.Hostname, info.Labels, info.NumContainers], [pod, id, pod, { team: "a" }, 2]);
    assert.deepEqual(info.Containers.map((c: { Name: string }) => c.Name).sort(), [`${pod}-infra`, `${pod}-web`]);
    ok(d.berth(["pod", "stop", "-t", "1", pod]), "pod stop");
    assert.ok(d.berth(["pod", "ps", "--format", "{{.Name}} {{.Status}}"]).stdout.split("\n").includes(`${pod} Exited`));
    ok(d.berth(["pod", "start", pod]), "pod start");
    assert.equal(await until("the pod after start", () => httpGet(port), 30_000), "pod-web\n");
    const rm = d.berth(["pod", "rm", pod]);
    assert.equal(rm.code, 125);
    assert.match(rm.stderr, /running containers/);
  } finally {
    d.berth(["pod", "rm", "-f", pod]);
  }
  assert.deepEqual(d.berth(["ps", "-a", "--filter", `label=io.berth.pod=${pod}`, "--format", "{{.Names}}"]).stdout, "");
  const none = d.berth(["run", "--rm", "--pod", pod, "busybox:latest", "true"]);
  assert.equal(none.code, 125);
  assert.match(none.stderr, /no such pod/);
});

test("kube generate CONTAINER: a running container → a valid Pod (and Service with -s) that kube play runs again", async () => {
  const name = `live${process.pid}`;
  const port = await freePort();
  const out = join(work, `${name}.yaml`);
  try {
    ok(d.berth(["run", "-d", "--name", name, "-p", `${port}:80`, "-e", "MSG=from-live", "-v", `${name}-vol:/data`, "--restart", "always", "busybox:latest",
      "sh", "-c", "mkdir -p /www && echo $MSG > /www/index.html && exec httpd -f -p 80 -h /www"]), "run");
    const g = ok(d.berth(["kube", "generate", "-s", "-o", out, name]), "kube generate");
    assert.equal(g.stderr, "");
    const docs = (await import("yaml")).parseAllDocuments(readFileSync(out, "utf8")).map((x) => x.toJS());
    assert.deepEqual(docs.map((x) => `${x.kind}/${x.metadata.name}`), [`PersistentVolumeClaim/${name}-vol`, `Pod/${name}`, `Service/${name}`]);
    const c = docs[1].spec.containers[0];
    assert.deepEqual([c.image, c.env, c.ports, docs[1].spec.restartPolicy], ["busybox:latest", [{ name: "MSG", value: "from-live" }], [{ containerPort: 80, protocol: "TCP", hostPort: port }], "Always"]);
    for (const x of docs) {
      const mod = await import(x.apiVersion === "v1" ? `kubernetes-models/v1/${x.kind}` : `kubernetes-models/${x.apiVersion}/${x.kind}`);
      new mod[x.kind](x).validate();
    }
    ok(d.berth(["rm", "-f", name]), "rm");
    ok(d.berth(["volume", "rm", `${name}-vol`]), "volume rm");
    ok(d.berth(["kube", "play", out]), "kube play");
    assert.equal(await until("the played pod on its port", () => httpGet(port), 30_000), "from-live\n");
  } finally {
    d.berth(["kube", "play", "--down", out]);
    d.berth(["rm", "-f", name]);
    d.berth(["volume", "rm", `${name}-vol`]);
  }
  assert.deepEqual(leftovers(name), []);
});
