/**
 * The OCI Distribution Spec v1.1 (Docker Registry HTTP API v2) on node:http.
 *
 *   GET    /v2/                                   API version check
 *   GET    /v2/_catalog?n=&last=                  repositories
 *   HEAD/GET/DELETE  /v2/<name>/blobs/<digest>    (GET honours Range → 206)
 *   POST   /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]
 *   GET/PATCH/PUT/DELETE /v2/<name>/blobs/uploads/<uuid>[?digest=]
 *   HEAD/GET/PUT/DELETE  /v2/<name>/manifests/<tag|digest>
 *   GET    /v2/<name>/tags/list?n=&last=
 *   GET    /v2/<name>/referrers/<digest>[?artifactType=]
 *   GET    /metrics                               Prometheus text format (behind auth when auth is on;
 *                                                  or on an address of its own: --metrics-addr)
 *   GET    /token?service=&scope=                 bearer tokens (auth type token; auth.ts)
 *   GET    /                                      a read-only HTML page of repositories and tags
 *
 * With auth (auth.ts) every /v2/ route first checks who asks and whether they
 * may: 401 UNAUTHORIZED with the WWW-Authenticate challenge, or 403 DENIED.
 * With TLS (a certificate and key) it serves HTTPS.
 *
 * Every error is the spec's JSON body with its code. Requests are logged as
 * one JSON line each (method, path, status, bytes, ms).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { MediaType } from "../oci/image.js";
import { RegistryAuth, Unauthorized, DEFAULT_AUTH, type Action, type Grant, type Need } from "./auth.js";
import { RegistryError, checkName, isDigest, isTag, parseDigest } from "./errors.js";
import { renderPage } from "./html.js";
import type { ProxyCache } from "./proxy.js";
import { Metrics } from "./metrics.js";
import { MANIFEST_MAX_BYTES, RegistryStorage, type ManifestRecord } from "./storage.js";

export interface RegistryServerOptions {
  storage: RegistryStorage;
  /** One JSON line per request; undefined logs nothing. */
  log?: (line: string) => void;
  /** Allow DELETE of blobs and manifests (on by default, as the conformance suite's management workflow needs). */
  deleteEnabled?: boolean;
  metrics?: Metrics;
  /** Who may do what; undefined: anyone, anything. */
  auth?: RegistryAuth;
  /** Serve HTTPS with this certificate chain and key (PEM). */
  tls?: { cert: Buffer | string; key: Buffer | string };
  /** Pull-through caches of upstream registries, by repository prefix (proxy.ts). */
  proxy?: ProxyCache;
  /**
   * A minimum chunk size advertised to chunked uploads (OCI-Chunk-Min-Length on the POST that opens a
   * session); a hint for clients (a backend that stores chunks as parts wants them large), not enforced.
   */
  chunkMinLength?: number;
  /**
   * Serve /metrics on this server (default true): behind auth when auth is on (auth.ts metrics()).
   * False when `--metrics-addr` gives it an address of its own (renderMetrics()).
   */
  metricsHere?: boolean;
}

export interface RegistryServer {
  server: Server;
  metrics: Metrics;
  /** The Prometheus text of /metrics (for a listener of its own). */
  renderMetrics(): Promise<string>;
  /** Stops accepting connections and resolves when in-flight requests have finished. */
  close(): Promise<void>;
}

const API_HEADER = "Docker-Distribution-API-Version";

export function createRegistryServer(opts: RegistryServerOptions): RegistryServer {
  const metrics = opts.metrics ?? new Metrics();
  const storage = opts.storage;
  const auth = opts.auth ?? new RegistryAuth(DEFAULT_AUTH, storage.root);
  /** Requests being answered now: close() waits for them, then closes every connection left. */
  let active = 0;
  let storageCache: { at: number; v: { bytes: number; blobs: number; repositories: number } } | undefined;

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const counted = { in: 0, out: 0 };
    const who: { user?: string } = {};
    active++;
    res.on("close", () => {
      active--;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const out = req.method === "HEAD" ? 0 : counted.out;
      metrics.observe(req.method ?? "", res.statusCode, ms / 1000);
      metrics.bytesIn += counted.in;
      metrics.bytesOut += out;
      opts.log?.(JSON.stringify({ time: new Date().toISOString(), remote: req.socket.remoteAddress, method: req.method, path: req.url, status: res.statusCode, ...(who.user !== undefined ? { user: who.user } : {}), bytes: out, bytesIn: counted.in, ms: Math.round(ms * 1000) / 1000, ...(res.writableFinished ? {} : { aborted: true }) }));
    });
    const body = (): Readable => Readable.from((async function* () {
      for await (const c of req as AsyncIterable<Buffer>) { counted.in += c.length; yield c; }
    })(), { objectMode: false });
    const send = (status: number, headers: Record<string, string | number>, data?: string | Buffer): void => {
      const buf = data === undefined ? undefined : typeof data === "string" ? Buffer.from(data) : data;
      res.writeHead(status, { [API_HEADER]: "registry/2.0", ...(buf ? { "Content-Length": buf.length } : { "Content-Length": 0 }), ...headers });
      if (buf && req.method !== "HEAD") { counted.out += buf.length; res.end(buf); } else res.end();
    };
    const json = (status: number, v: unknown, headers: Record<string, string | number> = {}): void => send(status, { "Content-Type": "application/json", ...headers }, JSON.stringify(v));
    try {
      await route(req, res, { send, json, body, counted, who, grant: { may: () => true } });
    } catch (e) {
      if (res.headersSent) { res.destroy(); return; }
      if (e instanceof RegistryError) {
        const extra: Record<string, string> = {};
        const off = (e.detail as { offset?: number } | undefined)?.offset;
        if (e.status === 416 && typeof off === "number") extra.Range = rangeHeader(off);
        if (e.status === 416 && (e.detail as { location?: string } | undefined)?.location) extra.Location = (e.detail as { location: string }).location;
        if (e instanceof Unauthorized) extra["WWW-Authenticate"] = e.challenge;
        req.resume();
        send(e.status, { "Content-Type": "application/json", ...extra }, e.body());
      } else if ((e as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE" || (e as NodeJS.ErrnoException).code === "ECONNRESET" || req.destroyed) {
        res.destroy();
      } else {
        send(500, { "Content-Type": "application/json" }, JSON.stringify({ errors: [{ code: "UNKNOWN", message: (e as Error).message, detail: null }] }));
      }
    }
  };

  type Ctx = { send: (s: number, h: Record<string, string | number>, d?: string | Buffer) => void; json: (s: number, v: unknown, h?: Record<string, string | number>) => void; body: () => Readable; counted: { in: number; out: number }; who: { user?: string }; grant: Grant };

  /** Checks the request against the auth rules; the identity goes into the access log. */
  async function gate(req: IncomingMessage, c: Ctx, need: Need): Promise<void> {
    if (!auth.enabled) return;
    c.grant = await auth.check(req, need, (u) => { c.who.user = u; });
    c.who.user = c.grant.user;
  }
  const repoNeed = (name: string, ...actions: Action[]): Need => ({ kind: "repository", name, actions });
  const proxied = (name: string): boolean => opts.proxy?.match(name) !== undefined;
  const readOnly = (name: string): void => {
    if (proxied(name)) throw new RegistryError("UNSUPPORTED", `${name} is a pull-through cache: it takes no pushes or deletes`, { name });
  };

  async function storageStats(): Promise<{ bytes: number; blobs: number; repositories: number }> {
    if (storageCache && Date.now() - storageCache.at < 5000) return storageCache.v;
    const blobs = await storage.allBlobs();
    const v = { bytes: blobs.reduce((a, b) => a + b.size, 0), blobs: blobs.length, repositories: (await storage.repositories()).length };
    storageCache = { at: Date.now(), v };
    return v;
  }

  async function route(req: IncomingMessage, res: ServerResponse, c: Ctx): Promise<void> {
    const url = new URL(req.url ?? "/", "http://registry");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const q = url.searchParams;
    const allow = (...methods: string[]): void => {
      if (!methods.includes(method)) throw new RegistryError("UNSUPPORTED", `method ${method} is not allowed here`, { method }, 405);
    };
    if (path === "/metrics" && opts.metricsHere !== false) {
      allow("GET", "HEAD");
      if (auth.enabled) c.who.user = await auth.metrics(req);
      c.send(200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }, metrics.render(await storageStats()));
      return;
    }
    if (path === "/token" && auth.cfg.type === "token") {
      allow("GET", "POST");
      let form: URLSearchParams | undefined;
      if (method === "POST") {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const ch of c.body() as AsyncIterable<Buffer>) { n += ch.length; if (n > 64 * 1024) throw new RegistryError("SIZE_INVALID", "token request too large", null, 413); chunks.push(ch); }
        form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      }
      const t = await auth.token(req, q, (u) => { c.who.user = u; }, form);
      c.json(t.status, t.body, { "Cache-Control": "no-store" });
      return;
    }
    if (path === "/" || path === "/index.html") {
      allow("GET", "HEAD");
      const g = await auth.browser(req);
      c.who.user = g.user;
      const repos = [];
      for (const name of await storage.repositories()) {
        if (!g.may(name, "pull")) continue;
        const targets = await storage.tagTargets(name);
        repos.push({ name, tags: [...targets].map(([tag, digest]) => ({ tag, digest })) });
      }
      c.send(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache" }, renderPage(repos, { user: g.user, proxies: opts.proxy?.names }));
      return;
    }
    if (path === "/v2" || path === "/v2/") { allow("GET", "HEAD"); await gate(req, c, { kind: "login" }); c.json(200, {}); return; }
    if (path === "/v2/_catalog") {
      allow("GET");
      await gate(req, c, { kind: "catalog" });
      const page = paginate((await storage.repositories()).filter((r) => c.grant.may(r, "pull")), q);
      const link: Record<string, string> = page.next ? { Link: `</v2/_catalog?n=${page.n}&last=${encodeURIComponent(page.next)}>; rel="next"` } : {};
      c.json(200, { repositories: page.items }, link);
      return;
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/?$/.exec(path))) {
      const name = m[1];
      checkName(name);
      allow("POST");
      await gate(req, c, repoNeed(name, "pull", "push"));
      readOnly(name);
      return startUpload(req, c, name, q);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/.exec(path))) {
      const name = m[1];
      checkName(name);
      await gate(req, c, repoNeed(name, "pull", "push"));
      readOnly(name);
      return uploadSession(req, c, name, decodeURIComponent(m[2]), q);
    }
    if ((m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path))) {
      const name = m[1];
      checkName(name);
      allow("GET", "HEAD", "DELETE");
      await gate(req, c, repoNeed(name, method === "DELETE" ? "delete" : "pull"));
      const d = parseDigest(decodeURIComponent(m[2]));
      if (method === "DELETE") readOnly(name);
      else if (proxied(name)) {
        const whole = method === "GET" && (req.headers.range === undefined || req.headers.range === "");
        const through = whole ? await opts.proxy!.streamBlob(name, d) : (await opts.proxy!.ensureBlob(name, d)) ? "local" : undefined;
        if (through === undefined) throw new RegistryError("BLOB_UNKNOWN", `blob unknown to registry: ${d.digest}`, { digest: d.digest });
        if (through !== "local") {
          res.writeHead(200, { [API_HEADER]: "registry/2.0", "Content-Type": "application/octet-stream", "Docker-Content-Digest": d.digest, ETag: `"${d.digest}"`, "Content-Length": through.size });
          through.stream.on("data", (ch: Buffer) => { c.counted.out += ch.length; });
          await pipeline(through.stream, res);
          return;
        }
      }
      return blob(req, res, c, name, d);
    }
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) {
      const name = m[1];
      checkName(name);
      allow("GET", "HEAD", "PUT", "DELETE");
      await gate(req, c, repoNeed(name, method === "DELETE" ? "delete" : method === "PUT" ? "push" : "pull"));
      const ref = decodeURIComponent(m[2]);
      if (method === "PUT" || method === "DELETE") readOnly(name);
      else if (proxied(name)) { if (isDigest(ref)) parseDigest(ref); await opts.proxy!.ensureManifest(name, ref); }
      return manifest(req, c, name, ref);
    }
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) {
      const name = m[1];
      checkName(name);
      allow("GET", "HEAD");
      await gate(req, c, repoNeed(name, "pull"));
      const tags = proxied(name) ? await opts.proxy!.tags(name) : await storage.tags(name);
      if (!tags) throw new RegistryError("NAME_UNKNOWN", `repository name not known to registry: ${name}`, { name });
      const page = paginate(tags, q);
      const link: Record<string, string> = page.next ? { Link: `</v2/${name}/tags/list?n=${page.n}&last=${encodeURIComponent(page.next)}>; rel="next"` } : {};
      c.json(200, { name, tags: page.items }, link);
      return;
    }
    if ((m = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(path))) {
      const name = m[1];
      checkName(name);
      allow("GET", "HEAD");
      await gate(req, c, repoNeed(name, "pull"));
      const d = parseDigest(decodeURIComponent(m[2]));
      let list = await storage.referrers(name, d);
      const headers: Record<string, string> = { "Content-Type": MediaType.OciIndex };
      const types = q.getAll("artifactType").filter((t) => t !== "");
      if (types.length) {
        list = list.filter((x) => x.artifactType !== undefined && types.includes(x.artifactType));
        headers["OCI-Filters-Applied"] = "artifactType";
      }
      c.send(200, headers, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: list }));
      return;
    }
    throw new RegistryError("UNSUPPORTED", `no route for ${method} ${path}`, { path }, 404);
  }

  async function startUpload(req: IncomingMessage, c: Ctx, name: string, q: URLSearchParams): Promise<void> {
    const mount = q.get("mount");
    if (mount !== null && mount !== "") {
      const d = parseDigest(mount);
      const from = q.get("from") || undefined;
      if (from !== undefined) checkName(from);
      // A mount reads `from`: without pull rights there, it is an ordinary upload (as distribution does).
      // A mount without `from` (anonymous) could read any repository's blob: with auth on, only an upload.
      const mayRead = from === undefined ? !auth.enabled : c.grant.may(from, "pull");
      if (mayRead && await storage.mountBlob(name, d, from)) {
        req.resume();
        c.send(201, { Location: `/v2/${name}/blobs/${d.digest}`, "Docker-Content-Digest": d.digest });
        return;
      }
      // Unknown blob: fall back to an ordinary upload session, as the spec says.
    }
    const digest = q.get("digest");
    if (digest !== null && digest !== "") {
      const d = parseDigest(digest);
      const uuid = await storage.startUpload(name);
      try {
        await storage.commitUpload(name, uuid, d, c.body());
      } catch (e) {
        await storage.removeUpload(uuid);
        throw e;
      }
      c.send(201, { Location: `/v2/${name}/blobs/${d.digest}`, "Docker-Content-Digest": d.digest });
      return;
    }
    const uuid = await storage.startUpload(name);
    // A body without a digest is the spec's "POST then data in the PATCH": if one came, keep it as the first chunk.
    const off = await storage.appendUpload(name, uuid, c.body());
    c.send(202, { Location: `/v2/${name}/blobs/uploads/${uuid}`, "Docker-Upload-UUID": uuid, Range: rangeHeader(off), ...(opts.chunkMinLength ? { "OCI-Chunk-Min-Length": opts.chunkMinLength } : {}) });
  }

  async function uploadSession(req: IncomingMessage, c: Ctx, name: string, uuid: string, q: URLSearchParams): Promise<void> {
    const method = req.method ?? "GET";
    const location = `/v2/${name}/blobs/uploads/${uuid}`;
    const chunkStart = (): number | undefined => {
      const cr = req.headers["content-range"];
      if (cr === undefined || cr === "") return undefined;
      const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(cr.trim());
      if (!m) throw new RegistryError("BLOB_UPLOAD_INVALID", `invalid Content-Range: ${cr}`, { contentRange: cr }, 416);
      const start = Number(m[1]), end = Number(m[2]);
      if (end < start) throw new RegistryError("BLOB_UPLOAD_INVALID", `invalid Content-Range: ${cr}`, { contentRange: cr }, 416);
      const len = req.headers["content-length"];
      if (len !== undefined && Number(len) !== end - start + 1) throw new RegistryError("SIZE_INVALID", `Content-Length ${len} does not match Content-Range ${cr}`, { contentRange: cr, contentLength: len }, 416);
      return start;
    };
    const withLocation = async <T>(fn: () => Promise<T>): Promise<T> => {
      try { return await fn(); } catch (e) {
        if (e instanceof RegistryError && e.status === 416) {
          const off = await storage.uploadOffset(name, uuid);
          throw new RegistryError(e.code, e.message, { ...(e.detail as object), ...(off !== undefined ? { offset: off } : {}), location }, 416);
        }
        throw e;
      }
    };
    switch (method) {
      case "GET": {
        const off = await storage.uploadOffset(name, uuid);
        if (off === undefined) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { uuid });
        c.send(204, { Location: location, Range: rangeHeader(off), "Docker-Upload-UUID": uuid });
        return;
      }
      case "PATCH": {
        const off = await withLocation(async () => storage.appendUpload(name, uuid, c.body(), chunkStart()));
        c.send(202, { Location: location, Range: rangeHeader(off), "Docker-Upload-UUID": uuid });
        return;
      }
      case "PUT": {
        const digest = q.get("digest");
        if (digest === null || digest === "") throw new RegistryError("DIGEST_INVALID", "the digest query parameter is required to finish an upload", { digest: "" });
        const d = parseDigest(digest);
        await withLocation(async () => storage.commitUpload(name, uuid, d, c.body(), chunkStart()));
        c.send(201, { Location: `/v2/${name}/blobs/${d.digest}`, "Docker-Content-Digest": d.digest });
        return;
      }
      case "DELETE":
        await storage.cancelUpload(name, uuid);
        c.send(204, {});
        return;
      default:
        throw new RegistryError("UNSUPPORTED", `method ${method} is not allowed here`, { method }, 405);
    }
  }

  async function blob(req: IncomingMessage, res: ServerResponse, c: Ctx, name: string, d: ReturnType<typeof parseDigest>): Promise<void> {
    if (req.method === "DELETE") {
      if (opts.deleteEnabled === false) throw new RegistryError("UNSUPPORTED", "deletes are disabled on this registry");
      if (!(await storage.unlinkBlob(name, d))) throw new RegistryError("BLOB_UNKNOWN", `blob unknown to registry: ${d.digest}`, { digest: d.digest });
      c.send(202, {});
      return;
    }
    const size = await storage.blobSize(name, d, req.method === "HEAD");
    if (size === undefined) throw new RegistryError("BLOB_UNKNOWN", `blob unknown to registry: ${d.digest}`, { digest: d.digest });
    const headers: Record<string, string | number> = { "Content-Type": "application/octet-stream", "Docker-Content-Digest": d.digest, ETag: `"${d.digest}"`, "Accept-Ranges": "bytes", "Cache-Control": "max-age=31536000" };
    const range = req.headers.range;
    let r: { start: number; end: number } | undefined;
    if (range !== undefined && range !== "") {
      r = parseRange(range, size);
      if (!r) {
        c.send(416, { "Content-Range": `bytes */${size}`, "Content-Type": "application/json" }, new RegistryError("SIZE_INVALID", `range not satisfiable: ${range}`, { range, size }, 416).body());
        return;
      }
    }
    const length = r ? r.end - r.start + 1 : size;
    res.writeHead(r ? 206 : 200, { [API_HEADER]: "registry/2.0", ...headers, "Content-Length": length, ...(r ? { "Content-Range": `bytes ${r.start}-${r.end}/${size}` } : {}) });
    if (req.method === "HEAD" || length === 0) { res.end(); return; }
    const src = storage.openBlob(d, r);
    src.on("data", (ch: Buffer) => { c.counted.out += ch.length; });
    await pipeline(src, res);
  }

  async function manifest(req: IncomingMessage, c: Ctx, name: string, ref: string): Promise<void> {
    const method = req.method ?? "GET";
    if (method === "PUT") {
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const ch of c.body() as AsyncIterable<Buffer>) {
        total += ch.length;
        if (total > MANIFEST_MAX_BYTES) throw new RegistryError("SIZE_INVALID", `manifest is larger than ${MANIFEST_MAX_BYTES} bytes`, { max: MANIFEST_MAX_BYTES }, 413);
        chunks.push(ch);
      }
      const r = await storage.putManifest(name, ref, Buffer.concat(chunks), req.headers["content-type"]);
      c.send(201, { Location: `/v2/${name}/manifests/${r.digest}`, "Docker-Content-Digest": r.digest, ...(r.subject ? { "OCI-Subject": r.subject } : {}) });
      return;
    }
    // A reference that is no tag (and no digest) names no manifest: 404, as the spec's pull and delete say (a PUT to it is TAG_INVALID).
    if (!isDigest(ref) && !isTag(ref)) throw await unknownManifest(name, ref);
    if (method === "DELETE") {
      if (opts.deleteEnabled === false) throw new RegistryError("UNSUPPORTED", "deletes are disabled on this registry");
      if (!(await storage.deleteManifest(name, ref))) throw await unknownManifest(name, ref);
      c.send(202, {});
      return;
    }
    let rec = await storage.resolveManifest(name, ref);
    if (!rec) throw await unknownManifest(name, ref);
    rec = await negotiate(name, ref, rec, req.headers.accept);
    const headers = { "Content-Type": rec.mediaType, "Docker-Content-Digest": rec.digest.digest, ETag: `"${rec.digest.digest}"` };
    if (method === "HEAD") { c.send(200, { ...headers, "Content-Length": rec.size }); return; }
    c.send(200, headers, await storage.readBlob(rec.digest));
  }

  /**
   * Content negotiation by Accept, as distribution does: a manifest is served in the type it was pushed
   * with (never converted), but an OCI manifest or index goes only to a client that accepts its type
   * (404 MANIFEST_UNKNOWN, distribution's words), and a Docker manifest list fetched by tag by a client
   * that does not accept lists is answered with its linux/amd64 manifest. No Accept header (or a wildcard
   * in it, curl's default) takes anything; Docker schema2 and artifact types are served to anyone.
   */
  async function negotiate(name: string, ref: string, rec: ManifestRecord, accept: string | undefined): Promise<ManifestRecord> {
    const types = (accept ?? "").split(",").map((t) => t.split(";")[0].trim().toLowerCase()).filter((t) => t !== "");
    const takes = (t: string): boolean => types.length === 0 || types.includes(t) || types.includes("*/*") || types.includes(`${t.split("/")[0]}/*`);
    if (takes(rec.mediaType)) return rec;
    if (rec.mediaType === MediaType.OciManifest) throw new RegistryError("MANIFEST_UNKNOWN", "OCI manifest found, but accept header does not support OCI manifests", { accept });
    if (rec.mediaType === MediaType.OciIndex) throw new RegistryError("MANIFEST_UNKNOWN", "OCI index found, but accept header does not support OCI indexes", { accept });
    // By digest, the answer must be what the digest names.
    if (rec.mediaType !== MediaType.DockerManifestList || isDigest(ref)) return rec;
    let list: { manifests?: { digest?: unknown; platform?: { os?: unknown; architecture?: unknown } }[] };
    try { list = JSON.parse((await storage.readBlob(rec.digest)).toString("utf8")) as typeof list; } catch { list = {}; }
    const child = (list.manifests ?? []).find((m) => m.platform?.os === "linux" && m.platform?.architecture === "amd64" && typeof m.digest === "string");
    const picked = child ? await storage.resolveManifest(name, child.digest as string).catch(() => undefined) : undefined;
    if (!picked) throw new RegistryError("MANIFEST_UNKNOWN", "the manifest list has no linux/amd64 manifest for a client that does not accept manifest lists", { tag: ref });
    return picked;
  }

  async function unknownManifest(name: string, ref: string): Promise<RegistryError> {
    if (!(await storage.repoExists(name))) return new RegistryError("NAME_UNKNOWN", `repository name not known to registry: ${name}`, { name });
    return new RegistryError("MANIFEST_UNKNOWN", `manifest unknown: ${ref}`, isDigest(ref) ? { digest: ref } : { tag: ref });
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => { void handler(req, res); };
  const server: Server = opts.tls
    ? createTlsServer({ requestTimeout: 0, keepAliveTimeout: 30_000, cert: opts.tls.cert, key: opts.tls.key }, listener) as unknown as Server
    : createServer({ requestTimeout: 0, keepAliveTimeout: 30_000 }, listener);
  return {
    server,
    metrics,
    renderMetrics: async () => metrics.render(await storageStats()),
    // Keep-alive connections that go idle after close() (a response just finished) are closed too, as they go idle.
    // A connection Node still counts as busy once no request is being answered (seen after a client aborted
    // a transfer on a 401) is closed too, so a shutdown never waits on it.
    close: () => new Promise<void>((resolve) => {
      const sweep = setInterval(() => { server.closeIdleConnections(); if (active === 0) server.closeAllConnections(); }, 50);
      server.close(() => { clearInterval(sweep); resolve(); });
      server.closeIdleConnections();
    }),
  };
}

/** The spec's Range header for an upload holding `offset` bytes ("0-0" when empty, as distribution answers). */
function rangeHeader(offset: number): string { return `0-${Math.max(0, offset - 1)}`; }

function parseRange(h: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number, end: number;
  if (m[1] === "") { const n = Number(m[2]); if (n === 0) return undefined; start = Math.max(0, size - n); end = size - 1; }
  else { start = Number(m[1]); end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1); }
  if (start > end || start >= size) return undefined;
  return { start, end };
}

function paginate(all: string[], q: URLSearchParams): { items: string[]; next?: string; n?: number } {
  const last = q.get("last");
  let items = last ? all.filter((x) => x > last) : all;
  const nRaw = q.get("n");
  if (nRaw === null || nRaw === "" || !/^\d+$/.test(nRaw)) return { items };
  const n = Number(nRaw);
  if (n === 0) return { items: [], n };
  const more = items.length > n;
  items = items.slice(0, n);
  return more ? { items, next: items[items.length - 1], n } : { items, n };
}
