/**
 * A build's outputs (`build --output`, as BuildKit's exporters): the target's filesystem as a tar (type=local
 * and type=tar: the client unpacks or writes it), or the image as an archive (type=oci and type=docker: an OCI
 * image layout that is also a docker-archive, as `save` writes, so `load`, `skopeo inspect oci-archive:` and
 * `docker-archive:` read it), with `--annotation`s in its manifest, its index or the manifest's descriptor.
 */
import { spawn } from "node:child_process";
import { promises as fsp } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Store } from "../store/index.js";
import type { ImageRecord } from "../store/images.js";
import { saveImages } from "../distribution/archive.js";
import { BadParameterError } from "../lib/errors.js";

/** Where an annotation goes (BuildKit's `type:` prefix; none: the manifest). */
export type AnnotationLevel = "manifest" | "index" | "manifest-descriptor" | "index-descriptor";
export interface Annotation { level: AnnotationLevel; key: string; value: string }

/** `[type:]key=value` as buildx reads `--annotation` (types manifest, index, manifest-descriptor, index-descriptor). */
export function parseAnnotation(spec: string): Annotation {
  const eq = spec.indexOf("=");
  if (eq <= 0) throw new BadParameterError(`invalid annotation ${JSON.stringify(spec)}: expected key=value`);
  let key = spec.slice(0, eq);
  const value = spec.slice(eq + 1);
  let level: AnnotationLevel = "manifest";
  const m = /^(manifest|index|manifest-descriptor|index-descriptor)(?:\[[^\]]*\])?:(.+)$/.exec(key);
  if (m) { level = m[1] as AnnotationLevel; key = m[2]; }
  return { level, key, value };
}

/**
 * The image's root filesystem as a tar stream (GNU tar over the mounted snapshot, numeric owners, name order,
 * no "./" prefix): unmounted and its scratch directory removed once the stream ends or fails.
 */
export async function rootfsTar(store: Store, rec: ImageRecord, tmpRoot: string): Promise<NodeJS.ReadableStream> {
  return rootfsTars(store, [{ rec }], tmpRoot);
}

/**
 * Several images' filesystems in one tar, each under its `prefix` (a multi-platform build's type=local and
 * type=tar: BuildKit's linux_amd64/, linux_arm64/ ...); one image without a prefix is its filesystem itself.
 */
export async function rootfsTars(store: Store, images: { rec: ImageRecord; prefix?: string }[], tmpRoot: string): Promise<NodeJS.ReadableStream> {
  const dir = join(tmpRoot, `build-export-${randomBytes(6).toString("hex")}`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  const mounted: string[] = [];
  const cleanup = async () => {
    for (const fs of mounted.splice(0)) await store.snapshots.unmount(fs).catch(() => {});
    await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    const top = join(dir, "top");
    await fsp.mkdir(top);
    for (const [i, { rec, prefix }] of images.entries()) {
      const fs = prefix ? join(top, prefix) : top;
      const work = join(dir, `w${i}`);
      await fsp.mkdir(work);
      if (rec.chainId) { await store.snapshots.mount(rec.chainId, work, fs); mounted.push(fs); }
      else await fsp.mkdir(fs, { recursive: true });
    }
    const names = (await fsp.readdir(top)).sort();
    const child = spawn("tar", ["--numeric-owner", "--xattrs", "--sort=name", "-C", top, "-cf", "-", "--null", "--verbatim-files-from", "-T", "-"], { stdio: ["pipe", "pipe", "ignore"] });
    child.stdin.on("error", () => {});
    child.stdin.end(names.map((n) => n + "\0").join(""));
    child.on("close", () => { void cleanup(); });
    child.on("error", () => { void cleanup(); });
    return child.stdout;
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** The image as an OCI layout + docker-archive, named `names`, with these annotations. */
export function imageArchive(store: Store, rec: ImageRecord, names: string[], annotations: Annotation[]): NodeJS.ReadableStream {
  if (!annotations.length) return saveImages(store, [{ rec, refs: names }]);
  const of = (level: AnnotationLevel) => Object.fromEntries(annotations.filter((a) => a.level === level).map((a) => [a.key, a.value]));
  return saveImages(store, [{ rec, refs: names, annotations: { manifest: of("manifest"), descriptor: of("manifest-descriptor") } }], { indexAnnotations: of("index") });
}
