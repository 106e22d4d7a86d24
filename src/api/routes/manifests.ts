/**
 * berth's own routes for local manifest lists (`berth manifest ...`; the Docker API has none): each takes
 * its names in the query (a list name is a reference, with slashes and colons).
 */
import { route, Reply, bool, registryAuth, progressStream, HANDLED } from "../router.js";
import { BadParameterError } from "../../lib/errors.js";

const need = (v: string | null, what: string): string => { if (!v) throw new BadParameterError(`${what} is required`); return v; };

route("POST", "/berth/manifests/create", async (e, c) => {
  const rec = await e.manifests.create(need(c.query.get("name"), "name"), c.query.getAll("image").filter(Boolean), { amend: bool(c.query, "amend"), creds: registryAuth(c.req) });
  return new Reply(201, { Id: rec.id });
});
route("POST", "/berth/manifests/annotate", async (e, c) => {
  const q = c.query;
  const rec = await e.manifests.annotate(need(q.get("name"), "name"), need(q.get("image"), "image"), {
    os: q.get("os") || undefined, arch: q.get("arch") || undefined, variant: q.get("variant") || undefined, osFeatures: q.getAll("osfeatures").filter(Boolean),
  });
  return { Id: rec.id };
});
route("GET", "/berth/manifests/inspect", (e, c) => e.manifests.inspect(need(c.query.get("name"), "name"), registryAuth(c.req)));
route("POST", "/berth/manifests/push", async (e, c) => {
  const name = need(c.query.get("name"), "name");
  const p = progressStream(c, { eager: true });
  try {
    const digest = await e.manifests.push(name, c.query.get("dest") || undefined, { purge: bool(c.query, "purge"), creds: registryAuth(c.req), onProgress: p.send, signal: p.signal });
    p.send({ status: "pushed", id: digest });
  } catch (err) {
    p.fail(err);
  }
  p.end();
  return HANDLED;
});
route("DELETE", "/berth/manifests", async (e, c) => {
  for (const n of c.query.getAll("name")) await e.manifests.remove(n);
  return new Reply(204);
});
