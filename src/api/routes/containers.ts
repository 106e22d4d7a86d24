/** Containers: create, inspect, lifecycle, stats, logs, attach, archive (cp), changes, export. */
import { join } from "node:path";
import type { AttachStreams } from "../../runtime/driver.js";
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import { parseSignal } from "../../lib/signals.js";
import type { CreateBody, WaitCondition } from "../../engine/containers.js";
import { frame } from "../stdcopy.js";
import { ContainerCreateSchema, ContainerUpdateSchema, VOLUME_NAME_RE } from "../types.js";
import { headArchive, getArchive, putArchive } from "../archive-routes.js";
import { route, Reply, HANDLED, bool, num, filters, timeParam, jsonBody, streamHeaders, hijack, relay, readBody, upgradeBody, RAW, MUX, UPGRADE_BODY_LIMIT } from "../router.js";

/** Docker's container names. */
const CONTAINER_NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const BIND_MODES = new Set(["ro", "rw", "z", "Z", "nocopy", "shared", "rshared", "slave", "rslave", "private", "rprivate", "consistent", "cached", "delegated"]);

/**
 * The shape of every mount, checked before anything is made: the engine
 * creates named volumes as it resolves mounts, so a bad mount found late
 * would leave the volumes of the good ones behind a rejected request.
 */
function checkMounts(hc: { Binds?: string[]; Mounts?: { Type?: string; Source?: string; Target?: string }[]; Tmpfs?: Record<string, string> }): void {
  const seen = new Set<string>();
  const dest = (p: string | undefined): void => {
    if (!p || !p.startsWith("/")) throw new BadParameterError(`invalid mount config: mount path must be absolute: ${p ?? ""}`);
    const d = join("/", p).replace(/\/$/, "") || "/";
    if (seen.has(d)) throw new BadParameterError(`Duplicate mount point: ${d}`);
    seen.add(d);
  };
  for (const b of hc.Binds ?? []) {
    const parts = b.split(":");
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new BadParameterError(`invalid volume specification: '${b}'`);
    dest(parts[1]);
    for (const f of (parts[2] ?? "").split(",").filter(Boolean)) if (!BIND_MODES.has(f)) throw new BadParameterError(`invalid mode: ${f}`);
    if (!parts[0].startsWith("/") && !VOLUME_NAME_RE.test(parts[0])) throw new BadParameterError(`invalid volume specification: '${b}'`);
  }
  for (const m of hc.Mounts ?? []) {
    if (!m.Target) throw new BadParameterError(`invalid mount config for type "${m.Type ?? ""}": field Target must not be empty`);
    if (m.Type !== undefined && m.Type !== "" && !["bind", "volume", "tmpfs"].includes(m.Type)) throw new BadParameterError(`invalid mount config for type "${m.Type}": mount type unknown`);
    if (m.Type === "bind" && (!m.Source || !m.Source.startsWith("/"))) throw new BadParameterError(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ""}' mount path must be absolute`);
    if ((m.Type === "volume" || !m.Type) && m.Source && !VOLUME_NAME_RE.test(m.Source)) throw new BadParameterError(`invalid mount config for type "volume": invalid volume name: '${m.Source}'`);
    dest(m.Target);
  }
  for (const p of Object.keys(hc.Tmpfs ?? {})) dest(p);
}

route("GET", "/containers/json", (e, c) => e.containers.list({
  all: bool(c.query, "all"), limit: num(c.query, "limit"), filters: filters(c.query), imageName: (id) => e.images.displayName(id),
}));
route("POST", "/containers/create", async (e, c) => {
  const name = c.query.get("name") ?? undefined;
  if (name && !CONTAINER_NAME_RE.test(name)) throw new BadParameterError(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  const body = await jsonBody(c.req, ContainerCreateSchema, { empty: "Config cannot be empty in order to create a container" });
  checkMounts(body.HostConfig ?? {});
  return new Reply(201, await e.createContainer(body as CreateBody, name, c.query.get("platform") || undefined));
});
route("GET", "/containers/{id}/json", (e, c) => {
  const rec = e.containers.inspect(c.params[0]);
  return { ...rec, SizeRw: bool(c.query, "size") ? 0 : undefined, SizeRootFs: bool(c.query, "size") ? 0 : undefined };
});
route("POST", "/containers/{id}/update", async (e, c) => {
  const body = await jsonBody(c.req, ContainerUpdateSchema, { optional: true });
  return e.containers.update(c.params[0], body);
});
route("POST", "/containers/{id}/start", async (e, c) => { await e.containers.start(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/stop", async (e, c) => {
  const signal = c.query.get("signal") || undefined;
  if (signal) parseSignal(signal);
  await e.containers.stop(c.params[0], { timeout: num(c.query, "t"), signal });
  return new Reply(204);
});
route("POST", "/containers/{id}/kill", async (e, c) => {
  // As Docker: the signal is checked before the container is looked up.
  const signal = c.query.get("signal") || "SIGKILL";
  parseSignal(signal);
  await e.containers.kill(c.params[0], signal);
  return new Reply(204);
});
route("POST", "/containers/{id}/restart", async (e, c) => { await e.containers.restart(c.params[0], num(c.query, "t")); return new Reply(204); });
route("POST", "/containers/{id}/pause", async (e, c) => { await e.containers.pause(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/unpause", async (e, c) => { await e.containers.unpause(c.params[0]); return new Reply(204); });
route("POST", "/containers/{id}/rename", async (e, c) => { await e.containers.rename(c.params[0], c.query.get("name") ?? ""); return new Reply(204); });
route("POST", "/containers/{id}/resize", async (e, c) => { await e.containers.resize(c.params[0], num(c.query, "h") ?? 0, num(c.query, "w") ?? 0); return new Reply(200, ""); });
route("GET", "/containers/{id}/stats", async (e, c) => {
  // stream=false (docker stats --no-stream): two samples a second apart so CPU % has a delta; one-shot: one sample.
  const stream = bool(c.query, "stream", true), oneShot = bool(c.query, "one-shot");
  const res = c.res!;
  let prev = e.containers.stats(c.params[0]);
  if (!stream && oneShot) return prev;
  streamHeaders(res, "application/json");
  let closed = false;
  res.on("close", () => { closed = true; });
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    if (closed) return HANDLED;
    let cur: Record<string, unknown>;
    try { cur = e.containers.stats(c.params[0]); } catch { break; }
    cur.precpu_stats = prev.cpu_stats;
    cur.preread = prev.read;
    res.write(JSON.stringify(cur) + "\n");
    prev = cur;
    if (!stream) break;
  }
  res.end();
  return HANDLED;
});
route("GET", "/containers/{id}/top", (e, c) => e.containers.top(c.params[0], c.query.get("ps_args") || "-ef"));
route("DELETE", "/containers/{id}", async (e, c) => {
  await e.containers.remove(c.params[0], { force: bool(c.query, "force"), volumes: bool(c.query, "v") });
  return new Reply(204);
});
route("POST", "/containers/prune", (e, c) => e.containers.prune(filters(c.query)));
route("POST", "/containers/{id}/wait", async (e, c) => {
  const res = c.res!;
  const gone = new AbortController();
  res.on("close", () => gone.abort());
  const done = e.containers.wait(c.params[0], (c.query.get("condition") || "not-running") as WaitCondition, gone.signal);
  // Headers go out once the waiter is registered: the CLI starts the container only after it sees them.
  streamHeaders(res, "application/json");
  res.end(JSON.stringify(await done) + "\n");
  return HANDLED;
});
route("GET", "/containers/{id}/logs", async (e, c) => {
  const q = c.query;
  const stdout = bool(q, "stdout"), stderr = bool(q, "stderr");
  if (!stdout && !stderr) throw new BadParameterError("Bad parameters: you must choose at least one stream");
  // As Docker: a tail that is not a non-negative integer means all.
  const tailRaw = q.get("tail") ?? "";
  const tail = /^\d+$/.test(tailRaw) ? Number(tailRaw) : -1;
  const ac = new AbortController();
  const { tty, entries } = e.containers.logs(c.params[0], { follow: bool(q, "follow"), tail, since: timeParam(q, "since"), until: timeParam(q, "until"), signal: ac.signal });
  const res = c.res!;
  res.on("close", () => ac.abort());
  streamHeaders(res, tty ? RAW : MUX);
  const ts = bool(q, "timestamps");
  try {
    for await (const en of entries) {
      if (en.stream === "stdout" ? !stdout : !stderr) continue;
      const payload = ts ? Buffer.concat([Buffer.from(en.time + " "), en.data]) : en.data;
      const ok = res.write(tty ? payload : frame(en.stream === "stdout" ? 1 : 2, payload));
      if (!ok) await new Promise((r) => res.once("drain", r));
    }
  } catch (err) {
    if (!ac.signal.aborted) throw err;
  }
  res.end();
  return HANDLED;
});
route("POST", "/containers/{id}/attach", async (e, c) => {
  const ct = e.containers.get(c.params[0]);
  const q = c.query;
  const wantStdin = bool(q, "stdin");
  const stream = bool(q, "stream");
  const logs = bool(q, "logs");
  // Refused before the upgrade (dockerd's 501), never inside the hijacked stream.
  if (logs && ct.HostConfig.LogConfig?.Type === "none") e.containers.logs(ct.Id, { follow: false });
  // A request body (dockerode sends its options as JSON) is the request's, never the container's stdin.
  if (c.socket) await upgradeBody(c);
  else if (Number(c.req.headers["content-length"] ?? 0) > 0) await readBody(c.req, UPGRADE_BODY_LIMIT);
  const sock = hijack(c, ct.Config.Tty ? RAW : MUX);
  if (logs) {
    const { entries } = e.containers.logs(ct.Id, { follow: false });
    for await (const en of entries) sock.write(ct.Config.Tty ? en.data : frame(en.stream === "stdout" ? 1 : 2, en.data));
  }
  if (!stream) { sock.end(); return HANDLED; }
  let attach: AttachStreams;
  let cancelled = false;
  const onClose = () => { cancelled = true; };
  sock.once("close", onClose);
  try {
    attach = await e.containers.attach(ct.Id, { stdin: wantStdin });
  } catch (err) {
    if (!ct.Config.Tty) sock.write(frame(3, errorMessage(err) + "\n"));
    sock.end();
    return HANDLED;
  }
  sock.off("close", onClose);
  if (cancelled) { attach.close(); return HANDLED; }
  relay(sock, attach, wantStdin && ct.Config.OpenStdin, ct.Config.Tty, { stdout: bool(q, "stdout", true), stderr: bool(q, "stderr", true) });
  return HANDLED;
});

route("HEAD", "/containers/{id}/archive", async (e, c) => { await headArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });
route("GET", "/containers/{id}/archive", async (e, c) => { await getArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });
route("PUT", "/containers/{id}/archive", async (e, c) => { await putArchive(e, c.req, c.res!, c.params[0], c.query); return HANDLED; });
