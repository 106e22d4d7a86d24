/**
 * Swarm mode: berth is an engine that is not in a swarm and cannot join one
 * (its answer to orchestration is compose and Kubernetes manifests). Every
 * swarm route answers as dockerd 20.10 does when it is not in swarm mode
 * (asked route by route on this machine): the same request checks first
 * (bad JSON, version parameters, empty listen addresses), then 503
 * "This node is not a swarm manager..." (leave: "This node is not part of a
 * swarm"). init and join, which would make dockerd a swarm node, say that
 * berth does not do swarm mode.
 */
import { BerthError, BadParameterError } from "../../lib/errors.js";
import { parseJson } from "../validate.js";
import { route, readBody, type Ctx } from "../router.js";

export const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';
class NotManagerError extends BerthError { constructor() { super(NOT_MANAGER, 503); } }

const notManager = (): never => { throw new NotManagerError(); };

/** A JSON body as dockerd's decoder reads it: empty → "got EOF while reading request body" where asked, bad JSON → 400. */
async function body(c: Ctx, required = false): Promise<Record<string, unknown>> {
  const text = (await readBody(c.req)).toString("utf8");
  if (text.trim() === "") {
    if (required) throw new BadParameterError("got EOF while reading request body");
    return {};
  }
  const v = parseJson(text);
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** `?version=` of an update: Go's strconv.ParseUint, with each resource's wording. */
function version(c: Ctx, kind: string, plain = false): void {
  const v = c.query.get("version") ?? "";
  if (/^\d+$/.test(v)) return;
  if (plain) throw new BadParameterError(`invalid ${kind} version`);
  throw new BadParameterError(`invalid ${kind} version '${v}': strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
}

function listenAddr(b: Record<string, unknown>): void {
  const a = typeof b.ListenAddr === "string" ? b.ListenAddr : "";
  if (a === "") throw new BadParameterError('invalid ListenAddr "": invalid empty address');
}

const NO_SWARM = "berth does not implement swarm mode: run multi-container applications with `berth compose`, and clusters with Kubernetes (`berth kube`)";

route("GET", "/swarm", notManager);
route("POST", "/swarm/init", async (_e, c) => { listenAddr(await body(c, true)); throw new BerthError(NO_SWARM, 503); });
route("POST", "/swarm/join", async (_e, c) => {
  const b = await body(c, true);
  listenAddr(b);
  if (!Array.isArray(b.RemoteAddrs) || b.RemoteAddrs.length === 0) throw new BadParameterError("at least 1 RemoteAddr is required to join");
  throw new BerthError(NO_SWARM, 503);
});
route("POST", "/swarm/leave", () => { throw new BerthError("This node is not part of a swarm", 503); });
route("POST", "/swarm/update", async (_e, c) => { version(c, "swarm"); await body(c); return notManager(); });
route("GET", "/swarm/unlockkey", notManager);
route("POST", "/swarm/unlock", async (_e, c) => { await body(c); return notManager(); });

route("GET", "/nodes", notManager);
route("GET", "/nodes/{id}", notManager);
route("DELETE", "/nodes/{id}", notManager);
route("POST", "/nodes/{id}/update", async (_e, c) => { version(c, "node"); await body(c); return notManager(); });

route("GET", "/services", notManager);
route("POST", "/services/create", async (_e, c) => { await body(c); return notManager(); });
route("GET", "/services/{id}", notManager);
route("DELETE", "/services/{id}", notManager);
route("POST", "/services/{id}/update", async (_e, c) => { version(c, "service"); await body(c); return notManager(); });

/** Service and task logs check their streams first, as dockerd's. */
function logsStreams(c: Ctx): void {
  const on = (k: string) => { const v = (c.query.get(k) ?? "").trim().toLowerCase(); return !(v === "" || v === "0" || v === "no" || v === "false" || v === "none"); };
  if (!on("stdout") && !on("stderr")) throw new BadParameterError("Bad parameters: you must choose at least one stream");
}
route("GET", "/services/{id}/logs", (_e, c) => { logsStreams(c); return notManager(); });

route("GET", "/tasks", notManager);
route("GET", "/tasks/{id}", notManager);
route("GET", "/tasks/{id}/logs", (_e, c) => { logsStreams(c); return notManager(); });

for (const kind of ["secret", "config"]) {
  route("GET", `/${kind}s`, notManager);
  route("POST", `/${kind}s/create`, async (_e, c) => { await body(c); return notManager(); });
  route("GET", `/${kind}s/{id}`, notManager);
  route("DELETE", `/${kind}s/{id}`, notManager);
  route("POST", `/${kind}s/{id}/update`, async (_e, c) => { version(c, kind, true); await body(c); return notManager(); });
}
