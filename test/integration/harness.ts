/**
 * Integration harness: a real berthd on a temporary data root, exec root and
 * socket, driven by bin/berth and by the real docker CLI. stop() removes
 * every container, kills the daemon and checks nothing is left behind
 * (mounts, conmon processes, cgroups).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, existsSync, readdirSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, basename } from "node:path";
import net from "node:net";
import { createHash } from "node:crypto";

export const REPO = resolve(import.meta.dirname, "../..");
export const BERTH = join(REPO, "bin/berth");
export const BERTHD = join(REPO, "bin/berthd");
export const DOCKER = "/usr/local/bin/docker";

export interface Result { code: number; stdout: string; stderr: string }

export class Daemon {
  readonly root: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly sock: string;
  proc: ChildProcess | undefined;
  log = "";
  lastRm = "";

  /** Extra berthd flags (--dns ...). */
  extraArgs: string[] = [];

  constructor() {
    this.root = mkdtempSync(join(tmpdir(), "berth-it-"));
    this.dataRoot = join(this.root, "data");
    this.execRoot = join(this.root, "run");
    this.sock = join(this.execRoot, "berth.sock");
  }

  get host(): string { return `unix://${this.sock}`; }

  /** This daemon's nftables table (berthd names it after the data root). */
  get nftTable(): string { return `berth_${createHash("sha256").update(this.dataRoot).digest("hex").slice(0, 6)}`; }

  async start(): Promise<void> {
    this.proc = spawn(process.execPath, [BERTHD, "--data-root", this.dataRoot, "--exec-root", this.execRoot, "-H", this.host, "--teardown-networks", ...this.extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout!.on("data", (d) => { this.log += d; });
    this.proc.stderr!.on("data", (d) => { this.log += d; });
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`berthd exited: ${this.log}`);
      if (await ping(this.sock)) return;
      await sleep(50);
    }
    throw new Error(`berthd did not answer: ${this.log}`);
  }

  /** kill -9: containers must survive it. */
  async crash(): Promise<void> {
    if (!this.proc) return;
    const p = this.proc;
    p.kill("SIGKILL");
    if (p.exitCode === null) await new Promise((r) => p.once("exit", r));
    this.proc = undefined;
  }

  async stopDaemon(): Promise<void> {
    if (!this.proc) return;
    const p = this.proc;
    p.kill("SIGTERM");
    if (p.exitCode === null) await new Promise((r) => p.once("exit", r));
    this.proc = undefined;
  }

  berth(args: string[], opts: { input?: string; env?: Record<string, string>; timeout?: number } = {}): Result {
    return runSync(process.execPath, [BERTH, "-H", this.host, ...args], opts);
  }

  docker(args: string[], opts: { input?: string; timeout?: number } = {}): Result {
    return runSync(DOCKER, args, { ...opts, env: { DOCKER_HOST: this.host, DOCKER_CONFIG: join(this.root, "docker-config") } });
  }

  async berthAsync(args: string[], opts: { input?: string } = {}): Promise<Result> {
    return runAsync(process.execPath, [BERTH, "-H", this.host, ...args], opts);
  }

  async bootstrap(): Promise<void> {
    const r = this.berth(["image", "bootstrap", "busybox"]);
    if (r.code !== 0) throw new Error(`bootstrap failed: ${r.stderr}${r.stdout}`);
  }

  /** Removes every container, stops the daemon, and removes the temp dirs; throws if anything leaked. */
  async stop(): Promise<void> {
    let bridges: string[] = [];
    let leakedVeths: string[] = [];
    if (this.proc) {
      const ids = this.berth(["ps", "-aq", "--no-trunc"]).stdout.split("\n").filter(Boolean);
      if (ids.length) { const r = this.berth(["rm", "-f", ...ids], { timeout: 60_000 }); this.lastRm = `${ids.join(" ")}: ${r.code} ${r.stdout} ${r.stderr}`; }
      bridges = this.berth(["network", "ls", "-q", "--no-trunc"]).stdout.split("\n").filter(Boolean)
        .map((id) => bridgeOf(JSON.parse(this.berth(["network", "inspect", "-f", "{{json .}}", id]).stdout || "{}") as NetDoc)).filter(Boolean);
      // A veth still plugged into one of this daemon's bridges once every container is gone is a leak
      // (the kernel frees a pair with its namespace, shortly after the container exits: poll for it).
      const ours = new Set(bridges);
      const deadline = Date.now() + 5_000;
      for (;;) {
        leakedVeths = veths().filter((v) => { const m = masterOf(v); return m !== undefined && ours.has(m); });
        if (!leakedVeths.length || Date.now() > deadline) break;
        await sleep(100);
      }
      await this.stopDaemon();
    }
    // Attach relays end when their container's conmon or berthd closes their sockets: shortly after.
    for (const deadline = Date.now() + 5_000; relays(this.root) && Date.now() < deadline;) await sleep(50);
    const leaks = leftovers(this.root);
    // Network objects: --teardown-networks removes bridges and the table at stop; veths go with their containers.
    const links = new Set(spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split(": ")[1]?.split("@")[0]).filter(Boolean));
    const leftBridges = bridges.filter((b) => links.has(b));
    if (leftBridges.length) { leaks.push(`bridges: ${leftBridges.join(",")}`); for (const b of leftBridges) spawnSync("ip", ["link", "del", b]); }
    // Only this daemon's: other daemons (tests run side by side) make and free veths of their own.
    if (leakedVeths.length) leaks.push(`veths: ${leakedVeths.join(",")}`);
    const tables = spawnSync("nft", ["list", "tables"], { encoding: "utf8" }).stdout;
    const table = this.nftTable;
    if (tables.includes(` ${table}\n`) || tables.endsWith(` ${table}`)) { leaks.push(`nft table ${table}`); spawnSync("nft", ["delete", "table", "ip", table]); spawnSync("nft", ["delete", "table", "ip6", table]); }
    const fwd = spawnSync("iptables", ["-S", "FORWARD"], { encoding: "utf8" }).stdout ?? "";
    for (const b of bridges) if (fwd.includes(`berth:${b}`)) leaks.push(`iptables FORWARD rules for ${b}`);
    // Last resort so one failure does not poison the machine; the test still fails.
    if (leaks.length) {
      for (const m of mountsUnder(this.root).reverse()) spawnSync("umount", ["-l", m]);
      spawnSync("pkill", ["-9", "-f", `conmon.*${this.root}`]);
      spawnSync("pkill", ["-9", "-f", `berth-attach .*${this.root}`]);
    }
    rmSync(this.root, { recursive: true, force: true });
    if (leaks.length) throw new Error(`left behind: ${leaks.join("; ")}\n--- berthd log ---\n${this.log.slice(-4000)}\n--- rm -f said ---\n${this.lastRm}`);
  }
}

export function veths(): string[] {
  return spawnSync("ip", ["-o", "link", "show", "type", "veth"], { encoding: "utf8" }).stdout.split("\n").map((l) => l.split(": ")[1]?.split("@")[0]).filter(Boolean);
}

export function masterOf(link: string): string | undefined {
  try { return basename(readlinkSync(`/sys/class/net/${link}/master`)); } catch { return undefined; }
}

export function mountsUnder(root: string): string[] {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4]).filter((m) => m && m.startsWith(root));
}

export function leftovers(root: string): string[] {
  const out: string[] = [];
  const m = mountsUnder(root);
  if (m.length) out.push(`mounts: ${m.join(", ")}`);
  const ps = spawnSync("pgrep", ["-af", `conmon.*${root}`], { encoding: "utf8" }).stdout.trim();
  if (ps) out.push(`conmon: ${ps}`);
  const relaying = relays(root);
  if (relaying) out.push(`attach relays: ${relaying}`);
  const socketLinks = join(root, "run", "s");
  if (existsSync(socketLinks) && readdirSync(socketLinks).length) out.push(`attach socket links: ${readdirSync(socketLinks).length}`);
  const runcRoot = join(root, "run", "runc");
  if (existsSync(runcRoot) && readdirSync(runcRoot).length) out.push(`runc state: ${readdirSync(runcRoot).join(",")}`);
  return out;
}

/** The attach relays (bin/berth-attach) still running for sockets under root. */
export function relays(root: string): string {
  return spawnSync("pgrep", ["-af", `berth-attach .*${root}`], { encoding: "utf8" }).stdout.trim();
}

export function runSync(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string>; timeout?: number } = {}): Result {
  const r = spawnSync(cmd, args, { input: opts.input ?? "", encoding: "utf8", env: { ...process.env, ...opts.env }, timeout: opts.timeout ?? 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export function runAsync(cmd: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env } });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => { stdout += d; });
    p.stderr.on("data", (d) => { stderr += d; });
    p.on("close", (code) => res({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(opts.input ?? "");
  });
}

export function ping(sock: string): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(sock);
    s.once("connect", () => { s.end("GET /_ping HTTP/1.0\r\n\r\n"); });
    let buf = "";
    s.on("data", (d) => { buf += d; });
    s.once("close", () => res(buf.startsWith("HTTP/1.1 200")));
    s.once("error", () => res(false));
  });
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

/**
 * Polls fn every 50 ms until it returns something truthy (returned), for ms at most; then throws
 * "timed out waiting for <what>", with context() appended (a daemon's log, say) when given.
 */
export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms = 30_000, context?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v) return v;
    last = v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${String(last)})${context ? `\n${context()}` : ""}`);
    await sleep(50);
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((res) => { const s = net.createServer().listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); }); });
}

/** Raw HTTP over the daemon socket, for API-level assertions. */
/** Sockets api() has given a listener for late write errors (a kept-alive socket serves many requests). */
const quiet = new WeakSet<object>();

export function api(sock: string, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return import("node:http").then(({ request }) => new Promise((res, rej) => {
    const req = request({ socketPath: sock, method, path, headers: { "Content-Type": "application/json", ...headers } }, (r) => {
      let b = "";
      r.on("data", (d) => { b += d; });
      r.on("end", () => res({ status: r.statusCode ?? 0, body: b, headers: r.headers }));
    });
    req.on("error", rej);
    // A daemon that answers early (a 400 before the body is read) may close while the body is still going:
    // the answer counts, the write's EPIPE on the socket must not end the test process.
    req.on("socket", (s) => { if (!quiet.has(s)) { quiet.add(s); s.on("error", () => {}); } });
    req.end(body);
  }));
}

/** An API call with a JSON body (when given) whose answer is parsed as JSON where it is JSON. */
export async function apiJson(sock: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await api(sock, method, path, body === undefined ? undefined : JSON.stringify(body));
  let parsed: unknown = r.body;
  try { parsed = JSON.parse(r.body); } catch { /* text */ }
  return { status: r.status, body: parsed };
}

type NetDoc = { Id?: string; Driver?: string; Options?: Record<string, string> | null };
/** The bridge device of a network, as dockerd names it: the bridge.name option, else br-<id12> for a bridge network. */
export function bridgeOf(n: NetDoc): string {
  return n.Options?.["com.docker.network.bridge.name"] || (n.Driver === "bridge" && n.Id ? `br-${n.Id.slice(0, 12)}` : "");
}

export const DOCKERD_BIN = "/usr/sbin/dockerd";
export const DOCKER_CLI_DEBIAN = "/usr/bin/docker";

/**
 * A dockerd of the test's own (Debian's docker.io, which scripts/setup.sh installs): its own data root,
 * exec root, socket and bridge, no iptables rules (the machine's FORWARD policy and tables stay
 * as they were), its own containerd under the exec root. The peer for tests of how Docker itself talks
 * to berth's servers (its registry client pushing to `berth registry`). stop() ends it and removes it all.
 */
export class PrivateDockerd {
  readonly root = mkdtempSync(join(tmpdir(), "berth-dockerd-"));
  readonly sock = join(this.root, "docker.sock");
  /** Its bridge (made and removed here). */
  readonly bridge = `bdkr${createHash("sha256").update(this.root).digest("hex").slice(0, 8)}`;
  private proc: ChildProcess | undefined;
  log = "";

  get host(): string { return `unix://${this.sock}`; }

  async start(): Promise<void> {
    if (!existsSync(DOCKERD_BIN)) throw new Error(`${DOCKERD_BIN} is missing: scripts/setup.sh installs Debian's docker.io (run make deps)`);
    // A bridge of its own: with --bridge=none dockerd deletes the machine's docker0 (removeDefaultBridgeInterface),
    // and without -b it would take docker0 over. It runs no container; the bridge only has to exist.
    const br = spawnSync("ip", ["link", "add", "name", this.bridge, "type", "bridge"], { encoding: "utf8" });
    if (br.status !== 0) throw new Error(`ip link add ${this.bridge}: ${br.stderr}`);
    this.proc = spawn(DOCKERD_BIN, ["--data-root", join(this.root, "data"), "--exec-root", join(this.root, "exec"), "--pidfile", join(this.root, "dockerd.pid"),
      "-H", this.host, "--iptables=false", "--ip6tables=false", "--ip-masq=false", `--bridge=${this.bridge}`, "--userland-proxy=false"], { stdio: ["ignore", "pipe", "pipe"], detached: true });
    this.proc.stdout!.on("data", (d) => { this.log += d; });
    this.proc.stderr!.on("data", (d) => { this.log += d; });
    await until("the private dockerd to answer", () => {
      if (this.proc!.exitCode !== null) throw new Error(`dockerd exited ${this.proc!.exitCode}: ${this.log.slice(-3000)}`);
      return this.docker(["version", "--format", "{{.Server.Version}}"]).code === 0 || undefined;
    }, 60_000, () => this.log.slice(-3000));
  }

  /** Loads an image from a berthd (berth save | docker load). */
  loadFrom(d: Daemon, image: string): void {
    const save = spawnSync(process.execPath, [BERTH, "-H", d.host, "save", image], { maxBuffer: 1 << 30 });
    if (save.status !== 0) throw new Error(`berth save ${image}: ${save.stderr}`);
    const load = spawnSync(DOCKER_CLI_DEBIAN, ["-H", this.host, "load"], { input: save.stdout, encoding: "utf8" });
    if (load.status !== 0) throw new Error(`docker load: ${load.stderr}`);
  }

  docker(args: string[], opts: { input?: string; config?: string } = {}): Result {
    return runSync(DOCKER_CLI_DEBIAN, [...(opts.config ? ["--config", opts.config] : []), "-H", this.host, ...args], { input: opts.input, env: { DOCKER_CONFIG: opts.config ?? join(this.root, "config") } });
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null) {
      p.kill("SIGTERM");
      const deadline = Date.now() + 30_000;
      while (p.exitCode === null && Date.now() < deadline) await sleep(50);
      if (p.exitCode === null) { try { process.kill(-p.pid!, "SIGKILL"); } catch { /* gone */ } }
    }
    // Its containerd (a child in the same process group) goes with it; make sure.
    spawnSync("pkill", ["-9", "-f", `containerd.*${this.root}`]);
    for (const m of mountsUnder(this.root).reverse()) spawnSync("umount", ["-l", m]);
    spawnSync("ip", ["link", "del", this.bridge]);
    rmSync(this.root, { recursive: true, force: true });
  }
}
