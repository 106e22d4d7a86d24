/**
 * Images made from a filesystem tar (`import`) and the busybox base image
 * made from Debian's busybox-static (`image bootstrap busybox`). The layer is
 * kept as it came (plain tar or gzip); plain layers are stored uncompressed,
 * which OCI allows, so their blob digest is their diff ID. Nothing buffers a
 * whole layer in memory: the tar is ingested into the content store, then
 * streamed from there into the snapshotter, which decompresses it in a layer
 * worker under the limits of layer-jobs.ts (a gzip bomb is refused there). A
 * failed import leaves nothing: the blob it ingested is removed again, at
 * once when its lease was alone, else by the collection (store/gc.ts).
 */
import { createReadStream, promises as fsp, statSync } from "node:fs";
import { Readable } from "node:stream";
import * as tar from "tar-stream";
import type { Store } from "./index.js";
import type { ImageRecord } from "./images.js";
import { MediaType, hostPlatform, type ContainerConfigSpec, type ImageConfig, type Manifest, type Platform } from "../oci/image.js";
import { runOk } from "../lib/proc.js";
import { spawn } from "node:child_process";
import { SystemError } from "../lib/errors.js";
import { SOLE_LEASE, type Lease } from "./gc.js";

export interface CreateImageOptions { lease?: Lease; ref?: string; config?: Partial<ContainerConfigSpec>; comment?: string; createdBy?: string; created?: Date; platform?: Platform }

async function isGzip(store: Store, digest: string): Promise<boolean> {
  const fh = await fsp.open(store.content.path(digest), "r");
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally { await fh.close(); }
}

export async function createImageFromTar(store: Store, src: NodeJS.ReadableStream, opts: CreateImageOptions): Promise<ImageRecord> {
  const known = new Set(await store.content.list());
  const blob = await store.content.ingest(src);
  const gz = await isGzip(store, blob.digest);
  let layer: { chainId: string; diffId: string; size: number };
  try {
    layer = await store.snapshots.applyLayer(null, store.content.reader(blob.digest), gz ? undefined : blob.digest, { compression: gz ? "gzip" : "none" });
  } catch (e) {
    const lease = opts.lease ?? SOLE_LEASE;
    if (!lease.alone()) lease.leftovers();
    else if (!known.has(blob.digest)) await store.content.delete(blob.digest).catch(() => {});
    throw e;
  }
  const created = (opts.created ?? new Date()).toISOString();
  const config: ImageConfig = {
    created,
    architecture: (opts.platform ?? hostPlatform()).architecture,
    os: opts.platform?.os ?? "linux",
    ...(opts.platform?.variant ? { variant: opts.platform.variant } : {}),
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], ...opts.config },
    rootfs: { type: "layers", diff_ids: [layer.diffId] },
    history: [{ created, created_by: opts.createdBy ?? "", comment: opts.comment || "Imported from -" }],
  };
  const cfg = await store.content.writeBytes(JSON.stringify(config));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: gz ? MediaType.OciLayerGzip : MediaType.OciLayer, digest: blob.digest, size: blob.size }],
  };
  const m = await store.content.writeBytes(JSON.stringify(manifest));
  return store.images.add(m.digest, opts.ref, layer.size);
}

/** A deterministic tar of busybox-static: the binary, one symlink per applet, the usual directories, passwd and group. */
export async function busyboxTar(binary = "/bin/busybox"): Promise<{ stream: NodeJS.ReadableStream; mtime: Date; version: string }> {
  const st = statSync(binary);
  const mtime = new Date(Math.floor(st.mtimeMs / 1000) * 1000);
  const applets = (await runOk(binary, ["--list"])).split("\n").map((s) => s.trim()).filter((a) => a && a !== "busybox").sort();
  const version = ((await runOk(binary, ["--help"]).catch(() => "")).split("\n")[0] ?? "").replace(/^BusyBox\s*/, "").replace(/\s*multi-call binary\.?$/, "").trim();
  const pack = tar.pack();
  const dir = (name: string, mode = 0o755) => pack.entry({ name, type: "directory", mode, mtime, uid: 0, gid: 0 });
  const file = (name: string, content: string, mode = 0o644) => pack.entry({ name, type: "file", mode, mtime, uid: 0, gid: 0 }, content);
  const fill = async () => {
    for (const d of ["bin/", "dev/", "etc/", "home/", "proc/", "root/", "sys/", "usr/", "usr/bin/", "usr/sbin/", "sbin/", "var/", "var/spool/", "var/spool/mail/", "var/www/"]) dir(d, d === "root/" ? 0o700 : 0o755);
    dir("tmp/", 0o1777);
    file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nbin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\nsync:x:4:100:sync:/bin:/bin/sync\nmail:x:8:8:mail:/var/spool/mail:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\noperator:x:37:37:Operator:/var:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n");
    file("etc/group", "root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\nwheel:x:10:root\nmail:x:8:\nwww-data:x:33:\noperator:x:37:\nstaff:x:50:\nusers:x:100:\nnogroup:x:65534:\n");
    file("etc/shadow", "root:*:10933:0:99999:7:::\nnobody:*:10933:0:99999:7:::\n", 0o600);
    file("etc/nsswitch.conf", "hosts: files dns\nnetworks: files\n");
    await new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name: "bin/busybox", type: "file", mode: 0o755, size: st.size, mtime, uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve()));
      createReadStream(binary).on("error", reject).pipe(entry);
    });
    for (const a of applets) pack.entry({ name: `bin/${a}`, type: "symlink", linkname: "busybox", mode: 0o777, mtime, uid: 0, gid: 0 });
    pack.finalize();
  };
  fill().catch((e) => pack.destroy(e as Error));
  return { stream: pack as unknown as NodeJS.ReadableStream, mtime, version };
}

/**
 * Where `bootstrap --platform` finds a foreign busybox-static (scripts/foreign-arch.sh unpacks Debian's
 * busybox-static:<arch> there; BERTH_BUSYBOX_<ARCH> overrides). Running it (for its applet list) needs qemu
 * registered with binfmt_misc.
 */
export function foreignBusybox(arch: string): string {
  return process.env[`BERTH_BUSYBOX_${arch.toUpperCase()}`] || `/usr/local/lib/berth/busybox-static-${arch}/bin/busybox`;
}

export async function bootstrapBusybox(store: Store, ref = "busybox:latest", platform?: Platform, lease?: Lease): Promise<ImageRecord> {
  const foreign = platform && platform.architecture !== hostPlatform().architecture;
  const binary = foreign ? foreignBusybox(platform.architecture) : "/bin/busybox";
  try { statSync(binary); } catch { throw new SystemError(`no busybox-static for ${platform!.os}/${platform!.architecture} at ${binary}: run scripts/foreign-arch.sh`); }
  const { stream, mtime, version } = await busyboxTar(binary);
  return createImageFromTar(store, Readable.from(stream as AsyncIterable<Buffer>), {
    ref,
    created: mtime,
    config: { Cmd: ["sh"] },
    createdBy: `BusyBox ${version} from Debian's busybox-static`,
    comment: "berth image bootstrap busybox",
    platform,
    lease,
  });
}

/** What Debian's own -slim images leave out. */
const SLIM_EXCLUDES = [
  "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/man/*",
  "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias",
  "path-exclude=/usr/share/groff/*", "path-exclude=/usr/share/lintian/*", "path-exclude=/usr/share/linda/*",
];

/**
 * `berth image bootstrap debian:bookworm[-slim]`: a minimal Debian root made by mmdebstrap from Debian's
 * packages (minbase variant), streamed as a tar straight into an image. No registry involved.
 */
export async function bootstrapDebian(store: Store, suite: string, slim: boolean, ref: string, mirror = process.env.BERTH_DEBIAN_MIRROR ?? "http://deb.debian.org/debian", lease?: Lease): Promise<ImageRecord> {
  const args = ["--variant=minbase", "--mode=root", "--format=tar", "--quiet", ...(slim ? SLIM_EXCLUDES.map((o) => `--dpkgopt=${o}`) : []), suite, "-", mirror];
  const child = spawn("mmdebstrap", args, { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => { if (err.length < 16384) err += d; });
  const exited = new Promise<number>((r) => child.on("close", (code) => r(code ?? 1)));
  child.on("error", () => {});
  const created = new Date();
  let rec: ImageRecord;
  try {
    rec = await createImageFromTar(store, child.stdout, {
      lease, ref, created, config: { Cmd: ["bash"] },
      createdBy: `mmdebstrap --variant=minbase${slim ? " (slim)" : ""} ${suite} ${mirror}`, comment: "berth image bootstrap",
    });
  } catch (e) {
    child.kill();
    throw new SystemError(`mmdebstrap: ${err.trim() || (e as Error).message}`);
  }
  const code = await exited;
  if (code !== 0) throw new SystemError(`mmdebstrap exited with status ${code}: ${err.trim()}`);
  return rec;
}
