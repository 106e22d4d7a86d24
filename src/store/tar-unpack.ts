/**
 * Synchronous layer extraction: a TarUnpacker is fed the uncompressed bytes
 * of one layer tar in chunks and writes its entries under a directory with
 * blocking fs calls. It runs in a layer worker thread (layer-worker.ts),
 * never on the daemon's event loop: blocking calls there are the fast way to
 * make many small files, and big file bodies go to disk in one write per chunk.
 *
 * Formats read (as Go's archive/tar, which Docker uses): ustar with its name
 * prefix, GNU long names and long link names, PAX records (path, linkpath,
 * size, uid, gid, mtime, SCHILY.xattr.*), base-256 numbers, v7 headers, and
 * GNU sparse files in their PAX forms 0.0, 0.1 and 1.0 (what `tar -S
 * --format=posix` writes): the map is validated as Go's validateSparseEntries
 * does (fragments in order, not overlapping, inside the real size; the data
 * exactly as long as the map says), the data lands at its offsets and the
 * holes stay holes, so the file reads back byte for byte. The old GNU sparse
 * type 'S' (`tar -S` in the default gnu format) is refused, as dockerd refuses
 * it ("unhandled tar header type 83": Go's reader hands it on as type 'S' and
 * Docker's unpacker has no case for it); so is every other type Docker's
 * unpacker does not handle, rather than dropping the entry silently.
 * Extended attributes (security.capability of ping, say) are set after the
 * owner (chown clears file capabilities), all of a layer's in one
 * `setfattr -h --restore` (never through a symlink, and only on paths whose
 * parents are still the directories they were: a later entry may have
 * swapped one for a symlink that leads out); trusted.* ones from a layer are
 * refused (overlay's own markers must not be forged), values over the
 * kernel's 64 KiB are dropped (no filesystem takes them), at most 64 MiB of
 * them are held per layer, and one that cannot be set is skipped. Link, symlink, device,
 * directory and FIFO entries carry no data whatever their size field says.
 * Two zero blocks end the archive; anything after them is ignored.
 *
 * Hostile-tar safety: names are cleaned lexically, parents are resolved inside
 * the layer directory (a symlink met on the way is followed as if the layer
 * were "/", so it never leads out), files are created O_EXCL|O_NOFOLLOW after
 * whatever was at the name is removed, hardlinks must point inside the layer,
 * whiteouts become overlay whiteouts (0/0 char devices) and opaque markers the
 * trusted.overlay.opaque xattr. A layer is unpacked into its own directory: a
 * path under a symlink that only a lower layer has is created as a real
 * directory here.
 *
 * Errors name the entry as the tar spells it, never a path on the host: a
 * filesystem error caused by the layer's own shape (a file where a directory
 * is needed, a link to nothing) is a 400 "invalid layer tar: ..."; running out
 * of space or descriptors is a 500.
 */
import { spawnSync } from "node:child_process";
import { mapId, type IdMaps } from "./idmap.js";
import { constants, chmodSync, closeSync, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { BadParameterError, BerthError, SystemError } from "../lib/errors.js";
import { secureJoinSync } from "../lib/securejoin.js";

/** Lexically cleans a tar entry name to a relative path inside the layer; undefined for the root itself. */
export function cleanEntryName(name: string): string | undefined {
  const out: string[] = [];
  for (const p of name.split("/")) {
    if (!p || p === ".") continue;
    if (p === "..") { out.pop(); continue; }
    out.push(p);
  }
  return out.length ? out.join("/") : undefined;
}

type EntryType = "file" | "link" | "symlink" | "char" | "block" | "directory" | "fifo" | "other";

/** A GNU sparse file (PAX 0.0/0.1/1.0): its real size and data fragments; a 1.0 map comes first in the data. */
interface Sparse { realSize: number; map?: [number, number][] }

interface Header { name: string; linkname: string; type: EntryType; flag: number; mode: number; uid: number; gid: number; size: number; mtime: number; devmajor: number; devminor: number; sparse?: Sparse }

const BLOCK = 512;
/** PAX records and GNU long names larger than this are refused (tar-stream's limit too). */
const MAX_META = 1 << 20;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** The kernel's limit on one extended attribute value (XATTR_SIZE_MAX). */
const MAX_XATTR_VALUE = 64 << 10;
/** Extended attribute bytes held for one layer until its end. */
const MAX_XATTR_TOTAL = 64 << 20;
/** errno codes that say the host ran out of something, not that the layer is malformed. */
const HOST_ERRORS = new Set(["ENOSPC", "EDQUOT", "EIO", "EMFILE", "ENFILE", "ENOMEM", "EROFS", "EAGAIN"]);

function fail(msg: string): never { throw new BadParameterError(`invalid layer tar: ${msg}`); }

function str(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return Buffer.from(b.buffer, b.byteOffset + off, end - off).toString("utf8");
}

/** An octal field (leading spaces/NULs, ended by space or NUL), or base-256 when the high bit is set. */
function num(b: Uint8Array, off: number, len: number): number {
  if (b[off] & 0x80) {
    if (b[off] !== 0x80) fail("negative number");
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i];
    return v;
  }
  let i = off, v = 0;
  const end = off + len;
  while (i < end && (b[i] === 0x20 || b[i] === 0)) i++;
  for (; i < end && b[i] !== 0x20 && b[i] !== 0; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 7) fail("bad number in header");
    v = v * 8 + d;
  }
  return v;
}

function checksumOk(b: Uint8Array): boolean {
  let unsigned = 0, signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  let want: number;
  try { want = num(b, 148, 8); } catch { return false; }
  return want === unsigned || want === signed;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function typeOf(flag: number): EntryType {
  switch (flag) {
    case 0: case 0x30: case 0x37: return "file"; // '\0', '0', '7' (contiguous)
    case 0x31: return "link";
    case 0x32: return "symlink";
    case 0x33: return "char";
    case 0x34: return "block";
    case 0x35: return "directory";
    case 0x36: return "fifo";
    default: return "other";
  }
}

/** PAX extended header records: "<len> <key>=<value>\n". */
function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  const sparse: string[] = [];
  let off = 0;
  while (off < b.length) {
    const sp = b.indexOf(0x20, off);
    if (sp < 0) break;
    const len = Number(b.toString("latin1", off, sp));
    if (!Number.isInteger(len) || len <= sp - off || off + len > b.length) fail("bad PAX record");
    const eqAt = b.indexOf(0x3d, sp + 1);
    if (eqAt > sp + 1 && eqAt < off + len - 1) {
      const key = b.toString("utf8", sp + 1, eqAt);
      // xattr values are bytes, not text: kept byte for byte (latin1 round-trips every byte).
      const value = b.toString(key.startsWith("SCHILY.xattr.") ? "latin1" : "utf8", eqAt + 1, off + len - 1);
      if (key === "GNU.sparse.offset" || key === "GNU.sparse.numbytes") {
        // PAX 0.0 repeats these two keys, alternately, in order: kept as a 0.1 map (as Go's parsePAX does).
        if ((sparse.length % 2 === 0) !== (key === "GNU.sparse.offset") || value.includes(",")) fail("bad GNU sparse map in PAX records");
        sparse.push(value);
      } else {
        out[key] = value;
      }
    }
    off += len;
  }
  if (sparse.length) out["GNU.sparse.map"] = sparse.join(",");
  return out;
}

/** The GNU sparse PAX records of an entry (0.0 and 0.1: the map in the records; 1.0: in the data), as Go's readGNUSparsePAXHeaders. */
function sparseOf(pax: Record<string, string>, h: Header): Sparse | undefined {
  const major = pax["GNU.sparse.major"], minor = pax["GNU.sparse.minor"];
  let v1: boolean;
  if (major === "0" && (minor === "0" || minor === "1")) v1 = false;
  else if (major === "1" && minor === "0") v1 = true;
  else if (major !== undefined || minor !== undefined) fail(`unsupported GNU sparse format ${major ?? "?"}.${minor ?? "?"} for ${h.name}`);
  else if (pax["GNU.sparse.map"] !== undefined) v1 = false;
  else return undefined;
  if (pax["GNU.sparse.name"]) h.name = pax["GNU.sparse.name"];
  const size = pax["GNU.sparse.size"] ?? pax["GNU.sparse.realsize"];
  if (size === undefined || !/^\d+$/.test(size) || !Number.isSafeInteger(Number(size))) fail(`bad GNU sparse size for ${h.name}`);
  const realSize = Number(size);
  if (v1) return { realSize };
  const raw = pax["GNU.sparse.map"] ?? "";
  const nums = raw === "" ? [] : raw.split(",");
  if (nums.length % 2 || nums.some((n) => !/^\d+$/.test(n))) fail(`bad GNU sparse map for ${h.name}`);
  const map: [number, number][] = [];
  for (let i = 0; i < nums.length; i += 2) map.push([Number(nums[i]), Number(nums[i + 1])]);
  return { realSize, map };
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw new SystemError(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new SystemError(`${cmd} ${args.join(" ")}: ${(r.stderr || `exit status ${r.status}`).trim()}`);
}

export class TarUnpacker {
  /** Bytes of regular files written (the snapshot's size). */
  size = 0;
  private readonly block = Buffer.alloc(BLOCK);
  private fill = 0;
  /** Data bytes left in the current entry, then padding bytes to its block boundary. */
  private remaining = 0;
  private pad = 0;
  private zeros = 0;
  private done = false;
  /** Where the current entry's data goes. */
  private sink: "skip" | "file" | "sparse" | "meta" = "skip";
  private fd = -1;
  private file: Header | undefined;
  /** A sparse file being written: its 1.0 map text (until parsed), its fragments, the one being filled and how far. */
  private sparseMapText: Buffer[] = [];
  private sparseMapLen = 0;
  private frags: [number, number][] | undefined;
  private frag = 0;
  private fragDone = 0;
  private filePath = "";
  private fileXattrs: [string, string][] = [];
  private meta: Buffer[] = [];
  private metaFlag = 0;
  private pax: Record<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Parent directories already resolved and made: relative path → absolute. Cleared whenever anything is removed. */
  private readonly parents = new Map<string, string>();
  /** Directories made for entries whose parents the layer does not carry (relative to root). */
  readonly invented = new Set<string>();
  /** Directory times to set when the layer ends: relative path → mtime. */
  private readonly dirTimes: [string, number][] = [];
  /** Extended attributes to set when the layer ends: relative path → name → value bytes (latin1). */
  private readonly xattrs: [string, [string, string][]][] = [];
  private xattrBytes = 0;
  private entryXattrs: [string, string][] = [];

  /** `maps`: every entry's owner is moved into a remapped daemon's host range (cp into its container). */
  constructor(readonly root: string, private readonly maps?: IdMaps) {}

  write(chunk: Uint8Array): void {
    let off = 0;
    const len = chunk.length;
    while (off < len && !this.done) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, len - off);
        this.data(chunk.subarray(off, off + n));
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endEntry();
      } else if (this.pad > 0) {
        const n = Math.min(this.pad, len - off);
        off += n;
        this.pad -= n;
      } else if (this.fill === 0 && len - off >= BLOCK) {
        this.header(chunk.subarray(off, off + BLOCK));
        off += BLOCK;
      } else {
        const n = Math.min(BLOCK - this.fill, len - off);
        this.block.set(chunk.subarray(off, off + n), this.fill);
        this.fill += n;
        off += n;
        if (this.fill === BLOCK) { this.fill = 0; this.header(this.block); }
      }
    }
  }

  /**
   * The tar ended: fails if it ended inside an entry's data or header; sets directory times (children first).
   * As Go's archive/tar (what dockerd reads with): an archive may end right after an entry's data, without
   * its padding or the two zero blocks (the docker CLI sends a context so when -f names a Dockerfile
   * outside it).
   */
  end(): void {
    if (this.remaining > 0 || this.fill > 0) { this.abort(); fail("unexpected end of data"); }
    this.applyXattrs();
    // lutimes, and only where the parents are still real directories: a directory a later entry replaced
    // by a symlink (itself or one of its parents) must not lead the times outside.
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const [rel, t] = this.dirTimes[i];
      const p = this.stillInside(rel);
      if (p === undefined) continue;
      try { lutimesSync(p, t, t); } catch { /* best effort, as tar */ }
    }
  }

  /** The host path of `rel` if no component of it but the last is (any longer) a symlink; undefined otherwise. */
  private stillInside(rel: string): string | undefined {
    if (!rel) return this.root;
    const p = join(this.root, rel);
    try { return secureJoinSync(this.root, rel, false) === p ? p : undefined; } catch { return undefined; }
  }

  /** One setfattr for the whole layer; attributes the filesystem refuses are skipped, as tar --xattrs does. */
  private applyXattrs(): void {
    if (!this.xattrs.length) return;
    const esc = (p: string) => p.replace(/[\\\n\r\t=" ]|[^\x20-\x7e]/g, (c) => [...Buffer.from(c)].map((x) => "\\" + x.toString(8).padStart(3, "0")).join(""));
    const dump = this.xattrs.flatMap(([rel, list]) => {
      const p = this.stillInside(rel);
      return p === undefined ? [] : [`# file: ${esc(p)}\n${list.map(([n, v]) => `${n}=0s${Buffer.from(v, "latin1").toString("base64")}`).join("\n")}\n`];
    }).join("\n");
    // -h: a path a later entry made a symlink gets the attributes on the link (refused for user.*), never its target.
    if (dump) spawnSync("setfattr", ["-h", "--restore=-"], { input: dump, stdio: ["pipe", "ignore", "ignore"] });
  }

  private keepXattrs(rel: string, list: [string, string][]): void {
    for (const [n, v] of list) this.xattrBytes += n.length + v.length;
    if (this.xattrBytes > MAX_XATTR_TOTAL) fail(`more than ${MAX_XATTR_TOTAL >> 20} MiB of extended attributes`);
    this.xattrs.push([rel, list]);
  }

  /** Closes what is open (after an error). */
  abort(): void {
    if (this.fd >= 0) { try { closeSync(this.fd); } catch { /* already gone */ } this.fd = -1; }
  }

  private data(b: Uint8Array): void {
    if (this.sink === "file") {
      try {
        for (let o = 0; o < b.length;) o += writeSync(this.fd, b, o, b.length - o);
      } catch (e) { this.rethrow(e, this.file!.name); }
    } else if (this.sink === "sparse") {
      this.sparseData(b);
    } else if (this.sink === "meta") {
      this.meta.push(Buffer.from(b));
    }
  }

  /** A sparse file's data: first (1.0) its map, in whole blocks; then each fragment at its offset. */
  private sparseData(b: Uint8Array): void {
    const h = this.file!;
    while (!this.frags && b.length) {
      const k = Math.min(b.length, BLOCK - (this.sparseMapLen % BLOCK));
      this.sparseMapText.push(Buffer.from(b.subarray(0, k)));
      this.sparseMapLen += k;
      b = b.subarray(k);
      if (this.sparseMapLen % BLOCK) continue;
      if (this.sparseMapLen > MAX_META) fail(`GNU sparse map of ${h.name} is too large`);
      const text = Buffer.concat(this.sparseMapText);
      const fields = text.toString("latin1").split("\n");
      const count = Number(fields[0]);
      if (!fields.length || !/^\d+$/.test(fields[0]) || count > MAX_META) fail(`bad GNU sparse map in ${h.name}`);
      if (fields.length - 1 < 2 * count + 1) continue; // more map blocks follow
      const nums = fields.slice(1, 1 + 2 * count);
      this.sparseMapText = [];
      this.setFragments(h, nums, this.sparseMapLen);
    }
    try {
      while (b.length) {
        const frags = this.frags!;
        while (this.frag < frags.length && this.fragDone === frags[this.frag][1]) { this.frag++; this.fragDone = 0; }
        if (this.frag >= frags.length) fail(`sparse file ${h.name} has more data than its map`);
        const [off, len] = frags[this.frag];
        const k = Math.min(b.length, len - this.fragDone);
        for (let o = 0; o < k;) o += writeSync(this.fd, b, o, k - o, off + this.fragDone + o);
        this.fragDone += k;
        b = b.subarray(k);
      }
    } catch (e) { this.rethrow(e, h.name); }
  }

  /** Checks a sparse map (decimal offset, length pairs) as Go's validateSparseEntries does, against the data the entry carries. */
  private setFragments(h: Header, nums: string[], mapBytes: number): void {
    if (nums.length % 2 || nums.some((n) => !/^\d+$/.test(n))) fail(`bad GNU sparse map in ${h.name}`);
    const frags: [number, number][] = [];
    let end = 0, data = 0;
    for (let i = 0; i < nums.length; i += 2) {
      const off = Number(nums[i]), len = Number(nums[i + 1]);
      if (!Number.isSafeInteger(off + len) || off < end || off + len > h.sparse!.realSize) fail(`bad GNU sparse map in ${h.name}: fragments out of order, overlapping or past the file's size`);
      end = off + len;
      data += len;
      frags.push([off, len]);
    }
    if (data + mapBytes !== h.size) fail(`sparse file ${h.name}: its map describes ${data} bytes of data, the entry holds ${h.size - mapBytes}`);
    this.frags = frags;
    this.frag = this.fragDone = 0;
  }

  /** Rethrows an error met while writing an entry with the entry's name in the archive, never a host path. */
  private rethrow(e: unknown, name: string): never {
    if (e instanceof BerthError) throw e.message.includes(this.root) ? new BerthError(e.message.split(this.root).join(""), e.status) : e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code && HOST_ERRORS.has(code)) throw new SystemError(`unpacking ${name}: ${code === "ENOSPC" ? "no space left on device" : code}`);
    throw new BadParameterError(`invalid layer tar: cannot unpack ${name}: ${code ?? (e instanceof Error ? e.message.split(this.root).join("") : String(e))}`);
  }

  private header(b: Uint8Array): void {
    if (isZero(b)) {
      if (++this.zeros === 2) this.done = true;
      return;
    }
    this.zeros = 0;
    if (!checksumOk(b)) fail("bad header checksum (not a tar, or corrupt)");
    const flag = b[156];
    const size = num(b, 124, 12);
    // 'x' PAX, 'g' global PAX (ignored, as Go's archive/tar does for file attributes), 'L'/'K' GNU long name/link.
    if (flag === 0x78 || flag === 0x67 || flag === 0x4c || flag === 0x4b) {
      if (size > MAX_META) fail(`extended header of ${size} bytes`);
      this.sink = "meta";
      this.metaFlag = flag;
      this.meta = [];
      this.start(size);
      return;
    }
    let name = str(b, 0, 100);
    // POSIX ustar ("ustar\0"): a prefix field before the name. (GNU "ustar  " uses those bytes for times.)
    if (b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72 && b[262] === 0 && b[345]) name = `${str(b, 345, 155)}/${name}`;
    const type = typeOf(flag);
    const dev = type === "char" || type === "block"; // the device fields mean nothing (may hold anything) otherwise
    const h: Header = {
      name, linkname: str(b, 157, 100), type, flag, mode: num(b, 100, 8), uid: num(b, 108, 8), gid: num(b, 116, 8),
      size, mtime: num(b, 136, 12), devmajor: dev ? num(b, 329, 8) : 0, devminor: dev ? num(b, 337, 8) : 0,
    };
    if (this.longName !== undefined) h.name = this.longName;
    if (this.longLink !== undefined) h.linkname = this.longLink;
    const pax = this.pax;
    if (pax) {
      if (pax.path !== undefined) h.name = pax.path;
      if (pax.linkpath !== undefined) h.linkname = pax.linkpath;
      const n = (k: string) => { const v = Number(pax[k]); if (pax[k] === undefined || !Number.isFinite(v) || v < 0) return undefined; return v; };
      h.size = n("size") ?? h.size;
      h.uid = n("uid") ?? h.uid;
      h.gid = n("gid") ?? h.gid;
      h.mtime = n("mtime") ?? h.mtime;
      this.entryXattrs = Object.entries(pax).filter(([k, v]) => k.startsWith("SCHILY.xattr.") && !k.startsWith("SCHILY.xattr.trusted.") && v.length <= MAX_XATTR_VALUE)
        .map(([k, v]) => [k.slice("SCHILY.xattr.".length), v]);
      h.sparse = sparseOf(pax, h);
    } else {
      this.entryXattrs = [];
    }
    this.pax = this.longName = this.longLink = undefined;
    if (this.maps) { h.uid = mapId(this.maps.uids, h.uid, h.name); h.gid = mapId(this.maps.gids, h.gid, h.name); }
    if (h.type === "file" && h.name.endsWith("/")) h.type = "directory"; // old tars mark directories so
    if (h.type !== "file") h.sparse = undefined;
    // As Docker's unpacker (createTarFile): a type it has no case for is an error, not an entry dropped silently.
    if (h.type === "other") fail(`unhandled tar header type ${flag}${flag === 0x53 ? ` (${h.name} is an old GNU sparse file: write it with tar --format=posix, or without -S)` : ` (${h.name})`}`);
    const hasData = h.type === "file";
    this.sink = "skip";
    try { this.entry(h); } catch (e) { this.rethrow(e, h.name); }
    this.start(hasData ? h.size : 0);
  }

  private start(size: number): void {
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    if (this.sink === "sparse") {
      const h = this.file!;
      if (!this.frags) fail(`bad GNU sparse map in ${h.name}`);
      if (this.frags.some(([, len], i) => i > this.frag ? len > 0 : i === this.frag && this.fragDone < len)) fail(`sparse file ${h.name} has less data than its map`);
      try { ftruncateSync(this.fd, h.sparse!.realSize); } catch (e) { this.rethrow(e, h.name); }
      this.sink = "file";
    }
    if (this.sink === "file") {
      const h = this.file!, fd = this.fd;
      this.fd = -1;
      try {
        try { fchownSync(fd, h.uid, h.gid); } catch { /* as tar without privileges */ }
        fchmodSync(fd, h.mode & 0o7777);
        try { futimesSync(fd, h.mtime, h.mtime); } catch { /* best effort */ }
      } finally { closeSync(fd); }
      this.size += h.sparse ? h.sparse.realSize : h.size;
      if (this.fileXattrs.length) this.keepXattrs(this.filePath, this.fileXattrs);
    } else if (this.sink === "meta") {
      const b = Buffer.concat(this.meta);
      this.meta = [];
      if (this.metaFlag === 0x78) this.pax = { ...this.pax, ...parsePax(b) };
      else if (this.metaFlag === 0x4c) this.longName = str(b, 0, b.length);
      else if (this.metaFlag === 0x4b) this.longLink = str(b, 0, b.length);
    }
    this.sink = "skip";
  }

  /** The directory `rel` (relative to root, "" for root) resolved inside the layer and made if missing. */
  private parentDir(rel: string): string {
    let p = this.parents.get(rel);
    if (p === undefined) {
      p = secureJoinSync(this.root, rel);
      // Parents the layer has no entry for: made here, and listed so the snapshotter can give them the
      // owner and mode the lower layers have (overlay shows the upper directory's, not the lower's).
      for (let q = p; q.startsWith(this.root + "/") && !lstatSync(q, { throwIfNoEntry: false }); q = dirname(q)) this.invented.add(q.slice(this.root.length + 1));
      mkdirSync(p, { recursive: true, mode: 0o755 });
      this.parents.set(rel, p);
    }
    return p;
  }

  private remove(p: string): void {
    rmSync(p, { recursive: true, force: true });
    this.parents.clear();
  }

  private entry(h: Header): void {
    const name = cleanEntryName(h.name);
    if (!name) {
      if (h.type === "directory") {
        try { lchownSync(this.root, h.uid, h.gid); } catch { /* as tar without privileges */ }
        chmodSync(this.root, h.mode & 0o7777);
        this.dirTimes.push(["", h.mtime]);
      }
      return;
    }
    const slash = name.lastIndexOf("/");
    const base = name.slice(slash + 1);
    const parent = this.parentDir(slash < 0 ? "" : name.slice(0, slash));
    if (parent !== this.root && !parent.startsWith(this.root + "/")) return;
    const target = join(parent, base);
    const rel = target.slice(this.root.length + 1);
    if (base === ".wh..wh..opq") {
      run("setfattr", ["-n", "trusted.overlay.opaque", "-v", "y", parent]);
      return;
    }
    if (base.startsWith(".wh.")) {
      const hide = base.slice(4);
      if (!hide || hide === "." || hide === "..") return;
      const hidden = join(parent, hide);
      this.remove(hidden);
      run("mknod", ["-m", "0", hidden, "c", "0", "0"]);
      return;
    }
    // Replace whatever is there (but merge into an existing directory).
    const existing = lstatSync(target, { throwIfNoEntry: false });
    if (existing && !(existing.isDirectory() && h.type === "directory")) this.remove(target);
    const mode = h.mode & 0o7777;
    switch (h.type) {
      case "file":
        this.fd = openSync(target, CREATE, 0o600);
        this.file = h;
        this.filePath = rel;
        this.fileXattrs = this.entryXattrs;
        this.sink = h.sparse ? "sparse" : "file";
        if (h.sparse) {
          this.frags = undefined;
          this.sparseMapText = [];
          this.sparseMapLen = 0;
          if (h.sparse.map) this.setFragments(h, h.sparse.map.flat().map(String), 0);
        }
        return; // owner, mode and times once the data is in (endEntry)
      case "directory":
        mkdirSync(target, { recursive: true });
        this.invented.delete(rel);
        break;
      case "symlink":
        symlinkSync(h.linkname, target);
        break;
      case "link": {
        const linkName = cleanEntryName(h.linkname);
        if (!linkName) throw new BadParameterError(`invalid hardlink ${h.name} → ${h.linkname}`);
        const src = secureJoinSync(this.root, linkName, false);
        if (!src.startsWith(this.root + "/")) throw new BadParameterError(`hardlink ${h.name} points outside the layer`);
        linkSync(src, target);
        return;
      }
      case "char": case "block": case "fifo":
        run("mknod", ["-m", mode.toString(8), target, h.type === "fifo" ? "p" : h.type === "block" ? "b" : "c",
          ...(h.type === "fifo" ? [] : [String(h.devmajor), String(h.devminor)])]);
        break;
      default:
        return;
    }
    try { lchownSync(target, h.uid, h.gid); } catch { /* as tar without privileges */ }
    if (h.type !== "symlink") chmodSync(target, mode);
    if (h.type !== "symlink" && this.entryXattrs.length) this.keepXattrs(rel, this.entryXattrs);
    if (h.type === "directory") this.dirTimes.push([rel, h.mtime]);
    else { try { lutimesSync(target, h.mtime, h.mtime); } catch { /* best effort */ } }
  }
}
