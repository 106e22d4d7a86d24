/**
 * Synchronous layer extraction: a TarUnpacker is fed the uncompressed bytes
 * of one layer tar in chunks and writes its entries under a directory with
 * blocking fs calls. It runs in a layer worker thread (layer-worker.ts),
 * never on the daemon's event loop: blocking calls there are the fast way to
 * make many small files, and big file bodies go to disk in one write per chunk.
 *
 * Formats read (as Go's archive/tar, which Docker uses): ustar with its name
 * prefix, GNU long names and long link names, PAX records (path, linkpath,
 * size, uid, gid, mtime, SCHILY.xattr.*), base-256 numbers, v7 headers.
 * Extended attributes (security.capability of ping, say) are set after the
 * owner (chown clears file capabilities), all of a layer's in one
 * `setfattr --restore`; trusted.* ones from a layer are refused (overlay's
 * own markers must not be forged), and one that cannot be set is skipped. Link, symlink, device,
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
 */
import { spawnSync } from "node:child_process";
import { constants, chmodSync, closeSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { BadParameterError, SystemError } from "../lib/errors.js";
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

interface Header { name: string; linkname: string; type: EntryType; mode: number; uid: number; gid: number; size: number; mtime: number; devmajor: number; devminor: number }

const BLOCK = 512;
/** PAX records and GNU long names larger than this are refused (tar-stream's limit too). */
const MAX_META = 1 << 20;
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

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
      out[key] = b.toString(key.startsWith("SCHILY.xattr.") ? "latin1" : "utf8", eqAt + 1, off + len - 1);
    }
    off += len;
  }
  return out;
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
  private sink: "skip" | "file" | "meta" = "skip";
  private fd = -1;
  private file: Header | undefined;
  private filePath = "";
  private fileXattrs: [string, string][] = [];
  private meta: Buffer[] = [];
  private metaFlag = 0;
  private pax: Record<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Parent directories already resolved and made: relative path → absolute. Cleared whenever anything is removed. */
  private readonly parents = new Map<string, string>();
  private readonly dirTimes: [string, number][] = [];
  /** Extended attributes to set when the layer ends: path → name → value bytes (latin1). */
  private readonly xattrs: [string, [string, string][]][] = [];
  private entryXattrs: [string, string][] = [];

  constructor(readonly root: string) {}

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

  /** The tar ended: fails if it ended inside an entry; sets directory times (children first). */
  end(): void {
    if (this.remaining > 0 || this.pad > 0 || this.fill > 0) { this.abort(); fail("unexpected end of data"); }
    this.applyXattrs();
    // lutimes: a directory a later entry replaced by a symlink must not lead the times outside.
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const [p, t] = this.dirTimes[i];
      try { lutimesSync(p, t, t); } catch { /* best effort, as tar */ }
    }
  }

  /** One setfattr for the whole layer; attributes the filesystem refuses are skipped, as tar --xattrs does. */
  private applyXattrs(): void {
    if (!this.xattrs.length) return;
    const esc = (p: string) => p.replace(/[\\\n\r\t=" ]|[^\x20-\x7e]/g, (c) => [...Buffer.from(c)].map((x) => "\\" + x.toString(8).padStart(3, "0")).join(""));
    const dump = this.xattrs.map(([p, list]) => `# file: ${esc(p)}\n${list.map(([n, v]) => `${n}=0s${Buffer.from(v, "latin1").toString("base64")}`).join("\n")}\n`).join("\n");
    spawnSync("setfattr", ["--restore=-"], { input: dump, stdio: ["pipe", "ignore", "ignore"] });
  }

  /** Closes what is open (after an error). */
  abort(): void {
    if (this.fd >= 0) { try { closeSync(this.fd); } catch { /* already gone */ } this.fd = -1; }
  }

  private data(b: Uint8Array): void {
    if (this.sink === "file") {
      for (let o = 0; o < b.length;) o += writeSync(this.fd, b, o, b.length - o);
    } else if (this.sink === "meta") {
      this.meta.push(Buffer.from(b));
    }
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
      name, linkname: str(b, 157, 100), type, mode: num(b, 100, 8), uid: num(b, 108, 8), gid: num(b, 116, 8),
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
      this.entryXattrs = Object.entries(pax).filter(([k]) => k.startsWith("SCHILY.xattr.") && !k.startsWith("SCHILY.xattr.trusted."))
        .map(([k, v]) => [k.slice("SCHILY.xattr.".length), v]);
    } else {
      this.entryXattrs = [];
    }
    this.pax = this.longName = this.longLink = undefined;
    if (h.type === "file" && h.name.endsWith("/")) h.type = "directory"; // old tars mark directories so
    const hasData = h.type === "file" || h.type === "other";
    this.sink = "skip";
    this.entry(h);
    this.start(hasData ? h.size : 0);
  }

  private start(size: number): void {
    this.remaining = size;
    this.pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    if (this.sink === "file") {
      const h = this.file!, fd = this.fd;
      this.fd = -1;
      try {
        try { fchownSync(fd, h.uid, h.gid); } catch { /* as tar without privileges */ }
        fchmodSync(fd, h.mode & 0o7777);
        try { futimesSync(fd, h.mtime, h.mtime); } catch { /* best effort */ }
      } finally { closeSync(fd); }
      this.size += h.size;
      if (this.fileXattrs.length) this.xattrs.push([this.filePath, this.fileXattrs]);
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
        this.dirTimes.push([this.root, h.mtime]);
      }
      return;
    }
    const slash = name.lastIndexOf("/");
    const base = name.slice(slash + 1);
    const parent = this.parentDir(slash < 0 ? "" : name.slice(0, slash));
    if (parent !== this.root && !parent.startsWith(this.root + "/")) return;
    const target = join(parent, base);
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
        this.filePath = target;
        this.fileXattrs = this.entryXattrs;
        this.sink = "file";
        return; // owner, mode and times once the data is in (endEntry)
      case "directory":
        mkdirSync(target, { recursive: true });
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
    if (h.type !== "symlink" && this.entryXattrs.length) this.xattrs.push([target, this.entryXattrs]);
    if (h.type === "directory") this.dirTimes.push([target, h.mtime]);
    else { try { lutimesSync(target, h.mtime, h.mtime); } catch { /* best effort */ } }
  }
}
