/**
 * Inspect is complete (issue 9): GET /containers/{id}/json, the container
 * list and GET /volumes/{name} carry at least every key dockerd's answers
 * carry, with dockerd's defaults where they are not host-specific. The key
 * lists and defaults below were recorded from dockerd 20.10 (API 1.41) on
 * this machine, for the same requests.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, api, apiJson } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
});

const json = (method: string, path: string, body?: unknown) => apiJson(d.sock, method, path, body);

const TOP = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs", "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"];
const CONFIG = ["Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint", "OnBuild", "Labels"];
const STATE = ["Status", "Running", "Paused", "Restarting", "OOMKilled", "Dead", "Pid", "ExitCode", "Error", "StartedAt", "FinishedAt"];
const NETWORK_SETTINGS = ["Bridge", "SandboxID", "HairpinMode", "LinkLocalIPv6Address", "LinkLocalIPv6PrefixLen", "Ports", "SandboxKey", "SecondaryIPAddresses", "SecondaryIPv6Addresses", "EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress", "Networks"];
const ENDPOINT = ["IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts"];
const SUMMARY = ["Id", "Names", "Image", "ImageID", "Command", "Created", "Ports", "Labels", "State", "Status", "HostConfig", "NetworkSettings", "Mounts"];
const VOLUME = ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"];

/** dockerd's HostConfig of `{"Image":"busybox","Cmd":["sleep","60"]}`: every key, with its value. */
const HOST_CONFIG_DEFAULTS: Record<string, unknown> = {
  Binds: null, ContainerIDFile: "", LogConfig: { Type: "json-file", Config: {} }, NetworkMode: "default", PortBindings: null,
  RestartPolicy: { Name: "", MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: "", VolumesFrom: null, CapAdd: null, CapDrop: null,
  CgroupnsMode: "host", Dns: null, DnsOptions: null, DnsSearch: null, ExtraHosts: null, GroupAdd: null, IpcMode: "private", Cgroup: "",
  Links: null, OomScoreAdj: 0, PidMode: "", Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null,
  UTSMode: "", UsernsMode: "", ShmSize: 67108864, ConsoleSize: [0, 0], Isolation: "", CpuShares: 0, Memory: 0, NanoCpus: 0,
  CgroupParent: "", BlkioWeight: 0, BlkioWeightDevice: null, BlkioDeviceReadBps: null, BlkioDeviceWriteBps: null,
  BlkioDeviceReadIOps: null, BlkioDeviceWriteIOps: null, CpuPeriod: 0, CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0,
  CpusetCpus: "", CpusetMems: "", Devices: null, DeviceCgroupRules: null, DeviceRequests: null, KernelMemory: 0, KernelMemoryTCP: 0,
  MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: null, OomKillDisable: false, PidsLimit: null, Ulimits: null, CpuCount: 0,
  CpuPercent: 0, IOMaximumIOps: 0, IOMaximumBandwidth: 0,
};
const DOCKER_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"];
const DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

function hasKeys(obj: Record<string, unknown>, keys: string[], what: string): void {
  const missing = keys.filter((k) => !(k in obj));
  assert.deepEqual(missing, [], `${what} lacks ${missing.join(", ")}`);
}

test("a created container's inspect has every key dockerd's has, with dockerd's defaults", async (t) => {
  const r = await json("POST", "/v1.41/containers/create?name=plain", { Image: "busybox", Cmd: ["sleep", "60"] });
  assert.equal(r.status, 201);
  t.after(() => api(d.sock, "DELETE", "/v1.41/containers/plain?force=1"));
  const c = (await json("GET", "/v1.41/containers/plain/json")).body;
  hasKeys(c, TOP, "inspect");
  hasKeys(c.Config, CONFIG, "Config");
  hasKeys(c.State, STATE, "State");
  hasKeys(c.NetworkSettings, NETWORK_SETTINGS, "NetworkSettings");
  hasKeys(c.HostConfig, [...Object.keys(HOST_CONFIG_DEFAULTS), "MaskedPaths", "ReadonlyPaths"], "HostConfig");
  for (const [k, v] of Object.entries(HOST_CONFIG_DEFAULTS)) assert.deepEqual(c.HostConfig[k], v, `HostConfig.${k}`);
  for (const p of DOCKER_MASKED) assert.ok(c.HostConfig.MaskedPaths.includes(p), `MaskedPaths has ${p}`);
  assert.deepEqual(c.HostConfig.ReadonlyPaths, DOCKER_READONLY);
  assert.ok(!("Tmpfs" in c.HostConfig), "no Tmpfs key unless set (dockerd)");
  assert.equal(c.Config.Hostname, c.Id.slice(0, 12));
  for (const [k, v] of Object.entries({ Domainname: "", User: "", AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false, Image: "busybox", Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: {} })) {
    assert.deepEqual(c.Config[k], v, `Config.${k}`);
  }
  assert.deepEqual(c.Config.Cmd, ["sleep", "60"]);
  assert.ok(!("ExposedPorts" in c.Config) && !("StopSignal" in c.Config) && !("MacAddress" in c.Config), "omitempty fields absent, as dockerd");
  assert.deepEqual({ ...c.State }, { Status: "created", Running: false, Paused: false, Restarting: false, OOMKilled: false, Dead: false, Pid: 0, ExitCode: 0, Error: "", StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z" });
  for (const [k, v] of Object.entries({ RestartCount: 0, Driver: "overlay2", Platform: "linux", MountLabel: "", ProcessLabel: "", AppArmorProfile: "", ExecIDs: null, Name: "/plain" })) assert.deepEqual(c[k], v, k);
  assert.deepEqual(c.Mounts, []);
  hasKeys(c.NetworkSettings.Networks.bridge, ENDPOINT, "EndpointSettings");
});

test("every create field round-trips into inspect", async (t) => {
  const hc = {
    CpusetCpus: "0", CpusetMems: "0", UTSMode: "host", IpcMode: "shareable", PidMode: "host", GroupAdd: ["1234"], DeviceCgroupRules: ["c 42:* rwm"],
    LogConfig: { Type: "local", Config: { "max-size": "10m" } }, Isolation: "default", Tmpfs: { "/t": "" }, ShmSize: 8 * 1024 * 1024,
    Memory: 64 * 1024 * 1024, MemorySwap: 128 * 1024 * 1024, MemoryReservation: 32 * 1024 * 1024, CpuShares: 512, CpuPeriod: 100000, CpuQuota: 50000,
    PidsLimit: 100, OomScoreAdj: 10, VolumeDriver: "", RestartPolicy: { Name: "on-failure", MaximumRetryCount: 2 }, ExtraHosts: ["h:10.1.2.3"],
  };
  const r = await json("POST", "/v1.41/containers/create?name=rt", { Image: "busybox", Hostname: "", MacAddress: "02:42:ac:11:00:99", StopSignal: "SIGUSR1", HostConfig: hc });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  t.after(() => api(d.sock, "DELETE", "/v1.41/containers/rt?force=1"));
  const c = (await json("GET", "/v1.41/containers/rt/json")).body;
  for (const [k, v] of Object.entries(hc)) assert.deepEqual(c.HostConfig[k], v, `HostConfig.${k}`);
  assert.equal(c.Config.MacAddress, "02:42:ac:11:00:99");
  assert.equal(c.Config.StopSignal, "SIGUSR1");
  assert.equal(c.Config.Hostname, (await import("node:os")).hostname(), "--uts host: the host's name, as dockerd");
});

test("a running container's inspect and its list entry carry dockerd's keys; mounts show Docker's fields only", async (t) => {
  const run = d.berth(["run", "-d", "--name", "live", "-v", "/tmp:/h", "-v", "vol1:/v", "--tmpfs", "/t", "busybox", "sleep", "60"]);
  assert.equal(run.code, 0, run.stderr);
  t.after(() => { d.berth(["rm", "-f", "live"]); d.berth(["volume", "rm", "vol1"]); });
  const c = (await json("GET", "/v1.41/containers/live/json")).body;
  hasKeys(c.State, STATE, "State");
  hasKeys(c.NetworkSettings, NETWORK_SETTINGS, "NetworkSettings");
  assert.ok(c.State.Running);
  const bind = c.Mounts.find((m: { Destination: string }) => m.Destination === "/h");
  assert.deepEqual(Object.keys(bind).sort(), ["Destination", "Mode", "Propagation", "RW", "Source", "Type"]);
  const vol = c.Mounts.find((m: { Destination: string }) => m.Destination === "/v");
  assert.deepEqual(Object.keys(vol).sort(), ["Destination", "Driver", "Mode", "Name", "Propagation", "RW", "Source", "Type"]);
  const list = (await json("GET", `/v1.41/containers/json?filters=${encodeURIComponent(JSON.stringify({ name: ["live"] }))}`)).body;
  assert.equal(list.length, 1);
  hasKeys(list[0], SUMMARY, "ContainerSummary");
  hasKeys(list[0].NetworkSettings.Networks.bridge, ENDPOINT, "ContainerSummary EndpointSettings");
  assert.deepEqual(list[0].HostConfig, { NetworkMode: "default" });
  for (const m of list[0].Mounts) assert.ok(!("CreateHostPath" in m) && !("NoCopy" in m) && !("TmpfsOptions" in m), JSON.stringify(m));
});

test("GET /volumes/{name} carries dockerd's keys; CreatedAt is RFC 3339 in seconds", async (t) => {
  const r = await json("POST", "/v1.41/volumes/create", { Name: "keys" });
  assert.equal(r.status, 201);
  t.after(() => api(d.sock, "DELETE", "/v1.41/volumes/keys"));
  const v = (await json("GET", "/v1.41/volumes/keys")).body;
  hasKeys(v, VOLUME, "Volume");
  assert.equal(v.Driver, "local");
  assert.equal(v.Scope, "local");
  assert.equal(v.Name, "keys");
  assert.match(v.CreatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
});
