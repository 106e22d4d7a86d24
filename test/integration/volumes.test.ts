/** Volumes, bind mounts, tmpfs and read-only roots, with bin/berth and the docker CLI. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon } from "./harness.js";

const d = new Daemon();
let host: string;

before(async () => {
  await d.start();
  await d.bootstrap();
  host = mkdtempSync(join(tmpdir(), "berth-bind-"));
});

after(async () => {
  rmSync(host, { recursive: true, force: true });
  await d.stop();
});

test("named volume data outlives its container and is seen by a new one", () => {
  assert.equal(d.berth(["volume", "create", "--label", "app=db", "data"]).stdout.trim(), "data");
  assert.equal(d.berth(["run", "--name", "w1", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/file"]).code, 0);
  assert.equal(d.berth(["rm", "w1"]).code, 0);
  assert.equal(d.berth(["run", "--rm", "-v", "data:/data:ro", "busybox", "cat", "/data/file"]).stdout, "kept\n");
  assert.equal(d.docker(["run", "--rm", "--mount", "type=volume,source=data,target=/d", "busybox", "cat", "/d/file"]).stdout, "kept\n");
  const ls = d.berth(["volume", "ls", "--filter", "label=app=db", "--format", "{{.Name}} {{.Driver}}"]);
  assert.equal(ls.stdout.trim(), "data local");
  const insp = JSON.parse(d.docker(["volume", "inspect", "data"]).stdout) as { Name: string; Mountpoint: string; Labels: Record<string, string> }[];
  assert.equal(insp[0].Labels.app, "db");
  assert.equal(readFileSync(join(insp[0].Mountpoint, "file"), "utf8"), "kept\n");
});

test("read-only volume and bind mounts refuse writes", () => {
  const r = d.berth(["run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c", "echo x > /data/new"]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Read-only file system/);
  const b = d.berth(["run", "--rm", "--mount", `type=bind,source=${host},target=/h,readonly`, "busybox", "touch", "/h/x"]);
  assert.notEqual(b.code, 0);
  assert.ok(!existsSync(join(host, "x")));
  const root = d.berth(["run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c", "touch /scratch/ok && touch /nope"]);
  assert.notEqual(root.code, 0);
  assert.match(root.stderr, /\/nope: Read-only file system/);
});

test("bind mounts are seen both ways", () => {
  writeFileSync(join(host, "from-host"), "hello container\n");
  const r = d.berth(["run", "--rm", "-v", `${host}:/h`, "busybox", "sh", "-c", "cat /h/from-host; echo hello host > /h/from-ctr"]);
  assert.equal(r.stdout, "hello container\n");
  assert.equal(readFileSync(join(host, "from-ctr"), "utf8"), "hello host\n");
  const missing = d.berth(["run", "--rm", "--mount", `type=bind,source=${host}/nope,target=/x`, "busybox", "true"]);
  assert.equal(missing.code, 125);
  assert.match(missing.stderr, /bind source path does not exist/);
});

test("a new volume over image content starts with a copy of it", () => {
  assert.equal(d.berth(["run", "--rm", "-v", "etcvol:/etc", "busybox", "cat", "/etc/passwd"]).stdout.split("\n")[0], "root:x:0:0:root:/root:/bin/sh");
  d.berth(["run", "--rm", "-v", "etcvol:/etc", "busybox", "sh", "-c", "echo mine > /etc/extra"]);
  assert.equal(d.berth(["run", "--rm", "-v", "etcvol:/mnt", "busybox", "cat", "/mnt/extra"]).stdout, "mine\n");
  assert.equal(d.berth(["run", "--rm", "--mount", "type=volume,source=empty,target=/etc,volume-nocopy", "busybox", "ls", "/etc"]).stdout, "");
});

test("anonymous volumes: created for -v /path, removed by rm -v and --rm", () => {
  const before = new Set(d.berth(["volume", "ls", "-q"]).stdout.split("\n").filter(Boolean));
  d.berth(["run", "--name", "anon", "-v", "/scratch", "busybox", "sh", "-c", "echo x > /scratch/f"]);
  const mounts = JSON.parse(d.berth(["inspect", "-f", "{{json .Mounts}}", "anon"]).stdout) as { Type: string; Name: string; Destination: string }[];
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0].Destination, "/scratch");
  assert.match(mounts[0].Name, /^[0-9a-f]{64}$/);
  assert.ok(d.berth(["volume", "ls", "-q"]).stdout.includes(mounts[0].Name));
  assert.equal(d.berth(["rm", "-v", "anon"]).code, 0);
  assert.ok(!d.berth(["volume", "ls", "-q"]).stdout.includes(mounts[0].Name), "rm -v removed the anonymous volume");
  d.berth(["run", "--rm", "-v", "/tmpdata", "busybox", "true"]);
  const after = new Set(d.berth(["volume", "ls", "-q"]).stdout.split("\n").filter(Boolean));
  assert.deepEqual([...after].filter((v) => !before.has(v)), [], "--rm removed its anonymous volume");
});

test("volume rm is refused while in use; prune removes what nothing uses", () => {
  d.berth(["create", "--name", "holder", "-v", "data:/data", "busybox", "true"]);
  const rm = d.berth(["volume", "rm", "data"]);
  assert.notEqual(rm.code, 0);
  assert.match(rm.stderr, /remove data: volume is in use - \[[0-9a-f]{64}\]/);
  d.berth(["rm", "holder"]);
  d.berth(["volume", "create", "unused"]);
  const anon = d.berth(["create", "-v", "/x", "busybox", "true"]).stdout.trim();
  d.berth(["rm", anon]); // without -v its anonymous volume stays behind, dangling
  const pruned = d.berth(["volume", "prune", "-f"]);
  assert.match(pruned.stdout, /Deleted Volumes:\n[0-9a-f]{64}\n/);
  assert.ok(d.berth(["volume", "ls", "-q"]).stdout.includes("unused"), "named volumes stay without --all");
  d.berth(["volume", "prune", "-f", "--all"]);
  assert.equal(d.berth(["volume", "ls", "-q"]).stdout, "");
  const nf = d.docker(["volume", "inspect", "nope"]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /no such volume/);
});
