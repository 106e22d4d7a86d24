/**
 * Exec instances (`docker exec`): create, inspect, start, resize, and the
 * records' bookkeeping. An exec is kept in memory only (as dockerd's exec
 * store); its process runs in the container's namespaces with the container's
 * spec as its base (env merged over, user and working dir replaced).
 */
import { promises as fsp } from "node:fs";
import { join } from "node:path";
import { BadParameterError, ConflictError, NotFoundError, errorMessage } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import { ensureDir } from "../lib/fsutil.js";
import type { RuntimeSpec, SpecProcess } from "../oci/spec.js";
import type { AttachStreams, ExecHandle, RuntimeDriver } from "../runtime/driver.js";
import { buildSpec } from "../runtime/spec.js";
import { resolveUser } from "../runtime/user.js";
import { mergeEnv } from "./launch-spec.js";
import type { ContainerRecord, ExecRecord } from "./types.js";

export interface ExecCreateBody {
  AttachStdin?: boolean; AttachStdout?: boolean; AttachStderr?: boolean; Tty?: boolean; Env?: string[]; Cmd?: string[];
  WorkingDir?: string; User?: string; Privileged?: boolean; DetachKeys?: string; ConsoleSize?: [number, number] | null;
}

export interface ExecStarted { attach: AttachStreams | null; exitCode: Promise<number>; tty: boolean }

/** What execs need of the container service. */
export interface ExecDeps {
  runtime: RuntimeDriver;
  /** The daemon's exec root (each exec's conmon files go under e/<id>). */
  execRoot: string;
  get(ref: string): ContainerRecord;
  /** The container's runtime bundle (its config.json is the exec's base) and its rootfs. */
  bundle(id: string): string;
  rootfs(id: string): string;
  /** A container event with the container's attributes and `extra`. */
  publish(c: ContainerRecord, action: string, extra: Record<string, string>): void;
}

interface ExecState { rec: ExecRecord; handle?: ExecHandle; consoleSize?: [number, number] }

export class ExecService {
  private execs = new Map<string, ExecState>();

  constructor(private readonly deps: ExecDeps) {}

  private dir(id: string): string { return join(this.deps.execRoot, "e", id.slice(0, 16)); }

  create(ref: string, body: ExecCreateBody): { Id: string } {
    const c = this.deps.get(ref);
    if (!c.State.Running) throw new ConflictError(`container ${c.Id} is not running`);
    if (c.State.Paused) throw new ConflictError(`container ${c.Id} is paused, unpause the container before exec`);
    if (!Array.isArray(body.Cmd) || body.Cmd.length === 0) throw new BadParameterError("No exec command specified");
    const id = newId();
    const rec: ExecRecord = {
      ID: id, ContainerID: c.Id, Running: false, ExitCode: null, Pid: 0,
      OpenStdin: !!body.AttachStdin, OpenStdout: body.AttachStdout ?? true, OpenStderr: body.AttachStderr ?? true,
      CanRemove: false, DetachKeys: body.DetachKeys ?? "",
      ProcessConfig: { tty: !!body.Tty, entrypoint: body.Cmd[0], arguments: body.Cmd.slice(1), privileged: !!body.Privileged, user: body.User ?? "" },
      Env: body.Env ?? [], WorkingDir: body.WorkingDir ?? "",
    };
    this.execs.set(id, { rec, consoleSize: body.ConsoleSize ?? undefined });
    c.ExecIDs = [...(c.ExecIDs ?? []), id];
    // dockerd's words: the entrypoint, a space, the arguments (so "exec_create: true " for a bare command).
    this.deps.publish(c, `exec_create: ${body.Cmd[0]} ${body.Cmd.slice(1).join(" ")}`, { execID: id });
    return { Id: id };
  }

  inspect(id: string): ExecRecord & { Pid: number } {
    const e = this.execs.get(id);
    if (!e) throw new NotFoundError(`No such exec instance: ${id}`);
    return e.rec;
  }

  /** Starts an exec; returns its attach streams (null when detached) and a promise of its exit code. */
  async start(id: string, opts: { detach: boolean; tty?: boolean }): Promise<ExecStarted> {
    const e = this.execs.get(id);
    if (!e) throw new NotFoundError(`No such exec instance: ${id}`);
    if (e.rec.Running || e.rec.ExitCode !== null) throw new ConflictError(`Exec command ${id} has already run`);
    const c = this.deps.get(e.rec.ContainerID);
    if (!c.State.Running) throw new ConflictError(`container ${c.Id} is not running`);
    const tty = opts.tty ?? e.rec.ProcessConfig.tty;
    const base = JSON.parse(await fsp.readFile(join(this.deps.bundle(c.Id), "config.json"), "utf8")) as RuntimeSpec;
    const rootfs = this.deps.rootfs(c.Id);
    const user = e.rec.ProcessConfig.user ? await resolveUser(rootfs, e.rec.ProcessConfig.user) : undefined;
    const proc: SpecProcess = {
      ...base.process,
      terminal: tty,
      args: [e.rec.ProcessConfig.entrypoint, ...e.rec.ProcessConfig.arguments],
      env: mergeEnv(base.process.env, e.rec.Env),
      cwd: e.rec.WorkingDir || base.process.cwd,
      user: user ? { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } : base.process.user,
    };
    if (e.rec.ProcessConfig.privileged) {
      const all = buildSpec({ id: c.Id, rootfs, args: ["true"], env: [], cwd: "/", user: { uid: 0, gid: 0 }, hostname: "", tty: false, privileged: true, cgroupsPath: "" }).process.capabilities;
      proc.capabilities = all;
    }
    delete proc.consoleSize;
    if (tty && e.consoleSize && e.consoleSize[0] > 0) proc.consoleSize = { height: e.consoleSize[0], width: e.consoleSize[1] };
    const dir = this.dir(id);
    await ensureDir(dir);
    e.rec.Running = true;
    let handle: ExecHandle;
    try {
      handle = await this.deps.runtime.exec({ id: c.Id, execId: id, process: proc, terminal: tty, stdin: e.rec.OpenStdin && !opts.detach, detach: opts.detach, paths: { dir } });
    } catch (err) {
      const msg = errorMessage(err);
      e.rec.Running = false;
      // As Docker: a process that could not be started is exit code 126, and the start a 400 (the
      // runtime's words, with containerd's ": unknown" as dockerd passes them on).
      e.rec.ExitCode = 126;
      await fsp.rm(dir, { recursive: true, force: true });
      if (/^OCI runtime exec failed/.test(msg)) throw new BadParameterError(/: unknown$/.test(msg) ? msg : `${msg}: unknown`);
      throw err;
    }
    e.handle = handle;
    e.rec.Pid = handle.pid;
    this.deps.publish(c, `exec_start: ${e.rec.ProcessConfig.entrypoint} ${e.rec.ProcessConfig.arguments.join(" ")}`, { execID: id });
    const exitCode = handle.exitCode.then(async (code) => {
      e.rec.Running = false;
      e.rec.ExitCode = code;
      e.rec.Pid = 0;
      await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
      this.deps.publish(c, "exec_die", { execID: id, exitCode: String(code) });
      return code;
    });
    return { attach: handle.attach, exitCode, tty };
  }

  async resize(id: string, h: number, w: number): Promise<void> {
    const e = this.execs.get(id);
    if (!e) throw new NotFoundError(`No such exec instance: ${id}`);
    if (!e.rec.Running) return;
    await this.deps.runtime.resizeExec(this.dir(id), h, w);
  }

  /** Forgets one exec, and takes it out of its container's ExecIDs (health probes leave no trace). */
  discard(c: ContainerRecord, id: string): void {
    this.execs.delete(id);
    c.ExecIDs = (c.ExecIDs ?? []).filter((x) => x !== id);
    if (!c.ExecIDs.length) c.ExecIDs = null;
  }

  /** Forgets every exec of a removed container. */
  forgetContainer(containerId: string): void {
    for (const [k, e] of this.execs) if (e.rec.ContainerID === containerId) this.execs.delete(k);
  }
}
