/**
 * A layer that carries a file but not its parent directories (as images
 * built by other tools do) must not change those directories: the unpacker
 * makes the parents it needs, and the snapshotter gives them the owner, mode
 * and times the lower layers have, so the merged view keeps /tmp 1777 and a
 * user's 1000:1000 1777 home, as dockerd's overlay2 shows them. Through
 * `load` (serial) and through a pull from a registry (layers unpacked at
 * once, each waiting for its parent only for this).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import tar from "tar-stream";
import { spawn, type ChildProcess } from "node:child_process";
import { Daemon, freePort, sleep } from "./harness.js";

const d = new Daemon();
const tmp = mkdtempSync(join(tmpdir(), "berth-layer-parents-"));
const made: string[] = [];

before(async () => { await d.start(); await d.bootstrap(); });
after(async () => {
  for (const i of made) d.berth(["rmi", "-f", i]);
  await d.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function ok(r: { code: number; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  return r.stdout.trim();
}

/** The entries of a tar (small archives only). */
async function readTar(buf: Buffer): Promise<{ name: string; header: tar.Header; body: Buffer }[]> {
  const out: { name: string; header: tar.Header; body: Buffer }[] = [];
  const ex = tar.extract();
  ex.on("entry", (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: unknown) => { chunks.push(c as Buffer); });
    stream.on("end", () => { out.push({ name: header.name, header, body: Buffer.concat(chunks) }); next(); });
  });
  const done = new Promise<void>((r, j) => { ex.on("finish", () => r()); ex.on("error", j); });
  ex.end(buf);
  await done;
  return out;
}

async function writeTar(entries: { header: Partial<tar.Header> & { name: string }; body?: Buffer }[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on("data", (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((r) => { p.on("end", () => r()); });
  for (const e of entries) p.entry(e.header as tar.Header, e.body ?? Buffer.alloc(0));
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

/** A layer with files only: no entry for /tmp, /home, /home/app or /home/app/sub. */
function filesOnly(): Promise<Buffer> {
  const mtime = new Date("2026-01-01T00:00:00Z");
  return writeTar([
    { header: { name: "tmp/x", mode: 0o644, mtime }, body: Buffer.from("x\n") },
    { header: { name: "home/app/sub/a.txt", mode: 0o644, mtime }, body: Buffer.from("a\n") },
  ]);
}

test("a layer without its parents' entries keeps the lower layers' owners and modes (load)", async () => {
  ok(d.berth(["run", "--name", "lp-base", "busybox", "sh", "-c", "mkdir -p /home/app && chown 1000:1000 /home/app && chmod 1777 /home/app && chmod 1777 /tmp"]), "base");
  ok(d.berth(["commit", "lp-base", "lp-base:1"]), "commit");
  made.push("lp-base:1");
  ok(d.berth(["rm", "lp-base"]), "rm");
  const saved = join(tmp, "base.tar");
  ok(d.berth(["save", "-o", saved, "lp-base:1"]), "save");
  const entries = await readTar(readFileSync(saved));
  const manifest = JSON.parse(entries.find((e) => e.name === "manifest.json")!.body.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
  const cfgEntry = entries.find((e) => e.name === manifest[0].Config)!;
  const cfg = JSON.parse(cfgEntry.body.toString()) as { rootfs: { diff_ids: string[] }; history?: unknown[] };
  const layer = await filesOnly();
  cfg.rootfs.diff_ids.push(sha(layer));
  cfg.history = [...(cfg.history ?? []), { created: new Date().toISOString(), created_by: "files only" }];
  const cfgBody = Buffer.from(JSON.stringify(cfg));
  const cfgName = sha(cfgBody).slice(7) + ".json";
  const layerName = sha(layer).slice(7) + "/layer.tar";
  const out = await writeTar([
    ...entries.filter((e) => e.name !== "manifest.json" && e.name !== manifest[0].Config && e.name !== "repositories").map((e) => ({ header: e.header, body: e.body })),
    { header: { name: layerName, mode: 0o644 }, body: layer },
    { header: { name: cfgName, mode: 0o644 }, body: cfgBody },
    { header: { name: "manifest.json", mode: 0o644 }, body: Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: ["lp-top:1"], Layers: [...manifest[0].Layers, layerName] }])) },
  ]);
  const file = join(tmp, "top.tar");
  writeFileSync(file, out);
  ok(d.berth(["load", "-i", file]), "load");
  made.push("lp-top:1");
  // dockerd (overlay2) shows the lower layers' directories: 1000 1000 1777 and 0 0 1777. The old unpacker made them root 0755.
  const st = ok(d.berth(["run", "--rm", "lp-top:1", "stat", "-c", "%n %u %g %a", "/home/app", "/tmp", "/home/app/sub"]), "stat");
  assert.equal(st, "/home/app 1000 1000 1777\n/tmp 0 0 1777\n/home/app/sub 0 0 755");
  assert.equal(ok(d.berth(["run", "--rm", "lp-top:1", "cat", "/home/app/sub/a.txt", "/tmp/x"]), "cat"), "a\nx");
});

test("the same through a pull: layers unpack at once, and the files-only one takes its parents from below", async () => {
  const port = await freePort();
  const root = join(tmp, "registry");
  writeFileSync(join(tmp, "reg.yml"), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const reg: ChildProcess = spawn("docker-registry", ["serve", join(tmp, "reg.yml")], { stdio: "ignore" });
  try {
    for (let i = 0; i < 100 && !(await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.ok, () => false)); i++) await sleep(100);
    const ref = `127.0.0.1:${port}/lp/top:1`;
    ok(d.berth(["tag", "lp-top:1", ref]), "tag");
    ok(d.berth(["push", ref]), "push");
    // Only busybox stays: every layer of lp-top comes back from the registry.
    ok(d.berth(["rmi", ref, "lp-top:1", "lp-base:1"]), "rmi");
    made.splice(0);
    ok(d.berth(["pull", ref]), "pull");
    made.push(ref);
    const st = ok(d.berth(["run", "--rm", ref, "stat", "-c", "%n %u %g %a", "/home/app", "/tmp", "/home/app/sub"]), "stat");
    assert.equal(st, "/home/app 1000 1000 1777\n/tmp 0 0 1777\n/home/app/sub 0 0 755");
  } finally {
    reg.kill();
  }
});
