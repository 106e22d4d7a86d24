/**
 * Who may do what on the registry: authentication (none, htpasswd basic, or
 * bearer tokens from the built-in token endpoint) and per-repository rights.
 *
 * - `none`: everyone may do everything (the default).
 * - `htpasswd`: HTTP basic auth against an htpasswd file of bcrypt hashes
 *   (`htpasswd -B`); a request without credentials is anonymous; one whose
 *   credentials are wrong is 401 with `WWW-Authenticate: Basic realm=...`.
 * - `token`: Docker Hub's flow. A request without a valid token is 401 with
 *   `WWW-Authenticate: Bearer realm=".../token",service="...",scope="repository:NAME:ACTIONS"`;
 *   GET /token (basic credentials or none) answers a JWT (HS256, signed with a
 *   key kept in <root>/_auth/token.key or the configured file) whose `access`
 *   claim grants what the rules allow of the scopes asked for. The registry
 *   checks the signature, expiry, not-before, issuer, audience (the service)
 *   and the scope's actions.
 *
 * Rights come from `access` rules (YAML, under `auth:` in the config file):
 *
 *   access:
 *     - { users: [alice], repositories: ["alice/**"], actions: [pull, push, delete] }
 *     - { groups: [devs], repositories: ["team/*"], actions: [pull, push] }
 *     - { anonymous: true, repositories: ["public/**"], actions: [pull] }
 *
 * A pattern's `*` matches within one path component, `**` across them. With
 * no `access` list every authenticated user may do everything and anonymous
 * requests nothing. A user's rights are the union of every rule naming them,
 * their groups (`groups: {devs: [alice, bob]}`), or anonymous (rules for
 * anonymous apply to everyone).
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { promises as fsp, readFileSync, statSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { dirname, join } from "node:path";
import { atomicWrite } from "../lib/fsutil.js";
import { RegistryError } from "./errors.js";

export type Action = "pull" | "push" | "delete";
const ACTIONS: readonly Action[] = ["pull", "push", "delete"];

export interface AccessRule { users?: string[]; groups?: string[]; anonymous?: boolean; repositories: string[]; actions: (Action | "*")[] }

export interface AuthConfig {
  type: "none" | "htpasswd" | "token";
  htpasswd?: string;
  /** The token endpoint's URL in the challenge; default: this server's /token as the client reached it. */
  realm?: string;
  service: string;
  issuer: string;
  tokenExpirySec: number;
  /** A file whose bytes are the HMAC key; default <root>/_auth/token.key, made on first start. */
  tokenKey?: string;
  groups: Record<string, string[]>;
  access?: AccessRule[];
}

export const DEFAULT_AUTH: AuthConfig = { type: "none", service: "berth-registry", issuer: "berth-registry", tokenExpirySec: 300, groups: {} };

/** What a request needs: nothing (public paths), any identity the scheme accepts (/v2/), the catalog, or actions on a repository. */
export type Need = { kind: "open" } | { kind: "login" } | { kind: "catalog" } | { kind: "repository"; name: string; actions: Action[] };

/** The answer for one request: who it is, and what they may do on a repository (for filters: the catalog, mounts, the HTML page). */
export interface Grant { user?: string; may(repo: string, action: Action): boolean }

interface TokenAccess { type: string; name: string; actions: string[] }
interface Claims { iss: string; sub: string; aud: string | string[]; exp: number; nbf: number; iat: number; jti: string; access: TokenAccess[] }

/** A thrown 401 carrying its challenge. */
export class Unauthorized extends RegistryError {
  constructor(readonly challenge: string, message = "authentication required", detail?: unknown) { super("UNAUTHORIZED", message, detail ?? null); }
}

function globRe(p: string): RegExp {
  let s = "";
  for (let i = 0; i < p.length; i++) {
    if (p[i] === "*" && p[i + 1] === "*") { s += ".*"; i++; } else if (p[i] === "*") s += "[^/]*";
    else s += p[i].replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${s}$`);
}

/** Rights by rule: users, groups, anonymous → repository patterns → actions. */
export class Rules {
  private readonly rules: { users: Set<string>; groups: Set<string>; anonymous: boolean; repos: RegExp[]; actions: Set<Action> }[] | undefined;
  private readonly memberOf = new Map<string, Set<string>>();

  constructor(cfg: Pick<AuthConfig, "access" | "groups">) {
    for (const [g, members] of Object.entries(cfg.groups)) for (const u of members) {
      if (!this.memberOf.has(u)) this.memberOf.set(u, new Set());
      this.memberOf.get(u)!.add(g);
    }
    this.rules = cfg.access?.map((r) => ({
      users: new Set(r.users ?? []), groups: new Set(r.groups ?? []), anonymous: r.anonymous === true,
      repos: r.repositories.map(globRe),
      actions: new Set(r.actions.flatMap((a) => (a === "*" ? ACTIONS : [a]))),
    }));
  }

  /** The actions `user` (undefined: anonymous) may take on `repo`. */
  allowed(user: string | undefined, repo: string): Set<Action> {
    if (!this.rules) return new Set(user === undefined ? [] : ACTIONS);
    const out = new Set<Action>();
    const groups = user === undefined ? undefined : this.memberOf.get(user);
    for (const r of this.rules) {
      const applies = r.anonymous || (user !== undefined && (r.users.has(user) || [...(groups ?? [])].some((g) => r.groups.has(g))));
      if (applies && r.repos.some((re) => re.test(repo))) for (const a of r.actions) out.add(a);
    }
    return out;
  }

  /** Does anonymous have any right anywhere? */
  anonymousRules(): boolean { return !!this.rules?.some((r) => r.anonymous); }
}

/** An htpasswd file of bcrypt hashes, re-read when it changes; verified passwords are remembered for a minute (bcrypt is slow by design). */
export class Htpasswd {
  private entries = new Map<string, string>();
  private mtimeMs = -1;
  private size = -1;
  private ino = -1;
  private checkedAt = 0;
  private readonly ok = new Map<string, number>();
  private dummy: string | undefined;

  constructor(readonly file: string) {}

  private reload(): void {
    if (Date.now() - this.checkedAt < 1000 && this.mtimeMs >= 0) return;
    this.checkedAt = Date.now();
    let st;
    try { st = statSync(this.file); } catch (e) { throw new Error(`htpasswd file ${this.file}: ${(e as Error).message}`); }
    if (st.mtimeMs === this.mtimeMs && st.size === this.size && st.ino === this.ino) return;
    this.mtimeMs = st.mtimeMs;
    this.size = st.size;
    this.ino = st.ino;
    const text = readFileSync(this.file, "utf8");
    const m = new Map<string, string>();
    for (const line of text.split(/\r?\n/)) {
      const l = line.trim();
      if (l === "" || l.startsWith("#")) continue;
      const i = l.indexOf(":");
      if (i > 0) m.set(l.slice(0, i), l.slice(i + 1));
    }
    this.entries = m;
    this.ok.clear();
  }

  load(): void { this.reload(); }

  async verify(user: string, password: string): Promise<boolean> {
    this.reload();
    const hash = this.entries.get(user);
    if (hash === undefined || !/^\$2[aby]\$\d\d\$/.test(hash)) {
      // As slow as a wrong password, so a name's presence cannot be timed.
      const { default: bcrypt } = await import("bcryptjs");
      this.dummy ??= await bcrypt.hash("berth-registry", 10);
      await bcrypt.compare(password, this.dummy);
      return false;
    }
    const key = createHash("sha256").update(`${user}\0${password}\0${hash}`).digest("hex");
    const until = this.ok.get(key);
    if (until !== undefined && until > Date.now()) return true;
    const { default: bcrypt } = await import("bcryptjs");
    // bcryptjs knows $2a$/$2b$; Apache's $2y$ is the same algorithm.
    const good = await bcrypt.compare(password, hash.replace(/^\$2y\$/, "$2b$"));
    if (good) {
      if (this.ok.size > 10_000) this.ok.clear();
      this.ok.set(key, Date.now() + 60_000);
    }
    return good;
  }
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString("base64url");

/** Parses `repository:NAME:pull,push` (also `registry:catalog:*`); undefined when malformed. */
export function parseScope(s: string): TokenAccess | undefined {
  const i = s.indexOf(":"), j = s.lastIndexOf(":");
  if (i <= 0 || j <= i) return undefined;
  const type = s.slice(0, i).replace(/\(.*\)$/, ""), name = s.slice(i + 1, j);
  const actions = s.slice(j + 1).split(",").filter((a) => a !== "");
  if (name === "") return undefined;
  return { type, name, actions };
}

function basicCreds(req: IncomingMessage): { user: string; password: string } | undefined | null {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Basic\s+(\S+)$/i.exec(h.trim());
  if (!m) return null;
  const s = Buffer.from(m[1], "base64").toString("utf8");
  const i = s.indexOf(":");
  if (i < 0) return null;
  return { user: s.slice(0, i), password: s.slice(i + 1) };
}

export class RegistryAuth {
  readonly rules: Rules;
  private readonly htpasswd?: Htpasswd;
  private key: Buffer = Buffer.alloc(0);

  constructor(readonly cfg: AuthConfig, private readonly root: string, private readonly tls = false) {
    this.rules = new Rules(cfg);
    if (cfg.type !== "none") {
      if (!cfg.htpasswd) throw new Error(`auth ${cfg.type} needs an htpasswd file (--htpasswd or auth.htpasswd)`);
      this.htpasswd = new Htpasswd(cfg.htpasswd);
    }
  }

  get enabled(): boolean { return this.cfg.type !== "none"; }

  /** Reads the htpasswd file (so a missing one fails at start) and the token key, made on first start. */
  async init(): Promise<void> {
    this.htpasswd?.load();
    if (this.cfg.type !== "token") return;
    if (this.cfg.tokenKey) { this.key = await fsp.readFile(this.cfg.tokenKey); }
    else {
      const file = join(this.root, "_auth", "token.key");
      try { this.key = await fsp.readFile(file); } catch {
        await fsp.mkdir(dirname(file), { recursive: true, mode: 0o700 });
        await atomicWrite(file, randomBytes(32).toString("hex"), 0o600);
        this.key = await fsp.readFile(file);
      }
    }
    if (this.key.length < 16) throw new Error("the token key must be at least 16 bytes");
  }

  private realm(req: IncomingMessage): string {
    return this.cfg.realm ?? `${this.tls ? "https" : "http"}://${req.headers.host ?? "localhost"}/token`;
  }

  private bearer(req: IncomingMessage, need: Need, error?: string): string {
    const scope = need.kind === "repository" ? `repository:${need.name}:${need.actions.includes("push") ? "pull,push" : need.actions.join(",")}` : need.kind === "catalog" ? "registry:catalog:*" : undefined;
    return `Bearer realm="${this.realm(req)}",service="${this.cfg.service}"${scope ? `,scope="${scope}"` : ""}${error ? `,error="${error}"` : ""}`;
  }

  private basicChallenge(): string { return `Basic realm="${this.cfg.service}"`; }

  /** The identity of a request and whether it may do what it asks; throws 401 (with the challenge) or 403 DENIED. */
  async check(req: IncomingMessage, need: Need, seen?: (user: string) => void): Promise<Grant> {
    if (this.cfg.type === "none") return { may: () => true };
    if (this.cfg.type === "htpasswd") return this.checkBasic(req, need, seen);
    return this.checkToken(req, need, seen);
  }

  /**
   * The HTML page's visitor: browsers speak basic auth only, so in both modes the page takes htpasswd
   * credentials; without any it shows what anonymous may pull, or asks to sign in when that is nothing.
   */
  async browser(req: IncomingMessage): Promise<Grant> {
    if (this.cfg.type === "none") return { may: () => true };
    const c = basicCreds(req);
    if (c === null) throw new Unauthorized(this.basicChallenge(), "malformed Authorization header");
    let user: string | undefined;
    if (c) {
      if (!(await this.htpasswd!.verify(c.user, c.password))) throw new Unauthorized(this.basicChallenge(), "incorrect username or password");
      user = c.user;
    } else if (!this.rules.anonymousRules()) throw new Unauthorized(this.basicChallenge());
    return { user, may: (repo, a) => this.rules.allowed(user, repo).has(a) };
  }

  /**
   * Who may read /metrics on the registry's own address when auth is on: any user of the htpasswd file,
   * by basic credentials in both modes (a scraper keeps a password; a bearer token lasts minutes).
   * Anonymous rules do not open it. (`--metrics-addr` serves it on an address of its own instead.)
   */
  async metrics(req: IncomingMessage): Promise<string | undefined> {
    if (this.cfg.type === "none") return undefined;
    const c = basicCreds(req);
    if (c === null) throw new Unauthorized(this.basicChallenge(), "malformed Authorization header");
    if (!c) throw new Unauthorized(this.basicChallenge());
    if (!(await this.htpasswd!.verify(c.user, c.password))) throw new Unauthorized(this.basicChallenge(), "incorrect username or password");
    return c.user;
  }

  private async checkBasic(req: IncomingMessage, need: Need, seen?: (user: string) => void): Promise<Grant> {
    const c = basicCreds(req);
    let user: string | undefined;
    if (c === null) throw new Unauthorized(this.basicChallenge(), "malformed Authorization header");
    if (c) {
      if (!(await this.htpasswd!.verify(c.user, c.password))) throw new Unauthorized(this.basicChallenge(), "incorrect username or password");
      user = c.user;
      seen?.(user);
    }
    const grant: Grant = { user, may: (repo, a) => this.rules.allowed(user, repo).has(a) };
    this.require(grant, need, () => this.basicChallenge());
    return grant;
  }

  private require(grant: Grant, need: Need, challenge: () => string): void {
    if (need.kind === "open") return;
    if (need.kind === "login" || (need.kind === "catalog" && !this.rules.anonymousRules())) {
      if (grant.user === undefined) throw new Unauthorized(challenge());
      return;
    }
    if (need.kind === "catalog") return;
    if (need.actions.every((a) => grant.may(need.name, a))) return;
    if (grant.user === undefined) throw new Unauthorized(challenge(), "authentication required", [{ Type: "repository", Name: need.name, Action: need.actions.join(",") }]);
    throw new RegistryError("DENIED", "requested access to the resource is denied", [{ Type: "repository", Name: need.name, Action: need.actions.join(",") }]);
  }

  private async checkToken(req: IncomingMessage, need: Need, seen?: (user: string) => void): Promise<Grant> {
    if (need.kind === "open") return { may: () => false };
    const h = req.headers.authorization;
    const m = h ? /^Bearer\s+(\S+)$/i.exec(h.trim()) : null;
    if (!m) throw new Unauthorized(this.bearer(req, need));
    let claims: Claims;
    try { claims = this.verifyToken(m[1]); } catch (e) { throw new Unauthorized(this.bearer(req, need, "invalid_token"), (e as Error).message); }
    const user = claims.sub === "" ? undefined : claims.sub;
    if (user !== undefined) seen?.(user);
    const granted = (type: string, name: string, a: string): boolean => claims.access.some((x) => x.type === type && x.name === name && (x.actions.includes(a) || x.actions.includes("*")));
    const grant: Grant = { user, may: (repo, a) => granted("repository", repo, a) && this.rules.allowed(user, repo).has(a) };
    if (need.kind === "login") return grant;
    if (need.kind === "catalog") {
      // The catalog lists what the user may pull, whatever repository scopes this token carries.
      if (granted("registry", "catalog", "*")) return { user, may: (repo, a) => this.rules.allowed(user, repo).has(a) };
      throw new Unauthorized(this.bearer(req, need, "insufficient_scope"), "authentication required");
    }
    if (need.actions.every((a) => grant.may(need.name, a))) return grant;
    const wouldBe = this.rules.allowed(user, need.name);
    const detail = [{ Type: "repository", Name: need.name, Action: need.actions.join(",") }];
    // The rules allow it but the token does not carry it: ask for a token with that scope. Anonymous: log in.
    if (user === undefined || need.actions.every((a) => wouldBe.has(a))) throw new Unauthorized(this.bearer(req, need, user === undefined ? undefined : "insufficient_scope"), "authentication required", detail);
    throw new RegistryError("DENIED", "requested access to the resource is denied", detail);
  }

  // ---- tokens ----

  private sign(data: string): Buffer { return createHmac("sha256", this.key).update(data).digest(); }

  issueToken(user: string | undefined, access: TokenAccess[]): { token: string; access_token: string; expires_in: number; issued_at: string } {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: "HS256", typ: "JWT", kid: createHash("sha256").update(this.key).digest("hex").slice(0, 16) };
    const claims: Claims = { iss: this.cfg.issuer, sub: user ?? "", aud: this.cfg.service, exp: now + this.cfg.tokenExpirySec, nbf: now - 1, iat: now, jti: randomUUID(), access };
    const body = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${body}.${b64url(this.sign(body))}`;
    return { token, access_token: token, expires_in: this.cfg.tokenExpirySec, issued_at: new Date(now * 1000).toISOString() };
  }

  /** The claims of a token this registry signed, still valid, for this service; throws otherwise. */
  verifyToken(token: string): Claims {
    const parts = token.split(".");
    if (parts.length !== 3) throw new Error("malformed token");
    let header: { alg?: unknown }, claims: Claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], "base64url").toString()) as { alg?: unknown };
      claims = JSON.parse(Buffer.from(parts[1], "base64url").toString()) as Claims;
    } catch { throw new Error("malformed token"); }
    if (header.alg !== "HS256") throw new Error(`unsupported token algorithm ${String(header.alg)}`);
    const sig = Buffer.from(parts[2], "base64url");
    const want = this.sign(`${parts[0]}.${parts[1]}`);
    if (sig.length !== want.length || !timingSafeEqual(sig, want)) throw new Error("invalid token signature");
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== "number" || claims.exp < now) throw new Error("token expired");
    if (typeof claims.nbf === "number" && claims.nbf > now + 60) throw new Error("token not yet valid");
    if (claims.iss !== this.cfg.issuer) throw new Error("token issuer mismatch");
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.includes(this.cfg.service)) throw new Error("token audience mismatch");
    if (!Array.isArray(claims.access)) throw new Error("malformed token access");
    return claims;
  }

  /**
   * GET /token?service=&scope=...: Docker's token endpoint. Credentials (basic) are checked against the
   * htpasswd file; none is anonymous. Each scope is granted what the rules allow of it (maybe nothing).
   */
  async token(req: IncomingMessage, q: URLSearchParams, seen?: (user: string) => void, form?: URLSearchParams): Promise<{ status: number; body: unknown; headers?: Record<string, string> }> {
    if (this.cfg.type !== "token") throw new RegistryError("UNSUPPORTED", "this registry issues no tokens", null, 404);
    let c = basicCreds(req);
    let user: string | undefined;
    if (form) {
      // OAuth2's password grant (containerd posts one when it has credentials); no refresh tokens are issued.
      const grant = form.get("grant_type");
      if (grant !== "password") throw new RegistryError("UNSUPPORTED", `unsupported grant_type ${JSON.stringify(grant ?? "")}: only password`, { grant_type: grant }, 400);
      c = { user: form.get("username") ?? "", password: form.get("password") ?? "" };
      q = new URLSearchParams([...q, ...form.getAll("scope").map((sc): [string, string] => ["scope", sc])]);
    }
    if (c === null) throw new Unauthorized(this.basicChallenge(), "malformed Authorization header");
    if (c) {
      if (!(await this.htpasswd!.verify(c.user, c.password))) throw new Unauthorized(this.basicChallenge(), "incorrect username or password");
      user = c.user;
      seen?.(user);
    }
    const access: TokenAccess[] = [];
    for (const raw of q.getAll("scope").flatMap((s) => s.split(" ")).filter((s) => s !== "")) {
      const s = parseScope(raw);
      if (!s) throw new RegistryError("UNSUPPORTED", `invalid scope ${JSON.stringify(raw)}`, { scope: raw }, 400);
      if (s.type === "repository") {
        const allowed = this.rules.allowed(user, s.name);
        const acts = s.actions.flatMap((a): string[] => (a === "*" ? [...ACTIONS] : [a])).filter((a): a is Action => allowed.has(a as Action));
        access.push({ type: "repository", name: s.name, actions: [...new Set(acts)] });
      } else if (s.type === "registry" && s.name === "catalog") {
        access.push({ type: "registry", name: "catalog", actions: user !== undefined || this.rules.anonymousRules() ? ["*"] : [] });
      }
    }
    return { status: 200, body: this.issueToken(user, access) };
  }
}
