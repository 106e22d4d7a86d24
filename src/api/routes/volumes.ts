/** Volumes. */
import { VolumeCreateSchema } from "../types.js";
import { route, Reply, filters, jsonBody, bool } from "../router.js";

route("GET", "/volumes", (e, c) => e.volumes.list(filters(c.query)));
route("POST", "/volumes/create", async (e, c) => new Reply(201, await e.volumes.create(await jsonBody(c.req, VolumeCreateSchema, { optional: true, allowEmpty: false, empty: "got EOF while reading request body" }))));
route("POST", "/volumes/prune", (e, c) => e.volumes.prune(filters(c.query)));
route("GET", "/volumes/{name}", (e, c) => e.volumes.inspect(c.params[0]));
route("DELETE", "/volumes/{name}", async (e, c) => { await e.volumes.remove(c.params[0], bool(c.query, "force")); return new Reply(204); });
