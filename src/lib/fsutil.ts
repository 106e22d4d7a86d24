/**
 * Durable file writes: write to a temporary file in the same directory,
 * fsync it, rename over the target, fsync the directory. A crash at any point
 * leaves the old or the new content, never a torn file.
 */
import { promises as fsp, openSync, writeSync, fsyncSync, closeSync, renameSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";

function tmpName(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
}

/**
 * Writes via a temporary file renamed over `path`. `durable` (the default) also fsyncs the file and its
 * directory; "file" fsyncs the file only (as moby's atomic writer: the data is whole if the name survives).
 */
export async function atomicWrite(path: string, data: string | Uint8Array, mode = 0o644, durable: boolean | "file" = true): Promise<void> {
  const tmp = tmpName(path);
  const fh = await fsp.open(tmp, "w", mode);
  try {
    await fh.writeFile(data);
    if (durable) await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  if (durable === true) await fsyncDir(dirname(path));
}

export function atomicWriteSync(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = tmpName(path);
  const fd = openSync(tmp, "w", mode);
  try {
    if (typeof data === "string") writeSync(fd, data); else writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const d = openSync(dirname(path), "r");
    try { fsyncSync(d); } finally { closeSync(d); }
  } catch { /* directory fsync is best effort */ }
}

export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await fsp.open(dir, "r");
    try { await fh.sync(); } finally { await fh.close(); }
  } catch { /* best effort */ }
}

export async function writeJson(path: string, value: unknown, durable: boolean | "file" = true): Promise<void> {
  await atomicWrite(path, JSON.stringify(value, null, 1), 0o644, durable);
}

export async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await fsp.readFile(path, "utf8")) as T;
}

export function readJsonSync<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  try {
    return await readJson<T>(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

export async function ensureDir(path: string, mode = 0o755): Promise<void> {
  await fsp.mkdir(path, { recursive: true, mode });
}

export function ensureDirSync(path: string, mode = 0o755): void {
  mkdirSync(path, { recursive: true, mode });
}

export async function exists(path: string): Promise<boolean> {
  try { await fsp.lstat(path); return true; } catch { return false; }
}
