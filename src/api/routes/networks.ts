/** Networks. */
import { BadParameterError } from "../../lib/errors.js";
import { NetworkConnectSchema, NetworkCreateSchema, NetworkDisconnectSchema } from "../types.js";
import { route, Reply, filters, jsonBody } from "../router.js";

route("GET", "/networks", (e, c) => e.networks.list(filters(c.query)));
route("POST", "/networks/create", async (e, c) => new Reply(201, await e.networks.create(await jsonBody(c.req, NetworkCreateSchema, { optional: true }))));
route("POST", "/networks/prune", (e, c) => e.networks.prune(filters(c.query)));
route("GET", "/networks/{id}", (e, c) => e.networks.inspect(c.params[0]));
route("DELETE", "/networks/{id}", async (e, c) => { await e.networks.remove(c.params[0]); return new Reply(204); });
route("POST", "/networks/{id}/connect", async (e, c) => {
  const body = await jsonBody(c.req, NetworkConnectSchema, { optional: true });
  if (!body.Container) throw new BadParameterError(`invalid name or ID supplied: ""`);
  await e.connectNetwork(c.params[0], body.Container, body.EndpointConfig ?? {});
  return new Reply(200, "");
});
route("POST", "/networks/{id}/disconnect", async (e, c) => {
  const body = await jsonBody(c.req, NetworkDisconnectSchema, { optional: true });
  if (!body.Container) throw new BadParameterError(`invalid name or ID supplied: ""`);
  await e.disconnectNetwork(c.params[0], body.Container, !!body.Force);
  return new Reply(200, "");
});
