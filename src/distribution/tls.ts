/**
 * Per-registry TLS, as dockerd: the directory /etc/docker/certs.d/<host[:port]>/ (then
 * /etc/berth/certs.d/<host[:port]>/) holds what a pull or push to that registry trusts and presents:
 *   *.crt           CA certificates, trusted besides the system's (the host's own trust store)
 *   NAME.cert + NAME.key   a client certificate and its key (a .cert without its .key, or a .key
 *                   without its .cert, is an error, in Docker's words)
 * Every directory that exists for the host counts (Docker reads one; berth adds its own path after
 * Docker's). The directories are read when a pull or push starts, so certificates dropped in while the
 * daemon runs are used by the next one, as dockerd; an unchanged directory reuses its connection pool.
 * A host with a directory is reached over HTTPS even on loopback (hasCertsDir).
 * berthd's `--certs-dir DIR` (repeatable) replaces the default list (tests use a temp dir).
 */
import { existsSync, promises as fsp } from "node:fs";
import { join } from "node:path";
import type { Dispatcher } from "undici";
import { BerthError } from "../lib/errors.js";

const DEFAULT_DIRS = ["/etc/docker/certs.d", "/etc/berth/certs.d"];
let dirs: string[] = DEFAULT_DIRS;

/** Where per-registry certificates live (berthd's --certs-dir); an empty list restores the defaults. */
export function setCertsDirs(list: string[]): void {
  dirs = list.length ? [...list] : DEFAULT_DIRS;
  for (const e of pools.values()) void e.agent.close().catch(() => undefined);
  pools.clear();
}

export function certsDirs(): string[] { return dirs; }

/**
 * Does `host` have a certs directory? Then it speaks TLS, loopback or not (berth otherwise reaches
 * loopback registries over plain HTTP; dockerd tries HTTPS first there, without verifying, then HTTP).
 */
export function hasCertsDir(host: string): boolean {
  if (host.includes("/") || host === "." || host === "..") return false;
  return dirs.some((d) => existsSync(join(d, host)));
}

interface TlsFiles { ca: string[]; cert?: string; key?: string }

/** The TLS material for `host` ("host:port" as in the image reference), or undefined when no directory has any. */
async function readCerts(host: string): Promise<{ files: TlsFiles; signature: string } | undefined> {
  const files: TlsFiles = { ca: [] };
  const sig: string[] = [];
  let found = false;
  for (const base of dirs) {
    // A host name is one path component: never let a reference climb out of the directory.
    if (host.includes("/") || host === "." || host === "..") return undefined;
    const dir = join(base, host);
    let names: string[];
    try { names = (await fsp.readdir(dir)).sort(); } catch { continue; }
    for (const n of names) {
      const p = join(dir, n);
      const st = await fsp.stat(p).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (n.endsWith(".crt")) {
        files.ca.push(await fsp.readFile(p, "utf8"));
      } else if (n.endsWith(".cert")) {
        const key = n.slice(0, -".cert".length) + ".key";
        if (!names.includes(key)) throw new BerthError(`missing key ${key} for client certificate ${n}`, 500);
        if (files.cert === undefined) { files.cert = await fsp.readFile(p, "utf8"); files.key = await fsp.readFile(join(dir, key), "utf8"); }
      } else if (n.endsWith(".key")) {
        const cert = n.slice(0, -".key".length) + ".cert";
        if (!names.includes(cert)) throw new BerthError(`missing client certificate ${cert} for key ${n}`, 500);
      } else continue;
      found = true;
      sig.push(`${p}:${st.size}:${st.mtimeMs}:${st.ino}`);
    }
  }
  return found ? { files, signature: sig.join("\n") } : undefined;
}

const pools = new Map<string, { signature: string; agent: Dispatcher & { close(): Promise<void> } }>();

/**
 * The dispatcher a fetch to https://`host` goes through when its certs directory says so, or undefined
 * (the default: Node's own trust store and pool). undici is loaded only then.
 */
export async function dispatcherFor(host: string): Promise<Dispatcher | undefined> {
  const certs = await readCerts(host);
  if (!certs) {
    const old = pools.get(host);
    if (old) { pools.delete(host); void old.agent.close().catch(() => undefined); }
    return undefined;
  }
  const have = pools.get(host);
  if (have && have.signature === certs.signature) return have.agent;
  const [{ Agent }, tls] = await Promise.all([import("undici"), import("node:tls")]);
  // The system's roots (and NODE_EXTRA_CA_CERTS, which Node adds to its own) with the directory's CAs.
  const extra = process.env.NODE_EXTRA_CA_CERTS ? await fsp.readFile(process.env.NODE_EXTRA_CA_CERTS, "utf8").catch(() => "") : "";
  const ca = [...tls.rootCertificates, ...(extra ? [extra] : []), ...certs.files.ca];
  const agent = new Agent({ connect: { ca, ...(certs.files.cert ? { cert: certs.files.cert, key: certs.files.key } : {}) } });
  if (have) void have.agent.close().catch(() => undefined);
  pools.set(host, { signature: certs.signature, agent });
  return agent;
}
