/**
 * A typed client of the Docker Engine API over a unix socket (or tcp://).
 * Negotiates the API version like the docker CLI (GET /_ping, API-Version
 * header), maps error bodies to ApiError, and hijacks connections for attach
 * and exec (Upgrade: tcp → a raw duplex socket).
 */
import http from "node:http";
import net from "node:net";

export const CLIENT_API_VERSION = "1.47";
export const DEFAULT_HOST = "unix:///run/berth/berth.sock";

export class ApiError extends Error {
  constructor(readonly status: number, message: string) { super(message); this.name = "ApiError"; }
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

export class ApiClient {
  private version: string | undefined;
  private readonly socketPath?: string;
  private readonly tcp?: { host: string; port: number };
  private readonly agent: http.Agent;

  constructor(readonly host: string = DEFAULT_HOST) {
    if (host.startsWith("unix://")) this.socketPath = host.slice(7);
    else if (host.startsWith("/")) this.socketPath = host;
    else {
      const u = new URL(host.replace(/^tcp:/, "http:"));
      this.tcp = { host: u.hostname, port: Number(u.port || 2375) };
    }
    this.agent = new http.Agent({ keepAlive: true });
  }

  private conn(): http.RequestOptions {
    return this.socketPath ? { socketPath: this.socketPath, agent: this.agent } : { host: this.tcp!.host, port: this.tcp!.port, agent: this.agent };
  }

  close(): void { this.agent.destroy(); }

  /** GET /_ping; resolves the server's API version (and remembers the negotiated one). */
  async ping(): Promise<string> {
    const res = await this.send("GET", "/_ping", {}, false);
    const v = String(res.headers["api-version"] ?? CLIENT_API_VERSION);
    res.resume();
    this.version = cmp(v, CLIENT_API_VERSION) < 0 ? v : CLIENT_API_VERSION;
    return v;
  }

  async apiVersion(): Promise<string> {
    if (!this.version) await this.ping();
    return this.version!;
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

  private send(method: string, p: string, o: RequestOptions, versioned = true): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...o.headers };
      let payload: Buffer | undefined;
      if (o.body !== undefined) { payload = Buffer.from(JSON.stringify(o.body)); headers["Content-Type"] = "application/json"; }
      if (Buffer.isBuffer(o.raw)) payload = o.raw;
      const req = http.request({ ...this.conn(), method, path: this.path(p, o.query, versioned), headers }, resolve);
      req.on("error", reject);
      if (o.raw && !Buffer.isBuffer(o.raw)) o.raw.pipe(req);
      else req.end(payload);
    });
  }

  private async check(res: http.IncomingMessage): Promise<http.IncomingMessage> {
    if ((res.statusCode ?? 500) < 400) return res;
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    let message = text.trim();
    try { message = (JSON.parse(text) as { message?: string }).message ?? message; } catch { /* plain text */ }
    throw new ApiError(res.statusCode ?? 500, message || http.STATUS_CODES[res.statusCode ?? 500] || "error");
  }

  /** A request whose response is streamed (logs, events, progress). */
  async stream(method: string, p: string, o: RequestOptions = {}): Promise<http.IncomingMessage> {
    await this.apiVersion();
    return this.check(await this.send(method, p, o));
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

  /** POST with Upgrade: tcp; resolves the raw socket once the server switched protocols. */
  async hijack(p: string, o: RequestOptions = {}): Promise<net.Socket> {
    await this.apiVersion();
    const sock = this.socketPath ? net.connect(this.socketPath) : net.connect(this.tcp!.port, this.tcp!.host);
    await new Promise<void>((res, rej) => { sock.once("connect", res); sock.once("error", rej); });
    const body = o.body !== undefined ? Buffer.from(JSON.stringify(o.body)) : Buffer.alloc(0);
    sock.write(`POST ${this.path(p, o.query)} HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
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
      sock.once("end", () => reject(new ApiError(500, "connection closed before the server answered")));
    });
    if (head.status === 101 || head.status === 200) {
      if (head.rest.length) sock.unshift(head.rest);
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
    let message = rest.toString().trim();
    try { message = (JSON.parse(message) as { message?: string }).message ?? message; } catch { /* text */ }
    throw new ApiError(head.status, message);
  }
}
