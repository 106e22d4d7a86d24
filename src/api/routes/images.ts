/** Images: list, pull, push, login, save/load, inspect, history, tag, remove, commit. */
import type http from "node:http";
import { join } from "node:path";
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import { AuthSchema, CommitConfigSchema } from "../types.js";
import { route, Reply, HANDLED, bool, filters, jsonBody, streamHeaders } from "../router.js";

route("GET", "/images/json", (e, c) => e.images.list({ all: bool(c.query, "all"), filters: filters(c.query), digests: bool(c.query, "digests") }));
route("POST", "/images/create", async (e, c) => {
  const q = c.query;
  const src = q.get("fromSrc");
  if (src === "-") {
    const res = c.res!;
    const rec = await e.images.importTar(c.req, { repo: q.get("repo") ?? undefined, tag: q.get("tag") ?? undefined, message: q.get("message") ?? undefined, changes: q.getAll("changes") });
    streamHeaders(res, "application/json");
    res.end(JSON.stringify({ status: rec.id }) + "\n");
    return HANDLED;
  }
  if (src) throw new BadParameterError("importing from a URL is not supported yet; download the file and use `import FILE`");
  const image = q.get("fromImage") ?? "";
  const tag = q.get("tag");
  const ref = tag && !image.includes("@") && !/:[^/]+$/.test(image) ? `${image}:${tag}` : image;
  // Errors before any progress are plain API errors; once streaming, they travel as {"error": ...} messages, as Docker's.
  const res = c.res!;
  // The client going away (its connection closed before the answer ended) cancels the pull, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  let started = false;
  const send = (m: object) => {
    if (res.destroyed || gone.signal.aborted) return;
    if (!started) { streamHeaders(res, "application/json"); started = true; }
    res.write(JSON.stringify(m) + "\n");
  };
  try {
    await e.images.pull(ref, { platform: q.get("platform") || undefined, creds: registryAuth(c.req), onProgress: send, signal: gone.signal });
  } catch (err) {
    if (gone.signal.aborted) { res.destroy(); return HANDLED; }
    if (!started) throw err;
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});
/** Docker's X-Registry-Auth: base64url JSON {username, password, serveraddress}. */
function registryAuth(req: http.IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers["x-registry-auth"];
  if (typeof h !== "string" || !h) return undefined;
  try {
    const v = JSON.parse(Buffer.from(h.replace(/-/g, "+").replace(/_/g, "/"), "base64").toString()) as { username?: string; password?: string };
    return v.username ? { username: v.username, password: v.password ?? "" } : undefined;
  } catch { return undefined; }
}

route("POST", "/images/{name*}/push", async (e, c) => {
  const tag = c.query.get("tag");
  const ref = tag ? `${c.params[0]}:${tag}` : c.params[0];
  e.images.resolve(ref);
  const res = c.res!;
  streamHeaders(res, "application/json");
  // The client going away (its connection closed before the answer ended) cancels the push, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  const send = (m: object) => { if (!res.destroyed && !gone.signal.aborted) res.write(JSON.stringify(m) + "\n"); };
  try {
    await e.images.push(ref, { creds: registryAuth(c.req), onProgress: send, signal: gone.signal });
  } catch (err) {
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});
route("POST", "/auth", async (e, c) => {
  const b = await jsonBody(c.req, AuthSchema);
  await e.images.login(b.serveraddress ?? "docker.io", { username: b.username ?? "", password: b.password ?? "" });
  return { Status: "Login Succeeded", IdentityToken: "" };
});
route("POST", "/berth/system/check", (e, c) => e.images.check({ repair: bool(c.query, "repair") }));
route("POST", "/berth/images/bootstrap", async (e, c) => {
  const name = c.query.get("name") || "busybox";
  const rec = await e.images.bootstrap(name);
  return { status: `Bootstrapped ${name}`, id: rec.id };
});
route("GET", "/images/get", (e, c) => {
  const out = e.images.save(c.query.getAll("names"));
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  out.on("error", () => res.destroy());
  return HANDLED;
});
route("POST", "/images/load", async (e, c) => {
  const loaded = await e.images.load(c.req, join(e.opts.dataRoot, "tmp"));
  const res = c.res!;
  streamHeaders(res, "application/json");
  for (const l of loaded) res.write(JSON.stringify({ stream: l + "\n" }) + "\n");
  res.end();
  return HANDLED;
});
route("GET", "/containers/{id}/export", async (e, c) => {
  const out = await e.containers.export(c.params[0]);
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  return HANDLED;
});
route("POST", "/images/prune", (e, c) => e.images.prune(filters(c.query)));
route("GET", "/images/{name*}/json", (e, c) => e.images.inspect(c.params[0]));
route("GET", "/images/{name*}/get", (e, c) => {
  const out = e.images.save([c.params[0]]);
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  return HANDLED;
});
route("GET", "/images/{name*}/history", (e, c) => e.images.history(c.params[0]));
route("POST", "/images/{name*}/tag", async (e, c) => {
  const repo = c.query.get("repo");
  if (!repo) throw new BadParameterError("repository name must have at least one component");
  await e.images.tag(c.params[0], repo, c.query.get("tag") ?? undefined);
  return new Reply(201, "");
});
route("DELETE", "/images/{name*}", (e, c) => e.images.remove(c.params[0], { force: bool(c.query, "force"), noprune: bool(c.query, "noprune") }));

route("POST", "/commit", async (e, c) => {
  const q = c.query;
  const container = q.get("container");
  if (!container) throw new BadParameterError("no container specified");
  const body = await jsonBody(c.req, CommitConfigSchema, { optional: true });
  return new Reply(201, await e.commits.commit(container, {
    repo: q.get("repo") || undefined, tag: q.get("tag") || undefined, comment: q.get("comment") || undefined, author: q.get("author") || undefined,
    pause: bool(q, "pause", true), changes: q.getAll("changes").filter(Boolean), config: body,
  }));
});
route("GET", "/containers/{id}/changes", (e, c) => e.commits.diff(c.params[0]));
