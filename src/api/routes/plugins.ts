/**
 * Plugins: berth is an engine with no plugins and no way to install one
 * (its volume, network and log drivers are built in). The routes answer as
 * dockerd 20.10 with no plugins installed does (asked on this machine):
 * GET /plugins is [], a named plugin is 404 `plugin "x" not found`, the
 * privileges of a valid reference are [], and installing (pull, create,
 * upgrade of an existing one) says that berth does not support plugins.
 */
import { BadParameterError, BerthError, NotFoundError } from "../../lib/errors.js";
import { parseReference } from "../../oci/reference.js";
import { atoi } from "../validate.js";
import { route, filters, readBody } from "../router.js";
import { checkFilters } from "../../engine/filters.js";

const notFound = (name: string): never => { throw new NotFoundError(`plugin ${JSON.stringify(name)} not found`); };
const NO_PLUGINS = "berth does not support engine plugins: its volume (local), network (bridge, host, null) and log (json-file, local, none) drivers are built in";

function reference(s: string | null): void {
  try { parseReference(s ?? ""); } catch { throw new BadParameterError("invalid reference format"); }
}

route("GET", "/plugins", (_e, c) => { checkFilters(filters(c.query), ["capability", "enable"]); return []; });
route("GET", "/plugins/privileges", (_e, c) => { reference(c.query.get("remote")); return []; });
route("POST", "/plugins/pull", async (_e, c) => { await readBody(c.req); reference(c.query.get("remote")); throw new BerthError(NO_PLUGINS, 501); });
route("POST", "/plugins/create", async (_e, c) => { await readBody(c.req); reference(c.query.get("name")); throw new BerthError(NO_PLUGINS, 501); });
route("GET", "/plugins/{name*}/json", (_e, c) => notFound(c.params[0]));
route("DELETE", "/plugins/{name*}", (_e, c) => notFound(c.params[0]));
route("POST", "/plugins/{name*}/enable", (_e, c) => { const t = c.query.get("timeout"); atoi(t ?? ""); return notFound(c.params[0]); });
route("POST", "/plugins/{name*}/disable", (_e, c) => notFound(c.params[0]));
route("POST", "/plugins/{name*}/push", (_e, c) => notFound(c.params[0]));
route("POST", "/plugins/{name*}/set", (_e, c) => notFound(c.params[0]));
route("POST", "/plugins/{name*}/upgrade", (_e, c) => {
  const n = c.params[0];
  return notFound(/:[^/]+$/.test(n) || n.includes("@") ? n : `${n}:latest`);
});
