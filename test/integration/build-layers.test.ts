/**
 * A RUN step's layer as BuildKit makes it: the step's own directory becomes
 * the layer's snapshot (not its tar unpacked again), so what the step wrote
 * keeps its sub-second times in the next step and in the image, and the
 * snapshot holds exactly what the layer's blob holds (the mount stubs the
 * runtime made for /etc/hosts, /etc/hostname and /etc/resolv.conf are in
 * neither; whiteouts and opaque directories work in the steps after).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, readFileSync, readdirSync, lstatSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Daemon } from "./harness.js";

const d = new Daemon();
let ctx: string;

before(async () => {
  await d.start();
  await d.bootstrap();
  ctx = mkdtempSync(join(tmpdir(), "berth-ctx-"));
  writeFileSync(join(ctx, "Dockerfile"), [
    "FROM busybox",
    "RUN mkdir -p /o && touch /o/a /o/b && echo one > /keep",
    "RUN touch /x && mkdir /d && echo hi > /d/f && mkfifo /d/p && ln /d/f /d/hard && ln -s f /d/soft && rm -rf /o && mkdir /o && touch /o/c && rm /bin/ls /keep",
    'RUN stat -c "%y" /x > /x.seen',
    "",
  ].join("\n"));
});

after(async () => {
  try { d.berth(["rmi", "-f", "berth-layers-test"]); } finally {
    await d.stop();
    rmSync(ctx, { recursive: true, force: true });
  }
});

/** The snapshot directory (under the daemon's data root) of the layer with this diff ID. */
function snapshotOf(diffId: string): string {
  const root = join(d.dataRoot, "snapshots");
  let n: number | undefined;
  for (const line of readFileSync(join(root, "snapshots.journal"), "utf8").split("\n").filter(Boolean)) {
    const rec = JSON.parse(line) as { put?: { diffId: string; n: number }[] };
    for (const p of rec.put ?? []) if (p.diffId === diffId) n = p.n;
  }
  assert.ok(n !== undefined, `no snapshot for ${diffId}`);
  return join(root, String(n), "fs");
}

/** Paths in a snapshot directory, as the layer names them (an overlay whiteout as .wh.<name>, an opaque directory's marker). */
function snapshotPaths(dir: string): string[] {
  const out: string[] = [];
  const go = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isCharacterDevice() && st.rdev === 0) { out.push(rel ? `${rel}/.wh.${name}` : `.wh.${name}`); continue; }
      out.push(r);
      if (st.isDirectory()) {
        const opq = spawnSync("getfattr", ["--absolute-names", "-n", "trusted.overlay.opaque", "--only-values", join(dir, r)], { encoding: "utf8" });
        if (opq.status === 0 && opq.stdout === "y") out.push(`${r}/.wh..wh..opq`);
        go(r);
      }
    }
  };
  go("");
  return out.sort();
}

test("a RUN step's files keep their sub-second times after the step, and its snapshot holds what its layer blob holds", () => {
  const r = d.berth(["build", "-q", "-t", "berth-layers-test", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);

  // The next step, and the image, see the time the step gave /x, to the nanosecond (BuildKit's answer:
  // "2026-12-02 05:01:03.658220043 +0000" in the step after, and the same in `docker run`; a tar
  // unpacked again keeps whole seconds, ".000000000").
  const seen = d.berth(["run", "--rm", "berth-layers-test", "cat", "/x.seen"]);
  assert.equal(seen.code, 0, seen.stderr);
  assert.match(seen.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9} \+0000\n$/);
  assert.doesNotMatch(seen.stdout, /\.000000000 /, "the step's time was cut to whole seconds: its layer was unpacked again from the tar");
  const now = d.berth(["run", "--rm", "berth-layers-test", "stat", "-c", "%y", "/x"]);
  assert.equal(now.stdout, seen.stdout);

  // Whiteouts and an opaque directory made by the step hide what is below them.
  const look = d.berth(["run", "--rm", "berth-layers-test", "sh", "-c", "ls /o; test -e /bin/ls && echo ls-there; test -e /keep && echo keep-there; cat /d/f /d/hard /d/soft; test -p /d/p && echo fifo"]);
  assert.equal(look.stdout, "c\nhi\nhi\nhi\nfifo\n", look.stderr);

  // The middle step's snapshot and its blob list the same paths (no mount stub, nothing the tar left out).
  const layers = JSON.parse(d.berth(["image", "inspect", "-f", "{{json .RootFS.Layers}}", "berth-layers-test"]).stdout) as string[];
  assert.equal(layers.length, 4);
  const diffId = layers[2];
  const blob = join(d.dataRoot, "content", "blobs", "sha256", diffId.slice(7));
  const listed = spawnSync("tar", ["-tf", blob], { encoding: "utf8" });
  assert.equal(listed.status, 0, listed.stderr);
  const inBlob = listed.stdout.split("\n").filter(Boolean).map((p) => p.replace(/\/$/, "")).sort();
  assert.ok(inBlob.includes("d/hard") && inBlob.includes("bin/.wh.ls") && inBlob.includes("o/.wh..wh..opq"), inBlob.join(" "));
  assert.ok(!inBlob.some((p) => p.startsWith("etc/")), `mount stubs in the layer: ${inBlob.join(" ")}`);
  assert.deepEqual(snapshotPaths(snapshotOf(diffId)), inBlob);

  // The store is whole.
  const check = d.berth(["system", "check"]);
  assert.equal(check.code, 0, check.stderr + check.stdout);
});
