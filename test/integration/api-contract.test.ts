/**
 * The Engine API's contract, as dockerd 20.10 answers (its answers were
 * recorded on this machine with curl on /var/run/docker.sock and are
 * hard-coded here): filters (label values AND, one key's values OR, keys
 * AND) on every list, prune and /events; swarm and plugin routes as an
 * engine not in a swarm and with no plugins; /info, /version and image
 * inspect with every key dockerd has; GET /containers/{id}/attach/ws over a
 * raw websocket client; GET /distribution/{name}/json against a local
 * registry; bad create bodies refused with dockerd's words, creating nothing.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { randomBytes, createHash } from "node:crypto";
import { Daemon, api, sleep } from "./harness.js";

const d = new Daemon();
let work = "";
let registry: ChildProcess | undefined;
let regPort = 0;

const q = (f: Record<string, string[]>) => encodeURIComponent(JSON.stringify(f));
const json = <T = unknown>(r: { body: string }): T => JSON.parse(r.body) as T;

function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "berth-apic-"));
  regPort = await freePort();
  writeFileSync(join(work, "config.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/storage\nhttp:\n  addr: 127.0.0.1:${regPort}\n`);
  registry = spawn("docker-registry", ["serve", join(work, "config.yml")], { stdio: "ignore" });
  await d.start();
  await d.bootstrap();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !(await fetch(`http://127.0.0.1:${regPort}/v2/`).then((r) => r.ok, () => false))) await sleep(100);
});

after(async () => {
  registry?.kill("SIGTERM");
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

// ------------------------------------------------------------------ filters

test("filters: two labels AND on containers, volumes, networks, images; one key's values OR; prune's label! as dockerd", async () => {
  for (const [n, labels] of [["bf1", ["bft=1", "a=1"]], ["bf2", ["bft=1", "a=1", "b=2"]], ["bf3", ["bft=1"]]] as const) {
    assert.equal(d.berth(["create", "--name", n, ...labels.flatMap((l) => ["-l", l]), "busybox", "true"]).code, 0);
    assert.equal(d.berth(["volume", "create", ...labels.flatMap((l) => ["--label", l]), `v${n}`]).code, 0);
    assert.equal(d.berth(["network", "create", ...labels.flatMap((l) => ["--label", l]), `n${n}`]).code, 0);
  }
  const both = q({ label: ["a=1", "b=2"] });
  // dockerd: ps -a --filter label=a=1 --filter label=b=2 → bf2 only.
  const ps = json<{ Names: string[] }[]>(await api(d.sock, "GET", `/containers/json?all=1&filters=${both}`));
  assert.deepEqual(ps.map((c) => c.Names[0]), ["/bf2"]);
  // dockerd: --filter name=bf1 --filter name=bf3 → both (OR); name=bf + label=b → bf2 (AND across keys).
  const names = json<{ Names: string[] }[]>(await api(d.sock, "GET", `/containers/json?all=1&filters=${q({ name: ["bf1", "bf3"] })}`)).map((c) => c.Names[0]).sort();
  assert.deepEqual(names, ["/bf1", "/bf3"]);
  assert.deepEqual(json<{ Names: string[] }[]>(await api(d.sock, "GET", `/containers/json?all=1&filters=${q({ name: ["bf"], label: ["b"] })}`)).map((c) => c.Names[0]), ["/bf2"]);
  const vols = json<{ Volumes: { Name: string }[] }>(await api(d.sock, "GET", `/volumes?filters=${both}`)).Volumes.map((v) => v.Name);
  assert.deepEqual(vols, ["vbf2"]);
  const nets = json<{ Name: string }[]>(await api(d.sock, "GET", `/networks?filters=${both}`)).map((n) => n.Name);
  assert.deepEqual(nets, ["nbf2"]);
  // Images: two commits with labels.
  for (const [n, ch] of [["img1", ["LABEL a=1"]], ["img2", ["LABEL a=1 b=2"]]] as const) {
    const r = await api(d.sock, "POST", `/commit?container=bf3&repo=apic/${n}&${ch.map((c) => `changes=${encodeURIComponent(c)}`).join("&")}`, "{}");
    assert.equal(r.status, 201, r.body);
  }
  const imgs = json<{ RepoTags: string[] }[]>(await api(d.sock, "GET", `/images/json?filters=${both}`)).map((i) => i.RepoTags[0]);
  assert.deepEqual(imgs, ["apic/img2:latest"]);
  // label! is not a list filter (dockerd: 400 on each list).
  for (const p of ["/containers/json", "/images/json", "/volumes", "/networks"]) {
    const r = await api(d.sock, "GET", `${p}?filters=${q({ "label!": ["a"] })}`);
    assert.equal(r.status, 400, p);
    assert.equal(json<{ message: string }>(r).message, "Invalid filter 'label!'");
  }
  // dockerd: container prune --filter label=bft=1 --filter label!=a --filter label!=b=2 deletes bf1 and bf3, keeps bf2.
  const pr = json<{ ContainersDeleted: string[] }>(await api(d.sock, "POST", `/containers/prune?filters=${q({ label: ["bft=1"], "label!": ["a", "b=2"] })}`));
  assert.equal(pr.ContainersDeleted.length, 2);
  assert.deepEqual(json<{ Names: string[] }[]>(await api(d.sock, "GET", `/containers/json?all=1&filters=${q({ label: ["bft=1"] })}`)).map((c) => c.Names[0]), ["/bf2"]);
  assert.equal(d.berth(["rm", "-f", "bf2"]).code, 0);
  assert.equal(d.berth(["volume", "rm", "vbf1", "vbf2", "vbf3"]).code, 0);
  assert.equal(d.berth(["network", "rm", "nbf1", "nbf2", "nbf3"]).code, 0);
  assert.equal(d.berth(["rmi", "apic/img1", "apic/img2"]).code, 0);
});

test("events: label values AND, unknown keys ignored (as dockerd's /events)", async () => {
  // Labels of this test's own: the window (since one second ago) also holds the events of the test before.
  const tok = randomBytes(4).toString("hex");
  const since = Math.floor(Date.now() / 1000) - 1;
  try {
    for (const [n, labels] of [["ev1", [`ev=${tok}`]], ["ev2", [`ev=${tok}`, `ev2=${tok}`]]] as const) {
      assert.equal(d.berth(["create", "--name", n, ...labels.flatMap((l) => ["-l", l]), "busybox", "true"]).code, 0);
    }
    const until = Math.floor(Date.now() / 1000) + 1;
    const evs = (f: Record<string, string[]>) => api(d.sock, "GET", `/events?since=${since}&until=${until}&filters=${q(f)}`)
      .then((r) => r.body.split("\n").filter(Boolean).map((l) => JSON.parse(l) as { Actor: { Attributes: Record<string, string> }; Action: string }));
    const both = await evs({ type: ["container"], event: ["create"], label: [`ev=${tok}`, `ev2=${tok}`] });
    assert.deepEqual(both.map((e) => e.Actor.Attributes.name), ["ev2"]);
    const one = await evs({ type: ["container"], event: ["create"], label: [`ev=${tok}`] });
    assert.deepEqual(one.map((e) => e.Actor.Attributes.name).sort(), ["ev1", "ev2"]);
    const either = await evs({ type: ["container"], event: ["create"], container: ["ev1", "ev2"] });
    assert.deepEqual(either.map((e) => e.Actor.Attributes.name).sort(), ["ev1", "ev2"]);
    const unknown = await api(d.sock, "GET", `/events?since=${since}&until=${until}&filters=${q({ bogus: ["x"], type: ["container"], event: ["create"] })}`);
    assert.equal(unknown.status, 200);
  } finally {
    d.berth(["rm", "-f", "ev1", "ev2"]);
  }
});

// ------------------------------------------------------------------ swarm, plugins, session, build

const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

test("swarm, nodes, services, tasks, secrets, configs answer as a dockerd not in swarm mode", async () => {
  const cases: [string, string, number, string, string?][] = [
    ["GET", "/swarm", 503, NOT_MANAGER], ["GET", "/swarm/unlockkey", 503, NOT_MANAGER], ["POST", "/swarm/unlock", 503, NOT_MANAGER, "{}"],
    ["POST", "/swarm/leave", 503, "This node is not part of a swarm"],
    ["POST", "/swarm/init", 400, 'invalid ListenAddr "": invalid empty address', "{}"],
    ["POST", "/swarm/join", 400, "at least 1 RemoteAddr is required to join", '{"ListenAddr":"0.0.0.0:2377"}'],
    ["POST", "/swarm/update", 400, `invalid swarm version '': strconv.ParseUint: parsing "": invalid syntax`, "{}"],
    ["POST", "/swarm/update?version=1", 503, NOT_MANAGER, "{}"],
    ["GET", "/nodes", 503, NOT_MANAGER], ["GET", "/nodes/x", 503, NOT_MANAGER], ["DELETE", "/nodes/x", 503, NOT_MANAGER],
    ["POST", "/nodes/x/update", 400, `invalid node version '': strconv.ParseUint: parsing "": invalid syntax`, "{}"],
    ["GET", "/services", 503, NOT_MANAGER], ["POST", "/services/create", 503, NOT_MANAGER, "{}"], ["GET", "/services/x", 503, NOT_MANAGER],
    ["DELETE", "/services/x", 503, NOT_MANAGER], ["POST", "/services/x/update?version=1", 503, NOT_MANAGER, "{}"],
    ["GET", "/services/x/logs?stdout=1", 503, NOT_MANAGER],
    ["GET", "/tasks", 503, NOT_MANAGER], ["GET", "/tasks/x", 503, NOT_MANAGER], ["GET", "/tasks/x/logs?stdout=1", 503, NOT_MANAGER],
    ["GET", "/secrets", 503, NOT_MANAGER], ["POST", "/secrets/create", 503, NOT_MANAGER, "{}"], ["GET", "/secrets/x", 503, NOT_MANAGER],
    ["DELETE", "/secrets/x", 503, NOT_MANAGER], ["POST", "/secrets/x/update", 400, "invalid secret version", "{}"],
    ["GET", "/configs", 503, NOT_MANAGER], ["POST", "/configs/create", 503, NOT_MANAGER, "{}"], ["GET", "/configs/x", 503, NOT_MANAGER],
    ["DELETE", "/configs/x", 503, NOT_MANAGER], ["POST", "/configs/x/update?version=2", 503, NOT_MANAGER, "{}"],
  ];
  for (const [m, p, status, message, body] of cases) {
    const r = await api(d.sock, m, `/v1.41${p}`, body);
    assert.equal(r.status, status, `${m} ${p}: ${r.body}`);
    assert.equal(json<{ message: string }>(r).message, message, `${m} ${p}`);
  }
  // The docker CLI shows dockerd's words.
  const ls = d.docker(["node", "ls"]);
  assert.notEqual(ls.code, 0);
  assert.match(ls.stderr, /This node is not a swarm manager/);
  assert.match(d.docker(["info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout, /^inactive$/m);
});

test("plugins as an engine with none; session and build prune as dockerd", async () => {
  const r = await api(d.sock, "GET", "/v1.41/plugins");
  assert.equal(r.status, 200);
  assert.deepEqual(json(r), []);
  for (const [m, p, status, message] of [
    ["GET", "/plugins/x/json", 404, 'plugin "x" not found'], ["GET", "/plugins/vieux/sshfs:latest/json", 404, 'plugin "vieux/sshfs:latest" not found'],
    ["DELETE", "/plugins/x", 404, 'plugin "x" not found'], ["POST", "/plugins/x/enable?timeout=0", 404, 'plugin "x" not found'],
    ["POST", "/plugins/x/disable", 404, 'plugin "x" not found'], ["POST", "/plugins/x/upgrade", 404, 'plugin "x:latest" not found'],
    ["GET", "/plugins?filters=" + q({ foo: ["a"] }), 400, "Invalid filter 'foo'"],
    ["POST", "/session", 400, "no upgrade proto in request"],
    ["POST", "/build/prune?filters=" + q({ foo: ["a"] }), 400, "failed to prune build cache: Invalid filter 'foo'"],
  ] as const) {
    const a = await api(d.sock, m, `/v1.41${p}`);
    assert.equal(a.status, status, `${m} ${p}: ${a.body}`);
    assert.equal(json<{ message: string }>(a).message, message);
  }
  assert.deepEqual(json(await api(d.sock, "GET", "/v1.41/plugins/privileges?remote=localhost:1/x")), []);
  const bp = await api(d.sock, "POST", "/v1.41/build/prune?all=1");
  assert.equal(bp.status, 200);
  const body = json<Record<string, unknown>>(bp);
  assert.ok("CachesDeleted" in body && typeof body.SpaceReclaimed === "number", bp.body);
  assert.equal(d.docker(["plugin", "ls", "-q"]).stdout, "");
});

test("images/search: dockerd's checks of limit and filters", async () => {
  for (const [qs, message] of [
    ["term=busybox&limit=0", "Limit 0 is outside the range of [1, 100]"], ["term=busybox&limit=101", "Limit 101 is outside the range of [1, 100]"],
    [`term=busybox&filters=${q({ foo: ["a"] })}`, "Invalid filter 'foo'"], [`term=busybox&filters=${q({ "is-official": ["a"] })}`, "Invalid filter 'is-official=[a]'"],
    [`term=busybox&filters=${q({ stars: ["a"] })}`, "Invalid filter 'stars=a'"],
  ]) {
    const r = await api(d.sock, "GET", `/v1.41/images/search?${qs}`);
    assert.equal(r.status, 400, qs);
    assert.equal(json<{ message: string }>(r).message, message);
  }
  // An unreachable index: dockerd's 500 with the URL it tried.
  const closed = await freePort();
  const off = await api(d.sock, "GET", `/v1.41/images/search?term=127.0.0.1:${closed}/busybox&limit=3`);
  assert.equal(off.status, 500);
  assert.equal(json<{ message: string }>(off).message, `Get "http://127.0.0.1:${closed}/v1/search?q=busybox&n=3": dial tcp 127.0.0.1:${closed}: connect: connection refused`);
});

// ------------------------------------------------------------------ shapes

/** Every key of `want` is in `got`, recursively for objects (arrays: their first element's keys). */
function missingKeys(want: unknown, got: unknown, path = ""): string[] {
  if (want === null || typeof want !== "object") return [];
  if (Array.isArray(want)) return Array.isArray(got) && want.length && got.length ? missingKeys(want[0], got[0], `${path}[0]`) : [];
  if (got === null || typeof got !== "object") return [`${path} (not an object)`];
  const out: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    if (!(k in (got as object))) out.push(`${path}.${k}`);
    else out.push(...missingKeys(v, (got as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return out;
}

// dockerd 20.10's GET /info on this machine (values blanked; host-specific lists cut to one element).
const DOCKERD_INFO = {
  ID: "", Containers: 0, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: 0, Driver: "overlay2", DriverStatus: [["Backing Filesystem", "extfs"]],
  Plugins: { Volume: ["local"], Network: ["bridge"], Authorization: null, Log: ["json-file"] },
  MemoryLimit: true, SwapLimit: true, CpuCfsPeriod: true, CpuCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true, IPv4Forwarding: true,
  BridgeNfIptables: true, BridgeNfIp6tables: true, Debug: false, NFd: 0, OomKillDisable: true, NGoroutines: 0, SystemTime: "", LoggingDriver: "json-file",
  CgroupDriver: "cgroupfs", CgroupVersion: "1", NEventsListener: 0, KernelVersion: "", OperatingSystem: "", OSVersion: "", OSType: "linux", Architecture: "",
  IndexServerAddress: "https://index.docker.io/v1/",
  RegistryConfig: { AllowNondistributableArtifactsCIDRs: [], AllowNondistributableArtifactsHostnames: [], InsecureRegistryCIDRs: ["127.0.0.0/8"], IndexConfigs: { "docker.io": { Name: "docker.io", Mirrors: [], Secure: true, Official: true } }, Mirrors: [] },
  NCPU: 0, MemTotal: 0, GenericResources: null, DockerRootDir: "", HttpProxy: "", HttpsProxy: "", NoProxy: "", Name: "", Labels: [], ExperimentalBuild: false, ServerVersion: "",
  Runtimes: { runc: { path: "runc" } }, DefaultRuntime: "runc",
  Swarm: { NodeID: "", NodeAddr: "", LocalNodeState: "inactive", ControlAvailable: false, Error: "", RemoteManagers: null },
  LiveRestoreEnabled: false, Isolation: "", InitBinary: "", ContainerdCommit: { ID: "", Expected: "" }, RuncCommit: { ID: "", Expected: "" }, InitCommit: { ID: "", Expected: "" },
  SecurityOptions: [], Warnings: null,
};
const DOCKERD_VERSION = {
  Platform: { Name: "" },
  Components: [{ Name: "Engine", Version: "", Details: { ApiVersion: "", Arch: "", BuildTime: "", Experimental: "", GitCommit: "", GoVersion: "", KernelVersion: "", MinAPIVersion: "", Os: "" } }],
  Version: "", ApiVersion: "", MinAPIVersion: "", GitCommit: "", GoVersion: "", Os: "", Arch: "", KernelVersion: "", BuildTime: "",
};

test("/info and /version carry every key dockerd's do, with this host's values", async () => {
  const info = json<Record<string, unknown>>(await api(d.sock, "GET", "/v1.41/info"));
  assert.deepEqual(missingKeys(DOCKERD_INFO, info), []);
  assert.equal(info.KernelVersion, (await import("node:os")).release());
  assert.equal(info.NCPU, (await import("node:os")).cpus().length);
  assert.equal(info.Name, (await import("node:os")).hostname());
  assert.match(String(info.OperatingSystem), /\S/);
  assert.deepEqual(info.Plugins, { Volume: ["local"], Network: ["bridge", "host", "null"], Authorization: null, Log: ["json-file", "local", "none"] });
  assert.deepEqual(info.Swarm, DOCKERD_INFO.Swarm);
  assert.equal(info.Driver, "overlay2");
  assert.equal(info.LoggingDriver, "json-file");
  assert.equal(info.DefaultRuntime, "runc");
  assert.equal(info.DockerRootDir, d.dataRoot);
  assert.match(String(info.ID), /^[0-9a-f-]{36}$/);
  assert.equal(json<Record<string, unknown>>(await api(d.sock, "GET", "/info")).ID, info.ID, "the ID is stable");
  const v = json<Record<string, unknown>>(await api(d.sock, "GET", "/v1.41/version"));
  assert.deepEqual(missingKeys(DOCKERD_VERSION, v), []);
  assert.equal(v.KernelVersion, (await import("node:os")).release());
  assert.equal(v.ApiVersion, "1.47");
});

// dockerd's GET /images/busybox:latest/json (API 1.41), values blanked.
const CFG = { Hostname: "", Domainname: "", User: "", AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Env: null, Cmd: null, Image: "", Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: null };
const DOCKERD_IMAGE = {
  Id: "", RepoTags: [""], RepoDigests: [], Parent: "", Comment: "", Created: "", Container: "", ContainerConfig: CFG, DockerVersion: "", Author: "", Config: CFG,
  Architecture: "amd64", Os: "linux", Size: 0, VirtualSize: 0,
  GraphDriver: { Data: { MergedDir: "", UpperDir: "", WorkDir: "" }, Name: "overlay2" }, RootFS: { Type: "layers", Layers: [""] }, Metadata: { LastTagTime: "" },
};

test("image inspect carries every key dockerd's does; VirtualSize only below API 1.44; GraphDriver names real directories", async () => {
  const img = json<Record<string, unknown>>(await api(d.sock, "GET", "/v1.41/images/busybox/json"));
  assert.deepEqual(missingKeys(DOCKERD_IMAGE, img), []);
  assert.equal(img.VirtualSize, img.Size);
  const gd = img.GraphDriver as { Name: string; Data: Record<string, string> };
  assert.equal(gd.Name, "overlay2");
  assert.ok(gd.Data.UpperDir.startsWith(d.dataRoot), gd.Data.UpperDir);
  assert.equal((img.ContainerConfig as Record<string, unknown>).Hostname, "");
  const now = json<Record<string, unknown>>(await api(d.sock, "GET", "/v1.47/images/busybox/json"));
  assert.equal("VirtualSize" in now, false, "API 1.44 dropped VirtualSize");
  assert.equal(now.Id, img.Id);
  // The docker CLI 28 (API 1.47) reads it.
  assert.equal(d.docker(["image", "inspect", "-f", "{{.GraphDriver.Name}} {{.Os}}", "busybox"]).stdout.trim(), "overlay2 linux");
});

// ------------------------------------------------------------------ attach/ws

/** A minimal websocket client over the daemon's socket: the handshake, then masked frames out and frames in. */
function wsAttach(path: string, opts: { send?: string } = {}): Promise<{ status: string; accept: string; expected: string; frames: { op: number; data: Buffer }[] }> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64");
    const expected = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").digest("base64");
    const s = net.connect(d.sock);
    let buf = Buffer.alloc(0);
    let head: string | undefined;
    const frames: { op: number; data: Buffer }[] = [];
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`no close frame: ${head} ${frames.length}`)); }, 30_000);
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    s.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (head === undefined) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        head = buf.subarray(0, i).toString();
        buf = buf.subarray(i + 4);
        if (opts.send !== undefined) {
          const payload = Buffer.from(opts.send);
          const mask = randomBytes(4);
          const masked = Buffer.from(payload.map((b, j) => b ^ mask[j & 3]));
          s.write(Buffer.concat([Buffer.from([0x82, 0x80 | payload.length]), mask, masked]));
        }
      }
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f, p = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); p = 4; }
        if (buf.length < p + len) return;
        frames.push({ op: buf[0] & 0x0f, data: buf.subarray(p, p + len) });
        buf = buf.subarray(p + len);
        if (frames[frames.length - 1].op === 0x8) { clearTimeout(timer); s.end(); }
      }
    });
    s.on("close", () => {
      clearTimeout(timer);
      const status = (head ?? "").split("\r\n")[0];
      const accept = /sec-websocket-accept: (\S+)/i.exec(head ?? "")?.[1] ?? "";
      resolve({ status, accept, expected, frames });
    });
    s.on("error", reject);
  });
}

test("attach/ws: RFC 6455 handshake, raw output as binary frames, stdin from frames, a close frame at the end (as dockerd)", async () => {
  assert.equal(d.berth(["run", "-d", "--name", "ws1", "busybox", "sh", "-c", "echo out1; echo err1 >&2"]).code, 0);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && d.berth(["inspect", "-f", "{{.State.Running}}", "ws1"]).stdout.trim() !== "false") await sleep(100);
  const r = await wsAttach("/v1.41/containers/ws1/attach/ws?logs=1&stdout=1&stderr=1");
  assert.equal(r.status, "HTTP/1.1 101 Switching Protocols");
  assert.equal(r.accept, r.expected);
  const data = r.frames.filter((f) => f.op === 0x2).map((f) => f.data.toString()).sort();
  assert.deepEqual(data, ["err1\n", "out1\n"], "raw, not multiplexed");
  const close = r.frames[r.frames.length - 1];
  assert.equal(close.op, 0x8);
  assert.equal(close.data.readUInt16BE(0), 1000);
  // stdout only: dockerd leaves stderr out.
  const o = await wsAttach("/v1.41/containers/ws1/attach/ws?logs=1&stdout=1");
  assert.deepEqual(o.frames.filter((f) => f.op === 0x2).map((f) => f.data.toString()), ["out1\n"]);
  // stdin: a frame reaches the container, whose answer comes back.
  assert.equal(d.berth(["run", "-d", "-i", "--name", "ws2", "busybox", "sh", "-c", "read l; echo got:$l"]).code, 0);
  const i = await wsAttach("/v1.41/containers/ws2/attach/ws?stream=1&stdin=1&stdout=1", { send: "hello\n" });
  assert.deepEqual(i.frames.filter((f) => f.op === 0x2).map((f) => f.data.toString()).join(""), "got:hello\n");
  // No such container: a plain 404 before any upgrade.
  const n = await wsAttach("/v1.41/containers/nosuch/attach/ws?stream=1");
  assert.match(n.status, /^HTTP\/1\.1 404/);
  assert.equal(d.berth(["rm", "-f", "ws1", "ws2"]).code, 0);
});

// ------------------------------------------------------------------ distribution

test("GET /distribution/{name}/json: the registry's descriptor and platform, without pulling", async () => {
  const ref = `127.0.0.1:${regPort}/apic/bb:1`;
  assert.equal(d.berth(["tag", "busybox", ref]).code, 0);
  const push = d.berth(["push", ref]);
  assert.equal(push.code, 0, push.stderr);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
  assert.ok(digest, push.stdout);
  const r = await api(d.sock, "GET", `/v1.41/distribution/${ref}/json`);
  assert.equal(r.status, 200, r.body);
  const body = json<{ Descriptor: { mediaType: string; digest: string; size: number }; Platforms: { architecture: string; os: string }[] }>(r);
  assert.equal(body.Descriptor.digest, digest);
  assert.match(body.Descriptor.mediaType, /manifest/);
  assert.ok(body.Descriptor.size > 0);
  assert.deepEqual(body.Platforms.map((p) => p.os), ["linux"]);
  const missing = await api(d.sock, "GET", `/v1.41/distribution/127.0.0.1:${regPort}/apic/nosuch:1/json`);
  assert.equal(missing.status, 404);
  const id = await api(d.sock, "GET", `/v1.41/distribution/${"a".repeat(64)}/json`);
  assert.equal(json<{ message: string }>(id).message, "no manifest found for full image ID");
  assert.equal(d.berth(["rmi", ref]).code, 0);
});

// ------------------------------------------------------------------ bad input

test("bad create bodies: dockerd's 400 and words, and nothing is created (no container, no name, no volume)", async () => {
  const hc = (h: Record<string, unknown>) => JSON.stringify({ Image: "busybox", HostConfig: h });
  const cases: [string, string][] = [
    [hc({ RestartPolicy: { Name: "sometimes" } }), "invalid restart policy 'sometimes'"],
    [hc({ RestartPolicy: { Name: "always", MaximumRetryCount: 3 } }), "maximum retry count cannot be used with restart policy 'always'"],
    [hc({ RestartPolicy: { Name: "on-failure", MaximumRetryCount: -1 } }), "maximum retry count cannot be negative"],
    [hc({ RestartPolicy: { Name: "always" }, AutoRemove: true }), "can't create 'AutoRemove' container with restart policy"],
    [hc({ NetworkMode: "container:" }), "Invalid network mode: invalid container format container:<name|id>"],
    [hc({ CgroupnsMode: "weird" }), "invalid cgroup namespace mode: weird"],
    [hc({ Mounts: [{ Type: "weird", Target: "/x" }] }), 'invalid mount config for type "weird": mount type unknown'],
    [hc({ Mounts: [{ Type: "tmpfs", Target: "/x", Source: "/y" }] }), 'invalid mount config for type "tmpfs": field Source must not be specified'],
    [hc({ PortBindings: { abc: [{ HostPort: "8080" }] } }), 'invalid port specification: "abc"'],
    [hc({ PortBindings: { "80/tcp": [{ HostPort: "notaport" }] } }), 'invalid port specification: "notaport"'],
    [hc({ PortBindings: { "99999/tcp": [{ HostPort: "80" }] } }), 'invalid port specification: "99999"'],
    [hc({ Memory: "lots" }), "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"],
    [JSON.stringify({ Image: "busybox", StopSignal: "SIGWHAT" }), "Invalid signal: SIGWHAT"],
    [JSON.stringify({ Image: "busybox", Volumes: { "/data": {} }, HostConfig: { RestartPolicy: { Name: "sometimes" }, Binds: ["apicvol:/v"] } }), "invalid restart policy 'sometimes'"],
  ];
  for (const [body, message] of cases) {
    const r = await api(d.sock, "POST", "/v1.41/containers/create?name=apicbad", body);
    assert.equal(r.status, 400, `${body}: ${r.body}`);
    assert.equal(json<{ message: string }>(r).message, message, body);
  }
  assert.equal(d.berth(["ps", "-aq"]).stdout, "", "no container was made");
  assert.deepEqual(json<{ Volumes: unknown[] }>(await api(d.sock, "GET", "/volumes")).Volumes, [], "no volume was made");
  const ok = await api(d.sock, "POST", "/v1.41/containers/create?name=apicbad", JSON.stringify({ Image: "busybox" }));
  assert.equal(ok.status, 201, "the name was never reserved");
  assert.equal(d.berth(["rm", "apicbad"]).code, 0);
});
