/**
 * The Docker Engine API server: routes → engine. Accepts version-prefixed
 * paths (/v1.24 … /v{API_VERSION}), answers version negotiation on /_ping,
 * hijacks connections for attach and exec (101 UPGRADED, then raw or
 * multiplexed stdio), and maps typed engine errors to Docker's statuses and
 * `{"message": ...}` bodies.
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import { URL } from "node:url";
import { join } from "node:path";
import type { Engine } from "../engine/engine.js";
import { ENGINE_VERSION } from "../engine/engine.js";
import type { AttachStreams } from "../runtime/driver.js";
import { BadParameterError, BerthError, NotFoundError, errorMessage } from "../lib/errors.js";
import { frame } from "./stdcopy.js";
import { boolParam, intParam, parseFilters, parseJson, unescapePath, checkQueryEscapes, check, type Schema } from "./validate.js";
import {
  AuthSchema, CommitConfigSchema, ContainerCreateSchema, ExecCreateSchema, ExecStartSchema, NetworkConnectSchema,
  NetworkCreateSchema, NetworkDisconnectSchema, VolumeCreateSchema,
  VOLUME_NAME_RE,
} from "./types.js";
import { parseSignal } from "../lib/signals.js";
import { headArchive, getArchive, putArchive } from "./archive-routes.js";
import type { CreateBody, WaitCondition } from "../engine/containers.js";

export const API_VERSION = "1.47";
export const MIN_API_VERSION = "1.24";

type Query = URLSearchParams;
interface Ctx {
  req: http.IncomingMessage;
  res?: http.ServerResponse;
  socket?: Duplex; // set for hijacked (upgraded) requests
  head?: Buffer;
  params: string[];
  query: Query;
  version: string;
}
type Handler = (e: Engine, c: Ctx) => Promise<unknown> | unknown;

/** A handler's answer: a status with a JSON body, or nothing (it wrote the response itself). */
class Reply { constructor(readonly status: number, readonly body?: unknown) {} }
const HANDLED = Symbol("handled");

const routes: { method: string; re: RegExp; h: Handler }[] = [];
function route(method: string, path: string, h: Handler): void {
  // {name} matches one segment; {name*} matches the rest (image names contain slashes).
  const re = new RegExp("^" + path.replace(/\{\w+\*\}/g, "(.+)").replace(/\{\w+\}/g, "([^/]+)") + "$");
  routes.push({ method, re, h });
}

/** Docker's boolean query parameters (httputils.BoolValue). */
function bool(q: Query, k: string, dflt = false): boolean { return boolParam(q, k, dflt); }

/** Integer query parameters are Go's strconv.Atoi: anything else is a 400. */
function num(q: Query, k: string): number | undefined { return intParam(q, k); }

function filters(q: Query): Record<string, string[]> { return parseFilters(q.get("filters")); }

/** Docker's time parameters: unix seconds with optional fraction, or RFC3339. */
function timeParam(q: Query, k: string): number | undefined {
  const v = q.get(k);
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new BadParameterError(`invalid value for ${k}: ${v}`);
  return t / 1000;
}

/** Bodies of JSON requests are small: more is refused before it is read. */
export const JSON_BODY_LIMIT = 4 * 1024 * 1024;
/** Hijacked requests (exec start) carry a few bytes of JSON. */
const UPGRADE_BODY_LIMIT = 64 * 1024;
/** A client that stops sending a request body for this long is cut off (BERTH_API_BODY_TIMEOUT_MS overrides it). */
const BODY_IDLE_MS = Number(process.env.BERTH_API_BODY_TIMEOUT_MS) || 60_000;
/** Headers must arrive within this (BERTH_API_HEADERS_TIMEOUT_MS overrides it). */
const HEADERS_TIMEOUT_MS = Number(process.env.BERTH_API_HEADERS_TIMEOUT_MS) || 20_000;

class TooLargeError extends BerthError {
  constructor(limit: number) { super(`request body is larger than ${limit} bytes`, 413); }
}

function declaredLength(req: http.IncomingMessage, limit: number): number {
  const cl = req.headers["content-length"];
  const len = cl === undefined ? 0 : Number(cl);
  if (!Number.isSafeInteger(len) || len < 0) throw new BadParameterError(`invalid Content-Length: ${cl}`);
  if (len > limit) throw new TooLargeError(limit);
  return len;
}

async function readBody(req: http.IncomingMessage, limit = JSON_BODY_LIMIT): Promise<Buffer> {
  declaredLength(req, limit);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > limit) throw new TooLargeError(limit);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The body of an upgrade request: Node leaves it in `head` and the socket, by Content-Length (bounded, and cut off when the client stalls). */
async function upgradeBody(c: Ctx, limit = UPGRADE_BODY_LIMIT): Promise<Buffer> {
  const len = declaredLength(c.req, limit);
  const head = c.head ?? Buffer.alloc(0);
  const chunks: Buffer[] = [head];
  let have = head.length;
  const sock = c.socket!;
  while (have < len) {
    const chunk = await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => { cleanup(); resolve(null); }, BODY_IDLE_MS);
      const onData = (d: Buffer) => { cleanup(); resolve(d); };
      const onEnd = () => { cleanup(); resolve(null); };
      const cleanup = () => { clearTimeout(timer); sock.off("data", onData); sock.off("end", onEnd); sock.off("close", onEnd); sock.pause(); };
      sock.on("data", onData); sock.once("end", onEnd); sock.once("close", onEnd); sock.resume();
    });
    if (!chunk) { sock.destroy(); throw new BadParameterError("unexpected EOF in the request body"); }
    chunks.push(chunk);
    have += chunk.length;
  }
  const buf = chunks.length === 1 ? head : Buffer.concat(chunks);
  c.head = buf.subarray(len);
  return buf.subarray(0, len);
}

/**
 * A JSON body checked against its schema. `optional`: an empty body or
 * `null` is an empty object (Docker's "not set"); otherwise an empty body is
 * a 400. The result is the normalized value (nulls dropped, Go's field names).
 */
async function jsonBody<T>(req: http.IncomingMessage, schema: Schema<T>, opts: { optional?: boolean; allowEmpty?: boolean; ctx?: Ctx; empty?: string } = {}): Promise<T> {
  const buf = opts.ctx?.socket ? await upgradeBody(opts.ctx) : await readBody(req);
  const text = buf.toString("utf8");
  if (text.trim() === "") {
    if (opts.allowEmpty ?? opts.optional) return {} as T;
    throw new BadParameterError(opts.empty ?? "bad parameter: request body is empty; expected a JSON object");
  }
  const v = parseJson(text);
  if (v === null) {
    if (opts.optional) return {} as T;
    throw new BadParameterError(opts.empty ?? "bad parameter: request body is null; expected a JSON object");
  }
  return check(schema, v);
}

function streamHeaders(res: http.ServerResponse, contentType: string): void {
  res.writeHead(200, { "Content-Type": contentType, "Api-Version": API_VERSION, "Server": `berth/${ENGINE_VERSION}` });
  res.flushHeaders();
}

const RAW = "application/vnd.docker.raw-stream";
const MUX = "application/vnd.docker.multiplexed-stream";

// ------------------------------------------------------------------ system

route("GET", "/_ping", () => "OK");
route("HEAD", "/_ping", () => new Reply(200, ""));
route("GET", "/version", () => ({
  Platform: { Name: "berth" },
  Components: [{ Name: "Engine", Version: ENGINE_VERSION, Details: { ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, Os: "linux", Arch: process.arch === "x64" ? "amd64" : process.arch } }],
  Version: ENGINE_VERSION, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: "", GoVersion: `node${process.versions.node}`,
  Os: "linux", Arch: process.arch === "x64" ? "amd64" : process.arch, KernelVersion: "", BuildTime: "",
}));
route("GET", "/info", (e) => e.info());
route("GET", "/system/df", async (e) => ({
  LayersSize: 0,
  Images: await e.images.list({}),
  Containers: e.containers.list({ all: true, imageName: (id) => e.images.displayName(id) }),
  Volumes: e.volumes.list().Volumes, BuildCache: [],
}));
route("GET", "/events", (e, c) => {
  const res = c.res!;
  const f = { since: timeParam(c.query, "since"), until: timeParam(c.query, "until"), filters: filters(c.query) };
  streamHeaders(res, "application/json");
  for (const ev of e.events.past(f)) res.write(JSON.stringify(ev) + "\n");
  const now = Date.now() / 1000;
  if (f.until !== undefined && f.until <= now) { res.end(); return HANDLED; }
  const unsub = e.events.subscribe(f, (ev) => res.write(JSON.stringify(ev) + "\n"));
  let timer: NodeJS.Timeout | undefined;
  const done = () => { unsub(); if (timer) clearTimeout(timer); res.end(); };
  if (f.until !== undefined) timer = setTimeout(done, (f.until - now) * 1000);
  res.on("close", done);
  return HANDLED;
});

// ------------------------------------------------------------------ containers

/** Docker's container names. */
const CONTAINER_NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const BIND_MODES = new Set(["ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate", "consistent", "cached", "delegated"]);

/**
 * The shape of every mount, checked before anything is made: the engine
 * creates named volumes as it resolves mounts, so a bad mount found late
 * would leave the volumes of the good ones behind a rejected request.
 */
function checkMounts(hc: { Binds?: string[]; Mounts?: { Type?: string; Source?: string; Target?: string }[]; Tmpfs?: Record<string, string> }): void {
  const seen = new Set<string>();
  const dest = (p: string | undefined): void => {
    if (!p || !p.startsWith("/")) throw new BadParameterError(`invalid mount config: mount path must be absolute: ${p ?? ""}`);
    const d = join("/", p).replace(/\/$/, "") || "/";
    if (seen.has(d)) throw new BadParameterError(`Duplicate mount point: ${d}`);
    seen.add(d);
  };
  for (const b of hc.Binds ?? []) {
    const parts = b.split(":");
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new BadParameterError(`invalid volume specification: '${b}'`);
    dest(parts[1]);
    for (const f of (parts[2] ?? "").split(",").filter(Boolean)) if (!BIND_MODES.has(f)) throw new BadParameterError(`invalid mode: ${f}`);
    if (!parts[0].startsWith("/") && !VOLUME_NAME_RE.test(parts[0])) throw new BadParameterError(`invalid volume specification: '${b}'`);
  }
  for (const m of hc.Mounts ?? []) {
    if (!m.Target) throw new BadParameterError(`invalid mount config for type "${m.Type ?? ""}": field Target must not be empty`);
    if (m.Type !== undefined && m.Type !== "" && !["bind", "volume", "tmpfs"].includes(m.Type)) throw new BadParameterError(`invalid mount config: mount type unknown: "${m.Type}"`);
    if (m.Type === "bind" && (!m.Source || !m.Source.startsWith("/"))) throw new BadParameterError(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ""}' mount path must be absolute`);
    if ((m.Type === "volume" || !m.Type) && m.Source && !VOLUME_NAME_RE.test(m.Source)) throw new BadParameterError(`invalid mount config for type "volume": invalid volume name: '${m.Source}'`);
    dest(m.Target);
  }
  for (const p of Object.keys(hc.Tmpfs ?? {})) dest(p);
}

route("GET", "/containers/json", (e, c) => e.containers.list({
  all: bool(c.query, "all"), limit: num(c.query, "limit"), filters: filters(c.query), imageName: (id) => e.images.displayName(id),
}));
route("POST", "/containers/create", async (e, c) => {
  const name = c.query.get("name") ?? undefined;
  if (name && !CONTAINER_NAME_RE.test(name)) throw new BadParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const body = await jsonBody(c.req, ContainerCreateSchema, { empty: "Config cannot be empty in order to create a container" });
  checkMounts(body.HostConfig ?? {});
  return new Reply(201, await e.createContainer(body as CreateBody, name));
});
route("GET", "/containers/{id}/json", (e, c) => {
  const { Berth: _b, ...rec } = e.containers.get(c.params[0]);
  return { ...rec, SizeRw: bool(c.query, "size") ? 0 : undefined, SizeRootFs: bool(c.query, "size") ? 0 : undefined };
});
route("POST", "/containers/{id}/start", async (e, c) => { await e.containers.start(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/stop", async (e, c) => {
  const signal = c.query.get("signal") || undefined;
  if (signal) parseSignal(signal);
  await e.containers.stop(c.params[0], { timeout: num(c.query, "t"), signal });
  return new Reply(204);
});
route("POST", "/containers/{id}/kill", async (e, c) => {
  // As Docker: the signal is checked before the container is looked up.
  const signal = c.query.get("signal") || "SIGKILL";
  parseSignal(signal);
  await e.containers.kill(c.params[0], signal);
  return new Reply(204);
});
route("POST", "/containers/{id}/restart", async (e, c) => { await e.containers.restart(c.params[0], num(c.query, "t")); return new Reply(204); });
route("POST", "/containers/{id}/pause", async (e, c) => { await e.containers.pause(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/unpause", async (e, c) => { await e.containers.unpause(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/rename", async (e, c) => { await e.containers.rename(c.params[0], c.query.get("name") ?? ""); return new Reply(204); });
route("POST", "/containers/{id}/resize", async (e, c) => { await e.containers.resize(c.params[0], num(c.query, "h") ?? 0, num(c.query, "w") ?? 0); return new Reply(200, ""); });
route("GET", "/containers/{id}/stats", async (e, c) => {
  // stream=false (docker stats --no-stream): two samples a second apart so CPU % has a delta; one-shot: one sample.
  const stream = bool(c.query, "stream", true), oneShot = bool(c.query, "one-shot");
  const res = c.res!;
  let prev = e.containers.stats(c.params[0]);
  if (!stream && oneShot) return prev;
  streamHeaders(res, "application/json");
  let closed = false;
  res.on("close", () => { closed = true; });
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    if (closed) return HANDLED;
    let cur: Record<string, unknown>;
    try { cur = e.containers.stats(c.params[0]); } catch { break; }
    cur.precpu_stats = prev.cpu_stats;
    cur.preread = prev.read;
    res.write(JSON.stringify(cur) + "\n");
    prev = cur;
    if (!stream) break;
  }
  res.end();
  return HANDLED;
});
route("GET", "/containers/{id}/top", (e, c) => e.containers.top(c.params[0], c.query.get("ps_args") || "-ef"));
route("DELETE", "/containers/{id}", async (e, c) => {
  await e.containers.remove(c.params[0], { force: bool(c.query, "force"), volumes: bool(c.query, "v") });
  return new Reply(204);
});
route("POST", "/containers/prune", (e, c) => e.containers.prune(filters(c.query)));
route("POST", "/containers/{id}/wait", async (e, c) => {
  const res = c.res!;
  const done = e.containers.wait(c.params[0], (c.query.get("condition") || "not-running") as WaitCondition);
  // Headers go out once the waiter is registered: the CLI starts the container only after it sees them.
  streamHeaders(res, "application/json");
  res.end(JSON.stringify(await done) + "\n");
  return HANDLED;
});
route("GET", "/containers/{id}/logs", async (e, c) => {
  const q = c.query;
  const stdout = bool(q, "stdout"), stderr = bool(q, "stderr");
  if (!stdout && !stderr) throw new BadParameterError("Bad parameters: you must choose at least one stream");
  // As Docker: a tail that is not a non-negative integer means all.
  const tailRaw = q.get("tail") ?? "";
  const tail = /^\d+$/.test(tailRaw) ? Number(tailRaw) : -1;
  const ac = new AbortController();
  const { tty, entries } = e.containers.logs(c.params[0], { follow: bool(q, "follow"), tail, since: timeParam(q, "since"), until: timeParam(q, "until"), signal: ac.signal });
  const res = c.res!;
  res.on("close", () => ac.abort());
  streamHeaders(res, tty ? RAW : MUX);
  const ts = bool(q, "timestamps");
  try {
    for await (const en of entries) {
      if (en.stream === "stdout" ? !stdout : !stderr) continue;
      const payload = ts ? Buffer.concat([Buffer.from(en.time + " "), en.data]) : en.data;
      const ok = res.write(tty ? payload : frame(en.stream === "stdout" ? 1 : 2, payload));
      if (!ok) await new Promise((r) => res.once("drain", r));
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  }
  res.end();
  return HANDLED;
});
route("POST", "/containers/{id}/attach", async (e, c) => {
  const ct = e.containers.get(c.params[0]);
  const q = c.query;
  const wantStdin = bool(q, "stdin");
  const stream = bool(q, "stream");
  const logs = bool(q, "logs");
  const sock = hijack(c, ct.Config.Tty ? RAW : MUX);
  if (logs) {
    const { entries } = e.containers.logs(ct.Id, { follow: false });
    for await (const en of entries) sock.write(ct.Config.Tty ? en.data : frame(en.stream === "stdout" ? 1 : 2, en.data));
  }
  if (!stream) { sock.end(); return HANDLED; }
  let attach: AttachStreams;
  let cancelled = false;
  const onClose = () => { cancelled = true; };
  sock.once("close", onClose);
  try {
    attach = await e.containers.attach(ct.Id, { stdin: wantStdin });
  } catch (err) {
    if (!ct.Config.Tty) sock.write(frame(3, errorMessage(err) + "\n"));
    sock.end();
    return HANDLED;
  }
  sock.off("close", onClose);
  if (cancelled) { attach.close(); return HANDLED; }
  relay(sock, attach, wantStdin && ct.Config.OpenStdin, ct.Config.Tty, { stdout: bool(q, "stdout", true), stderr: bool(q, "stderr", true) });
  return HANDLED;
});

// ------------------------------------------------------------------ exec

route("POST", "/containers/{id}/exec", async (e, c) => {
  const body = await jsonBody(c.req, ExecCreateSchema, { optional: true });
  const size = body.ConsoleSize;
  return new Reply(201, e.containers.execCreate(c.params[0], { ...body, ConsoleSize: size && size.length === 2 ? [size[0], size[1]] : undefined }));
});
route("GET", "/exec/{id}/json", (e, c) => {
  const r = e.containers.execInspect(c.params[0]);
  return { ...r, ExitCode: r.ExitCode ?? 0 };
});
route("POST", "/exec/{id}/resize", async (e, c) => { await e.containers.execResize(c.params[0], num(c.query, "h") ?? 0, num(c.query, "w") ?? 0); return new Reply(200, ""); });
route("POST", "/exec/{id}/start", async (e, c) => {
  // The exec is looked up before its body is read, and the body is bounded: a hijack request holds only what it needs.
  declaredLength(c.req, c.socket ? UPGRADE_BODY_LIMIT : JSON_BODY_LIMIT);
  const rec = e.containers.execInspect(c.params[0]);
  const body = await jsonBody(c.req, ExecStartSchema, { optional: true, ctx: c });
  const tty = body.Tty ?? rec.ProcessConfig.tty;
  if (body.Detach) {
    await e.containers.execStart(c.params[0], { detach: true, tty });
    if (c.socket) { hijack(c, RAW).end(); return HANDLED; }
    return new Reply(200, "");
  }
  if (!c.socket) {
    const started = await e.containers.execStart(c.params[0], { detach: false, tty });
    const sock = hijack(c, started.tty ? RAW : MUX);
    relay(sock, started.attach!, rec.OpenStdin, started.tty, { stdout: rec.OpenStdout, stderr: rec.OpenStderr }, started.exitCode);
    return HANDLED;
  }
  // Upgrade first, as Docker does: a start failure is reported inside the stream, and the exit code by inspect.
  const sock = hijack(c, tty ? RAW : MUX);
  let started;
  try {
    started = await e.containers.execStart(c.params[0], { detach: false, tty });
  } catch (err) {
    const msg = errorMessage(err) + "\n";
    sock.end(tty ? msg : frame(2, msg));
    return HANDLED;
  }
  relay(sock, started.attach!, rec.OpenStdin, started.tty, { stdout: rec.OpenStdout, stderr: rec.OpenStderr }, started.exitCode);
  return HANDLED;
});

// ------------------------------------------------------------------ images

route("GET", "/images/json", (e, c) => e.images.list({ all: bool(c.query, "all"), filters: filters(c.query), digests: bool(c.query, "digests") }));
route("POST", "/images/create", async (e, c) => {
  const q = c.query;
  const src = q.get("fromSrc");
  if (src === "-") {
    const res = c.res!;
    const rec = await e.images.importTar(c.req, { repo: q.get("repo") ?? undefined, tag: q.get("tag") ?? undefined, message: q.get("message") ?? undefined, changes: q.getAll("changes") });
    streamHeaders(res, "application/json");
    res.end(JSON.stringify({ status: rec.id }) + "\n");
    return HANDLED;
  }
  if (src) throw new BadParameterError("importing from a URL is not supported yet; download the file and use `import FILE`");
  const image = q.get("fromImage") ?? "";
  const tag = q.get("tag");
  const ref = tag && !image.includes("@") && !/:[^/]+$/.test(image) ? `${image}:${tag}` : image;
  // Errors before any progress are plain API errors; once streaming, they travel as {"error": ...} messages, as Docker's.
  const res = c.res!;
  // The client going away (its connection closed before the answer ended) cancels the pull, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  let started = false;
  const send = (m: object) => {
    if (res.destroyed || gone.signal.aborted) return;
    if (!started) { streamHeaders(res, "application/json"); started = true; }
    res.write(JSON.stringify(m) + "\n");
  };
  try {
    await e.images.pull(ref, { platform: q.get("platform") || undefined, creds: registryAuth(c.req), onProgress: send, signal: gone.signal });
  } catch (err) {
    if (gone.signal.aborted) { res.destroy(); return HANDLED; }
    if (!started) throw err;
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});
/** Docker's X-Registry-Auth: base64url JSON {username, password, serveraddress}. */
function registryAuth(req: http.IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers["x-registry-auth"];
  if (typeof h !== "string" || !h) return undefined;
  try {
    const v = JSON.parse(Buffer.from(h.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString()) as { username?: string; password?: string };
    return v.username ? { username: v.username, password: v.password ?? "" } : undefined;
  } catch { return undefined; }
}

route("POST", "/images/{name*}/push", async (e, c) => {
  const tag = c.query.get("tag");
  const ref = tag ? `${c.params[0]}:${tag}` : c.params[0];
  e.images.resolve(ref);
  const res = c.res!;
  streamHeaders(res, "application/json");
  // The client going away (its connection closed before the answer ended) cancels the push, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  const send = (m: object) => { if (!res.destroyed && !gone.signal.aborted) res.write(JSON.stringify(m) + "\n"); };
  try {
    await e.images.push(ref, { creds: registryAuth(c.req), onProgress: send, signal: gone.signal });
  } catch (err) {
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});
route("POST", "/auth", async (e, c) => {
  const b = await jsonBody(c.req, AuthSchema);
  await e.images.login(b.serveraddress ?? "docker.io", { username: b.username ?? "", password: b.password ?? "" });
  return { Status: "Login Succeeded", IdentityToken: "" };
});
route("POST", "/berth/system/check", (e, c) => e.images.check({ repair: bool(c.query, "repair") }));
route("POST", "/berth/images/bootstrap", async (e, c) => {
  const name = c.query.get("name") || "busybox";
  const rec = await e.images.bootstrap(name);
  return { status: `Bootstrapped ${name}`, id: rec.id };
});
route("GET", "/images/get", (e, c) => {
  const out = e.images.save(c.query.getAll("names"));
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  out.on("error", () => res.destroy());
  return HANDLED;
});
route("POST", "/images/load", async (e, c) => {
  const loaded = await e.images.load(c.req, join(e.opts.dataRoot, "tmp"));
  const res = c.res!;
  streamHeaders(res, "application/json");
  for (const l of loaded) res.write(JSON.stringify({ stream: l + "\n" }) + "\n");
  res.end();
  return HANDLED;
});
route("GET", "/containers/{id}/export", async (e, c) => {
  const out = await e.containers.export(c.params[0]);
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  return HANDLED;
});
route("POST", "/images/prune", (e, c) => e.images.prune(filters(c.query)));
route("GET", "/images/{name*}/json", (e, c) => e.images.inspect(c.params[0]));
route("GET", "/images/{name*}/get", (e, c) => {
  const out = e.images.save([c.params[0]]);
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  return HANDLED;
});
route("GET", "/images/{name*}/history", (e, c) => e.images.history(c.params[0]));
route("POST", "/images/{name*}/tag", async (e, c) => {
  const repo = c.query.get("repo");
  if (!repo) throw new BadParameterError("repository name must have at least one component");
  await e.images.tag(c.params[0], repo, c.query.get("tag") ?? undefined);
  return new Reply(201, "");
});
route("DELETE", "/images/{name*}", (e, c) => e.images.remove(c.params[0], { force: bool(c.query, "force"), noprune: bool(c.query, "noprune") }));

// ------------------------------------------------------------------ volumes

route("GET", "/volumes", (e, c) => e.volumes.list(filters(c.query)));
route("POST", "/volumes/create", async (e, c) => new Reply(201, await e.volumes.create(await jsonBody(c.req, VolumeCreateSchema, { optional: true, allowEmpty: false, empty: "got EOF while reading request body" }))));
route("POST", "/volumes/prune", (e, c) => e.volumes.prune(filters(c.query)));
route("GET", "/volumes/{name}", (e, c) => e.volumes.inspect(c.params[0]));
route("DELETE", "/volumes/{name}", async (e, c) => { await e.volumes.remove(c.params[0], bool(c.query, "force")); return new Reply(204); });

route("POST", "/commit", async (e, c) => {
  const q = c.query;
  const container = q.get("container");
  if (!container) throw new BadParameterError("no container specified");
  const body = await jsonBody(c.req, CommitConfigSchema, { optional: true });
  return new Reply(201, await e.commits.commit(container, {
    repo: q.get("repo") || undefined, tag: q.get("tag") || undefined, comment: q.get("comment") || undefined, author: q.get("author") || undefined,
    pause: bool(q, "pause", true), changes: q.getAll("changes").filter(Boolean), config: body,
  }));
});
route("GET", "/containers/{id}/changes", (e, c) => e.commits.diff(c.params[0]));

route("POST", "/build", async (e, c) => {
  const q = c.query;
  const json = <T>(k: string): T | undefined => {
    const v = q.get(k);
    if (!v) return undefined;
    try { return JSON.parse(v) as T; } catch { throw new BadParameterError(`invalid ${k}: ${v}`); }
  };
  const res = c.res!;
  streamHeaders(res, "application/json");
  // The client going away (its connection closed before the answer ended) cancels the build, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  const send = (m: object) => { if (!res.destroyed && !gone.signal.aborted) res.write(JSON.stringify(m) + "\n"); };
  try {
    await e.builds.build(c.req, {
      tags: q.getAll("t").filter(Boolean), dockerfile: q.get("dockerfile") || undefined, target: q.get("target") || undefined,
      buildArgs: Object.fromEntries(Object.entries(json<Record<string, string | null>>("buildargs") ?? {}).filter(([, v]) => v !== null)) as Record<string, string>,
      labels: json<Record<string, string>>("labels"), noCache: bool(q, "nocache"), pull: bool(q, "pull"), quiet: bool(q, "q"),
    }, send, gone.signal);
  } catch (err) {
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});

// ------------------------------------------------------------------ networks

route("GET", "/networks", (e, c) => e.networks.list(filters(c.query)));
route("POST", "/networks/create", async (e, c) => new Reply(201, await e.networks.create(await jsonBody(c.req, NetworkCreateSchema, { optional: true }))));
route("POST", "/networks/prune", (e, c) => e.networks.prune(filters(c.query)));
route("GET", "/networks/{id}", (e, c) => e.networks.inspect(c.params[0]));
route("DELETE", "/networks/{id}", async (e, c) => { await e.networks.remove(c.params[0]); return new Reply(204); });
route("POST", "/networks/{id}/connect", async (e, c) => {
  const body = await jsonBody(c.req, NetworkConnectSchema, { optional: true });
  if (!body.Container) throw new BadParameterError(`invalid name or ID supplied: ""`);
  await e.connectNetwork(c.params[0], body.Container, body.EndpointConfig ?? {});
  return new Reply(200, "");
});
route("POST", "/networks/{id}/disconnect", async (e, c) => {
  const body = await jsonBody(c.req, NetworkDisconnectSchema, { optional: true });
  if (!body.Container) throw new BadParameterError(`invalid name or ID supplied: ""`);
  await e.disconnectNetwork(c.params[0], body.Container, !!body.Force);
  return new Reply(200, "");
});

// archive (cp)
route("HEAD", "/containers/{id}/archive", async (e, c) => { await headArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });
route("GET", "/containers/{id}/archive", async (e, c) => { await getArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });
route("PUT", "/containers/{id}/archive", async (e, c) => { await putArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });

// ------------------------------------------------------------------ hijacking

/** Switches the connection to a raw stream: 101 for upgrade requests, 200 otherwise. */
function hijack(c: Ctx, contentType: string): Duplex {
  if (c.socket) {
    c.socket.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: ${API_VERSION}\r\n\r\n`);
    if (c.head?.length) c.socket.unshift(c.head);
    return c.socket;
  }
  const res = c.res!;
  const sock = res.socket!;
  sock.on("error", () => { sock.destroy(); });
  // Older clients attach without an upgrade: answer 200 and take the socket over.
  sock.write(`HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nApi-Version: ${API_VERSION}\r\nConnection: close\r\n\r\n`);
  (res as unknown as { _headerSent: boolean })._headerSent = true;
  return sock;
}

/** Copies container output to the client socket and client input to the container, until the output ends. */
function relay(sock: Duplex, a: AttachStreams, stdin: boolean, tty: boolean, want: { stdout: boolean; stderr: boolean }, before?: Promise<unknown>): void {
  if (stdin) {
    sock.on("data", (d: Buffer) => { a.input.write(d); });
    sock.on("end", () => a.input.end());
  } else {
    sock.on("data", () => {});
  }
  sock.on("error", () => a.close());
  sock.on("close", () => a.close());
  const filter = !tty && (!want.stdout || !want.stderr);
  let pending = Buffer.alloc(0);
  a.output.on("data", (d: Buffer) => {
    if (!filter) { if (!sock.write(d)) { a.output.pause(); sock.once("drain", () => a.output.resume()); } return; }
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 8) {
      const len = pending.readUInt32BE(4);
      if (pending.length < 8 + len) break;
      const kind = pending[0];
      if ((kind === 1 && want.stdout) || (kind === 2 && want.stderr) || kind === 3) sock.write(pending.subarray(0, 8 + len));
      pending = pending.subarray(8 + len);
    }
  });
  a.output.on("end", () => {
    void Promise.resolve(before).catch(() => {}).then(() => {
      if (!sock.destroyed) sock.end();
    });
  });
  sock.resume();
}

// ------------------------------------------------------------------ dispatch

function versionOf(path: string): { version: string; path: string } {
  const m = /^\/v(\d+\.\d+)(\/.*)$/.exec(path);
  return m ? { version: m[1], path: m[2] } : { version: API_VERSION, path };
}

function cmpVersion(a: string, b: string): number {
  const [a1, a2] = a.split(".").map(Number);
  const [b1, b2] = b.split(".").map(Number);
  return a1 - b1 || a2 - b2;
}

function sendError(res: http.ServerResponse | undefined, socket: Duplex | undefined, status: number, message: string): void {
  const body = JSON.stringify({ message }) + "\n";
  if (res) {
    if (res.headersSent) { res.destroy(); return; }
    res.writeHead(status, { "Content-Type": "application/json", "Api-Version": API_VERSION });
    res.end(status === 304 ? undefined : body);
    return;
  }
  if (socket) {
    const reason = http.STATUS_CODES[status] ?? "Error";
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nApi-Version: ${API_VERSION}\r\n\r\n${body}`);
  }
}

/** The routes that switch protocols (attach, exec start); an upgrade request for any other route is refused before it runs. */
const UPGRADABLE = [/^\/containers\/[^/]+\/attach$/, /^\/exec\/[^/]+\/start$/];

/**
 * A request body that stops arriving is cut off: every BODY_IDLE_MS the
 * socket must have delivered something, unless the handler is the slow side
 * (the request's buffer is full: backpressure) or the body is complete.
 */
function watchBody(req: http.IncomingMessage, res: http.ServerResponse): void {
  const sock = req.socket;
  if (req.complete || (req.headers["content-length"] === undefined && req.headers["transfer-encoding"] === undefined)) return;
  let last = sock.bytesRead;
  const timer = setInterval(() => {
    if (req.complete || sock.destroyed) { clearInterval(timer); return; }
    const backpressured = req.readableLength >= req.readableHighWaterMark;
    if (sock.bytesRead === last && !backpressured) { clearInterval(timer); sock.destroy(); return; }
    last = sock.bytesRead;
  }, BODY_IDLE_MS);
  timer.unref();
  const stop = () => clearInterval(timer);
  req.once("end", stop);
  req.once("close", stop);
  res.once("close", stop);
}

const DRAIN_LIMIT = 1 << 20;
const DRAIN_MS = 2_000;

async function dispatch(engine: Engine, req: http.IncomingMessage, res: http.ServerResponse | undefined, socket?: Duplex, head?: Buffer): Promise<void> {
  // A hijackable socket has an error listener from the start: a client that resets it must never reach the process's handlers.
  socket?.on("error", () => { socket.destroy(); });
  if (res) {
    watchBody(req, res);
    // A body the handler did not read (or only partly): up to 1 MiB more, for 2 s at most, is read and dropped,
    // so a client still sending gets its answer whole rather than a reset; past that the connection closes.
    const conn = req.socket;
    res.once("finish", () => {
      if (req.complete || !conn || conn.destroyed) return;
      let left = DRAIN_LIMIT;
      const close = () => { clearTimeout(timer); if (conn.destroyed) return; conn.end(); conn.once("finish", () => conn.destroy()); };
      const timer = setTimeout(close, DRAIN_MS);
      timer.unref();
      req.on("data", (d: Buffer) => { left -= d.length; if (left < 0) { req.pause(); close(); } });
      req.once("end", () => clearTimeout(timer));
      req.once("error", close);
      req.resume();
    });
  }
  let url: URL;
  try {
    url = new URL(req.url ?? "/", "http://berth");
  } catch {
    safeSendError(res, socket, 400, `invalid request URI: ${String(req.url).slice(0, 200)}`);
    return;
  }
  const { version, path } = versionOf(url.pathname);
  try {
    checkQueryEscapes(url.search);
    if (cmpVersion(version, API_VERSION) > 0) throw new BadParameterError(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
    if (cmpVersion(version, MIN_API_VERSION) < 0) throw new BadParameterError(`client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`);
    const method = req.method ?? "GET";
    let found: { h: Handler; params: string[] } | undefined;
    let pathMatched = false;
    for (const r of routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      found = { h: r.h, params: m.slice(1).map(unescapePath) };
      break;
    }
    if (!found) {
      throw pathMatched ? new BerthError(`method ${method} not allowed for ${path}`, 405) : new NotFoundError(`page not found`);
    }
    if (socket && !UPGRADABLE.some((re) => re.test(path))) throw new BadParameterError("this endpoint does not upgrade the connection");
    const out = await found.h(engine, { req, res, socket, head, params: found.params, query: url.searchParams, version });
    if (out === HANDLED) return;
    const reply = out instanceof Reply ? out : new Reply(200, out);
    if (!res) { sendError(undefined, socket, 400, "this endpoint does not upgrade the connection"); return; }
    const headers: Record<string, string> = { "Api-Version": API_VERSION, "Server": `berth/${ENGINE_VERSION}`, "Docker-Experimental": "false", "Ostype": "linux" };
    if (path === "/_ping") { headers["Builder-Version"] = "1"; headers["Cache-Control"] = "no-cache, no-store, must-revalidate"; headers["Pragma"] = "no-cache"; headers["Content-Type"] = "text/plain; charset=utf-8"; }
    if (reply.body === undefined || reply.status === 204 || reply.status === 304) { res.writeHead(reply.status, headers); res.end(); return; }
    if (typeof reply.body === "string") { res.writeHead(reply.status, headers); res.end(reply.body); return; }
    headers["Content-Type"] = "application/json";
    res.writeHead(reply.status, headers);
    res.end(JSON.stringify(reply.body) + "\n");
  } catch (e) {
    const status = e instanceof BerthError ? e.status : 500;
    safeSendError(res, socket, status, errorMessage(e));
  }
}

/** Writes to a destroyed response or socket are dropped, never thrown. */
function safeSendError(res: http.ServerResponse | undefined, socket: Duplex | undefined, status: number, message: string): void {
  try { sendError(res, socket, status, message); } catch { res?.destroy(); socket?.destroy(); }
}

/**
 * Timeouts: headers must arrive within HEADERS_TIMEOUT_MS (checked every
 * second); an idle keep-alive connection closes after 60 s; a request body
 * that stops arriving is cut off (watchBody). Nothing bounds how long an
 * answer takes or streams (logs -f, events, attach, builds, big uploads).
 */
export function createApiServer(engine: Engine): http.Server {
  const server = http.createServer({ keepAlive: true, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0, connectionsCheckingInterval: 1000 }, (req, res) => { void dispatch(engine, req, res); });
  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => { void dispatch(engine, req, undefined, socket, head); });
  // A malformed request (bad header, oversized header block, bad chunking): 400 and close, as Go's server; a reset socket just goes.
  server.on("clientError", (err: NodeJS.ErrnoException, sock: Duplex) => {
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || !sock.writable) { sock.destroy(); return; }
    const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    sock.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n${status} ${http.STATUS_CODES[status]}`);
  });
  server.keepAliveTimeout = 60_000;
  return server;
}
