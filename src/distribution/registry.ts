/**
 * Registry client (OCI distribution spec): manifests and blobs over HTTP(S),
 * with anonymous, basic and bearer-token auth (WWW-Authenticate realm,
 * service, scope). Credentials come from ~/.docker/config.json `auths`, as
 * Docker keeps them. Plain HTTP only for localhost/127.0.0.0/8 (and hosts
 * given as insecure), as Docker.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Reference } from "../oci/reference.js";
import { MediaType } from "../oci/image.js";
import { BerthError, NotFoundError } from "../lib/errors.js";

export const MANIFEST_ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].join(", ");

export class RegistryError extends BerthError {}

function registryHost(domain: string): string {
  return domain === "docker.io" ? "registry-1.docker.io" : domain;
}

export function isInsecure(domain: string, insecure: string[] = []): boolean {
  const host = domain.replace(/:\d+$/, "");
  return host === "localhost" || /^127\./.test(host) || host === "[::1]" || insecure.includes(domain);
}

function dockerConfigAuth(domain: string): { username: string; password: string } | undefined {
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

  constructor(private readonly ref: Reference, opts: { insecure?: string[] } = {}) {
    const scheme = isInsecure(ref.domain, opts.insecure) ? "http" : "https";
    this.base = `${scheme}://${registryHost(ref.domain)}/v2/${ref.path}`;
  }

  private async request(url: string, init: RequestInit = {}, retried = false): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.auth) headers.set("Authorization", this.auth);
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers, redirect: "follow" });
    } catch (e) {
      throw new RegistryError(`Get "${url}": ${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message}`, 500);
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
    const creds = dockerConfigAuth(this.ref.domain);
    if (scheme === "basic") {
      if (!creds) throw new RegistryError(`pull access denied for ${this.ref.path}: authentication required`, 401);
      this.auth = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
      return;
    }
    if (scheme !== "bearer" || !params.realm) throw new RegistryError(`unsupported authentication challenge: ${header}`, 401);
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set("service", params.service);
    u.searchParams.set("scope", params.scope ?? `repository:${this.ref.path}:pull`);
    const headers: Record<string, string> = {};
    if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    const r = await fetch(u, { headers });
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
    const bytes = Buffer.from(await res.arrayBuffer());
    const mediaType = (res.headers.get("content-type") ?? "").split(";")[0] || ((JSON.parse(bytes.toString()) as { mediaType?: string }).mediaType ?? "");
    return { bytes, mediaType, digest: res.headers.get("docker-content-digest") ?? undefined };
  }

  /** Streams a blob. */
  async blob(digest: string): Promise<NodeJS.ReadableStream> {
    const res = await this.request(`${this.base}/blobs/${digest}`);
    if (!res.ok || !res.body) throw new RegistryError(`fetching blob ${digest}: ${res.status} ${res.statusText}`, res.status === 404 ? 404 : 500);
    return Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
  }
}
