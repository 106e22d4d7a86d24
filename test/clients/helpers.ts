/**
 * Shared bits of the client suites: polling with a deadline, free loopback
 * ports, a local registry, and a scratch directory per file.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { sleep, type Result } from "../integration/harness.js";

export function ok(r: Result, what: string): Result {
  const last = r.stderr.trim().split("\n").filter(Boolean).pop() ?? "";
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${last}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  return r;
}

/** Polls `fn` until it returns a truthy value or the deadline passes; returns the last value. */
export async function poll<T>(fn: () => T | Promise<T>, ms = 15_000, every = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v || Date.now() > deadline) return v;
    await sleep(every);
  }
}

export function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

export function scratch(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Debian's docker-registry (CNCF distribution) on 127.0.0.1, storage under `dir`. */
export async function startRegistry(dir: string): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  writeFileSync(join(dir, "registry.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const proc = spawn("docker-registry", ["serve", join(dir, "registry.yml")], { stdio: "ignore" });
  const up = await poll(() => fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false), 15_000);
  assert.ok(up, "docker-registry did not answer");
  return { port, proc };
}

/** GET http://127.0.0.1:port/path; "" on any error. */
export async function httpGet(port: number, path = "/"): Promise<string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
    return await r.text();
  } catch { return ""; }
}
