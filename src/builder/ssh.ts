/**
 * RUN --mount=type=ssh: the client's ssh agents, forwarded into a RUN step as BuildKit forwards them.
 *
 * The client (`berth build --ssh default|id=/path/to/agent.sock`) names agent sockets by id; the daemon,
 * on the same machine, reaches them by path. A RUN that mounts one gets a socket of the build's own at
 * the mount's target (default `/run/buildkit/ssh_agent.<n>`, n counting the step's ssh mounts), owned and
 * moded as the mount says (0600 root's unless told), which relays each connection to the client's agent:
 * the agent's keys never leave it, and nothing of the socket is in the step's layer (its mountpoint is a
 * stub the engine removes). SSH_AUTH_SOCK is set to the first ssh mount's target unless the step's
 * environment has one already (BuildKit's llb ExecOp).
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { chmodSync, chownSync, statSync, mkdirSync } from "node:fs";
import { join, posix } from "node:path";
import { randomBytes } from "node:crypto";
import { BadParameterError } from "../lib/errors.js";

/** The agents a build was given, by id ("default" for `--ssh default`). */
export class SshAgents {
  private readonly servers: Server[] = [];
  private readonly conns = new Set<Socket>();
  private closed = false;

  constructor(private readonly agents: ReadonlyMap<string, string>, private readonly dir: string) {}

  has(id: string): boolean { return this.agents.has(id); }

  /**
   * A socket for one RUN --mount=type=ssh (a fresh one per mount: its owner and mode are the mount's),
   * relaying to the agent `id`. Undefined when the client forwarded no such agent.
   */
  async socketFor(id: string, mode = 0o600, uid = 0, gid = 0): Promise<string | undefined> {
    const agent = this.agents.get(id);
    if (agent === undefined) return undefined;
    if (this.closed) throw new BadParameterError("build finished");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `agent-${randomBytes(6).toString("hex")}.sock`);
    const server = createServer((c) => {
      this.conns.add(c);
      const up = connect(agent);
      this.conns.add(up);
      const done = () => { c.destroy(); up.destroy(); this.conns.delete(c); this.conns.delete(up); };
      c.on("error", done).on("close", done);
      up.on("error", done).on("close", done);
      c.pipe(up);
      up.pipe(c);
    });
    await new Promise<void>((res, rej) => { server.once("error", rej); server.listen(path, () => { server.off("error", rej); res(); }); });
    this.servers.push(server);
    chownSync(path, uid, gid);
    chmodSync(path, mode);
    return path;
  }

  /** Stops relaying: every socket closes, live connections too (the build is over). */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.conns) c.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}

/**
 * The X-Berth-Build-Ssh header's value, as the daemon reads it: base64 of a JSON object, id → the path of
 * an agent socket on this machine. Each must be a socket (a key file is the client's to load into an agent).
 */
export function parseSshHeader(header: string | string[] | undefined): Map<string, string> | undefined {
  if (header === undefined) return undefined;
  const bad = () => new BadParameterError("invalid X-Berth-Build-Ssh header: base64 of a JSON object of socket paths expected");
  let parsed: unknown;
  try { parsed = JSON.parse(Buffer.from(Array.isArray(header) ? header.join("") : header, "base64").toString("utf8")); } catch { throw bad(); }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw bad();
  const out = new Map<string, string>();
  for (const [id, p] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof p !== "string" || !id || !p.startsWith("/")) throw bad();
    let sock = false;
    try { sock = statSync(p).isSocket(); } catch { /* missing */ }
    if (!sock) throw new BadParameterError(`failed to parse ssh agent ${id}: ${p} is not a socket`);
    out.set(id, p);
  }
  return out;
}

/** How a RUN step's container is made beyond its mounts: its network (RUN --network, else the build's) and `--security=insecure` (privileged). */
export interface RunExtras { network?: string; privileged?: boolean }

/**
 * BuildKit's entitlements: RUN --network=host needs `network.host`, RUN --security=insecure
 * `security.insecure`, each given to the build (`build --allow`), else the build fails with its words.
 */
export function checkEntitlements(ins: { network: string; security: string }, allow: readonly string[]): void {
  if (ins.network === "host" && !allow.includes("network.host")) throw new BadParameterError("network.host is not allowed");
  if (ins.security === "insecure" && !allow.includes("security.insecure")) throw new BadParameterError("security.insecure is not allowed");
}

/**
 * A RUN step's ssh mounts, as the container gets them: a socket relaying to the agent per mount (its
 * target `/run/buildkit/ssh_agent.<n>` unless given, relative ones under the working directory), and
 * SSH_AUTH_SOCK naming the first (unless the image's environment sets it). An optional mount whose
 * agent the client did not forward is left out (the variable still names it, as BuildKit's).
 */
export async function sshMount(
  mounts: readonly { type: string; id?: string; target?: string; mode?: number; uid?: number; gid?: number; required: boolean }[],
  agents: SshAgents | undefined, workdir: string, envHasSock: boolean,
): Promise<{ mounts: { type: "bind"; source: string; target: string; readOnly: boolean; stub: boolean }[]; env: string[] }> {
  const out: { type: "bind"; source: string; target: string; readOnly: boolean; stub: boolean }[] = [];
  let first: string | undefined;
  let n = 0;
  for (const m of mounts) {
    if (m.type !== "ssh") continue;
    const target = m.target ? posix.resolve(workdir, m.target) : `/run/buildkit/ssh_agent.${n}`;
    first ??= target;
    n++;
    const id = m.id || "default";
    const sock = await agents?.socketFor(id, m.mode ?? 0o600, m.uid ?? 0, m.gid ?? 0);
    if (!sock) {
      if (m.required) throw new BadParameterError(`no SSH key ${JSON.stringify(id)} forwarded from the client`);
      continue;
    }
    out.push({ type: "bind", source: sock, target, readOnly: false, stub: true });
  }
  // As LLB: the variable names the first ssh mount's target whether or not its agent was forwarded.
  return { mounts: out, env: first !== undefined && !envHasSock ? [`SSH_AUTH_SOCK=${first}`] : [] };
}
