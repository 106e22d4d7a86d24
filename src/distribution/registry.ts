/**
 * Registry client (OCI distribution spec): manifests and blobs over HTTP(S),
 * with anonymous, basic and bearer-token auth (WWW-Authenticate realm,
 * service, scope). Credentials come from ~/.docker/config.json `auths`, as
 * Docker keeps them. Plain HTTP only for localhost/127.0.0.0/8 (and hosts
 * given as insecure), as Docker. HTTPS trusts, besides the system's roots, the CAs
 * (and presents the client certificate) of the registry's certs.d directory (tls.ts).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Reference } from "../oci/reference.js";
import { MediaType } from "../oci/image.js";
import { BerthError, NotFoundError, SystemError } from "../lib/errors.js";
import type { Dispatcher } from "undici";
import { dispatcherFor, hasCertsDir } from "./tls.js";

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].join(", ");

export class RegistryError extends BerthError {}

/** A pull or push whose client went away (Docker's words: the request context was cancelled). */
export class TransferCancelledError extends SystemError {
  constructor() { super("context canceled"); }
}

/**
 * Runs a transfer under one controller of its own, fired by the caller's signal (the client went away)
 * or by the transfer itself (a failed layer stops the others); a cancelled transfer throws TransferCancelledError.
 */
export async function cancellable<T>(outer: AbortSignal | undefined, fn: (ac: AbortController) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const cancel = () => ac.abort();
  if (outer?.aborted) throw new TransferCancelledError();
  outer?.addEventListener("abort", cancel, { once: true });
  try {
    return await fn(ac);
  } catch (e) {
    throw outer?.aborted ? new TransferCancelledError() : e;
  } finally {
    outer?.removeEventListener("abort", cancel);
  }
}

/** Blobs up to this size go in one PUT; larger ones in a chunked (PATCH) upload. */
const MONOLITHIC_MAX = 8 * 1024 * 1024;

function registryHost(domain: string): string {
  return domain === "docker.io" ? "registry-1.docker.io" : domain;
}

/**
 * Plain HTTP only for loopback registries and those the daemon was told are
 * insecure (`--insecure-registry` / daemon.json "insecure-registries"), as
 * Docker: entries are "host[:port]" or an IPv4 CIDR the registry's address is in.
 */
export function isInsecure(domain: string, insecure: string[] = []): boolean {
  const host = domain.replace(/:\d+$/, "");
  if (host === "localhost" || /^127\./.test(host) || host === "[::1]") return true;
  return insecure.some((e) => {
    if (e === domain || e === host) return true;
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(e);
    if (!m || !/^\d+\.\d+\.\d+\.\d+$/.test(host)) return false;
    const n = (ip: string) => ip.split(".").reduce((a, b) => a * 256 + Number(b), 0);
    const bits = Number(m[2]);
    const size = 2 ** (32 - bits);
    return Math.floor(n(host) / size) === Math.floor(n(m[1]) / size);
  });
}

/**
 * The items of src until the signal fires; then it throws, as a dropped connection would (a layer job
 * then drops what it half made). A pending read is not waited for: the source is closed instead.
 */
export async function* untilAborted<T>(src: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = src[Symbol.asyncIterator]();
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => { onAbort = () => reject(new TransferCancelledError()); });
  aborted.catch(() => {});
  if (signal.aborted) onAbort(); else signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), aborted]);
      if (r.done) return;
      yield r.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    void Promise.resolve(it.return?.()).catch(() => {});
  }
}

export interface Credentials { username: string; password: string }

function dockerConfigAuth(domain: string): Credentials | undefined {
  try {
    const dir = process.env.DOCKER_CONFIG ?? join(homedir(), ".docker");
    const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as { auths?: Record<string, { auth?: string }> };
    const keys = domain === "docker.io" ? ["https://index.docker.io/v1/", "docker.io", "index.docker.io"] : [domain, `https://${domain}`, `http://${domain}`];
    for (const k of keys) {
      const a = cfg.auths?.[k]?.auth;
      if (a) {
        const s = Buffer.from(a, "base64").toString();
        const i = s.indexOf(":");
        return { username: s.slice(0, i), password: s.slice(i + 1) };
      }
    }
  } catch { /* no config */ }
  return undefined;
}

function parseChallenge(h: string): { scheme: string; params: Record<string, string> } {
  const m = /^(\w+)\s*(.*)$/.exec(h.trim());
  const params: Record<string, string> = {};
  for (const p of (m?.[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1]] = p[2];
  return { scheme: (m?.[1] ?? "").toLowerCase(), params };
}

export class RegistryClient {
  private auth: string | undefined;
  private readonly base: string;

  private readonly creds?: Credentials;
  private readonly actions: string;
  /** Fired when the pull or push is cancelled: every request (and every body still streaming) stops. */
  private readonly signal?: AbortSignal;
  readonly origin: string;

  constructor(private readonly ref: Reference, opts: { insecure?: string[]; creds?: Credentials; push?: boolean; signal?: AbortSignal } = {}) {
    this.signal = opts.signal;
    // A registry with a certs.d directory speaks TLS, even on loopback.
    const scheme = isInsecure(ref.domain, opts.insecure) && !hasCertsDir(ref.domain) ? "http" : "https";
    this.origin = `${scheme}://${registryHost(ref.domain)}`;
    this.base = `${this.origin}/v2/${ref.path}`;
    this.creds = opts.creds?.username ? opts.creds : dockerConfigAuth(ref.domain);
    this.actions = opts.push ? "pull,push" : "pull";
  }

  private readonly dispatchers = new Map<string, Promise<Dispatcher | undefined>>();

  /** fetch, through the TLS of the host's certs.d directory when it has one (the registry's, a token realm's). */
  private async fetch(url: string | URL, init: RequestInit): Promise<Response> {
    const u = new URL(url);
    let d: Promise<Dispatcher | undefined> | undefined;
    if (u.protocol === "https:") {
      d = this.dispatchers.get(u.host);
      if (!d) { d = dispatcherFor(u.host); this.dispatchers.set(u.host, d); }
    }
    const dispatcher = await d;
    if (!dispatcher) return fetch(u, init);
    // undici's own fetch with its own Agent (Node's built-in fetch is an older undici: mixing them trips on headers).
    const { fetch: undiciFetch } = await import("undici");
    return undiciFetch(u, { ...init, dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
  }

  private async request(url: string, init: RequestInit = {}, retried = false): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.auth) headers.set("Authorization", this.auth);
    let res: Response;
    if (this.signal?.aborted) throw new TransferCancelledError();
    try {
      res = await this.fetch(url, { ...init, headers, redirect: "follow", signal: this.signal });
    } catch (e) {
      if (this.signal?.aborted) throw new TransferCancelledError();
      const cause = (e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message;
      // An HTTP registry answering a TLS hello: say it as Docker does, and what to do.
      const plain = url.startsWith("https:") && /wrong version number|packet length too long|EPROTO|ssl3_get_record/i.test(cause);
      throw new RegistryError(plain
        ? `Get "${url}": http: server gave HTTP response to HTTPS client (add it to the daemon's insecure registries to use plain HTTP)`
        : `Get "${url}": ${cause}`, 500);
    }
    if (res.status === 401 && !retried) {
      const challenge = res.headers.get("www-authenticate");
      await res.body?.cancel();
      if (challenge) {
        await this.authenticate(challenge);
        return this.request(url, init, true);
      }
    }
    return res;
  }

  private async authenticate(header: string): Promise<void> {
    const { scheme, params } = parseChallenge(header);
    const creds = this.creds;
    if (scheme === "basic") {
      if (!creds) throw new RegistryError(`pull access denied for ${this.ref.path}: authentication required`, 401);
      this.auth = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
      return;
    }
    if (scheme !== "bearer" || !params.realm) throw new RegistryError(`unsupported authentication challenge: ${header}`, 401);
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set("service", params.service);
    u.searchParams.set("scope", `repository:${this.ref.path}:${this.actions}`);
    const headers: Record<string, string> = {};
    if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    const r = await this.fetch(u, { headers, signal: this.signal }).catch((e: unknown) => { throw this.signal?.aborted ? new TransferCancelledError() : e; });
    if (!r.ok) throw new RegistryError(`getting a token from ${u.origin}: ${r.status} ${await r.text()}`, r.status === 401 ? 401 : 500);
    const body = (await r.json()) as { token?: string; access_token?: string };
    this.auth = `Bearer ${body.token ?? body.access_token}`;
  }

  /** GET a manifest by tag or digest: its bytes and media type. */
  async manifest(reference: string): Promise<{ bytes: Buffer; mediaType: string; digest?: string }> {
    const res = await this.request(`${this.base}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT } });
    if (res.status === 404 || res.status === 401 || res.status === 403) {
      const text = await res.text();
      if (res.status === 404 && /MANIFEST_UNKNOWN/.test(text)) {
        throw new NotFoundError(`manifest for ${this.ref.domain === "docker.io" ? this.ref.path.replace(/^library\//, "") : `${this.ref.domain}/${this.ref.path}`}:${reference} not found: manifest unknown: manifest unknown`);
      }
      throw new NotFoundError(`pull access denied for ${this.ref.domain === "docker.io" ? this.ref.path.replace(/^library\//, "") : `${this.ref.domain}/${this.ref.path}`}, repository does not exist or may require 'docker login'`);
    }
    if (!res.ok) throw new RegistryError(`fetching manifest ${reference}: ${res.status} ${await res.text()}`, 500);
    const bytes = Buffer.from(await res.arrayBuffer().catch((e: unknown) => { throw this.signal?.aborted ? new TransferCancelledError() : e; }));
    const mediaType = (res.headers.get("content-type") ?? "").split(";")[0] || ((JSON.parse(bytes.toString()) as { mediaType?: string }).mediaType ?? "");
    return { bytes, mediaType, digest: res.headers.get("docker-content-digest") ?? undefined };
  }

  /** HEAD a blob: does the repository have it? */
  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request(`${this.base}/blobs/${digest}`, { method: "HEAD" });
    return res.ok;
  }

  /** Uploads a blob: cross-repository mount when `from` names a repository that has it, else one monolithic PUT. */
  async putBlob(digest: string, size: number, body: () => NodeJS.ReadableStream, from?: string): Promise<"mounted" | "pushed"> {
    const q = from ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}` : "";
    const start = await this.request(`${this.base}/blobs/uploads/${q}`, { method: "POST", headers: { "Content-Length": "0" } });
    await start.body?.cancel();
    if (start.status === 201) return "mounted";
    if (start.status !== 202) throw new RegistryError(`starting upload of ${digest}: ${start.status} ${start.statusText}`, start.status === 401 || start.status === 403 ? 401 : 500);
    const loc = new URL(start.headers.get("location") ?? "", this.origin);
    const source = () => body() as AsyncIterable<Buffer>;
    const stream = () => Readable.toWeb(Readable.from(this.signal ? untilAborted(source(), this.signal) : source())) as unknown as BodyInit;
    if (size <= MONOLITHIC_MAX) {
      // Small blobs: one monolithic PUT.
      loc.searchParams.set("digest", digest);
      const put = await this.request(loc.toString(), { method: "PUT", headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size) }, body: stream(), duplex: "half" } as RequestInit);
      if (put.status !== 201) throw new RegistryError(`uploading ${digest}: ${put.status} ${await put.text()}`, 500);
      return "pushed";
    }
    // Large blobs: a chunked upload (the data streamed in a PATCH), then a PUT that closes it with the digest.
    const patch = await this.request(loc.toString(), { method: "PATCH", headers: { "Content-Type": "application/octet-stream", "Content-Length": String(size), "Content-Range": `0-${size - 1}` }, body: stream(), duplex: "half" } as RequestInit);
    await patch.body?.cancel();
    if (patch.status !== 202) throw new RegistryError(`uploading ${digest}: ${patch.status} ${patch.statusText}`, 500);
    const next = new URL(patch.headers.get("location") ?? loc.toString(), this.origin);
    next.searchParams.set("digest", digest);
    const put = await this.request(next.toString(), { method: "PUT", headers: { "Content-Length": "0" } });
    if (put.status !== 201) throw new RegistryError(`finishing upload of ${digest}: ${put.status} ${await put.text()}`, 500);
    return "pushed";
  }

  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const res = await this.request(`${this.base}/manifests/${reference}`, { method: "PUT", headers: { "Content-Type": mediaType }, body: new Uint8Array(bytes) });
    if (res.status !== 201) throw new RegistryError(`pushing manifest: ${res.status} ${await res.text()}`, res.status === 401 || res.status === 403 ? 401 : 500);
    return res.headers.get("docker-content-digest") ?? "";
  }

  /** GET /v2/ with the credentials: does the registry accept them? (`login`) */
  async ping(): Promise<void> {
    const res = await this.request(`${this.origin}/v2/`);
    await res.body?.cancel();
    if (res.status === 401) throw new RegistryError("unauthorized: incorrect username or password", 401);
    if (!res.ok) throw new RegistryError(`login to ${this.origin}: ${res.status} ${res.statusText}`, 500);
  }

  /** Streams a blob. */
  async blob(digest: string): Promise<NodeJS.ReadableStream> {
    const res = await this.request(`${this.base}/blobs/${digest}`);
    if (!res.ok || !res.body) throw new RegistryError(`fetching blob ${digest}: ${res.status} ${res.statusText}`, res.status === 404 ? 404 : 500);
    return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
  }
}
