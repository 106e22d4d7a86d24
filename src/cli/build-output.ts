/**
 * `berth build`'s output side, as buildx has it: `--progress` (plain, tty, quiet, auto), `--output`/`-o`
 * (type=local|tar|oci|docker|image), `--iidfile`, `--metadata-file`. The daemon streams BuildKit-shaped
 * progress events (lib/build-progress.ts) when asked (`berthprogress=1`); the exports are fetched once the
 * image is built (GET /berth/build/export) and written here, on the client's side, as BuildKit's session does.
 */
import { createWriteStream, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../lib/args.js";
import { ExitError, type Ctx } from "./command.js";
import { jsonLines, type Response } from "../api/client.js";
import { PlainProgress, TtyProgress, type ProgressEvent } from "../lib/build-progress.js";

export type ProgressMode = "plain" | "tty" | "quiet" | "classic";

/**
 * The progress mode: --progress, else BUILDKIT_PROGRESS; auto is tty on a terminal (stderr), plain elsewhere.
 * With neither, a terminal gets the live view and a pipe the classic builder's lines (what scripts of the
 * classic `docker build` read).
 */
export function progressMode(flag: string | undefined, quiet: boolean, isTTY = !!process.stderr.isTTY): ProgressMode {
  if (quiet) return "quiet";
  const v = flag || process.env.BUILDKIT_PROGRESS || "";
  switch (v) {
    case "": return isTTY ? "tty" : "classic";
    case "auto": return isTTY ? "tty" : "plain";
    case "plain": case "tty": case "quiet": return v;
    default: throw new UsageError(`invalid progress mode: ${v} (auto, plain, tty or quiet)`);
  }
}

export interface OutputSpec { type: "local" | "tar" | "oci" | "docker" | "image"; dest?: string; name?: string[] }

/** `-o` as buildx reads it: `type=...,dest=...[,name=...]`, a bare path (type=local), or `-` (type=tar to stdout). */
export function parseOutput(spec: string): OutputSpec {
  if (spec === "-") return { type: "tar", dest: "-" };
  if (!spec.includes("=")) return { type: "local", dest: spec };
  const attrs: Record<string, string> = {};
  for (const f of spec.split(",")) {
    const i = f.indexOf("=");
    if (i < 0) throw new UsageError(`invalid value ${f} for --output`);
    attrs[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1);
  }
  const type = attrs.type;
  if (!type) { if (attrs.dest) return { type: "local", dest: attrs.dest }; throw new UsageError(`invalid output ${spec}: type required`); }
  if (!["local", "tar", "oci", "docker", "image"].includes(type)) throw new UsageError(`output type ${type} is not supported by berth build (local, tar, oci, docker, image)`);
  const out: OutputSpec = { type: type as OutputSpec["type"], dest: attrs.dest, name: attrs.name ? attrs.name.split(/[,\s]+/).filter(Boolean) : undefined };
  if ((out.type === "local" || out.type === "oci") && !out.dest) throw new UsageError(`dest is required for ${out.type} exporter`);
  if (out.type === "tar" && !out.dest) throw new UsageError("dest file is required for tar exporter");
  return out;
}

/** Whether the build tags its image in the daemon's store: no --output, or one that loads it (type=image, type=docker without dest). */
export function tagsImage(outputs: OutputSpec[]): boolean {
  return !outputs.length || outputs.some((o) => o.type === "image" || (o.type === "docker" && !o.dest));
}

export interface StreamOptions {
  mode: ProgressMode;
  outputs: OutputSpec[];
  tags: string[];
  annotations: string[];
  iidfile?: string;
  metadataFile?: string;
  /** `--cache-to type=local,dest=DIR`: where the cache of this build goes. */
  cacheTo?: string[];
}

/** A --cache-from / --cache-to value: `type=local,src=|dest=DIR`, `type=inline`, `type=registry,ref=IMAGE`, or an image. */
export interface CacheSpec { type: "local" | "inline" | "image"; dir?: string; ref?: string }

export function parseCacheSpec(spec: string, flag: "cache-from" | "cache-to"): CacheSpec {
  if (!spec.includes("=")) return { type: "image", ref: spec };
  const a: Record<string, string> = {};
  for (const f of spec.split(",")) { const i = f.indexOf("="); if (i > 0) a[f.slice(0, i).trim().toLowerCase()] = f.slice(i + 1); }
  switch (a.type) {
    case "local": {
      const dir = flag === "cache-from" ? a.src : a.dest;
      if (!dir) throw new UsageError(`invalid --${flag} ${spec}: ${flag === "cache-from" ? "src" : "dest"} is required for a local cache`);
      return { type: "local", dir };
    }
    case "inline": return { type: "inline" };
    case "registry": if (a.ref) return { type: "image", ref: a.ref }; break;
    case undefined: if (a.ref) return { type: "image", ref: a.ref }; break;
  }
  throw new UsageError(`invalid --${flag} ${spec}: type=local, type=inline or type=registry,ref=IMAGE`);
}

/** `--cache-from type=local,src=DIR`: the layout sent to the daemon, with the records its index.json names (a missing DIR: no cache, as BuildKit). */
export async function importLocalCache(c: Ctx, dir: string): Promise<number> {
  let index: { manifests?: { annotations?: Record<string, string> }[] };
  try { index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8")) as typeof index; } catch { return 0; }
  const records: { k: string; id: string }[] = [], parents: [string, string][] = [];
  for (const m of index.manifests ?? []) {
    const a = m.annotations ?? {};
    const id = a["berth.cache.image"];
    if (!id) continue;
    for (const k of (a["berth.cache.keys"] ?? "").split(",").filter(Boolean)) records.push({ k, id });
    if (a["berth.cache.parent"]) parents.push([id, a["berth.cache.parent"]]);
  }
  if (!records.length) return 0;
  const { spawn } = await import("node:child_process");
  const p = spawn("tar", ["-C", dir, "-c", "oci-layout", "index.json", "blobs"], { stdio: ["ignore", "pipe", "ignore"] });
  const r = await c.api.json<{ Imported: number }>("POST", "/berth/build/cache/import", {
    raw: p.stdout, headers: { "Content-Type": "application/x-tar", "X-Berth-Cache-Index": Buffer.from(JSON.stringify({ records, parents })).toString("base64") },
  });
  return r.Imported;
}

/** `--cache-to type=local,dest=DIR`: the images of the build's records written into DIR as an OCI layout (index.json replaced, blobs kept). */
async function exportLocalCache(c: Ctx, dir: string, records: { k: string; id: string }[]): Promise<void> {
  const res = await c.api.stream("POST", "/berth/build/cache/export", { body: { Records: records } });
  mkdirSync(dir, { recursive: true });
  rmSync(join(dir, "index.json"), { force: true });
  const { spawn } = await import("node:child_process");
  const p = spawn("tar", ["-x", "-f", "-", "-C", dir, "--no-same-owner"], { stdio: ["pipe", "ignore", "pipe"] });
  let err = "";
  p.stderr.on("data", (d) => { err += d; });
  const exited = new Promise<number>((r) => p.on("close", (code) => r(code ?? 1)));
  const { pipeline } = await import("node:stream/promises");
  await pipeline(res, p.stdin);
  if ((await exited) !== 0) throw new ExitError(`failed to write the cache to ${dir}: ${err.trim()}`, 1);
}

/** Reads the build's stream (rendered as the mode says), then writes the outputs, iidfile and metadata. */
export async function finishBuild(c: Ctx, res: Response, o: StreamOptions): Promise<number> {
  let failed = false;
  let id = "", manifest = "";
  let cache: { k: string; id: string }[] = [];
  let descriptor: { mediaType: string; digest: string; size: number } | undefined;
  const r = o.mode === "plain" ? new PlainProgress((s) => c.err(s)) : o.mode === "tty" ? new TtyProgress((s) => c.err(s)) : undefined;
  // Ctrl-C: the connection goes with the process, and the daemon cancels the build (kills its RUN, removes its containers).
  const toStdout = o.outputs.some((x) => x.dest === "-");
  const onInt = () => { r?.end(); process.exit(130); };
  process.once("SIGINT", onInt);
  try {
    for await (const m of jsonLines(res) as AsyncIterable<{ id?: string; stream?: string; error?: string; aux?: unknown }>) {
      if (m.error) { r?.failed(); c.err(`${m.error}\n`); failed = true; }
      else if (m.id === "berth.progress" && m.aux) r?.event(m.aux as ProgressEvent);
      else if (m.id === "berth.result" && m.aux) { const a = m.aux as { ID: string; ManifestDigest?: string; Manifest?: typeof descriptor; Cache?: { k: string; id: string }[] }; id = a.ID; manifest = a.ManifestDigest ?? ""; descriptor = a.Manifest; cache = a.Cache ?? []; }
      else if (m.aux && typeof (m.aux as { ID?: unknown }).ID === "string") id = (m.aux as { ID: string }).ID;
      else if (m.stream) {
        // A daemon that sends the classic builder's lines only (dockerd): shown as they come, on stderr with a progress mode.
        // With the output on stdout (-o -), only the output goes there.
        if ((o.mode === "quiet" || o.mode === "classic") && !toStdout) c.out(m.stream); else c.err(m.stream);
      }
    }
  } finally {
    process.removeListener("SIGINT", onInt);
  }
  if (failed) return 1;
  r?.end();
  if (!id) throw new ExitError("the build stream ended without an image ID", 1);
  for (const out of o.outputs) await writeOutput(c, out, id, o);
  for (const dir of o.cacheTo ?? []) await exportLocalCache(c, dir, cache);
  if (o.iidfile) writeFileSync(o.iidfile, id);
  if (o.metadataFile) {
    const names = o.outputs.flatMap((x) => x.name ?? []);
    const all = [...(tagsImage(o.outputs) ? o.tags : []), ...names];
    // BuildKit's keys (buildx --metadata-file), in its order.
    const meta: Record<string, unknown> = { "containerimage.config.digest": id };
    if (descriptor?.digest) meta["containerimage.descriptor"] = { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size };
    if (manifest) meta["containerimage.digest"] = manifest;
    if (all.length) meta["image.name"] = all.map(fullTagged).join(",");
    writeFileSync(o.metadataFile, JSON.stringify(meta, null, 2));
  }
  return 0;
}

/** docker.io/library/x:latest for x (the name as BuildKit's exporters record it). */
function fullTagged(ref: string): string {
  const at = ref.indexOf("@");
  const base = at < 0 ? ref : ref.slice(0, at);
  const slash = base.indexOf("/");
  const first = slash < 0 ? "" : base.slice(0, slash);
  let full = slash >= 0 && (first.includes(".") || first.includes(":") || first === "localhost") ? base : `docker.io/${slash < 0 ? "library/" : ""}${base}`;
  if (!/:[^/]+$/.test(full)) full += ":latest";
  return full + (at < 0 ? "" : ref.slice(at));
}

async function writeOutput(c: Ctx, out: OutputSpec, id: string, o: StreamOptions): Promise<void> {
  if (out.type === "image" || (out.type === "docker" && !out.dest)) return; // tagged by the daemon
  const names = out.name ?? o.tags;
  const res = await c.api.stream("GET", "/berth/build/export", {
    query: { image: id, kind: out.type === "local" || out.type === "tar" ? "rootfs" : "image", name: names, annotation: o.annotations },
  });
  if (out.type === "local") {
    mkdirSync(out.dest!, { recursive: true });
    const { spawn } = await import("node:child_process");
    // Unpacked as the caller (no owners kept unless root, as BuildKit's local exporter writes files the user owns).
    const p = spawn("tar", ["-x", "-f", "-", "-C", out.dest!, "--no-same-owner", "--delay-directory-restore"], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => { err += d; });
    const exited = new Promise<number>((r) => p.on("close", (code) => r(code ?? 1)));
    const { pipeline } = await import("node:stream/promises");
    await pipeline(res, p.stdin);
    if ((await exited) !== 0) throw new ExitError(`failed to write output to ${out.dest}: ${err.trim()}`, 1);
    return;
  }
  if (out.dest === "-") {
    if (process.stdout.isTTY) throw new ExitError("dest file is required for tar exporter. refusing to write to console", 1);
    for await (const chunk of res) if (!process.stdout.write(chunk as Buffer)) await new Promise((r) => process.stdout.once("drain", r));
    return;
  }
  const { pipeline } = await import("node:stream/promises");
  await pipeline(res, createWriteStream(out.dest!));
}

/**
 * `--build-context name=VALUE` as buildx: `docker-image://ref` (an image for FROM name / COPY --from=name),
 * or a local directory (sent to the daemon as a tar, once, before the build). Other sources (URLs, git,
 * oci-layout://) are refused by name.
 */
export async function uploadContexts(c: Ctx, specs: readonly string[]): Promise<Record<string, string> | undefined> {
  if (!specs.length) return undefined;
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const i = spec.indexOf("=");
    if (i <= 0 || i === spec.length - 1) throw new UsageError(`invalid context value: ${spec}, expected key=value`);
    const name = spec.slice(0, i), v = spec.slice(i + 1);
    if (v.startsWith("docker-image://")) { out[name] = v; continue; }
    if (/^[a-z][a-z0-9+.-]*:\/\//.test(v) || v.startsWith("git@")) throw new UsageError(`build context ${name}=${v}: berth build takes docker-image://<ref> or a local directory`);
    const { statSync } = await import("node:fs");
    let isDir = false;
    try { isDir = statSync(v).isDirectory(); } catch { /* below */ }
    if (!isDir) throw new ExitError(`unable to prepare context: path "${v}" not found`, 1);
    const { spawn } = await import("node:child_process");
    const p = spawn("tar", ["-C", v, "-c", "."], { stdio: ["ignore", "pipe", "ignore"] });
    const r = await c.api.json<{ ID: string }>("POST", "/berth/build/context", { raw: p.stdout, headers: { "Content-Type": "application/x-tar" } });
    out[name] = r.ID;
  }
  return out;
}
