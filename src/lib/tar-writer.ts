/**
 * A small tar writer for layers berth makes itself (commit, build): ustar
 * headers, with a PAX header before an entry whose name or link does not fit,
 * whose size needs more than 11 octal digits, or that carries extended
 * attributes (SCHILY.xattr.*, values written byte for byte, as Go's
 * archive/tar does and as Docker reads them).
 */
import { createReadStream, readFileSync } from "node:fs";

export type TarType = "file" | "link" | "symlink" | "char" | "block" | "directory" | "fifo";

export interface TarEntry {
  name: string;
  type: TarType;
  mode: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
  /** File contents: a path to stream from, or bytes. */
  source?: string | Buffer;
}

const FLAG: Record<TarType, string> = { file: "0", link: "1", symlink: "2", char: "3", block: "4", directory: "5", fifo: "6" };

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, flag: string, e: { mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(512);
  b.write(name.slice(0, 100), 0, 100, "utf8");
  b.write(octal(e.mode & 0o7777, 8), 100, "ascii");
  b.write(octal(Math.min(e.uid, 0o7777777), 8), 108, "ascii");
  b.write(octal(Math.min(e.gid, 0o7777777), 8), 116, "ascii");
  b.write(octal(Math.min(e.size, 0o77777777777), 12), 124, "ascii");
  b.write(octal(Math.max(0, Math.min(e.mtime, 0o77777777777)), 12), 136, "ascii");
  b.write(flag, 156, "ascii");
  b.write(e.linkname.slice(0, 100), 157, 100, "utf8");
  b.write("ustar\x0000", 257, "binary");
  b.write(octal(e.devmajor, 8), 329, "ascii");
  b.write(octal(e.devminor, 8), 337, "ascii");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(octal(sum, 7) + " ", 148, "ascii");
  return b;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from("\n")]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
const fits = (s: string) => Buffer.byteLength(s) <= 100;

/** The tar of `entries` (an async iterable, so a walker can produce them lazily), in chunks of about 256 KiB. */
export async function* writeTar(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const b of tarBlocks(entries)) {
    if (b.length >= 1 << 18 && size === 0) { yield b; continue; }
    parts.push(b);
    size += b.length;
    if (size >= 1 << 18) { yield Buffer.concat(parts); parts = []; size = 0; }
  }
  if (size) yield Buffer.concat(parts);
}

/** Small files are read whole (one syscall each, no stream); big ones are streamed. */
const SMALL = 1 << 20;

async function* tarBlocks(entries: AsyncIterable<TarEntry> | Iterable<TarEntry>): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    const size = e.type === "file" ? (e.size ?? (Buffer.isBuffer(e.source) ? e.source.length : 0)) : 0;
    const name = e.type === "directory" && !e.name.endsWith("/") ? e.name + "/" : e.name;
    const linkname = e.linkname ?? "";
    const mtime = Math.floor((e.mtime?.getTime() ?? 0) / 1000);
    const records: Buffer[] = [];
    if (!fits(name)) records.push(paxRecord("path", Buffer.from(name)));
    if (!fits(linkname)) records.push(paxRecord("linkpath", Buffer.from(linkname)));
    if (size > 0o77777777777) records.push(paxRecord("size", Buffer.from(String(size))));
    for (const [k, v] of e.xattrs ?? []) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
    const fields = { mode: e.mode, uid: e.uid ?? 0, gid: e.gid ?? 0, size, mtime, linkname, devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0 };
    if (records.length) {
      const body = Buffer.concat(records);
      yield header(`PaxHeaders/${name.replace(/\/$/, "").split("/").pop()}`.slice(0, 100), "x", { ...fields, mode: 0o644, size: body.length, linkname: "", devmajor: 0, devminor: 0 });
      yield Buffer.concat([body, pad(body.length)]);
    }
    yield header(name, FLAG[e.type], fields);
    if (size > 0) {
      if (Buffer.isBuffer(e.source)) yield e.source;
      else if (e.source && size <= SMALL) {
        let b: Buffer = readFileSync(e.source);
        // A file that changed size while being read: keep the archive well-formed.
        if (b.length !== size) b = b.length > size ? b.subarray(0, size) : Buffer.concat([b, Buffer.alloc(size - b.length)]);
        yield b;
      } else if (e.source) {
        let got = 0;
        for await (const chunk of createReadStream(e.source, { highWaterMark: 1 << 20 })) {
          const c = chunk as Buffer;
          const take = Math.min(c.length, size - got);
          if (take > 0) yield take === c.length ? c : c.subarray(0, take);
          got += take;
        }
        // A file that shrank while being read: keep the archive well-formed.
        if (got < size) yield Buffer.alloc(size - got);
      }
      yield pad(size);
    }
  }
  yield Buffer.alloc(1024);
}
