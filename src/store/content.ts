/**
 * Content store: immutable blobs addressed by digest, under
 * <root>/blobs/<alg>/<hex> (sha256; sha512 too, for the registry, which shares this code). Contract (as containerd's content.Store):
 * - a blob is visible only once complete and verified: ingest streams into
 *   <root>/ingest/, hashes while writing, fsyncs, checks the expected digest
 *   and size, then renames into place. A mismatch commits nothing.
 * - committed blobs never change; deleting is the garbage collector's job.
 * - partial ingests left by a crash are removed by init().
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, promises as fsp } from "node:fs";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BadParameterError, NotFoundError } from "../lib/errors.js";
import { fsyncDir } from "../lib/fsutil.js";

const DIGEST_RE = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** The algorithm of an expected digest (sha256 unless it names sha512). */
const algOf = (digest: string | undefined): "sha256" | "sha512" => (digest?.startsWith("sha512:") ? "sha512" : "sha256");

export class ContentStore {
  constructor(readonly root: string) {}

  async init(): Promise<void> {
    await fsp.mkdir(join(this.root, "blobs", "sha256"), { recursive: true });
    await fsp.rm(join(this.root, "ingest"), { recursive: true, force: true });
    await fsp.mkdir(join(this.root, "ingest"), { recursive: true });
  }

  path(digest: string): string {
    if (!DIGEST_RE.test(digest)) throw new BadParameterError(`invalid digest: ${digest}`);
    const i = digest.indexOf(":");
    return join(this.root, "blobs", digest.slice(0, i), digest.slice(i + 1));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  async size(digest: string): Promise<number | undefined> {
    try { return (await fsp.stat(this.path(digest))).size; } catch { return undefined; }
  }

  async readBytes(digest: string): Promise<Buffer> {
    try { return await fsp.readFile(this.path(digest)); } catch { throw new NotFoundError(`content ${digest}: not found`); }
  }

  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse((await this.readBytes(digest)).toString("utf8")) as T;
  }

  reader(digest: string): NodeJS.ReadableStream {
    return createReadStream(this.path(digest));
  }

  async writeBytes(data: Buffer | string, expectedDigest?: string): Promise<{ digest: string; size: number }> {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    const alg = algOf(expectedDigest);
    const digest = `${alg}:` + createHash(alg).update(buf).digest("hex");
    if (expectedDigest && expectedDigest !== digest) throw new BadParameterError(`digest mismatch: expected ${expectedDigest}, got ${digest}`);
    if (await this.has(digest)) return { digest, size: buf.length };
    const tmp = join(this.root, "ingest", randomBytes(8).toString("hex"));
    const fh = await fsp.open(tmp, "w", 0o644);
    try { await fh.writeFile(buf); await fh.sync(); } finally { await fh.close(); }
    await fsp.mkdir(join(this.root, "blobs", alg), { recursive: true });
    await fsp.rename(tmp, this.path(digest));
    await fsyncDir(join(this.root, "blobs", alg));
    return { digest, size: buf.length };
  }

  async ingest(src: NodeJS.ReadableStream, expected: { digest?: string; size?: number } = {}): Promise<{ digest: string; size: number }> {
    const tmp = join(this.root, "ingest", randomBytes(8).toString("hex"));
    const alg = algOf(expected.digest);
    const hash = createHash(alg);
    let size = 0;
    const tap = new Transform({ transform(chunk: Buffer, _e, cb) { hash.update(chunk); size += chunk.length; cb(null, chunk); } });
    try {
      const out = createWriteStream(tmp, { mode: 0o644 });
      await pipeline(src, tap, out);
      const fh = await fsp.open(tmp, "r+");
      try { await fh.sync(); } finally { await fh.close(); }
      const digest = `${alg}:` + hash.digest("hex");
      if (expected.digest && expected.digest !== digest) throw new BadParameterError(`digest mismatch: expected ${expected.digest}, got ${digest}`);
      if (expected.size !== undefined && expected.size !== size) throw new BadParameterError(`size mismatch for ${digest}: expected ${expected.size}, got ${size}`);
      await fsp.mkdir(join(this.root, "blobs", alg), { recursive: true });
      await fsp.rename(tmp, this.path(digest));
      await fsyncDir(join(this.root, "blobs", alg));
      return { digest, size };
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  async delete(digest: string): Promise<void> {
    await fsp.rm(this.path(digest), { force: true });
  }

  async list(): Promise<string[]> {
    const sha512 = await fsp.readdir(join(this.root, "blobs", "sha512")).catch(() => [] as string[]);
    return [
      ...(await fsp.readdir(join(this.root, "blobs", "sha256"))).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => "sha256:" + n),
      ...sha512.filter((n) => /^[a-f0-9]{128}$/.test(n)).map((n) => "sha512:" + n),
    ];
  }
}
