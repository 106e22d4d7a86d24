/** The classic builder: POST /build. */
import { BadParameterError, errorMessage } from "../../lib/errors.js";
import { route, Reply, HANDLED, bool, filters, progressStream, streamHeaders, readBody } from "../router.js";
import { checkFilters } from "../../engine/filters.js";
import { parseSshHeader } from "../../builder/ssh.js";

route("POST", "/build", async (e, c) => {
  const q = c.query;
  const json = <T>(k: string): T | undefined => {
    const v = q.get(k);
    if (!v) return undefined;
    try { return JSON.parse(v) as T; } catch { throw new BadParameterError(`invalid ${k}: ${v}`); }
  };
  const secrets = buildSecrets(c.req.headers["x-berth-build-secrets"]);
  // berth's client: ssh agents (id → socket path) and entitlements; `networkmode=host` grants network.host, as dockerd's.
  const ssh = parseSshHeader(c.req.headers["x-berth-build-ssh"]);
  const allowHeader = c.req.headers["x-berth-build-allow"];
  const allow = (Array.isArray(allowHeader) ? allowHeader.join(",") : allowHeader ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  if (q.get("networkmode") === "host") allow.push("network.host");
  // The client going away (its connection closed before the answer ended) cancels the build, as with Docker.
  const p = progressStream(c, { eager: true });
  try {
    await e.builds.build(c.req, {
      tags: q.getAll("t").filter(Boolean), dockerfile: q.get("dockerfile") || undefined, target: q.get("target") || undefined,
      buildArgs: Object.fromEntries(Object.entries(json<Record<string, string | null>>("buildargs") ?? {}).filter(([, v]) => v !== null)) as Record<string, string>,
      labels: json<Record<string, string>>("labels"), noCache: bool(q, "nocache"), pull: bool(q, "pull"), quiet: bool(q, "q"), secrets, ssh, allow, remote: q.get("remote") || undefined,
      network: q.get("networkmode") || undefined, platform: q.get("platform") || undefined,
      progress: bool(q, "berthprogress"), result: bool(q, "berthresult"),
      cacheFrom: (json<string[]>("cachefrom") ?? []).filter((x) => typeof x === "string" && x), inlineCache: q.get("berthcacheto") === "inline",
      contexts: json<Record<string, string>>("berthcontexts"),
    }, p.send, p.signal);
  } catch (err) {
    p.fail(err);
  }
  p.end();
  return HANDLED;
});

/**
 * Build secrets (`berth build --secret`): the classic API has no field for them (the docker CLI sends them
 * only through a BuildKit session), so berth's client sends them in a header, never in the URL, which
 * logs and traces show: `X-Berth-Build-Secrets: base64(JSON {id: base64(value)})`.
 */
function buildSecrets(header: string | string[] | undefined): Record<string, Buffer> | undefined {
  if (header === undefined) return undefined;
  const bad = () => new BadParameterError("invalid X-Berth-Build-Secrets header: base64 of a JSON object of base64 strings expected");
  let parsed: unknown;
  try { parsed = JSON.parse(Buffer.from(Array.isArray(header) ? header.join("") : header, "base64").toString("utf8")); } catch { throw bad(); }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw bad();
  const out: Record<string, Buffer> = {};
  for (const [id, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v !== "string" || !id) throw bad();
    out[id] = Buffer.from(v, "base64");
  }
  return out;
}

/** The build cache filters dockerd accepts on /build/prune (its BuildKit cache fields, and until / unused-for). */
const BUILD_PRUNE_FILTERS = ["until", "unused-for", "id", "parent", "type", "description", "inuse", "shared", "private"];

route("POST", "/build/prune", async (e, c) => {
  const q = c.query;
  let f: Record<string, string[]>;
  try {
    f = checkFilters(filters(q), BUILD_PRUNE_FILTERS);
    for (const k of ["until", "unused-for"]) {
      for (const v of f[k] ?? []) if (!/^([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$/.test(v) || v === "") throw new BadParameterError(`"${k}" filter expects a duration (e.g., '24h'): time: invalid duration ${JSON.stringify(v)}`);
    }
  } catch (err) { throw new BadParameterError(`failed to prune build cache: ${errorMessage(err)}`); }
  const ks = q.get("keep-storage");
  let keepStorage = 0;
  if (ks) {
    if (!/^[+-]?\d+$/.test(ks)) throw new BadParameterError(`keep-storage is in bytes and expects an integer, got ${ks}: strconv.Atoi: parsing ${JSON.stringify(ks)}: invalid syntax`);
    keepStorage = Number(ks);
  }
  const opts = { all: bool(q, "all"), keepStorage, filters: f };
  const r = await e.builds.prune(opts);
  return { CachesDeleted: r.CachesDeleted?.length ? r.CachesDeleted : null, SpaceReclaimed: r.SpaceReclaimed ?? 0 };
});

/**
 * berth's own: what `berth build --output` exports of the image it built (the docker CLI sends its outputs
 * through a BuildKit session, which berthd has not): `kind=rootfs` its filesystem as a tar, `kind=image` an
 * OCI layout + docker-archive (`name` and `annotation` repeated).
 */
route("GET", "/berth/build/export", async (e, c) => {
  const q = c.query;
  const id = q.get("image");
  if (!id) throw new BadParameterError("image not provided");
  const out = await e.builds.exportBuild(id, q.get("kind") ?? "image", q.getAll("name").filter(Boolean), q.getAll("annotation").filter(Boolean));
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  out.on("error", () => res.destroy());
  // The client leaving stops the export (the tar's process ends, the snapshot is unmounted).
  res.on("close", () => { if (!res.writableFinished) (out as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.(); });
  return HANDLED;
});

/** berth's own: a named build context's directory (`--build-context name=DIR`) as a tar body; answers `{"ID":"berth-context://<id>"}` for berthcontexts. */
route("POST", "/berth/build/context", async (e, c) => ({ ID: await e.builds.uploadContext(c.req) }));

/** berth's own: `--cache-to type=local` (the images of these records as an OCI layout tar; body `{"Records":[{k,id}]}`). */
route("POST", "/berth/build/cache/export", async (e, c) => {
  let body: { Records?: { k?: unknown; id?: unknown }[] } | undefined;
  try { body = JSON.parse((await readBody(c.req)).toString("utf8") || "{}") as typeof body; } catch { throw new BadParameterError("invalid JSON body: {Records: [{k, id}]} expected"); }
  const records = (Array.isArray(body?.Records) ? body.Records : []).filter((r): r is { k: string; id: string } => typeof r?.k === "string" && typeof r.id === "string");
  const out = await e.builds.exportCache(records);
  const res = c.res!;
  streamHeaders(res, "application/x-tar");
  out.pipe(res);
  out.on("error", () => res.destroy());
  return HANDLED;
});

/** berth's own: `--cache-from type=local` (the layout as a tar body; its records in X-Berth-Cache-Index, base64 JSON {records, parents}). */
route("POST", "/berth/build/cache/import", async (e, c) => {
  const h = c.req.headers["x-berth-cache-index"];
  let index: { records: { k: string; id: string }[]; parents: [string, string][] };
  try {
    const v = JSON.parse(Buffer.from(String(h ?? ""), "base64").toString("utf8")) as typeof index;
    index = { records: (v.records ?? []).filter((r) => typeof r?.k === "string" && typeof r.id === "string"), parents: (v.parents ?? []).filter((p) => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === "string")) };
  } catch { throw new BadParameterError("invalid X-Berth-Cache-Index header: base64 of a JSON object {records, parents} expected"); }
  return { Imported: await e.builds.importCache(c.req, index) };
});

/** A classic build cannot be cancelled by ID (a client that goes away cancels it); dockerd's answers. */
route("POST", "/build/cancel", (_e, c) => {
  if (!c.query.get("id")) throw new BadParameterError("build ID not provided");
  return new Reply(200, "");
});

/** BuildKit sessions: berth's builder is the classic one (`Builder-Version: 1` on /_ping), so a session upgrade has no one to talk to. */
route("POST", "/session", () => { throw new BadParameterError("no upgrade proto in request"); });
