/**
 * `berth compose run`: a one-off container of a service, as docker compose v2
 * makes it: named `<project>-<service>-run-<12 hex>` (or --name), labelled
 * com.docker.compose.oneoff=True with a slug, the service's configuration
 * with the command (and --entrypoint, -e, -u, -w, -l) overriding it, no
 * published ports unless --service-ports (or -p), dependencies started
 * first unless --no-deps. Attached, it relays stdio and answers with the
 * container's exit code; --rm removes the container when it exits.
 */
import { randomBytes } from "node:crypto";
import { fstatSync } from "node:fs";
import { UsageError } from "../lib/args.js";
import { relayStreams, initialResize } from "../lib/stdio.js";
import type { ImageInspectResponse } from "../api/types.js";
import { ComposeError, shellSplit, parsePortShort } from "./loader.js";
import { L, configHash } from "./orchestrator.js";
import { readWait, type Sub } from "./command.js";

type Obj = Record<string, unknown>;

function hasPipedStdin(): boolean {
  try { const st = fstatSync(0); return st.isFIFO() || (st.isFile() && st.size > 0); } catch { return false; }
}

export const runSub: Sub = {
  name: "run", usage: "run [OPTIONS] SERVICE [COMMAND] [ARGS...]", desc: "Run a one-off command on a service", stop: true,
  flags: [
    { long: "detach", short: "d", type: "bool", desc: "Run container in background and print container ID" },
    { long: "rm", type: "bool", desc: "Automatically remove the container when it exits" },
    { long: "name", type: "string", desc: "Assign a name to the container" },
    { long: "entrypoint", type: "string", desc: "Override the entrypoint of the image" },
    { long: "env", short: "e", type: "list", desc: "Set environment variables" },
    { long: "label", short: "l", type: "list", desc: "Add or override a label" },
    { long: "user", short: "u", type: "string", desc: "Run as specified username or uid" },
    { long: "workdir", short: "w", type: "string", desc: "Working directory inside the container" },
    { long: "no-TTY", short: "T", type: "bool", desc: "Disable pseudo-TTY allocation (default: auto-detected)" },
    { long: "interactive", short: "i", type: "bool", default: true, desc: "Keep STDIN open even if not attached" },
    { long: "no-deps", type: "bool", desc: "Don't start linked services" },
    { long: "service-ports", type: "bool", desc: "Run command with the service's ports enabled and mapped to the host" },
    { long: "publish", short: "p", type: "list", desc: "Publish a container's port(s) to the host" },
    { long: "volume", short: "v", type: "list", desc: "Bind mount a volume" },
    { long: "build", type: "bool", desc: "Build image before starting container" },
    { long: "quiet-pull", type: "bool", desc: "Pull without printing progress information" },
    { long: "remove-orphans", type: "bool", desc: "Remove containers for services not defined in the Compose file" },
  ],
  run: async (c, o, f, a) => {
    if (!a.length) throw new UsageError(`"run" requires at least 1 argument.`);
    const [service, ...cmd] = a;
    const s = o.project.services[service];
    if (!s) throw new ComposeError(`no such service: ${service}`);
    // Dependencies first (detached), as `up` would start them.
    const deps = f["no-deps"] ? [] : o.selection([service]).filter((n) => n !== service);
    if (deps.length) await o.up({ services: deps, removeOrphans: !!f["remove-orphans"] });
    await o.ensureImages([service], { build: !!f.build });
    if (!s.network_mode) await o.ensureNetworks([service]);
    await o.ensureVolumes([service]);
    const img = await o.api.json<ImageInspectResponse>("GET", `/images/${encodeURIComponent(o.imageName(s))}/json`);
    const body = o.createBody(s, img.Id, { hash: configHash(s) });
    const slug = randomBytes(32).toString("hex");
    const name = (f.name as string | undefined) || `${o.project.name}-${service}-run-${slug.slice(0, 12)}`;
    const labels = body.Labels as Record<string, string>;
    labels[L.oneoff] = "True";
    labels[L.slug] = slug;
    for (const l of (f.label as string[] | undefined) ?? []) { const i = l.indexOf("="); labels[i < 0 ? l : l.slice(0, i)] = i < 0 ? "" : l.slice(i + 1); }
    if (cmd.length) body.Cmd = cmd;
    if (f.entrypoint !== undefined) { body.Entrypoint = shellSplit(f.entrypoint as string); if (!cmd.length) body.Cmd = null; }
    const env = body.Env as string[];
    for (const e of (f.env as string[] | undefined) ?? []) {
      const k = e.split("=")[0];
      const v = e.includes("=") ? e : process.env[k] !== undefined ? `${k}=${process.env[k]}` : undefined;
      if (v === undefined) continue;
      const i = env.findIndex((x) => x.split("=")[0] === k);
      if (i >= 0) env[i] = v; else env.push(v);
    }
    if (f.user !== undefined) body.User = f.user;
    if (f.workdir !== undefined) body.WorkingDir = f.workdir;
    const hc = body.HostConfig as Obj;
    // No published ports unless asked: a one-off must not collide with the service's own container.
    if (!f["service-ports"]) hc.PortBindings = {};
    const pb = hc.PortBindings as Record<string, { HostIp: string; HostPort: string }[]>;
    const exposed = body.ExposedPorts as Record<string, object>;
    for (const spec of (f.publish as string[] | undefined) ?? []) {
      for (const p of parsePortShort(spec, "--publish")) {
        const key = `${p.target}/${p.protocol}`;
        exposed[key] = {};
        (pb[key] ??= []).push({ HostIp: p.host_ip ?? "", HostPort: p.published ?? "" });
      }
    }
    for (const v of (f.volume as string[] | undefined) ?? []) (hc.Binds as string[]).push(v);
    const detach = !!f.detach;
    const tty = !detach && !f["no-TTY"] && (raw(s).tty !== false) && !!process.stdin.isTTY && !!process.stdout.isTTY;
    const interactive = !detach && !!f.interactive && (tty || hasPipedStdin());
    Object.assign(body, { Tty: tty, OpenStdin: interactive, StdinOnce: interactive, AttachStdin: interactive, AttachStdout: !detach, AttachStderr: !detach });
    if (f.rm) { hc.AutoRemove = true; hc.RestartPolicy = { Name: "no", MaximumRetryCount: 0 }; }
    const id = await o.createContainer(name, body);
    if (detach) {
      await o.api.request("POST", `/containers/${id}/start`);
      c.out(`${id}\n`);
      return 0;
    }
    const [sock, waitRes] = await Promise.all([
      o.api.hijack(`/containers/${id}/attach`, { query: { stream: 1, stdin: interactive ? 1 : 0, stdout: 1, stderr: 1 } }),
      o.api.stream("POST", `/containers/${id}/wait`, { query: { condition: f.rm ? "removed" : "next-exit" } }),
    ]);
    sock.pause();
    const status = readWait(waitRes);
    status.catch(() => {});
    try { await o.api.request("POST", `/containers/${id}/start`); } catch (e) {
      sock.destroy();
      if (f.rm) await o.api.request("DELETE", `/containers/${id}`, { query: { force: true } }).catch(() => {});
      throw e;
    }
    if (tty) await initialResize(o.api, `/containers/${id}/resize`);
    const sigs = (["SIGINT", "SIGTERM"] as NodeJS.Signals[]).map((sig) => [sig, () => { void o.api.request("POST", `/containers/${id}/kill`, { query: { signal: sig } }).catch(() => {}); }] as const);
    if (!tty) for (const [sig, h] of sigs) process.on(sig, h);
    try {
      await relayStreams(sock, { tty, stdin: interactive, resize: (h, w) => o.api.request("POST", `/containers/${id}/resize`, { query: { h, w } }) });
      return await status;
    } finally {
      for (const [sig, h] of sigs) process.off(sig, h);
    }
  },
};

function raw(s: object): Obj { return s as Obj; }
