/** Images: list, pull, push, login, save/load, inspect, history, tag, remove, commit. */
import { join } from "node:path";
import { BadParameterError } from "../../lib/errors.js";
import { AuthSchema, CommitConfigSchema } from "../types.js";
import { route, Reply, HANDLED, bool, filters, jsonBody, streamHeaders, registryAuth, progressStream } from "../router.js";

route("GET", "/images/json", (e, c) => e.images.list({ all: bool(c.query, "all"), filters: filters(c.query), digests: bool(c.query, "digests"), sharedSize: bool(c.query, "shared-size") }));
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
  const p = progressStream(c);
  try {
    await e.images.pull(ref, { platform: q.get("platform") || undefined, creds: registryAuth(c.req), onProgress: p.send, signal: p.signal });
  } catch (err) {
    if (!p.signal.aborted && !p.started()) { p.detach(); throw err; }
    p.fail(err);
  }
  p.end();
  return HANDLED;
});
route("POST", "/images/{name*}/push", async (e, c) => {
  const tag = c.query.get("tag");
  const ref = tag ? `${c.params[0]}:${tag}` : c.params[0];
  e.images.resolve(ref);
  const p = progressStream(c, { eager: true });
  try {
    await e.images.push(ref, { creds: registryAuth(c.req), onProgress: p.send, signal: p.signal });
  } catch (err) {
    p.fail(err);
  }
  p.end();
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
  const rec = await e.images.bootstrap(name, c.query.get("platform") || undefined);
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
route("GET", "/images/{name*}/json", async (e, c) => {
  const img = await e.images.inspect(c.params[0]);
  const out = imageInspectDefaults(img, await e.imageGraphDriverData(c.params[0]), c.version);
  return e.manifests.inspectImage(c.params[0], out); // a multi-platform image: the index and its entries
});
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

/** The keys of Docker's ContainerConfig (image Config and ContainerConfig), with their zero values. */
const CONFIG_ZERO: Record<string, unknown> = {
  Hostname: "", Domainname: "", User: "", AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false, StdinOnce: false,
  Env: null, Cmd: null, Image: "", Volumes: null, WorkingDir: "", Entrypoint: null, OnBuild: null, Labels: null,
};

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * GET /images/{name}/json as dockerd answers it (moby api/swagger.yaml
 * ImageInspect): every key the engine did not set gets Docker's default; what
 * the engine set is kept. VirtualSize exists for API < 1.44 only; Variant and
 * OsVersion are omitted when empty (omitempty).
 */
export function imageInspectDefaults(img: Record<string, unknown>, graphData: Record<string, string> | null, version: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    Id: "", RepoTags: [], RepoDigests: [], Parent: "", Comment: "", Created: "", Container: "", ContainerConfig: {}, DockerVersion: "", Author: "",
    Config: {}, Architecture: "", Os: "", Size: 0, GraphDriver: {}, RootFS: {}, Metadata: {},
    ...img,
  };
  for (const k of ["Config", "ContainerConfig"]) out[k] = { ...CONFIG_ZERO, ...(isObj(out[k]) ? out[k] : {}) };
  for (const k of ["RepoTags", "RepoDigests"]) if (!Array.isArray(out[k])) out[k] = [];
  const gd = isObj(out.GraphDriver) ? out.GraphDriver : {};
  out.GraphDriver = { Data: isObj(gd.Data) ? gd.Data : graphData, Name: typeof gd.Name === "string" && gd.Name ? gd.Name : "overlay2" };
  const rootfs = isObj(out.RootFS) ? out.RootFS : {};
  out.RootFS = { Type: "layers", Layers: [], ...rootfs };
  const meta = isObj(out.Metadata) ? out.Metadata : {};
  out.Metadata = { LastTagTime: "0001-01-01T00:00:00Z", ...meta };
  for (const k of ["Variant", "OsVersion"]) if (out[k] === undefined || out[k] === "" || out[k] === null) delete out[k];
  const [maj, min] = version.split(".").map(Number);
  if (maj === 1 && min < 44) out.VirtualSize = typeof out.VirtualSize === "number" ? out.VirtualSize : out.Size;
  else delete out.VirtualSize;
  return out;
}
