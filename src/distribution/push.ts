/**
 * Push: every blob the image needs (config, layers) is checked with HEAD and
 * uploaded only when missing, by cross-repository mount when the same
 * registry already has it under another repository, else by a monolithic
 * upload; then the manifest, in the format the image has.
 *
 * Cancellation (opts.signal, fired when the API client goes away): every
 * request and upload still streaming stops, no manifest is put, and the push
 * rejects with TransferCancelledError once the uploads have stopped. A blob
 * that fails stops the others the same way.
 */
import type { Store } from "../store/index.js";
import type { IndexRecord } from "../store/images.js";
import { parseReference, familiarString } from "../oci/reference.js";
import type { Manifest } from "../oci/image.js";
import { MediaType } from "../oci/image.js";
import { NotFoundError, BadParameterError } from "../lib/errors.js";
import { RegistryClient, TransferCancelledError, cancellable, type Credentials } from "./registry.js";
import type { ProgressMessage } from "./pull.js";

export interface PushOptions { creds?: Credentials; insecure?: string[]; onProgress?: (m: ProgressMessage) => void; signal?: AbortSignal }

export async function pushImage(store: Store, refStr: string, opts: PushOptions = {}): Promise<string> {
  return cancellable(opts.signal, (ac) => pushWith(store, refStr, opts, ac));
}

async function pushWith(store: Store, refStr: string, opts: PushOptions, ac: AbortController): Promise<string> {
  const signal = ac.signal;
  const ref = parseReference(refStr);
  if (ref.digest) throw new BadParameterError("cannot push a digest reference");
  const rec = store.images.resolve(refStr);
  const index = rec ? undefined : store.images.resolveIndex(refStr);
  if (index) return pushIndex(store, ref, index, opts, signal);
  if (!rec) throw new NotFoundError(`An image does not exist locally with the tag: ${familiarString(ref).replace(/:latest$/, "")}`);
  const say = opts.onProgress ?? (() => {});
  const client = new RegistryClient(ref, { insecure: opts.insecure, creds: opts.creds, push: true, signal });
  say({ status: `The push refers to repository [${ref.domain}/${ref.path}]` });
  const manifestBytes = await store.content.readBytes(rec.manifestDigest);
  const manifest = JSON.parse(manifestBytes.toString()) as Manifest;
  // Another repository of the same registry that has this image's blobs, for a cross-repository mount.
  const from = rec.repoDigests.map((d) => parseReference(d)).find((r) => r.domain === ref.domain && r.path !== ref.path)?.path;
  const short = (d: string) => d.slice(7, 19);
  const blobs = [...manifest.layers, manifest.config];
  let failed: { e: unknown } | undefined;
  await Promise.all(blobs.map(async (b) => {
    if (signal.aborted) throw new TransferCancelledError();
    if (await client.hasBlob(b.digest)) { say({ status: "Layer already exists", id: short(b.digest) }); return; }
    if (!(await store.content.has(b.digest))) throw new NotFoundError(`blob ${b.digest} is not in the local store`);
    say({ status: "Pushing", id: short(b.digest) });
    const how = await client.putBlob(b.digest, b.size, () => store.content.reader(b.digest), from);
    say({ status: how === "mounted" ? `Mounted from ${from}` : "Pushed", id: short(b.digest) });
  }).map((p) => p.catch((e: unknown) => { failed ??= { e }; ac.abort(); })));
  if (failed) throw failed.e;
  if (signal.aborted) throw new TransferCancelledError();
  const mediaType = manifest.mediaType ?? MediaType.OciManifest;
  await client.putManifest(ref.tag!, manifestBytes, mediaType);
  await store.images.addRepoDigest(rec.id, `${ref.domain}/${ref.path}@${rec.manifestDigest}`);
  say({ status: `${ref.tag}: digest: ${rec.manifestDigest} size: ${manifestBytes.length}` });
  return rec.manifestDigest;
}

/**
 * A local index (a multi-platform image, a `manifest create` list): every entry's blobs and manifest (put by
 * digest), one entry after the other, then the index under the tag, so the registry never holds an index
 * whose manifests it lacks.
 */
async function pushIndex(store: Store, ref: ReturnType<typeof parseReference>, index: IndexRecord, opts: PushOptions, signal: AbortSignal): Promise<string> {
  const say = opts.onProgress ?? (() => {});
  const client = new RegistryClient(ref, { insecure: opts.insecure, creds: opts.creds, push: true, signal });
  say({ status: `The push refers to repository [${ref.domain}/${ref.path}]` });
  const short = (d: string) => d.slice(7, 19);
  for (const entry of index.manifests) {
    const bytes = await store.content.readBytes(entry.digest);
    const manifest = JSON.parse(bytes.toString()) as Manifest;
    for (const b of [...manifest.layers, manifest.config]) {
      if (signal.aborted) throw new TransferCancelledError();
      if (await client.hasBlob(b.digest)) { say({ status: "Layer already exists", id: short(b.digest) }); continue; }
      if (!(await store.content.has(b.digest))) throw new NotFoundError(`blob ${b.digest} is not in the local store`);
      say({ status: "Pushing", id: short(b.digest) });
      await client.putBlob(b.digest, b.size, () => store.content.reader(b.digest));
      say({ status: "Pushed", id: short(b.digest) });
    }
    await client.putManifest(entry.digest, bytes, manifest.mediaType ?? entry.mediaType ?? MediaType.OciManifest);
  }
  if (signal.aborted) throw new TransferCancelledError();
  const bytes = await store.content.readBytes(index.id);
  await client.putManifest(ref.tag!, bytes, index.mediaType);
  await store.images.addIndexRepoDigest(index.id, `${ref.domain}/${ref.path}@${index.id}`);
  say({ status: `${ref.tag}: digest: ${index.id} size: ${bytes.length}` });
  return index.id;
}

/** `login`: checks the credentials against the registry. */
export async function checkLogin(server: string, creds: Credentials, insecure: string[] = []): Promise<void> {
  const domain = server.replace(/^https?:\/\//, "").replace(/\/.*$/, "") || "docker.io";
  const client = new RegistryClient({ domain: domain === "index.docker.io" ? "docker.io" : domain, path: "library/x", tag: "latest" }, { creds, insecure });
  await client.ping();
}
