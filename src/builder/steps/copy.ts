/**
 * COPY and ADD: the sources (the context, a stage's or an image's filesystem, a URL, a git repository, a
 * local archive unpacked) gathered as files, keyed by their content, and written as one layer.
 *
 * With --link, as BuildKit's linked copy: the layer is made as if on scratch (nothing of the parent's
 * filesystem is looked at: its symlinks are not followed, every directory on the way is made fresh) and
 * is kept by what it is made of (sources' content, destination, owner, mode), not by the parent. When an
 * earlier step changed, the same layer (the same blob and diff ID) goes onto the new parent: only the
 * image's config and chain are new.
 */
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readlinkSync, type Stats } from "node:fs";
import { join, posix } from "node:path";
import { BadParameterError } from "../../lib/errors.js";
import { lstatInRoot } from "../../lib/securejoin.js";
import type { TarEntry } from "../../lib/tar-writer.js";
import type { AddInstruction, CopyInstruction } from "../dockerfile.js";
import { expandHeredoc } from "../expand.js";
import { parseGitRef, cloneGit, resolveGitCommit, type GitRef } from "../git.js";
import { stepDigest } from "../graph.js";
import { destPlan, archiveKind, unpackArchive, glob, contentHash, isUrl, download, excludeMatcher, parentsPivot } from "../sources.js";
import { nopConfig } from "../types.js";
import { vars, type State, type StepContext } from "./context.js";
import { resolveOwner } from "./owner.js";

type CopyIns = CopyInstruction | AddInstruction;

/** The step's flags and words, expanded. */
interface CopySpec {
  from?: string;
  sources: string[];
  excluded?: (rel: string, isDir: boolean) => boolean;
  parents: boolean;
  checksum?: string;
  /** The destination, absolute (a relative one is under the WORKDIR). */
  dest: string;
  /** The destination is a directory whatever the image has there (it ends in "/", or several sources go in). */
  destDir: boolean;
  owner?: string;
  chmod?: number;
}

interface SourceFile { src: string; rel: string; st: Stats; keepOwner?: boolean }

/** What the sources are: the files to copy, git sources keyed by commit (cloned by `later`, on a cache miss), and whether they go into a directory. */
interface Gathered { files: SourceFile[]; gitKeys: unknown[]; later: (() => Promise<void>)[]; multi: boolean }

/** Where the layer's entries go: as destPlan (sources.ts) says for the parent's filesystem, or for scratch (--link). */
type Plan = ReturnType<typeof destPlan>;

export async function copyStep(ctx: StepContext, st: State, ins: CopyIns, ex: (s: string) => string): Promise<void> {
  const spec = copySpec(st, ins, ex);
  await copyFrom(ctx, st, spec.from, async (root) => {
    const got = await gatherSources(ctx, root, ins, spec);
    // The parent image is part of the key, so what its filesystem has at dest is too: look only on a miss.
    const key = ctx.keyOf(st, ins, [spec.dest, spec.destDir || got.multi, spec.owner, spec.chmod, contentHash(got.files), ins.contents.map((c) => [c.path, c.data]), ...(got.gitKeys.length ? [got.gitKeys] : [])]);
    if (ins.link) return linkedCopy(ctx, st, ins, spec, got, key);
    await ctx.once(st, key, async () => {
      for (const f of got.later) await f();
      // The destination as the image has it: an existing directory is copied into; missing parents are made.
      // Its symlinks are followed inside the image, as Docker does: COPY into /x where /x -> /tmp writes the image's /tmp.
      const plan = await ctx.backend.withRootfs(st.image, async (rootfs) => destPlan(rootfs, spec.dest));
      const owner = await resolveOwner(ctx.backend, st.image, spec.owner);
      const entries = copyEntries(plan, spec.destDir || plan.destIsDir || got.multi, owner, spec, got.files, heredocs(st, ins));
      await commitCopy(ctx, st, ins, entries);
    });
  });
}

/**
 * COPY --link: on a miss of the step (its parent changed), a layer made before of the same sources, dest,
 * owner and mode is put on the new parent as it is; else the layer is made on scratch and kept for that.
 */
async function linkedCopy(ctx: StepContext, st: State, ins: CopyIns, spec: CopySpec, got: Gathered, key: string): Promise<void> {
  await ctx.once(st, key, async () => {
    // A --chown name is the parent's user (BuildKit reads the parent's /etc/passwd too): the layer is keyed by the numbers.
    const owner = await resolveOwner(ctx.backend, st.image, spec.owner);
    const docs = heredocs(st, ins);
    const intoDir = spec.destDir || got.multi;
    const owners = got.files.map((f) => (f.keepOwner ? [Number(f.st.uid), Number(f.st.gid)] : 0));
    const layerKey = stepDigest("link/v1", ins, [], [spec.dest, intoDir, owner, spec.chmod, contentHash(got.files), owners, docs.map((d) => [d.path, d.data]), got.gitKeys]);
    const prior = ctx.opts.noCache ? undefined : ctx.opts.cache.get(layerKey);
    const rebased = prior && ctx.backend.rebase ? await ctx.backend.rebase(st.image, prior, st.config, ...copyRecord(st, ins)) : undefined;
    if (rebased) {
      st.onCached?.();
      st.image = rebased;
      return;
    }
    for (const f of got.later) await f();
    await commitCopy(ctx, st, ins, copyEntries(scratchPlan(spec.dest), intoDir, owner, spec, got.files, docs));
    ctx.opts.cache.set(layerKey, st.image!);
  });
}

/** What the classic builder records of a COPY/ADD: its history entry and its nop container config. */
function copyRecord(st: State, ins: CopyIns): [{ created_by: string }, { containerConfig: ReturnType<typeof nopConfig> }] {
  return [{ created_by: `/bin/sh -c #(nop) ${ins.original}` }, { containerConfig: nopConfig(st.config, ins.original, st.image, true) }];
}

async function commitCopy(ctx: StepContext, st: State, ins: CopyIns, entries: TarEntry[]): Promise<void> {
  st.image = await ctx.backend.commit(st.image, entries, st.config, ...copyRecord(st, ins));
}

/** A destination on scratch: every directory on the way is missing. */
function scratchPlan(dest: string): Plan {
  const parts = posix.normalize("/" + dest).split("/").filter(Boolean);
  return { destRel: parts.join("/"), destIsDir: false, existing: [], missing: parts.map((_, i) => parts.slice(0, i + 1).join("/")), blocked: false };
}

function copySpec(st: State, ins: CopyIns, ex: (s: string) => string): CopySpec {
  const sources = ins.sources.map(ex);
  // As BuildKit: --checksum pins exactly one http(s) source.
  const checksum = ins.keyword === "ADD" && ins.checksum ? ex(ins.checksum) : undefined;
  if (checksum !== undefined) {
    if (sources.length !== 1) throw new BadParameterError("checksum can't be specified for multiple sources");
    if (!isUrl(sources[0])) throw new BadParameterError("checksum can't be specified for non-HTTP(S) sources");
    if (!/^(sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})$/.test(checksum)) throw new BadParameterError(`invalid checksum digest format: ${checksum}`);
  }
  const destRaw = ex(ins.dest);
  const chmod = ins.chmod ? parseInt(ex(ins.chmod), 8) : undefined;
  if (chmod !== undefined && (Number.isNaN(chmod) || chmod > 0o7777)) throw new BadParameterError(`invalid chmod: ${ins.chmod}`);
  return {
    from: ins.keyword === "COPY" && ins.from ? ex(ins.from) : undefined,
    sources,
    // --exclude patterns (as .dockerignore lines), matched against each path relative to the source it is under.
    excluded: excludeMatcher(ins.excludes.map(ex)),
    parents: ins.keyword === "COPY" && ins.parents,
    checksum,
    dest: posix.resolve(st.config.WorkingDir || "/", destRaw),
    destDir: destRaw.endsWith("/") || sources.length + ins.contents.length > 1 || destRaw === ".",
    owner: ins.chown ? ex(ins.chown) : undefined,
    chmod,
  };
}

/** Runs fn on the root the sources come from: the context, a named context's directory, or a stage's or image's filesystem. */
async function copyFrom<T>(ctx: StepContext, st: State, from: string | undefined, fn: (root: string) => Promise<T>): Promise<T> {
  if (!from) return fn(ctx.opts.contextDir);
  const stage = ctx.stageImage(from, st.stage);
  const nc = stage ? undefined : ctx.opts.contexts?.get(from);
  if (nc?.dir) return fn(nc.dir);
  const id = stage?.image ?? (await ctx.baseImage(nc?.image ?? from, false, st.say)).id;
  return ctx.backend.withRootfs(id, fn);
}

/** The heredocs of the step (COPY <<EOF), expanded when their delimiter was not quoted. */
function heredocs(st: State, ins: CopyIns): { path: string; data: string }[] {
  return ins.contents.map((c) => ({ path: c.path, data: c.expand ? expandHeredoc(c.data, vars(st)) : c.data }));
}

/** The files a step copies, each with its path relative to the destination. */
class SourceList {
  readonly files: SourceFile[] = [];
  /** --parents: the directories above a match, as the root has them, once each. */
  private readonly seen = new Set<string>();
  constructor(private readonly excluded?: (rel: string, isDir: boolean) => boolean) {}

  /** A file, or a directory and everything under it; `xrel`: its path as --exclude matches it ("" matches nothing). */
  add(abs: string, rel: string, keepOwner = false, xrel = rel): void {
    const s = lstatSync(abs);
    if (xrel && this.excluded?.(xrel, s.isDirectory())) return;
    this.files.push({ src: abs, rel, st: s, keepOwner });
    if (s.isDirectory()) for (const n of readdirSync(abs).sort()) this.add(join(abs, n), `${rel}/${n}`, keepOwner, xrel ? `${xrel}/${n}` : n);
  }

  addParents(root: string, rel: string): void {
    const parts = rel.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (this.seen.has(p)) continue;
      this.seen.add(p);
      const at = lstatInRoot(root, p);
      if (at.stat?.isDirectory()) this.files.push({ src: at.path, rel: p, st: at.stat });
    }
  }

  markSeen(rel: string): void { this.seen.add(rel); }
}

const scratchName = (prefix: string, seed: string) => `${prefix}-${createHash("sha256").update(seed + Math.random()).digest("hex").slice(0, 12)}`;

async function gatherSources(ctx: StepContext, root: string, ins: CopyIns, spec: CopySpec): Promise<Gathered> {
  const list = new SourceList(spec.excluded);
  const got: Gathered = { files: list.files, gitKeys: [], later: [], multi: spec.sources.length + ins.contents.length > 1 };
  for (const s of spec.sources) {
    const gitRef = ins.keyword === "ADD" ? parseGitRef(s) : undefined;
    if (gitRef) await gitSource(ctx, ins as AddInstruction, s, gitRef, list, got);
    else if (ins.keyword === "ADD" && isUrl(s)) {
      // A remote file: downloaded (streamed, hashed on the way), checked against --checksum, added as a
      // file of mode 0600 (never unpacked), its mtime the server's Last-Modified.
      const file = await download(s, join(ctx.opts.tmpDir, scratchName("url", s)), spec.checksum, ctx.opts.signal);
      list.files.push({ src: file.path, rel: file.name, st: lstatSync(file.path) });
    } else await localSource(ctx, root, ins, spec, s, list, got);
  }
  return got;
}

/**
 * A git repository at a ref: its tree (or subdirectory) is copied into the destination, .git only with
 * --keep-git-dir. As BuildKit, the step is keyed by the commit the ref names (asked of the remote, nothing
 * fetched): a cached step clones nothing. A ref the remote does not list is cloned to know its content.
 */
async function gitSource(ctx: StepContext, ins: AddInstruction, s: string, gitRef: GitRef, list: SourceList, got: Gathered): Promise<void> {
  const keepGitDir = ins.keepGitDir;
  const fetch = async (): Promise<void> => {
    const dir = await cloneGit(gitRef, join(ctx.opts.tmpDir, scratchName("git", s)), { keepGitDir, signal: ctx.signal });
    for (const n of readdirSync(dir).sort()) list.add(join(dir, n), n);
  };
  got.multi = true;
  const commit = await resolveGitCommit(gitRef, ctx.signal);
  if (commit) { got.gitKeys.push([gitRef.remote, commit, gitRef.subdir, keepGitDir]); got.later.push(fetch); } else await fetch();
}

/**
 * A source in its root (the context, a stage's or an image's filesystem), resolved inside it, its symlinks
 * followed as if that root were "/": as Docker, a link to /etc in the context means the context's etc,
 * never the host's. A directory's contents are copied, not the directory itself.
 */
async function localSource(ctx: StepContext, root: string, ins: CopyIns, spec: CopySpec, s: string, list: SourceList, got: Gathered): Promise<void> {
  const notFound = (m: string): never => {
    throw new BadParameterError(spec.from ? `${ins.keyword} failed: stat ${m}: file does not exist` : `${ins.keyword} failed: file not found in build context or excluded by .dockerignore: stat ${m}: file does not exist`);
  };
  // As Docker: a relative source that climbs out of its root is refused (an absolute one is taken from the root).
  const lexical = posix.normalize(s);
  if (!s.startsWith("/") && (lexical === ".." || lexical.startsWith("../"))) throw new BadParameterError(`${ins.keyword} failed: forbidden path outside the build context: ${s} ()`);
  const clean = posix.normalize("/" + s).slice(1);
  // --parents keeps the directories of each match, below a "/./" pivot when the source has one.
  const pivot = spec.parents ? parentsPivot(s) : "";
  const matches = /[*?[]/.test(clean) ? glob(root, clean) : [clean];
  if (!matches.length) throw new BadParameterError(`${ins.keyword} failed: no source files were specified`);
  const resolved = matches.map((m) => {
    const r = lstatInRoot(root, m);
    return r.stat ? { m, abs: r.path, s2: r.stat } : notFound(m);
  });
  for (const { m, abs, s2 } of resolved) {
    if (matches.length > 1 || spec.parents) got.multi = true;
    if (spec.parents) {
      const rel = pivot && m.startsWith(pivot + "/") ? m.slice(pivot.length + 1) : m;
      if (spec.excluded?.(posix.basename(m), s2.isDirectory())) continue;
      list.addParents(root, rel);
      if (s2.isDirectory()) { list.markSeen(rel); list.add(abs, rel, false, ""); } else list.files.push({ src: abs, rel, st: s2 });
      continue;
    }
    const archive = ins.keyword === "ADD" && ins.unpack !== false && !spec.from && s2.isFile() ? archiveKind(abs) : undefined;
    if (archive) {
      // ADD unpacks a local archive into the destination, keeping its owners (as Docker).
      const into = join(ctx.opts.tmpDir, scratchName("add", abs));
      await unpackArchive(abs, archive, into, ctx.opts.signal);
      got.multi = true;
      for (const n of readdirSync(into).sort()) list.add(join(into, n), n, true);
    } else if (s2.isDirectory()) { got.multi = true; for (const n of readdirSync(abs).sort()) list.add(join(abs, n), n); }
    else if (!spec.excluded?.(posix.basename(m), false)) list.files.push({ src: abs, rel: posix.basename(m), st: s2 });
  }
}

/**
 * The layer's entries. As Docker's layers: the directories on the way that exist already go in as the
 * image has them (a layer unpacked on its own must not make them root's 0755 over the lower ones), the
 * missing ones are made 0755, owned by --chown's user when given (as dockerd does).
 */
function copyEntries(plan: Plan, intoDir: boolean, [uid, gid]: [number, number], spec: CopySpec, files: SourceFile[], docs: { path: string; data: string }[]): TarEntry[] {
  const baseRel = plan.destRel;
  const entries: TarEntry[] = [];
  const existing = intoDir ? plan.existing : plan.existing.filter((e) => e.name !== baseRel);
  for (const e of existing) entries.push({ ...e });
  const now = new Date();
  const dirsToMake = intoDir ? plan.missing : plan.missing.filter((p) => p !== baseRel);
  for (const p of dirsToMake) entries.push({ name: p, type: "directory", mode: 0o755, uid, gid, mtime: now });
  for (const f of files) {
    const name = intoDir ? posix.join(baseRel, f.rel) : baseRel;
    const common = { name, uid: f.keepOwner && !spec.owner ? Number(f.st.uid) : uid, gid: f.keepOwner && !spec.owner ? Number(f.st.gid) : gid, mtime: new Date(Number(f.st.mtimeMs)) };
    if (f.st.isDirectory()) entries.push({ ...common, type: "directory", mode: spec.chmod ?? (Number(f.st.mode) & 0o7777) });
    else if (f.st.isSymbolicLink()) entries.push({ ...common, type: "symlink", mode: 0o777, linkname: readlinkSync(f.src) });
    else if (f.st.isFile()) entries.push({ ...common, type: "file", mode: spec.chmod ?? (Number(f.st.mode) & 0o7777), size: Number(f.st.size), source: f.src });
  }
  for (const c of docs) {
    const name = intoDir ? posix.join(baseRel, c.path) : baseRel;
    entries.push({ name, type: "file", mode: spec.chmod ?? 0o644, uid, gid, mtime: new Date(), source: Buffer.from(c.data) });
  }
  return entries;
}
