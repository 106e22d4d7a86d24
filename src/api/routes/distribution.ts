/** Registry look-ups without a pull: GET /distribution/{name}/json and GET /images/search. */
import { route, num, filters, registryAuth } from "../router.js";

route("GET", "/distribution/{name*}/json", (e, c) => e.distributionInspect(c.params[0], registryAuth(c.req)));
route("GET", "/images/search", (e, c) => e.searchImages(c.query.get("term") ?? "", { limit: num(c.query, "limit"), filters: filters(c.query), creds: registryAuth(c.req) }));
