/**
 * dockerode (npm) against a real berthd, as Node programs drive Docker:
 * create/start/logs, attach with stdin (dockerode sends its options as a JSON
 * body on the hijacked request), wait, exec (and exec of a missing binary),
 * archive both ways, stats, build, events, networks, volumes. Each assertion
 * is dockerd's answer to the same calls.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import Docker from "dockerode";
import tar from "tar-stream";
import { Daemon, api } from "../integration/harness.js";
import { poll } from "./helpers.js";

const d = new Daemon();
let docker: Docker;

/** Splits a multiplexed (non-TTY) stream body into stdout and stderr. */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  let stdout = "", stderr = "";
  for (let i = 0; i + 8 <= buf.length;) {
    const n = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + n).toString();
    if (buf[i] === 2) stderr += chunk; else stdout += chunk;
    i += 8 + n;
  }
  return { stdout, stderr };
}

async function collect(s: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(Buffer.from(c as Buffer));
  return Buffer.concat(parts);
}

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const p = tar.pack();
  for (const [name, body] of Object.entries(files)) p.entry({ name, mode: 0o644 }, body);
  p.finalize();
  return collect(p);
}

async function untar(buf: Buffer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const x = tar.extract();
  x.on("entry", (h, s, next) => { collect(s).then((b) => { if (h.type === "file") out[h.name] = b.toString(); next(); }); });
  const done = new Promise<void>((r) => x.on("finish", () => r()));
  Readable.from([buf]).pipe(x);
  await done;
  return out;
}

/** Only what these tests made (the dn- names): with CLIENTS_DOCKERD=1 the daemon is the machine's dockerd. */
async function removeOurs(): Promise<void> {
  for (const c of await docker.listContainers({ all: true })) if (c.Names.some((n) => n.startsWith("/dn-"))) await docker.getContainer(c.Id).remove({ force: true });
}

// CLIENTS_DOCKERD=1 runs the same file against /var/run/docker.sock: how the expectations were checked.
const AGAINST_DOCKERD = process.env.CLIENTS_DOCKERD === "1";
const sock = () => AGAINST_DOCKERD ? "/var/run/docker.sock" : d.sock;

before(async () => {
  if (!AGAINST_DOCKERD) { await d.start(); await d.bootstrap(); }
  docker = new Docker({ socketPath: sock() });
});

after(async () => {
  await removeOurs().catch(() => {});
  if (!AGAINST_DOCKERD) await d.stop();
});

test("dockerode: createContainer, start, inspect, logs (demuxed), wait, remove", async () => {
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["sh", "-c", "echo out; echo err >&2; exit 3"], name: "dn-basic", Labels: { app: "dn" } });
  await c.start();
  const w = await c.wait();
  assert.equal(w.StatusCode, 3);
  const info = await c.inspect();
  assert.equal(info.Name, "/dn-basic");
  assert.equal(info.State.ExitCode, 3);
  assert.equal(info.State.Status, "exited");
  assert.deepEqual(info.Config.Labels, { app: "dn" });
  assert.equal(info.HostConfig.LogConfig?.Type, "json-file");
  const logs = await c.logs({ stdout: true, stderr: true, follow: false }) as unknown as Buffer;
  assert.deepEqual(demux(logs), { stdout: "out\n", stderr: "err\n" });
  const listed = await docker.listContainers({ all: true, filters: { label: ["app=dn"] } });
  assert.deepEqual(listed.map((x) => x.Names[0]), ["/dn-basic"]);
  await c.remove();
  await assert.rejects(c.inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
});

test("dockerode: attach with stdin (hijacked, options in a JSON body), then wait", async () => {
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["sh", "-c", "read x; echo got [$x]; exit 5"], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, name: "dn-attach" });
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true }) as unknown as NodeJS.ReadWriteStream;
  const outP = collect(stream);
  await c.start();
  stream.write("hello\n");
  const w = await c.wait();
  assert.equal(w.StatusCode, 5);
  const { stdout } = demux(await outP);
  assert.equal(stdout, "got [hello]\n", "the container's stdin got exactly what was written (not the request body)");
  await c.remove();
});

test("dockerode: exec with output and exit code; exec of a missing binary gives ExitCode 126", async () => {
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["sleep", "300"], name: "dn-exec" });
  await c.start();
  const ex = await c.exec({ Cmd: ["sh", "-c", "echo $A; echo e >&2; exit 4"], Env: ["A=b"], AttachStdout: true, AttachStderr: true });
  const s = await ex.start({ hijack: true, stdin: false });
  assert.deepEqual(demux(await collect(s)), { stdout: "b\n", stderr: "e\n" });
  const ei = await ex.inspect();
  assert.equal(ei.ExitCode, 4);
  assert.equal(ei.Running, false);
  const tty = await c.exec({ Cmd: ["echo", "tty"], AttachStdout: true, Tty: true });
  assert.equal((await collect(await tty.start({ hijack: true, stdin: false, Tty: true }))).toString(), "tty\r\n");
  // Testcontainers' wait strategies rely on this: 200, the error in the stream, ExitCode 126.
  const missing = await c.exec({ Cmd: ["/bin/nosuch", "x"], AttachStdout: true, AttachStderr: true });
  await collect(await missing.start({ hijack: true, stdin: false }));
  const mi = await poll(async () => { const i = await missing.inspect(); return i.Running ? undefined : i; });
  assert.equal(mi?.ExitCode, 126);
  await c.remove({ force: true });
});

test("dockerode: putArchive, getArchive, infoArchive", async () => {
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["sleep", "300"], name: "dn-arc" });
  await c.start();
  assert.equal((await (await c.exec({ Cmd: ["mkdir", "-p", "/tmp"] })).start({})) !== undefined, true);
  await poll(async () => (await c.getArchive({ path: "/tmp" }).then(() => true, () => false)));
  await c.putArchive(await tarOf({ "hello.txt": "from dockerode\n" }), { path: "/tmp" });
  const got = await untar(await collect(await c.getArchive({ path: "/tmp/hello.txt" }) as unknown as NodeJS.ReadableStream));
  assert.deepEqual(got, { "hello.txt": "from dockerode\n" });
  // dockerode's infoArchive resolves with the (empty) body: read the header as its users do, from a HEAD.
  const head = await api(sock(), "HEAD", `/containers/${c.id}/archive?path=/tmp/hello.txt`);
  assert.equal(head.status, 200);
  const st = JSON.parse(Buffer.from(String(head.headers["x-docker-container-path-stat"]), "base64").toString());
  assert.equal(st.name, "hello.txt");
  assert.equal(st.size, 15);
  await assert.rejects(c.getArchive({ path: "/nosuch" }), (e: { statusCode?: number }) => e.statusCode === 404);
  await c.remove({ force: true });
});

test("dockerode: stats once and streamed", async () => {
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["sleep", "300"], name: "dn-stats" });
  await c.start();
  const s = await c.stats({ stream: false });
  assert.equal(s.name, "/dn-stats");
  assert.ok(s.memory_stats.usage! > 0, JSON.stringify(s.memory_stats));
  assert.ok(s.cpu_stats.cpu_usage.total_usage > 0);
  assert.ok(s.networks && "eth0" in s.networks, `networks: ${JSON.stringify(s.networks)}`);
  const stream = await c.stats({ stream: true }) as unknown as NodeJS.ReadableStream & { destroy(): void };
  const first = await new Promise<string>((r) => stream.once("data", (x: Buffer) => r(x.toString())));
  stream.destroy();
  assert.equal(JSON.parse(first).id, c.id);
  await c.remove({ force: true });
});

test("dockerode: buildImage from a tar context, followProgress, run the image", async () => {
  const ctx = await tarOf({ Dockerfile: "FROM busybox\nCOPY msg /msg\nRUN echo ran > /ran\nCMD cat /msg /ran\n", msg: "context file\n" });
  const s = await docker.buildImage(Readable.from([ctx]) as unknown as NodeJS.ReadableStream, { t: "dn-built:1" });
  const events = await new Promise<{ stream?: string; error?: string; aux?: { ID: string } }[]>((res, rej) => docker.modem.followProgress(s, (e: Error | null, r: unknown[]) => e ? rej(e) : res(r as { stream?: string; error?: string; aux?: { ID: string } }[])));
  assert.ok(!events.some((e) => e.error), JSON.stringify(events.filter((e) => e.error)));
  assert.ok(events.some((e) => e.aux?.ID?.startsWith("sha256:")), "the build reports the image ID in an aux message");
  assert.ok(events.some((e) => /Successfully tagged dn-built:1/.test(e.stream ?? "")), JSON.stringify(events));
  const c = await docker.createContainer({ Image: "dn-built:1", name: "dn-run-built" });
  await c.start();
  await c.wait();
  const logs = await c.logs({ stdout: true, follow: false }) as unknown as Buffer;
  assert.equal(demux(logs).stdout, "context file\nran\n");
  await c.remove();
  await docker.getImage("dn-built:1").remove();
  const bad = await docker.buildImage(Readable.from([await tarOf({ Dockerfile: "FROM busybox\nRUN exit 9\n" })]) as unknown as NodeJS.ReadableStream, { t: "dn-bad" });
  const badEvents = await new Promise<{ error?: string }[]>((res) => docker.modem.followProgress(bad, (_e: Error | null, r: unknown[]) => res((r ?? []) as { error?: string }[])));
  assert.ok(badEvents.some((e) => /returned a non-zero code: 9/.test(e.error ?? "")), JSON.stringify(badEvents));
});

test("dockerode: getEvents with since/until and a filter", async () => {
  const since = Math.floor(Date.now() / 1000);
  const c = await docker.createContainer({ Image: "busybox", Cmd: ["true"], name: "dn-evt" });
  await c.start();
  await c.wait();
  await c.remove();
  const s = await docker.getEvents({ since, until: Math.floor(Date.now() / 1000) + 1, filters: { container: ["dn-evt"], type: ["container"] } });
  const lines = (await collect(s)).toString().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: Record<string, string> } });
  assert.deepEqual(lines.map((e) => e.Action), ["create", "start", "die", "destroy"]);
  assert.equal(lines[2].Actor.Attributes.exitCode, "0");
});

test("dockerode: networks and volumes", async () => {
  const net = await docker.createNetwork({ Name: "dn-net", Labels: { k: "v" } });
  const vol = await docker.createVolume({ Name: "dn-vol", Labels: { k: "v" } }) as unknown as Docker.Volume;
  assert.equal(vol.name, "dn-vol");
  assert.deepEqual((await vol.inspect()).Labels, { k: "v" });
  const ni = await net.inspect();
  assert.equal(ni.Name, "dn-net");
  assert.equal(ni.Driver, "bridge");
  assert.deepEqual(ni.Labels, { k: "v" });
  const srv = await docker.createContainer({ Image: "busybox", name: "dn-srv", Cmd: ["sh", "-c", "mkdir -p /w; cp /data/index.html /w/ 2>/dev/null || echo from-volume > /w/index.html; exec httpd -f -p 80 -h /w"], HostConfig: { NetworkMode: "dn-net", Binds: ["dn-vol:/data"] } });
  await srv.start();
  const cli = await docker.createContainer({ Image: "busybox", name: "dn-cli", Cmd: ["sleep", "300"] });
  await cli.start();
  await net.connect({ Container: cli.id, EndpointConfig: { Aliases: ["probe"] } });
  const connected = await net.inspect();
  assert.equal(Object.keys(connected.Containers ?? {}).length, 2);
  const got = await poll(async () => { const e = await cli.exec({ Cmd: ["wget", "-qO-", "http://dn-srv/"], AttachStdout: true, AttachStderr: true }); return demux(await collect(await e.start({ hijack: true, stdin: false }))).stdout; }, 10_000);
  assert.equal(got, "from-volume\n");
  await net.disconnect({ Container: cli.id });
  assert.equal(Object.keys((await net.inspect()).Containers ?? {}).length, 1);
  assert.deepEqual((await docker.listNetworks({ filters: { label: ["k=v"] } })).map((n) => n.Name), ["dn-net"]);
  assert.deepEqual(((await docker.listVolumes({ filters: { label: ["k=v"] } })).Volumes ?? []).map((v) => v.Name), ["dn-vol"]);
  await assert.rejects(docker.getVolume("dn-vol").remove(), (e: { statusCode?: number }) => e.statusCode === 409);
  await srv.remove({ force: true });
  await cli.remove({ force: true });
  await net.remove();
  await docker.getVolume("dn-vol").remove();
  await assert.rejects(net.inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  await assert.rejects(docker.getVolume("dn-vol").inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
});
