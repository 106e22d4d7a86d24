/**
 * Git repositories as build sources, as BuildKit and the docker CLI read them: `ADD <git url>#ref:subdir
 * <dest>` (builder/git.ts), a git build context (`berth build <git url>#ref:dir`, cloned by the client as
 * the docker CLI does; the API's `remote=`, cloned by the daemon). The repository is cloned with Debian's
 * git at that ref (a branch, a tag or a commit), submodules too; what is used is the subdirectory (the
 * whole tree when none), without the .git directory unless `keepGitDir` asks for it.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BadParameterError, SystemError } from "./errors.js";
import { lstatInRoot } from "./securejoin.js";
import { run } from "./proc.js";

/** A clone or a look-up stopped by its signal (Docker's words for a cancelled build). */
export class GitCancelledError extends SystemError {
  constructor() { super("context canceled"); }
}

export interface GitRef {
  /** The repository's URL, fragment removed. */
  remote: string;
  /** Branch, tag or commit; "" for the remote's HEAD. */
  ref: string;
  /** A directory inside the repository; "" for its root. */
  subdir: string;
}

/**
 * A source that is a git repository (BuildKit's gitutil.ParseGitRef): `git://`, `ssh://` and `git@host:`
 * URLs, `github.com/...`, and http(s) URLs whose path ends in `.git`; undefined for anything else.
 */
export function parseGitRef(src: string): GitRef | undefined {
  if (src.startsWith("./") || src.startsWith("../")) return undefined;
  const hash = src.indexOf("#");
  let remote = hash < 0 ? src : src.slice(0, hash);
  const fragment = hash < 0 ? "" : src.slice(hash + 1);
  if (remote.startsWith("github.com/")) remote = `https://${remote}`;
  else if (/^git@[^:/]+:/.test(remote)) { /* scp-like ssh */ }
  else {
    const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(remote);
    if (!m) return undefined;
    const scheme = m[1].toLowerCase();
    if (scheme === "http" || scheme === "https") {
      let path: string;
      try { path = new URL(remote).pathname; } catch { return undefined; }
      if (!path.endsWith(".git")) return undefined;
    } else if (scheme !== "git" && scheme !== "ssh") return undefined;
  }
  const colon = fragment.indexOf(":");
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? "" : fragment.slice(colon + 1);
  return { remote, ref, subdir };
}

/** git, never prompting, reading neither the machine's nor root's configuration. */
async function git(args: string[], cwd: string, home: string, signal?: AbortSignal): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await run("git", ["-c", "advice.detachedHead=false", "-c", "init.defaultBranch=main", ...args], {
    cwd, signal,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, GIT_TERMINAL_PROMPT: "0", GIT_CONFIG_NOSYSTEM: "1",
      GIT_ASKPASS: "/bin/true", SSH_ASKPASS: "/bin/true", GIT_SSH_COMMAND: "ssh -o BatchMode=yes",
    },
  }).catch((e: unknown) => {
    if (signal?.aborted) throw new GitCancelledError();
    throw e;
  });
  if (signal?.aborted) throw new GitCancelledError();
  return r;
}

/**
 * Clones `g` into `dir` (which must not exist) and returns the path of its subdirectory, resolved inside
 * the checkout (a symlink there never leads out). BuildKit's words when the fetch or the ref fails.
 */
export async function cloneGit(g: GitRef, dir: string, opts: { keepGitDir?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const home = `${dir}.home`;
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const fail = (stderr: string): never => {
    const msg = stderr.trim().split("\n").filter(Boolean).pop() ?? "git failed";
    throw new BadParameterError(`failed to load cache key: failed to fetch remote ${g.remote}: ${msg}`);
  };
  try {
    // A branch or a tag: a shallow clone of just that. A commit (or a server that cannot clone shallow): all of it, then the commit.
    let r = await git(["clone", "--quiet", "--depth=1", "--recurse-submodules", "--shallow-submodules", ...(g.ref ? ["--branch", g.ref] : []), "--", g.remote, dir], home, home, opts.signal);
    if (r.code !== 0) {
      rmSync(dir, { recursive: true, force: true });
      r = await git(["clone", "--quiet", "--no-checkout", "--", g.remote, dir], home, home, opts.signal);
      if (r.code !== 0) fail(r.stderr);
      r = await git(["checkout", "--quiet", g.ref || "HEAD", "--"], dir, home, opts.signal);
      if (r.code !== 0) fail(r.stderr.includes("did not match") || r.stderr.includes("invalid reference") ? `fatal: couldn't find remote ref ${g.ref}` : r.stderr);
      r = await git(["submodule", "update", "--quiet", "--init", "--recursive"], dir, home, opts.signal);
      if (r.code !== 0) fail(r.stderr);
    }
    if (!opts.keepGitDir) rmSync(join(dir, ".git"), { recursive: true, force: true });
    if (!g.subdir) return dir;
    const sub = lstatInRoot(dir, g.subdir);
    if (!sub.stat?.isDirectory()) throw new BadParameterError(`failed to load cache key: subdir ${JSON.stringify(g.subdir)} not found in ${g.remote}`);
    return sub.path;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * The commit a ref names on the remote (`git ls-remote`, nothing fetched), as BuildKit keys a git source
 * by it: a branch, a tag (peeled to its commit), a full ref name, HEAD for none; a full commit hash is
 * itself. Undefined when the remote does not list it (an abbreviated hash, say): the caller clones to know.
 */
export async function resolveGitCommit(g: GitRef, signal?: AbortSignal): Promise<string | undefined> {
  if (/^[0-9a-f]{40}$/i.test(g.ref)) return g.ref.toLowerCase();
  const home = mkdtempSync(join(tmpdir(), "berth-git-"));
  try {
    const r = await git(["ls-remote", "--", g.remote], home, home, signal);
    if (r.code !== 0) return undefined;
    const refs = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
      const [sha, name] = line.split("\t");
      if (sha && name) refs.set(name, sha);
    }
    const want = g.ref || "HEAD";
    for (const name of [want, `refs/heads/${want}`, `refs/tags/${want}^{}`, `refs/tags/${want}`]) {
      const sha = refs.get(name);
      if (sha) return sha;
    }
    return undefined;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
