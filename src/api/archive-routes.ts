/**
 * Docker's archive API (what `docker cp` speaks), as handlers that write
 * their response themselves:
 *
 *   HEAD /containers/{id}/archive?path=   200 + X-Docker-Container-Path-Stat (base64 JSON)
 *   GET  /containers/{id}/archive?path=   200 application/x-tar + the same header
 *   PUT  /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=   200, empty body
 *
 * Errors are thrown before anything is written, so the server maps them
 * (404 "Could not find the file ... in container ...", 400, 500) as for any route.
 */
import type http from "node:http";
import type { Engine } from "../engine/engine.js";
import { ArchiveService, type PathStat } from "../engine/archive.js";
import { ENGINE_VERSION } from "../engine/engine.js";

const services = new WeakMap<Engine, ArchiveService>();
function archives(e: Engine): ArchiveService {
  let s = services.get(e);
  if (!s) { s = new ArchiveService(e.store, e.containers, e.events, e.opts.dataRoot); services.set(e, s); }
  return s;
}

const statHeader = (st: PathStat) => Buffer.from(JSON.stringify(st)).toString("base64");
const flag = (q: URLSearchParams, k: string) => { const v = q.get(k); return v !== null && v !== "" && v !== "0" && v.toLowerCase() !== "false"; };

export async function headArchive(engine: Engine, _req: http.IncomingMessage, res: http.ServerResponse, id: string, query: URLSearchParams): Promise<void> {
  const st = await archives(engine).stat(id, query.get("path") ?? "");
  res.writeHead(200, { "X-Docker-Container-Path-Stat": statHeader(st), "Server": `berth/${ENGINE_VERSION}` });
  res.end();
}

export async function getArchive(engine: Engine, _req: http.IncomingMessage, res: http.ServerResponse, id: string, query: URLSearchParams): Promise<void> {
  const { stat, tar } = await archives(engine).archive(id, query.get("path") ?? "");
  res.writeHead(200, { "Content-Type": "application/x-tar", "X-Docker-Container-Path-Stat": statHeader(stat), "Server": `berth/${ENGINE_VERSION}` });
  const { pipeline } = await import("node:stream/promises");
  // A tar cut short (the client went away, a read failed) ends the response without its last chunk: never a torn tar that looks whole.
  await pipeline(tar, res).catch(() => { res.destroy(); });
}

export async function putArchive(engine: Engine, req: http.IncomingMessage, res: http.ServerResponse, id: string, query: URLSearchParams): Promise<void> {
  try {
    await archives(engine).extract(id, query.get("path") ?? "", req, { noOverwriteDirNonDir: flag(query, "noOverwriteDirNonDir"), copyUIDGID: flag(query, "copyUIDGID") });
  } catch (e) {
    // Answer after the client has sent its tar: a connection closed under a client still writing loses the answer (reset).
    if (!req.readableEnded) { req.resume(); await new Promise((r) => { req.once("end", r); req.once("close", r); }); }
    throw e;
  }
  res.writeHead(200, { "Server": `berth/${ENGINE_VERSION}`, "Content-Length": "0" });
  res.end();
}
