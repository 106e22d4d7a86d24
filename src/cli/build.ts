/** `berth build`: sends the context (less what .dockerignore excludes) as a tar and prints the builder's stream. */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve, relative, sep } from "node:path";
import { ExitError, type Command } from "./command.js";
import { UsageError, filtersQuery } from "../lib/args.js";
import { ramInBytes } from "../lib/units.js";
import { contextTar, defaultDockerfileName, fileIn, type OutsideDockerfile } from "../lib/build-context.js";
import type { BuildCachePruneResponse } from "../api/types.js";
import { readLine } from "../lib/stdio.js";
import { humanSize } from "../lib/format.js";
import { finishBuild, importLocalCache, parseCacheSpec, parseOutput, progressMode, tagsImage, uploadContexts } from "./build-output.js";

function kv(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const x of list) {
    const i = x.indexOf("=");
    // --build-arg NAME alone takes the value from the environment, as Docker.
    if (i < 0) { if (process.env[x] !== undefined) out[x] = process.env[x]!; } else out[x.slice(0, i)] = x.slice(i + 1);
  }
  return out;
}

export const buildCommand: Command = {
  name: "build", usage: "build [OPTIONS] PATH", desc: "Build an image from a Dockerfile",
  flags: [
    { long: "tag", short: "t", type: "list", desc: "Name and optionally a tag in the \"name:tag\" format" },
    { long: "file", short: "f", type: "string", desc: "Name of the Dockerfile (Default is \"PATH/Dockerfile\")" },
    { long: "build-arg", type: "list", desc: "Set build-time variables" },
    { long: "label", type: "list", desc: "Set metadata for an image" },
    { long: "no-cache", type: "bool", desc: "Do not use cache when building the image" },
    { long: "pull", type: "bool", desc: "Always attempt to pull a newer version of the image" },
    { long: "quiet", short: "q", type: "bool", desc: "Suppress the build output and print image ID on success" },
    { long: "target", type: "string", desc: "Set the target build stage to build" },
    { long: "platform", type: "string", desc: "Set target platform for build (several, comma-separated, make a multi-platform image)" },
    { long: "secret", type: "list", desc: "Secret to expose to the build (format: \"id=mysecret[,src=/local/secret]\")" },
    { long: "progress", type: "string", desc: "Set type of progress output (\"auto\", \"plain\", \"tty\", \"quiet\")" },
    { long: "output", short: "o", type: "list", desc: "Output destination (format: \"type=local,dest=path\")" },
    { long: "iidfile", type: "string", desc: "Write the image ID to the file" },
    { long: "metadata-file", type: "string", desc: "Write build result metadata to the file" },
    { long: "annotation", type: "list", desc: "Add annotation to the image" },
    { long: "cache-from", type: "list", desc: "External cache sources (e.g., \"user/app:cache\", \"type=local,src=path/to/dir\")" },
    { long: "build-context", type: "list", desc: "Additional build contexts (e.g., name=path or name=docker-image://ref)" },
    { long: "cache-to", type: "list", desc: "Cache export destinations (e.g., \"type=inline\", \"type=local,dest=path/to/dir\")" },
    { long: "ssh", type: "list", desc: "SSH agent socket or keys to expose to the build (format: \"default|<id>[=<socket>|<key>[,<key>]]\")" },
    { long: "allow", type: "list", desc: "Allow extra privileged entitlement (e.g., \"network.host\", \"security.insecure\")" },
    { long: "network", type: "string", desc: "Set the networking mode for the RUN instructions during build (default \"default\")" },
  ],
  run: async (c, f, a) => {
    if (a.length !== 1) throw new UsageError(`"build" requires exactly 1 argument.`);
    // A git repository (as the docker CLI tells one: git://, git@, github.com/, a URL ending in .git): cloned here, as the docker CLI does.
    const gitContext = /^(git:\/\/|git@|github\.com\/)|^(https?|ssh):\/\/[^#]*\.git(#.*)?$/.test(a[0]);
    if (a[0] === "-" || (!gitContext && /^(https?|git):\/\//.test(a[0]))) throw new UsageError("berth build takes a local directory or a git repository as its context");
    const extraHeaders = { ...(await sshHeader((f.ssh as string[] | undefined) ?? [])), ...allowHeader((f.allow as string[] | undefined) ?? []) };
    const dir = gitContext ? await gitCheckout(a[0]) : resolve(a[0]);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ExitError(`unable to prepare context: path "${a[0]}" not found`, 1);
    // As the docker CLI: -f is relative to the current directory; a Dockerfile outside the context (or "-",
    // stdin) is sent inside the context tar under a random name. With no -f: Dockerfile, or Containerfile
    // when the context has no Dockerfile (as Podman).
    let source: string | OutsideDockerfile = defaultDockerfileName(fileIn(dir));
    if (f.file === "-") source = { content: readFileSync(0) };
    else if (f.file) {
      const p = resolve(gitContext ? dir : ".", String(f.file));
      const rel = relative(dir, p);
      if (!existsSync(p)) throw new ExitError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${p}: no such file or directory`, 1);
      source = rel === ".." || rel.startsWith("../") || isAbsolute(rel) ? { content: readFileSync(p) } : rel.split(sep).join("/");
    }
    if (typeof source === "string" && !existsSync(join(dir, source))) throw new ExitError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${join(dir, source)}: no such file or directory`, 1);
    const secrets = parseSecrets((f.secret as string[] | undefined) ?? []);
    const mode = progressMode(f.progress as string | undefined, !!f.quiet);
    const outputs = ((f.output as string[] | undefined) ?? []).map(parseOutput);
    if (outputs.length > 1) throw new UsageError("multiple outputs currently unsupported");
    const tags = (f.tag as string[] | undefined) ?? [];
    const cacheFrom = ((f["cache-from"] as string[] | undefined) ?? []).map((x) => parseCacheSpec(x, "cache-from"));
    const cacheTo = ((f["cache-to"] as string[] | undefined) ?? []).map((x) => parseCacheSpec(x, "cache-to"));
    const cacheToDirs = cacheTo.filter((x) => x.type === "local").map((x) => x.dir!);
    const body = contextTar(dir, source);
    const dockerfile = body.dockerfileName;
    // Settle the API version first: a streamed context cannot be sent twice.
    await c.api.json("GET", "/version");
    for (const x of cacheFrom) if (x.type === "local") await importLocalCache(c, x.dir!);
    const contexts = await uploadContexts(c, (f["build-context"] as string[] | undefined) ?? []);
    const res = await c.api.stream("POST", "/build", {
      query: {
        t: tagsImage(outputs) ? tags : [], dockerfile, buildargs: JSON.stringify(kv(f["build-arg"] as string[])), labels: JSON.stringify(kv(f.label as string[])),
        nocache: f["no-cache"] ? "1" : undefined, pull: f.pull ? "1" : undefined, q: mode === "quiet" ? "1" : undefined, target: (f.target as string) || undefined, platform: (f.platform as string) || undefined,
        networkmode: (f.network as string) || undefined,
        berthprogress: mode === "plain" || mode === "tty" ? "1" : undefined, berthresult: outputs.length || f["metadata-file"] || cacheToDirs.length ? "1" : undefined,
        cachefrom: cacheFrom.some((x) => x.type === "image") ? JSON.stringify(cacheFrom.filter((x) => x.type === "image").map((x) => x.ref)) : undefined,
        berthcacheto: cacheTo.some((x) => x.type === "inline") ? "inline" : undefined, berthcontexts: contexts ? JSON.stringify(contexts) : undefined,
      },
      raw: body, headers: { "Content-Type": "application/x-tar", ...(secrets ? { "X-Berth-Build-Secrets": secrets } : {}), ...extraHeaders },
    });
    return finishBuild(c, res, {
      mode, outputs, tags, annotations: (f.annotation as string[] | undefined) ?? [],
      iidfile: (f.iidfile as string) || undefined, metadataFile: (f["metadata-file"] as string) || undefined, cacheTo: cacheToDirs,
    });
  },
};

/**
 * A git build context (`URL#ref:dir`), as the docker CLI takes one: cloned with git into a temporary
 * directory (gone when berth exits), whose directory is then sent as any context is (its .dockerignore
 * applied). -f is relative to it. The daemon's own `remote=` is for API clients.
 */
async function gitCheckout(url: string): Promise<string> {
  const { parseGitRef, cloneGit } = await import("../lib/git.js");
  const g = parseGitRef(url);
  if (!g) throw new UsageError(`unable to prepare context: ${url} is not a git repository URL`);
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const tmp = mkdtempSync(join(tmpdir(), "berth-build-git-"));
  process.once("exit", () => rmSync(tmp, { recursive: true, force: true }));
  try { return await cloneGit(g, join(tmp, "repo")); } catch (e) {
    throw new ExitError(`unable to prepare context: unable to 'git clone' to temporary context directory: ${(e as Error).message}`, 1);
  }
}

/**
 * `--ssh default|ID[=SOCKET|KEY[,KEY...]]`, as buildx reads it: an agent socket per id (`$SSH_AUTH_SOCK`
 * when no path is given), or private key files, which berth loads into an ssh-agent of its own for the
 * build (gone when berth exits; a key with a passphrase is refused, as buildx refuses it). The daemon is
 * on this machine and reaches the sockets by path: they go, absolute, in the X-Berth-Build-Ssh header
 * (base64 of a JSON object id → path).
 */
export async function sshHeader(specs: readonly string[]): Promise<Record<string, string>> {
  if (!specs.length) return {};
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf("=");
    const id = (eq < 0 ? spec : spec.slice(0, eq)).trim() || "default";
    const paths = (eq < 0 ? [] : spec.slice(eq + 1).split(",").filter(Boolean)).map((p) => resolve(p));
    if (!paths.length) {
      const sock = process.env.SSH_AUTH_SOCK ?? "";
      if (!sock) throw new ExitError("invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set", 1);
      paths.push(resolve(sock));
    }
    const kinds = paths.map((p) => {
      try { return statSync(p).isSocket() ? "socket" : "file"; } catch (e) { throw new ExitError(`failed to parse ssh agent ${id}: ${(e as Error).message}`, 1); }
    });
    if (kinds[0] === "socket" && paths.length === 1) { out[id] = paths[0]; continue; }
    if (kinds.includes("socket")) throw new UsageError(`invalid argument "${spec}" for "--ssh" flag: give one agent socket or key files`);
    out[id] = await keyAgent(id, paths);
  }
  return { "X-Berth-Build-Ssh": Buffer.from(JSON.stringify(out)).toString("base64") };
}

/** An ssh-agent of this berth's own holding these keys, for the build; its socket's path. */
async function keyAgent(id: string, keys: string[]): Promise<string> {
  const { spawn, spawnSync } = await import("node:child_process");
  const { mkdtempSync, rmSync, existsSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "berth-ssh-"));
  const sock = join(dir, "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
  agent.unref();
  const stop = () => { agent.kill("SIGTERM"); rmSync(dir, { recursive: true, force: true }); };
  process.once("exit", stop);
  const failed = new Promise<never>((_, rej) => agent.once("error", (e) => rej(new ExitError(`failed to start ssh-agent for ${id}: ${e.message}`, 1))));
  failed.catch(() => {});
  const deadline = Date.now() + 10_000;
  while (!existsSync(sock)) {
    if (agent.exitCode !== null || Date.now() > deadline) { stop(); throw new ExitError(`failed to start ssh-agent for ${id}`, 1); }
    await Promise.race([new Promise((r) => setTimeout(r, 20)), failed]);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, SSH_AUTH_SOCK: sock, SSH_ASKPASS_REQUIRE: "never" };
  delete env.DISPLAY;
  for (const key of keys) {
    const r = spawnSync("ssh-add", ["-q", key], { env, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", timeout: 10_000 });
    if (r.status !== 0) { stop(); throw new ExitError(`failed to parse ${key}: ${(r.stderr || r.error?.message || "ssh-add failed").trim()}`, 1); }
  }
  return sock;
}

/** `--allow network.host|security.insecure`: the entitlements, in the X-Berth-Build-Allow header. */
export function allowHeader(list: readonly string[]): Record<string, string> {
  const all = list.flatMap((x) => x.split(",")).map((x) => x.trim()).filter(Boolean);
  for (const e of all) if (e !== "network.host" && e !== "security.insecure") throw new UsageError(`invalid entitlement: ${e}`);
  return all.length ? { "X-Berth-Build-Allow": all.join(",") } : {};
}

/**
 * `--secret id=ID[,src=PATH|,env=VAR][,type=file|env]`, as buildx reads it: the value from a file (src or
 * source), or from an environment variable (env, or type=env with src naming it); with neither, the
 * variable named as the id when it is set, else the file named so. The values go in the request's
 * X-Berth-Build-Secrets header (base64 of a JSON object of base64 values), never in its URL.
 */
export function parseSecrets(specs: readonly string[]): string | undefined {
  if (!specs.length) return undefined;
  const out: Record<string, string> = {};
  for (const spec of specs) {
    let id = "", src = "", env = "", type = "";
    for (const field of spec.split(",")) {
      const i = field.indexOf("=");
      const k = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase(), v = i < 0 ? "" : field.slice(i + 1);
      if (k === "id") id = v;
      else if (k === "src" || k === "source") src = v;
      else if (k === "env") env = v;
      else if (k === "type") {
        if (v !== "file" && v !== "env") throw new UsageError(`invalid argument "${spec}" for "--secret" flag: unsupported secret type ${JSON.stringify(v)}`);
        type = v;
      } else throw new UsageError(`invalid argument "${spec}" for "--secret" flag: unexpected key '${k}' in '${field}'`);
    }
    if (type === "env" && !env) { env = src || id; src = ""; }
    if (!id) id = src ? src.split("/").pop()! : env;
    if (!id) throw new UsageError(`invalid argument "${spec}" for "--secret" flag: secret id required`);
    let value: Buffer;
    if (env || (!src && type !== "file" && process.env[id] !== undefined)) {
      const name = env || id;
      if (process.env[name] === undefined) throw new ExitError(`secret ${id}: environment variable ${name} is not set`, 1);
      value = Buffer.from(process.env[name]!);
    } else {
      const path = src || id;
      try { value = readFileSync(path); } catch (e) { throw new ExitError(`failed to read secret ${id} from ${path}: ${(e as Error).message}`, 1); }
    }
    out[id] = value.toString("base64");
  }
  return Buffer.from(JSON.stringify(out)).toString("base64");
}

/** `berth builder prune` (POST /build/prune), with the docker CLI's flags, prompt and output. */
export const builderPruneCommand: Command = {
  name: "builder prune", usage: "builder prune [OPTIONS]", desc: "Remove build cache",
  flags: [
    { long: "all", short: "a", type: "bool", desc: "Remove all unused build cache, not just dangling ones" },
    { long: "force", short: "f", type: "bool", desc: "Do not prompt for confirmation" },
    { long: "filter", type: "list", desc: "Provide filter values (e.g. \"until=24h\")" },
    { long: "keep-storage", type: "string", desc: "Amount of disk space to keep for cache" },
  ],
  run: async (c, f, a) => {
    if (a.length) throw new UsageError(`"builder prune" accepts no arguments.`);
    let keep: number | undefined;
    if (f["keep-storage"]) {
      keep = ramInBytes(String(f["keep-storage"]));
      if (keep === undefined) throw new UsageError(`invalid argument "${f["keep-storage"]}" for "--keep-storage" flag: invalid size: '${f["keep-storage"]}'`);
    }
    if (!f.force) {
      c.out(`WARNING! This will remove all ${f.all ? "" : "dangling "}build cache. Are you sure you want to continue? [y/N] `);
      if (!/^y(es)?$/i.test((await readLine()).trim())) return 0;
    }
    const r = await c.api.json<BuildCachePruneResponse>("POST", "/build/prune", {
      query: { all: f.all ? "1" : undefined, filters: filtersQuery(f.filter as string[]), "keep-storage": keep ? String(keep) : undefined },
    });
    if (r.CachesDeleted?.length) c.out(`Deleted build cache objects:\n${r.CachesDeleted.join("\n")}\n\n`);
    c.out(`Total reclaimed space: ${humanSize(r.SpaceReclaimed ?? 0, 4)}\n`);
    return 0;
  },
};
