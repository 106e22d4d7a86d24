/**
 * Pull-through cache of upstream registries. `--proxy hub=https://registry.example` makes every
 * repository `hub/<path>` a read-only mirror of `<path>` upstream:
 *
 * - a blob asked for and not here is fetched from upstream into an upload session and verified against
 *   its digest (storage.commitUpload) before it is kept; a whole-blob GET streams the bytes to the client
 *   as they come, holding the last chunk back until the digest matched (a client never gets all of a
 *   wrong blob); concurrent asks for one blob fetch it once;
 * - a manifest by digest is served from the cache once fetched (the digest is checked: content cannot
 *   change under it);
 * - a manifest by tag is revalidated upstream on every ask (a HEAD for its digest; a GET when the
 *   digest is new) and the tag re-pointed; when upstream cannot be reached the cached tag is served;
 *   when upstream says the tag is unknown, it is unknown here too;
 * - tags/list is upstream's list (the cache's own when upstream cannot be reached);
 * - pushes and deletes to a proxied repository are 405 UNSUPPORTED.
 *
 * Upstream auth: anonymous, basic, or Docker's bearer-token flow (with the configured username and
 * password when given), as a client.
 */
import { createHash } from "node:crypto";
import { PassThrough, Readable, Transform } from "node:stream";
import { MediaType } from "../oci/image.js";
import { RegistryError, isDigest, parseDigest, type ParsedDigest } from "./errors.js";
import type { ManifestRecord, RegistryStorage } from "./storage.js";

export interface Upstream { name: string; url: string; username?: string; password?: string }

const ACCEPT = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest, "application/vnd.oci.artifact.manifest.v1+json"].join(", ");

/** Upstream failed to answer (network, 5xx): the cache may serve what it has. */
class UpstreamDown extends Error {}

class UpstreamClient {
  private readonly tokens = new Map<string, string>();
  constructor(readonly up: Upstream) {}

  private basic(): string | undefined {
    return this.up.username ? `Basic ${Buffer.from(`${this.up.username}:${this.up.password ?? ""}`).toString("base64")}` : undefined;
  }

  /** Manifests, tag lists and tokens: an upstream that does not answer within this is down. */
  static readonly TIMEOUT_MS = 30_000;

  async request(repo: string, path: string, init: { method?: string; accept?: string; stream?: boolean } = {}): Promise<Response> {
    const url = `${this.up.url}/v2/${repo}/${path}`;
    const go = async (auth: string | undefined): Promise<Response> => {
      const headers: Record<string, string> = {};
      if (init.accept) headers.Accept = init.accept;
      if (auth) headers.Authorization = auth;
      try { return await fetch(url, { method: init.method ?? "GET", headers, redirect: "follow", ...(init.stream ? {} : { signal: AbortSignal.timeout(UpstreamClient.TIMEOUT_MS) }) }); } catch (e) {
        throw new UpstreamDown(`${url}: ${((e as Error).cause as Error | undefined)?.message ?? (e as Error).message}`);
      }
    };
    let res = await go(this.tokens.get(repo) ?? this.basic());
    if (res.status === 401) {
      const challenge = res.headers.get("www-authenticate") ?? "";
      await res.body?.cancel();
      const auth = await this.authenticate(repo, challenge);
      if (auth) { this.tokens.set(repo, auth); res = await go(auth); }
    }
    if (res.status >= 500) { await res.body?.cancel(); throw new UpstreamDown(`${url}: ${res.status}`); }
    return res;
  }

  private async authenticate(repo: string, header: string): Promise<string | undefined> {
    const m = /^(\w+)\s*(.*)$/.exec(header.trim());
    const scheme = (m?.[1] ?? "").toLowerCase();
    if (scheme === "basic") return this.basic();
    if (scheme !== "bearer") return undefined;
    const params: Record<string, string> = {};
    for (const p of (m?.[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)) params[p[1]] = p[2];
    if (!params.realm) return undefined;
    const u = new URL(params.realm);
    if (params.service) u.searchParams.set("service", params.service);
    u.searchParams.set("scope", `repository:${repo}:pull`);
    const b = this.basic();
    let r: Response;
    try { r = await fetch(u, { headers: b ? { Authorization: b } : {}, signal: AbortSignal.timeout(UpstreamClient.TIMEOUT_MS) }); } catch (e) { throw new UpstreamDown(`${u.origin}: ${(e as Error).message}`); }
    if (!r.ok) { await r.body?.cancel(); return undefined; }
    const body = (await r.json()) as { token?: string; access_token?: string };
    const t = body.token ?? body.access_token;
    return t ? `Bearer ${t}` : undefined;
  }
}

export class ProxyCache {
  private readonly clients = new Map<string, UpstreamClient>();
  private readonly inflight = new Map<string, Promise<void>>();

  constructor(private readonly storage: RegistryStorage, upstreams: Upstream[], private readonly log?: (line: string) => void) {
    for (const u of upstreams) this.clients.set(u.name, new UpstreamClient(u));
  }

  get names(): string[] { return [...this.clients.keys()]; }

  /** The upstream and its repository for a local repository name under a proxy prefix. */
  match(name: string): { client: UpstreamClient; remote: string } | undefined {
    const i = name.indexOf("/");
    if (i < 0) return undefined;
    const client = this.clients.get(name.slice(0, i));
    if (!client) return undefined;
    let remote = name.slice(i + 1);
    if (/(^|\.)docker\.io$/.test(new URL(client.up.url).hostname) && !remote.includes("/")) remote = `library/${remote}`;
    return { client, remote };
  }

  private note(fields: Record<string, unknown>): void {
    this.log?.(JSON.stringify({ time: new Date().toISOString(), proxy: true, ...fields }));
  }

  private once(key: string, fn: () => Promise<void>): Promise<void> {
    let p = this.inflight.get(key);
    if (!p) {
      const mine: Promise<void> = fn().finally(() => { if (this.inflight.get(key) === mine) this.inflight.delete(key); });
      p = mine;
      this.inflight.set(key, p);
    }
    return p;
  }

  /** Makes the blob present in `name` (fetched and verified when it is not); false when upstream does not have it. */
  async ensureBlob(name: string, d: ParsedDigest): Promise<boolean> {
    if ((await this.storage.blobSize(name, d)) !== undefined) return true;
    const m = this.match(name)!;
    let found = true;
    await this.once(`blob\0${name}\0${d.digest}`, async () => {
      const res = await m.client.request(m.remote, `blobs/${d.digest}`, { stream: true });
      if (res.status === 404) { await res.body?.cancel(); found = false; return; }
      if (!res.ok || !res.body) { await res.body?.cancel(); throw new RegistryError("BLOB_UNKNOWN", `upstream ${m.client.up.name}: ${res.status} fetching ${d.digest}`, null, 502); }
      const uuid = await this.storage.startUpload(name);
      try {
        const size = await this.storage.commitUpload(name, uuid, d, Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>));
        this.note({ cached: "blob", repository: name, digest: d.digest, size });
      } catch (e) {
        await this.storage.removeUpload(uuid);
        throw e instanceof RegistryError && e.code === "DIGEST_INVALID"
          ? new RegistryError("BLOB_UNKNOWN", `upstream ${m.client.up.name} sent content that does not match ${d.digest}`, { digest: d.digest }, 502)
          : e;
      }
    }).catch((e: unknown) => {
      if (e instanceof UpstreamDown) throw new RegistryError("BLOB_UNKNOWN", `blob unknown to registry: ${d.digest} (upstream ${m.client.up.name} unreachable)`, { digest: d.digest });
      throw e;
    });
    return found && (await this.storage.blobSize(name, d)) !== undefined;
  }

  /**
   * A GET of a blob this cache does not have: upstream's bytes, streamed to the caller while they are
   * kept (and verified). `local`: the blob is here now (another fetch just kept it): serve it as usual.
   */
  async streamBlob(name: string, d: ParsedDigest): Promise<{ size: number; stream: Readable } | "local" | undefined> {
    if ((await this.storage.blobSize(name, d)) !== undefined) return "local";
    const key = `blob\0${name}\0${d.digest}`;
    const running = this.inflight.get(key);
    if (running) { await running.catch(() => {}); return (await this.storage.blobSize(name, d)) !== undefined ? "local" : undefined; }
    // Claimed before any await, so concurrent pullers of this blob wait for this one fetch.
    let settle!: (p: Promise<void>) => void;
    const claim: Promise<void> = new Promise<void>((resolve) => { settle = (p) => { resolve(p); }; }).finally(() => { if (this.inflight.get(key) === claim) this.inflight.delete(key); });
    claim.catch(() => {});
    this.inflight.set(key, claim);
    try {
      const r = await this.fetchThrough(name, d, key);
      settle(r && r !== "local" ? r.kept : Promise.resolve());
      return r && r !== "local" ? { size: r.size, stream: r.stream } : r;
    } catch (e) {
      settle(Promise.reject(e));
      throw e;
    }
  }

  private async fetchThrough(name: string, d: ParsedDigest, key: string): Promise<{ size: number; stream: Readable; kept: Promise<void> } | "local" | undefined> {
    const m = this.match(name)!;
    let res: Response;
    try { res = await m.client.request(m.remote, `blobs/${d.digest}`, { stream: true }); } catch (e) {
      if (e instanceof UpstreamDown) throw new RegistryError("BLOB_UNKNOWN", `blob unknown to registry: ${d.digest} (upstream ${m.client.up.name} unreachable)`, { digest: d.digest });
      throw e;
    }
    if (res.status === 404) { await res.body?.cancel(); return undefined; }
    const len = Number(res.headers.get("content-length") ?? "");
    if (!res.ok || !res.body || !Number.isSafeInteger(len) || len < 0) {
      await res.body?.cancel();
      if (res.ok) { this.inflight.delete(key); await this.ensureBlob(name, d); return "local"; }
      throw new RegistryError("BLOB_UNKNOWN", `upstream ${m.client.up.name}: ${res.status} fetching ${d.digest}`, { digest: d.digest }, 502);
    }
    const src = Readable.fromWeb(res.body as import("node:stream/web").ReadableStream<Uint8Array>);
    const toStore = new PassThrough();
    const uuid = await this.storage.startUpload(name);
    const kept = this.storage.commitUpload(name, uuid, d, toStore).then((size) => {
      this.note({ cached: "blob", repository: name, digest: d.digest, size });
    }, async (e: unknown) => {
      await this.storage.removeUpload(uuid);
      this.note({ repository: name, digest: d.digest, error: `not cached: ${(e as Error).message}` });
      throw e instanceof RegistryError && e.code === "DIGEST_INVALID" ? new RegistryError("BLOB_UNKNOWN", `upstream ${m.client.up.name} sent content that does not match ${d.digest}`, { digest: d.digest }, 502) : e;
    });
    kept.catch(() => {});
    // The caller's copy: every chunk but the last goes at once; the last once the kept copy matched its digest.
    let held: Buffer | undefined;
    const toClient = new Transform({
      transform(chunk: Buffer, _enc, cb) { const prev = held; held = chunk; cb(null, prev); },
      flush(cb) { kept.then(() => cb(null, held), (e: unknown) => cb(e as Error)); },
    });
    src.on("error", (e) => { toStore.destroy(e); toClient.destroy(e); });
    // pipe() goes on feeding the store when the caller goes away (its copy is unpiped on close).
    src.pipe(toStore);
    src.pipe(toClient);
    return { size: len, stream: toClient, kept };
  }

  /** Brings the manifest `ref` (tag or digest) of `name` up to date from upstream; the local record to serve, or undefined. */
  async ensureManifest(name: string, ref: string): Promise<ManifestRecord | undefined> {
    const m = this.match(name)!;
    if (isDigest(ref)) {
      const local = await this.storage.resolveManifest(name, ref);
      if (local) return local;
      try { await this.once(`manifest\0${name}\0${ref}`, () => this.fetchManifest(m, name, ref, ref)); } catch (e) { if (!(e instanceof UpstreamDown)) throw e; }
      return this.storage.resolveManifest(name, ref);
    }
    try {
      await this.once(`tag\0${name}\0${ref}`, async () => {
        const head = await m.client.request(m.remote, `manifests/${ref}`, { method: "HEAD", accept: ACCEPT });
        await head.body?.cancel();
        if (head.status === 404) { await this.forgetTag(name, ref); return; }
        const digest = head.ok ? head.headers.get("docker-content-digest") : null;
        if (digest) {
          const local = await this.storage.resolveManifest(name, ref);
          if (local?.digest.digest === digest) return;
          const rev = await this.storage.resolveManifest(name, digest).catch(() => undefined);
          if (rev) {
            // Known content under a new tag target: re-point the tag.
            await this.storage.putManifest(name, ref, await this.storage.readBlob(rev.digest), rev.mediaType, { unchecked: true });
            this.note({ cached: "tag", repository: name, tag: ref, digest });
            return;
          }
        }
        await this.fetchManifest(m, name, ref, digest ?? undefined);
      });
    } catch (e) {
      if (!(e instanceof UpstreamDown)) throw e;
      this.note({ repository: name, tag: ref, upstream: "unreachable", error: e.message });
    }
    return this.storage.resolveManifest(name, ref);
  }

  private async forgetTag(name: string, tag: string): Promise<void> {
    if (await this.storage.resolveManifest(name, tag)) await this.storage.deleteManifest(name, tag).catch(() => false);
  }

  private async fetchManifest(m: { client: UpstreamClient; remote: string }, name: string, ref: string, want?: string): Promise<void> {
    const res = await m.client.request(m.remote, `manifests/${ref}`, { accept: ACCEPT });
    if (res.status === 404) { await res.body?.cancel(); if (!isDigest(ref)) await this.forgetTag(name, ref); return; }
    if (!res.ok) { await res.body?.cancel(); throw new RegistryError("MANIFEST_UNKNOWN", `upstream ${m.client.up.name}: ${res.status} fetching manifest ${ref}`, null, 502); }
    const body = Buffer.from(await res.arrayBuffer());
    const ct = (res.headers.get("content-type") ?? "").split(";")[0] || undefined;
    if (want) {
      const d = parseDigest(want);
      const hex = createHash(d.alg).update(body).digest("hex");
      if (hex !== d.hex) throw new RegistryError("MANIFEST_INVALID", `upstream ${m.client.up.name} sent a manifest that does not match ${want}`, { digest: want }, 502);
    }
    const r = await this.storage.putManifest(name, ref, body, ct, { unchecked: true });
    this.note({ cached: "manifest", repository: name, reference: ref, digest: r.digest });
  }

  /** Upstream's tag list (this cache's when upstream cannot be reached); undefined when neither knows the repository. */
  async tags(name: string): Promise<string[] | undefined> {
    const m = this.match(name)!;
    try {
      const res = await m.client.request(m.remote, "tags/list");
      if (res.status === 404) { await res.body?.cancel(); return undefined; }
      if (res.ok) {
        const all: string[] = [];
        let j = (await res.json()) as { tags?: string[] | null };
        all.push(...(j.tags ?? []));
        // Follow upstream's pagination (Link: <...>; rel="next").
        let link = res.headers.get("link");
        for (let pages = 0; link && pages < 100; pages++) {
          const next = /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1];
          if (!next) break;
          const u = new URL(next, m.client.up.url);
          const r2 = await m.client.request(m.remote, `tags/list${u.search}`);
          if (!r2.ok) { await r2.body?.cancel(); break; }
          j = (await r2.json()) as { tags?: string[] | null };
          all.push(...(j.tags ?? []));
          link = r2.headers.get("link");
        }
        return [...new Set(all)].sort();
      }
      await res.body?.cancel();
    } catch (e) { if (!(e instanceof UpstreamDown)) throw e; }
    return this.storage.tags(name);
  }
}
