/**
 * The API server's kit, shared by the route files (src/api/routes/*.ts, one
 * per resource, as moby's api/server/router/{container,image,...}): the route
 * table, query and body readers with their limits, streamed answers, and
 * connection hijacking for attach and exec.
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import type { Engine } from "../engine/engine.js";
import { ENGINE_VERSION } from "../engine/engine.js";
import type { AttachStreams } from "../runtime/driver.js";
import { BadParameterError, BerthError, errorMessage } from "../lib/errors.js";
import { boolParam, intParam, parseFilters, parseJson, check, type Schema } from "./validate.js";

export const API_VERSION = "1.47";
export const MIN_API_VERSION = "1.24";

export type Query = URLSearchParams;
export interface Ctx {
  req: http.IncomingMessage;
  res?: http.ServerResponse;
  socket?: Duplex; // set for hijacked (upgraded) requests
  head?: Buffer;
  params: string[];
  query: Query;
  version: string;
}
export type Handler = (e: Engine, c: Ctx) => Promise<unknown> | unknown;

/** A handler's answer: a status with a JSON body, or nothing (it wrote the response itself). */
export class Reply { constructor(readonly status: number, readonly body?: unknown) {} }
export const HANDLED = Symbol("handled");

export const routes: { method: string; re: RegExp; h: Handler }[] = [];
export function route(method: string, path: string, h: Handler): void {
  // {name} matches one segment; {name*} matches the rest (image names contain slashes).
  const re = new RegExp("^" + path.replace(/\{\w+\*\}/g, "(.+)").replace(/\{\w+\}/g, "([^/]+)") + "$");
  routes.push({ method, re, h });
}

/** Docker's boolean query parameters (httputils.BoolValue). */
export function bool(q: Query, k: string, dflt = false): boolean { return boolParam(q, k, dflt); }

/** Integer query parameters are Go's strconv.Atoi: anything else is a 400. */
export function num(q: Query, k: string): number | undefined { return intParam(q, k); }

/** Docker's X-Registry-Auth: base64url JSON {username, password, serveraddress}. */
export function registryAuth(req: http.IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers["x-registry-auth"];
  if (typeof h !== "string" || !h) return undefined;
  try {
    const v = JSON.parse(Buffer.from(h.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString()) as { username?: string; password?: string };
    return v.username ? { username: v.username, password: v.password ?? "" } : undefined;
  } catch { return undefined; }
}

export function filters(q: Query): Record<string, string[]> { return parseFilters(q.get("filters")); }

/** Docker's time parameters: unix seconds with optional fraction, or RFC3339. */
export function timeParam(q: Query, k: string): number | undefined {
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
export const UPGRADE_BODY_LIMIT = 64 * 1024;
/** A client that stops sending a request body for this long is cut off (BERTH_API_BODY_TIMEOUT_MS overrides it). */
export const BODY_IDLE_MS = Number(process.env.BERTH_API_BODY_TIMEOUT_MS) || 60_000;
/** Headers must arrive within this (BERTH_API_HEADERS_TIMEOUT_MS overrides it). */
export const HEADERS_TIMEOUT_MS = Number(process.env.BERTH_API_HEADERS_TIMEOUT_MS) || 20_000;

class TooLargeError extends BerthError {
  constructor(limit: number) { super(`request body is larger than ${limit} bytes`, 413); }
}

export function declaredLength(req: http.IncomingMessage, limit: number): number {
  const cl = req.headers["content-length"];
  const len = cl === undefined ? 0 : Number(cl);
  if (!Number.isSafeInteger(len) || len < 0) throw new BadParameterError(`invalid Content-Length: ${cl}`);
  if (len > limit) throw new TooLargeError(limit);
  return len;
}

export async function readBody(req: http.IncomingMessage, limit = JSON_BODY_LIMIT): Promise<Buffer> {
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
export async function upgradeBody(c: Ctx, limit = UPGRADE_BODY_LIMIT): Promise<Buffer> {
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
export async function jsonBody<T>(req: http.IncomingMessage, schema: Schema<T>, opts: { optional?: boolean; allowEmpty?: boolean; ctx?: Ctx; empty?: string } = {}): Promise<T> {
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

export function streamHeaders(res: http.ServerResponse, contentType: string): void {
  res.writeHead(200, { "Content-Type": contentType, "Api-Version": API_VERSION, "Server": `berth/${ENGINE_VERSION}` });
  res.flushHeaders();
}

/**
 * A streamed JSON-lines answer (pull, push, build) whose client going away
 * (the connection closed before the answer ended) cancels the work, as with
 * Docker: `signal` aborts then. Headers go out with the first message, or at
 * once when `eager`; until then an error can still be a plain API error.
 */
export function progressStream(c: Ctx, opts: { eager?: boolean } = {}) {
  const res = c.res!;
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  let started = false;
  const start = () => { if (!started) { streamHeaders(res, "application/json"); started = true; } };
  if (opts.eager) start();
  const send = (m: object) => { if (res.destroyed || gone.signal.aborted) return; start(); res.write(JSON.stringify(m) + "\n"); };
  const detach = () => { res.off("close", onClose); c.req.off("aborted", onClose); };
  return {
    signal: gone.signal,
    send,
    started: () => started,
    /** An error once streaming: Docker's {"errorDetail", "error"} message. */
    fail: (err: unknown) => send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) }),
    /** Stops watching the client, before a plain error is thrown. */
    detach,
    /** Ends the answer (cut off, when the client went away). */
    end: () => { detach(); if (gone.signal.aborted) res.destroy(); else if (!res.destroyed) res.end(); },
  };
}

export const RAW = "application/vnd.docker.raw-stream";
export const MUX = "application/vnd.docker.multiplexed-stream";



/** Switches the connection to a raw stream: 101 for upgrade requests, 200 otherwise. */
export function hijack(c: Ctx, contentType: string): Duplex {
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
export function relay(sock: Duplex, a: AttachStreams, stdin: boolean, tty: boolean, want: { stdout: boolean; stderr: boolean }, before?: Promise<unknown>): void {
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

