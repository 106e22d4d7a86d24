/**
 * RUN --mount, as BuildKit: type=cache is a directory kept between builds (by id, default the target),
 * type=bind a read-only view of the context (or of a path in it), type=tmpfs a fresh tmpfs, type=secret
 * a build secret as a read-only file (mode 0400 unless told, /run/secrets/<id> unless told) and/or an
 * environment variable of the command, type=ssh the client's agent through a socket of the step's own
 * (made when the step runs, ssh.ts; a required one the client did not forward fails the step now).
 */
import { createHash } from "node:crypto";
import { chownSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { BadParameterError } from "../../lib/errors.js";
import { lstatInRoot } from "../../lib/securejoin.js";
import type { RunMount } from "../dockerfile.js";
import { destPlan } from "../sources.js";
import type { BuildBackend, BuildOptions, RunMountSpec } from "../types.js";
import type { State } from "./context.js";

/** The mount a RUN --mount gives the container (undefined: none, as for an absent optional secret); secrets as env go to secretEnv. */
export function runMount(opts: BuildOptions, m: RunMount, st: State, secretEnv: string[]): RunMountSpec | undefined {
  const target = m.target ? posix.resolve(st.config.WorkingDir || "/", m.target) : undefined;
  switch (m.type) {
    case "cache": return cacheMount(opts, m, target);
    case "bind": {
      if (!target) throw new BadParameterError("RUN --mount=type=bind needs a target");
      if (m.from) throw new BadParameterError("RUN --mount=type=bind,from=... is not supported by berth's builder yet");
      // The source is resolved inside the context, its symlinks followed as if the context were "/".
      const src = lstatInRoot(opts.contextDir, m.source ?? "");
      if (!src.stat) throw new BadParameterError(`failed to compute cache key: "/${posix.normalize("/" + (m.source ?? "")).slice(1)}": not found`);
      return { type: "bind", source: src.path, target, readOnly: true };
    }
    case "tmpfs":
      if (!target) throw new BadParameterError("RUN --mount=type=tmpfs needs a target");
      return { type: "tmpfs", target, readOnly: false, size: m.size };
    case "secret": return secretMount(opts, m, target, secretEnv);
    case "ssh":
      // The socket is made when the step runs (ssh.ts sshMount); a required agent the client did not forward fails now.
      if (m.source) throw new BadParameterError("ssh does not support source");
      if (m.required && !opts.ssh?.has(m.id || "default")) throw new BadParameterError(`no SSH key ${JSON.stringify(m.id || "default")} forwarded from the client`);
      return undefined;
    default:
      if (m.required) throw new BadParameterError(`RUN --mount=type=${m.type} is not supported by berth's builder yet`);
      return undefined;
  }
}

function cacheMount(opts: BuildOptions, m: RunMount, target: string | undefined): RunMountSpec {
  if (!target) throw new BadParameterError("RUN --mount=type=cache needs a target");
  const dir = join(opts.cacheMountDir, createHash("sha256").update(m.id || target).digest("hex").slice(0, 24));
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: m.mode ?? 0o755 });
    if (m.uid !== undefined || m.gid !== undefined) chownSync(dir, m.uid ?? 0, m.gid ?? 0);
  }
  // When it was last used (`system df`, `builder prune --filter until=`): a stamp beside it, never in it.
  writeFileSync(`${dir}.used`, `${Date.now()}\n`);
  return { type: "bind", source: dir, target, readOnly: m.readOnly };
}

function secretMount(opts: BuildOptions, m: RunMount, target: string | undefined, secretEnv: string[]): RunMountSpec | undefined {
  // As BuildKit: the id defaults to the target's base name; with env= and no target, no file.
  const id = m.id || (m.target ? posix.basename(m.target) : "") || m.source || "";
  const value = opts.secrets?.get(id);
  if (value === undefined) {
    if (m.required) throw new BadParameterError(`secret ${id} not found: not found`);
    return undefined;
  }
  if (m.env) secretEnv.push(`${m.env}=${value.toString("utf8")}`);
  if (m.env && !m.target) return undefined;
  const dir = join(opts.tmpDir, "secrets");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, createHash("sha256").update(`${id}\0${Math.random()}`).digest("hex").slice(0, 16));
  writeFileSync(file, value, { mode: m.mode ?? 0o400 });
  chownSync(file, m.uid ?? 0, m.gid ?? 0);
  return { type: "bind", source: file, target: target ?? `/run/secrets/${id}`, readOnly: true, stub: true };
}

/** For each stub mount: the directories on the way to its mountpoint that the parent image lacks (the step removes them when left empty). */
export async function stubDirs(backend: BuildBackend, st: State, mounts: (RunMountSpec | undefined)[]): Promise<void> {
  const stubs = mounts.filter((m): m is RunMountSpec => !!m?.stub);
  if (!stubs.length) return;
  await backend.withRootfs(st.image, async (rootfs) => {
    for (const m of stubs) m.stubDirs = destPlan(rootfs, posix.dirname(m.target)).missing.reverse();
  });
}
