/**
 * A typed client of the Docker Engine API over a unix socket (or tcp://).
 * Negotiates the API version like the docker CLI (GET /_ping, API-Version
 * header), maps error bodies to ApiError, and hijacks connections for attach
 * and exec (Upgrade: tcp → a raw duplex socket).
 */
import net from "node:net";
import { PassThrough } from "node:stream";
import type { ErrorResponse, ExecInspectResponse } from "./types.js";

export const CLIENT_API_VERSION = "1.47";
export const DEFAULT_HOST = "unix:///run/berth/berth.sock";

export class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); this.name = "ApiError"; }
}

/**
 * The connection failed rather than the daemon answering an error: the message is what the docker CLI prints
 * ("error during connect: Get \"http://...\": EOF" before an answer, the plain cause, "unexpected EOF", when a
 * streamed answer is cut off).
 */
export class ConnectionError extends Error {
  constructor(message: string, readonly code?: string) { super(message); this.name = "ConnectionError"; }
}

/** Go's wording of a socket error (what the docker CLI shows), from Node's errno codes. */
export function socketCause(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ECONNRESET": return "read: connection reset by peer";
    case "EPIPE": return "write: broken pipe";
    case "ECONNREFUSED": return "connect: connection refused";
    case "ENOENT": return "connect: no such file or directory";
    case "EACCES": return "connect: permission denied";
    case "ETIMEDOUT": return "i/o timeout";
    default: return err instanceof Error ? err.message : String(e);
  }
}

/** The body of POST /containers/{id}/update: HostConfig's Resources fields and a RestartPolicy (Name "" keeps it). */
export interface UpdateConfig {
  CpuShares?: number; Memory?: number; NanoCpus?: number; CgroupParent?: string; BlkioWeight?: number;
  CpuPeriod?: number; CpuQuota?: number; CpuRealtimePeriod?: number; CpuRealtimeRuntime?: number;
  CpusetCpus?: string; CpusetMems?: string; KernelMemory?: number; MemoryReservation?: number; MemorySwap?: number;
  MemorySwappiness?: number | null; OomKillDisable?: boolean | null; PidsLimit?: number | null;
  RestartPolicy?: { Name: string; MaximumRetryCount: number };
  [field: string]: unknown;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined | string[]>;
  body?: unknown;
  raw?: NodeJS.ReadableStream | Buffer;
  headers?: Record<string, string>;
}

function cmp(a: string, b: string): number {
  const [a1, a2] = a.split(".").map(Number), [b1, b2] = b.split(".").map(Number);
  return a1 - b1 || a2 - b2;
}

/** Docker's X-Docker-Container-Path-Stat: mode is Go's os.FileMode (directory 1<<31, symlink 1<<27). */
export interface ContainerPathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

export function decodePathStat(h: string | undefined): ContainerPathStat {
  if (!h) throw new ApiError(500, "unable to decode container path stat header: missing header");
  try { return JSON.parse(Buffer.from(h, "base64").toString("utf8")) as ContainerPathStat; } catch (e) {
    throw new ApiError(500, `unable to decode container path stat header: ${(e as Error).message}`);
  }
}

/** The objects of a newline-delimited JSON stream (pull progress, events). */
export async function* jsonLines<T>(stream: NodeJS.ReadableStream): AsyncGenerator<T> {
  let buf = "";
  for await (const chunk of stream) {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) yield JSON.parse(line) as T;
    }
  }
  if (buf.trim()) yield JSON.parse(buf) as T;
}

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error" };

/** A response: status, lower-cased headers, and the decoded body as a stream. */
export interface Response extends NodeJS.ReadableStream {
  statusCode: number;
  headers: Record<string, string>;
}

/**
 * A minimal HTTP/1.1 exchange over one fresh connection, closed by us once the
 * answer is in. node:http costs ~10 ms of cold start per process; this costs
 * ~1 ms, and `berth` is a short-lived process that makes a handful of requests.
 *
 * No `Connection: close` (the docker CLI sends none either): a daemon that
 * answers before reading the body (a 400 for a bad name in the query) then
 * reads and drops the rest to keep the connection, rather than hang up on a
 * body still being written. A hang-up there makes our write fail with EPIPE,
 * and Node's socket, destroyed by the write error, loses the answer waiting
 * in the socket (seen: 1 in 10 `run --name a` with a large body).
 */
function exchange(sock: net.Socket, head: string, body: Buffer | NodeJS.ReadableStream | undefined, isHead = false): Promise<Response> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    let res: (PassThrough & Response) | undefined;
    function onBody(d: Buffer): void {
      if (!d.length || sock.destroyed) return;
      const b = body as NodeJS.ReadableStream;
      sock.write(`${d.length.toString(16)}\r\n`);
      sock.write(d);
      if (!sock.write("\r\n")) { b.pause(); sock.once("drain", () => { if (!answered) b.resume(); }); }
    }
    let remaining = -1; // content-length left, -1: until close
    let chunked = false;
    let chunkLeft = 0; // bytes of chunk data left (+2 for its CRLF once started)
    let complete = false; // the last chunk arrived
    // The whole answer is in: a request body the server stopped reading (an early error answer) then fails to write; that is no error.
    let answered = false;
    // Backpressure: while the reader of the body is behind, stop reading the socket (a `save` into a slow pipe
    // must not buffer the whole image in memory).
    let paused = false;
    // The answer is complete: hang up, and stop sending a body the daemon no longer wants.
    const done = () => {
      answered = true;
      res!.end();
      sock.destroy();
      if (body && !Buffer.isBuffer(body)) { body.off("data", onBody); body.pause(); }
    };
    const push = (d: Buffer) => {
      if (!res!.write(d) && !paused) {
        paused = true;
        sock.pause();
        res!.once("drain", () => { paused = false; sock.resume(); });
      }
    };
    const feedChunked = () => {
      while (buf.length) {
        if (chunkLeft === 0) {
          const i = buf.indexOf("\r\n");
          if (i < 0) return;
          const size = parseInt(buf.subarray(0, i).toString(), 16);
          buf = buf.subarray(i + 2);
          if (size === 0) { complete = true; done(); return; }
          chunkLeft = size + 2;
        }
        const take = Math.min(chunkLeft, buf.length);
        const data = buf.subarray(0, take);
        chunkLeft -= take;
        buf = buf.subarray(take);
        const payload = chunkLeft >= 2 ? data : data.subarray(0, Math.max(0, data.length - (2 - chunkLeft)));
        if (payload.length) push(payload);
      }
    };
    const feed = () => {
      if (chunked) return feedChunked();
      if (!buf.length) return;
      if (remaining >= 0) {
        const take = buf.subarray(0, remaining);
        remaining -= take.length;
        buf = buf.subarray(take.length);
        if (take.length) push(take);
        if (remaining === 0) done();
      } else {
        push(buf);
        buf = Buffer.alloc(0);
      }
    };
    sock.on("data", (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (!res) {
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        const lines = buf.subarray(0, i).toString().split("\r\n");
        buf = buf.subarray(i + 4);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) { const c = l.indexOf(":"); if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim(); }
        res = Object.assign(new PassThrough(), { statusCode: Number(/^HTTP\/1\.[01] (\d+)/.exec(lines[0])?.[1] ?? 0), headers });
        // A reader that gives up on the body (destroys it) hangs up, rather than leave the socket paused and open.
        res.once("close", () => { if (!sock.destroyed) sock.destroy(); });
        chunked = /chunked/i.test(headers["transfer-encoding"] ?? "");
        if (headers["content-length"] !== undefined) remaining = Number(headers["content-length"]);
        const noBody = isHead || res.statusCode === 204 || res.statusCode === 304 || remaining === 0;
        resolve(res);
        if (noBody) { done(); return; }
      }
      feed();
    });
    sock.on("end", () => {
      if (!res) { reject(new ConnectionError("EOF")); return; }
      // A chunked body without its last chunk, or a short Content-Length body, was cut off: the daemon went away.
      if ((chunked && !complete) || remaining > 0) res.destroy(new ConnectionError("unexpected EOF"));
      else res.end();
    });
    sock.on("error", (e) => { if (answered) return; if (res) res.destroy(new ConnectionError(socketCause(e), (e as NodeJS.ErrnoException).code)); else reject(e); });
    // Head and a buffered body in one write: a daemon that answers (an error) before reading the body and
    // hangs up must not turn its answer into our EPIPE on a second write.
    if (body === undefined || Buffer.isBuffer(body)) { sock.write(body?.length ? Buffer.concat([Buffer.from(head), body]) : head); return; }
    sock.write(head);
    body.on("data", onBody);
    body.on("end", () => { if (!sock.destroyed) sock.write("0\r\n\r\n"); });
    body.on("error", (e: Error) => { sock.destroy(e); });
  });
}

export class ApiClient {
  private version: string | undefined;
  private readonly socketPath?: string;
  private readonly tcp?: { host: string; port: number };

  constructor(readonly host: string = DEFAULT_HOST) {
    if (host.startsWith("unix://")) this.socketPath = host.slice(7);
    else if (host.startsWith("/")) this.socketPath = host;
    else {
      const u = new URL(host.replace(/^tcp:/, "http:"));
      this.tcp = { host: u.hostname, port: Number(u.port || 2375) };
    }
  }

  /**
   * Run once, by the first connection that finds nothing listening on the socket (the CLI starts its
   * default daemon there); that connection, and every one after, is then tried again. A command that
   * never talks to the daemon (`compose --help`) never starts one.
   */
  whenUnreachable?: () => Promise<void>;
  private starting: Promise<void> | undefined;

  private dial(): Promise<net.Socket> {
    const sock = this.socketPath ? net.connect(this.socketPath) : net.connect(this.tcp!.port, this.tcp!.host);
    return new Promise((res, rej) => { sock.once("connect", () => { sock.off("error", rej); res(sock); }); sock.once("error", rej); });
  }

  private async connect(): Promise<net.Socket> {
    try { return await this.dial(); } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (!this.whenUnreachable || (code !== "ENOENT" && code !== "ECONNREFUSED")) throw e;
      this.starting ??= this.whenUnreachable();
      await this.starting;
      return this.dial();
    }
  }

  close(): void { /* connections close with each exchange */ }

  /** Is anything listening on the socket? (a bare connect, no HTTP) */
  async reachable(): Promise<boolean> {
    try { (await this.dial()).destroy(); return true; } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ECONNREFUSED") return false;
      throw e;
    }
  }

  /** GET /_ping; resolves the server's API version (and remembers the negotiated one). */
  async ping(): Promise<string> {
    const res = await this.send("GET", "/_ping", {}, false);
    const v = String(res.headers["api-version"] ?? CLIENT_API_VERSION);
    res.resume();
    this.version = cmp(v, CLIENT_API_VERSION) < 0 ? v : CLIENT_API_VERSION;
    return v;
  }

  /**
   * The API version to speak. No /_ping round trip up front: berth assumes its own version and negotiates
   * (ping, then retry) only if the server answers that the version is too new, as an older dockerd would.
   */
  async apiVersion(): Promise<string> {
    if (!this.version) { this.version = CLIENT_API_VERSION; this.optimistic = true; }
    return this.version;
  }

  private optimistic = false;

  /** True when a response says our optimistic version is too new (and the request can be sent again). */
  private async tooNew(res: { statusCode: number; body: string }, o: RequestOptions): Promise<boolean> {
    if (!this.optimistic || res.statusCode !== 400 || !/is too new/.test(res.body)) return false;
    if (o.raw && !Buffer.isBuffer(o.raw)) return false;
    await this.ping();
    this.optimistic = false;
    return true;
  }

  private path(p: string, query?: RequestOptions["query"], versioned = true): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) q.append(k, x);
      else q.set(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
    }
    const qs = q.toString();
    return `${versioned && this.version ? `/v${this.version}` : ""}${p}${qs ? `?${qs}` : ""}`;
  }

  private async send(method: string, p: string, o: RequestOptions, versioned = true): Promise<Response> {
    const headers: Record<string, string> = { Host: "berth", ...o.headers };
    let payload: Buffer | NodeJS.ReadableStream | undefined;
    if (o.body !== undefined) { payload = Buffer.from(JSON.stringify(o.body)); headers["Content-Type"] = "application/json"; }
    else if (o.raw) payload = o.raw;
    if (Buffer.isBuffer(payload)) headers["Content-Length"] = String(payload.length);
    else if (payload) headers["Transfer-Encoding"] = "chunked";
    else if (method !== "GET" && method !== "HEAD") headers["Content-Length"] = "0";
    const target = this.path(p, o.query, versioned);
    const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
    const sock = await this.connect();
    try { return await exchange(sock, head, payload, method === "HEAD"); } catch (e) {
      throw this.connectError(method, target, e);
    }
  }

  /** The docker CLI's "error during connect: Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/...": EOF". */
  private connectError(method: string, target: string, e: unknown): Error {
    if (e instanceof ApiError) return e;
    const base = this.socketPath ? `http://${encodeURIComponent(this.socketPath)}` : `http://${this.tcp!.host}:${this.tcp!.port}`;
    const verb = method[0] + method.slice(1).toLowerCase();
    return new ConnectionError(`error during connect: ${verb} "${base}${target}": ${e instanceof ConnectionError ? e.message : socketCause(e)}`, (e as NodeJS.ErrnoException).code);
  }

  private async check(res: Response): Promise<Response> {
    if ((res.statusCode ?? 500) < 400) return res;
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    let message = text.trim();
    try { message = (JSON.parse(text) as Partial<ErrorResponse>).message ?? message; } catch { /* plain text */ }
    throw new ApiError(res.statusCode ?? 500, message || STATUS_TEXT[res.statusCode ?? 500] || "error");
  }

  /** A request whose response is streamed (logs, events, progress). */
  async stream(method: string, p: string, o: RequestOptions = {}): Promise<Response> {
    await this.apiVersion();
    let res = await this.send(method, p, o);
    if (res.statusCode === 400 && this.optimistic) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString();
      if (await this.tooNew({ statusCode: 400, body }, o)) res = await this.send(method, p, o);
      else {
        let message = body.trim();
        try { message = (JSON.parse(body) as Partial<ErrorResponse>).message ?? message; } catch { /* text */ }
        throw new ApiError(400, message);
      }
    }
    this.optimistic = false;
    return this.check(res);
  }

  async request<T = unknown>(method: string, p: string, o: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const res = await this.stream(method, p, o);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown = text;
    if ((res.headers["content-type"] ?? "").includes("json") && text) body = JSON.parse(text);
    return { status: res.statusCode ?? 0, body: body as T };
  }

  async json<T = unknown>(method: string, p: string, o: RequestOptions = {}): Promise<T> {
    return (await this.request<T>(method, p, o)).body;
  }

  /**
   * The exit status of an exec whose stream ended. The process may be reaped a moment after its output
   * closes: GET /exec/{id}/json again (backing off, until a deadline) while the daemon says it runs. The last
   * answer is returned; its ExitCode is a number only once Running is false (never a made-up 0).
   */
  async execResult(id: string, timeoutMs = 30_000): Promise<{ ExitCode: number | null; Running: boolean }> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 200)) {
      const r = await this.json<Pick<ExecInspectResponse, "ExitCode" | "Running">>("GET", `/exec/${encodeURIComponent(id)}/json`);
      if (typeof r.ExitCode === "number" && !r.Running) return { ExitCode: r.ExitCode, Running: false };
      if (Date.now() > deadline) return { ExitCode: null, Running: !!r.Running };
      await new Promise((res) => setTimeout(res, delay));
    }
  }

  /** POST /containers/{id}/update: resources and restart policy, live (Docker's UpdateConfig). */
  async updateContainer(id: string, body: UpdateConfig): Promise<{ Warnings: string[] | null }> {
    const r = await this.json<{ Warnings?: string[] | null }>("POST", `/containers/${encodeURIComponent(id)}/update`, { body });
    return { Warnings: r?.Warnings ?? null };
  }

  /** HEAD /containers/{id}/archive: what is at a path in a container (the last component not followed). */
  async statPath(id: string, path: string): Promise<ContainerPathStat> {
    const res = await this.stream("HEAD", `/containers/${encodeURIComponent(id)}/archive`, { query: { path } });
    res.resume();
    return decodePathStat(res.headers["x-docker-container-path-stat"]);
  }

  /** GET /containers/{id}/archive: a tar of a path in a container, and its stat. */
  async getArchive(id: string, path: string): Promise<{ stat: ContainerPathStat; tar: Response }> {
    const tar = await this.stream("GET", `/containers/${encodeURIComponent(id)}/archive`, { query: { path } });
    return { stat: decodePathStat(tar.headers["x-docker-container-path-stat"]), tar };
  }

  /** PUT /containers/{id}/archive: unpacks a tar into the directory at path. */
  async putArchive(id: string, path: string, tar: NodeJS.ReadableStream | Buffer, opts: { noOverwriteDirNonDir?: boolean; copyUIDGID?: boolean } = {}): Promise<void> {
    const res = await this.stream("PUT", `/containers/${encodeURIComponent(id)}/archive`, {
      query: { path, noOverwriteDirNonDir: opts.noOverwriteDirNonDir ? true : undefined, copyUIDGID: opts.copyUIDGID ? true : undefined }, raw: tar,
      headers: { "Content-Type": "application/x-tar" },
    });
    for await (const _ of res) { /* drain */ }
  }

  /** POST with Upgrade: tcp; resolves the raw socket once the server switched protocols. */
  async hijack(p: string, o: RequestOptions = {}): Promise<net.Socket> {
    await this.apiVersion();
    const sock = await this.connect();
    const target = this.path(p, o.query);
    const body = o.body !== undefined ? Buffer.from(JSON.stringify(o.body)) : Buffer.alloc(0);
    sock.write(Buffer.concat([Buffer.from(`POST ${target} HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`), body]));
    let buf = Buffer.alloc(0);
    const head = await new Promise<{ status: number; rest: Buffer; headers: string }>((resolve, reject) => {
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const i = buf.indexOf("\r\n\r\n");
        if (i < 0) return;
        sock.off("data", onData);
        sock.pause();
        const headers = buf.subarray(0, i).toString();
        resolve({ status: Number(/^HTTP\/1\.[01] (\d+)/.exec(headers)?.[1] ?? 0), rest: buf.subarray(i + 4), headers });
      };
      sock.on("data", onData);
      sock.once("error", reject);
      sock.once("end", () => reject(new ConnectionError("EOF")));
    }).catch((e: unknown) => { sock.destroy(); throw this.connectError("POST", target, e); });
    if (head.status === 101 || head.status === 200) {
      if (head.rest.length) sock.unshift(head.rest);
      this.optimistic = false;
      return sock;
    }
    // An error: read the rest of the body by Content-Length.
    const len = Number(/content-length:\s*(\d+)/i.exec(head.headers)?.[1] ?? head.rest.length);
    let rest = head.rest;
    sock.resume();
    while (rest.length < len) {
      const d = await new Promise<Buffer | null>((r) => { sock.once("data", r); sock.once("end", () => r(null)); });
      if (!d) break;
      rest = Buffer.concat([rest, d]);
    }
    sock.destroy();
    if (await this.tooNew({ statusCode: head.status, body: rest.toString() }, o)) return this.hijack(p, o);
    let message = rest.toString().trim();
    try { message = (JSON.parse(message) as Partial<ErrorResponse>).message ?? message; } catch { /* text */ }
    throw new ApiError(head.status, message);
  }
}
