/** The classic builder: POST /build. */
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import { route, HANDLED, bool, streamHeaders } from "../router.js";

route("POST", "/build", async (e, c) => {
  const q = c.query;
  const json = <T>(k: string): T | undefined => {
    const v = q.get(k);
    if (!v) return undefined;
    try { return JSON.parse(v) as T; } catch { throw new BadParameterError(`invalid ${k}: ${v}`); }
  };
  const res = c.res!;
  streamHeaders(res, "application/json");
  // The client going away (its connection closed before the answer ended) cancels the build, as with Docker.
  const gone = new AbortController();
  const onClose = () => { if (!res.writableFinished) gone.abort(); };
  res.once("close", onClose);
  c.req.once("aborted", onClose);
  const send = (m: object) => { if (!res.destroyed && !gone.signal.aborted) res.write(JSON.stringify(m) + "\n"); };
  try {
    await e.builds.build(c.req, {
      tags: q.getAll("t").filter(Boolean), dockerfile: q.get("dockerfile") || undefined, target: q.get("target") || undefined,
      buildArgs: Object.fromEntries(Object.entries(json<Record<string, string | null>>("buildargs") ?? {}).filter(([, v]) => v !== null)) as Record<string, string>,
      labels: json<Record<string, string>>("labels"), noCache: bool(q, "nocache"), pull: bool(q, "pull"), quiet: bool(q, "q"),
    }, send, gone.signal);
  } catch (err) {
    send({ errorDetail: { message: errorMessage(err) }, error: errorMessage(err) });
  } finally {
    res.off("close", onClose);
    c.req.off("aborted", onClose);
  }
  if (!res.destroyed) res.end();
  return HANDLED;
});
