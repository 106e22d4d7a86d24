/**
 * The Docker Engine API server: routes → engine. Accepts version-prefixed
 * paths (/v1.24 … /v{API_VERSION}), answers version negotiation on /_ping,
 * hijacks connections for attach and exec (101 UPGRADED, then raw or
 * multiplexed stdio), and maps typed engine errors to Docker's statuses and
 * `{"message": ...}` bodies. The routes live in ./routes/, one file per resource.
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import { URL } from "node:url";
import type { Engine } from "../engine/engine.js";
import { ENGINE_VERSION } from "../engine/engine.js";
import { BadParameterError, BerthError, NotFoundError, errorMessage } from "../lib/errors.js";
import { unescapePath, checkQueryEscapes } from "./validate.js";
import { trace } from "../lib/trace.js";
import { API_VERSION, MIN_API_VERSION, routes, Reply, HANDLED, BODY_IDLE_MS, HEADERS_TIMEOUT_MS, type Handler } from "./router.js";
// Route files register themselves in this order (the first match wins).
import "./routes/system.js";
import "./routes/attach-ws.js";
import "./routes/containers.js";
import "./routes/exec.js";
import "./routes/images.js";
import "./routes/volumes.js";
import "./routes/build.js";
import "./routes/manifests.js";
import "./routes/networks.js";
import "./routes/distribution.js";
import "./routes/swarm.js";
import "./routes/plugins.js";

export { API_VERSION, MIN_API_VERSION, JSON_BODY_LIMIT } from "./router.js";

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
const UPGRADABLE = [/^\/containers\/[^/]+\/attach$/, /^\/containers\/[^/]+\/attach\/ws$/, /^\/exec\/[^/]+\/start$/];

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

/** Reads and drops what is left of a request body, up to DRAIN_LIMIT and for DRAIN_MS at most: true when it ended. */
function dropBody(req: http.IncomingMessage): Promise<boolean> {
  return new Promise((resolve) => {
    let left = DRAIN_LIMIT;
    const done = (ended: boolean) => {
      clearTimeout(timer);
      req.off("data", onData); req.off("end", onEnd); req.off("error", onFail); req.off("close", onFail);
      resolve(ended);
    };
    const onEnd = () => done(true);
    const onFail = () => done(req.complete);
    const onData = (d: Buffer) => { left -= d.length; if (left < 0) { req.pause(); done(false); } };
    const timer = setTimeout(() => done(false), DRAIN_MS);
    timer.unref();
    req.on("data", onData); req.once("end", onEnd); req.once("error", onFail); req.once("close", onFail);
    req.resume();
  });
}

/**
 * Before an answer to a request whose body the handler did not read whole: the rest is dropped first
 * (dropBody), so the connection's close cannot reset a client that is still writing and make it lose the
 * answer (Node ends a `Connection: close` socket right after the response, with the unread body still
 * queued). A body declared larger than the limit is not waited for; that answer goes out at once.
 */
async function drainFirst(req: http.IncomingMessage): Promise<void> {
  if (req.complete || req.destroyed || req.socket?.destroyed) return;
  const cl = req.headers["content-length"];
  if (cl === undefined && req.headers["transfer-encoding"] === undefined) return;
  if (cl !== undefined && Number(cl) > DRAIN_LIMIT) return;
  await dropBody(req);
}

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
      void dropBody(req).then((ended) => { if (!ended && !conn.destroyed) { conn.end(); conn.once("finish", () => conn.destroy()); } });
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
    trace(`> ${method} ${path}`);
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
    trace(`< ${method} ${path}`);
    if (out === HANDLED) return;
    const reply = out instanceof Reply ? out : new Reply(200, out);
    if (!res) { sendError(undefined, socket, 400, "this endpoint does not upgrade the connection"); return; }
    await drainFirst(req);
    const headers: Record<string, string> = { "Api-Version": API_VERSION, "Server": `berth/${ENGINE_VERSION}`, "Docker-Experimental": "false", "Ostype": "linux" };
    if (path === "/_ping") { headers["Builder-Version"] = "1"; headers["Cache-Control"] = "no-cache, no-store, must-revalidate"; headers["Pragma"] = "no-cache"; headers["Content-Type"] = "text/plain; charset=utf-8"; }
    if (reply.body === undefined || reply.status === 204 || reply.status === 304) { res.writeHead(reply.status, headers); res.end(); return; }
    if (typeof reply.body === "string") { res.writeHead(reply.status, headers); res.end(reply.body); return; }
    headers["Content-Type"] = "application/json";
    res.writeHead(reply.status, headers);
    res.end(JSON.stringify(reply.body) + "\n");
  } catch (e) {
    const status = e instanceof BerthError ? e.status : 500;
    if (res && !res.headersSent) await drainFirst(req);
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
