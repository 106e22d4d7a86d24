import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSubIds, createIdMap, nextRangeStart, toHost, toContainer, usernsConflicts } from "../../src/runtime/userns.js";
import { buildSpec } from "../../src/runtime/spec.js";

test("subordinate id files: a user's lines by name or uid, comments and bad lines skipped", () => {
  const text = "# c\nalice:100000:65536\n1001:300000:1000\nbob:165536:65536\nalice:200000:10\nbad:x:1\nalice:5:0\n";
  assert.deepEqual(parseSubIds(text, ["alice", "1001"]), [{ start: 100000, length: 65536 }, { start: 300000, length: 1000 }, { start: 200000, length: 10 }]);
  assert.equal(parseSubIds(text, ["ALL"]).length, 4);
});

test("id maps: container ids from 0 over the ranges in order; lookups both ways", () => {
  const m = createIdMap([{ start: 300000, length: 10 }, { start: 100000, length: 65536 }]);
  assert.deepEqual(m, [{ containerID: 0, hostID: 100000, size: 65536 }, { containerID: 65536, hostID: 300000, size: 10 }]);
  assert.equal(toHost(m, 0), 100000);
  assert.equal(toHost(m, 1000), 101000);
  assert.equal(toHost(m, 65537), 300001);
  assert.throws(() => toHost(m, 70000), /Container ID 70000 cannot be mapped to a host ID/);
  assert.equal(toContainer(m, 101000), 1000);
  assert.equal(toContainer(m, 5), 65534);
});

test("the default range goes after the ranges already given (from 100000)", () => {
  assert.equal(nextRangeStart([]), 100000);
  assert.equal(nextRangeStart([{ start: 100000, length: 65536 }]), 165536);
  assert.equal(nextRangeStart([{ start: 2000000, length: 65536 }]), 100000);
});

test("dockerd's refusals with a private user namespace, none with --userns host", () => {
  assert.throws(() => usernsConflicts({ Privileged: true }), /privileged mode is incompatible with user namespaces\.  You must run the container in the host namespace when running privileged mode/);
  assert.throws(() => usernsConflicts({ NetworkMode: "host" }), /cannot share the host's network namespace when user namespaces are enabled/);
  assert.throws(() => usernsConflicts({ PidMode: "host" }), /cannot share the host PID namespace when user namespaces are enabled/);
  usernsConflicts({ Privileged: true, NetworkMode: "host", PidMode: "host", UsernsMode: "host" });
});

test("spec: a user namespace with the maps first, none without them", () => {
  const base = { id: "x", rootfs: "/r", args: ["sh"], env: [], cwd: "/", user: { uid: 0, gid: 0 }, hostname: "h", tty: false, cgroupsPath: "" };
  const maps = { uids: [{ containerID: 0, hostID: 100000, size: 65536 }], gids: [{ containerID: 0, hostID: 200000, size: 65536 }] };
  const s = buildSpec({ ...base, userns: maps });
  assert.deepEqual(s.linux.namespaces[0], { type: "user" });
  assert.deepEqual(s.linux.uidMappings, maps.uids);
  assert.deepEqual(s.linux.gidMappings, maps.gids);
  const joined = buildSpec({ ...base, userns: { ...maps, path: "/proc/9/ns/user" } });
  assert.deepEqual(joined.linux.namespaces[0], { type: "user", path: "/proc/9/ns/user" });
  const plain = buildSpec(base);
  assert.ok(!plain.linux.namespaces.some((n) => n.type === "user"));
  assert.equal(plain.linux.uidMappings, undefined);
});

test("a remapped snapshotter unpacks layers shifted: entries, hard links, set-id bits, the root and parents it made; unmappable ids refused", async () => {
  const { mkdtempSync, lstatSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { Snapshotter } = await import("../../src/store/snapshots.js");
  const { writeTar } = await import("../../src/lib/tar-writer.js");
  const root = mkdtempSync(join(tmpdir(), "berth-shift-"));
  try {
    const snaps = new Snapshotter(root);
    await snaps.init();
    snaps.setIdMaps({ uids: [{ containerID: 0, hostID: 100000, size: 65536 }], gids: [{ containerID: 0, hostID: 200000, size: 65536 }] });
    const layer = writeTar([
      { name: "made/by/parents/f", type: "file", mode: 0o644, uid: 1000, gid: 1001, source: Buffer.from("x") },
      { name: "hard", type: "link", mode: 0o644, uid: 1000, gid: 1001, linkname: "made/by/parents/f" },
      { name: "suid", type: "file", mode: 0o4755, uid: 0, gid: 0, source: Buffer.from("x") },
      { name: "link", type: "symlink", mode: 0o777, uid: 5, gid: 6, linkname: "suid" },
    ]);
    const { chainId } = await snaps.applyLayer(null, layer);
    const [fs] = await snaps.lowerDirs(chainId);
    const st = (p: string) => lstatSync(join(fs, p));
    assert.deepEqual([st("").uid, st("").gid], [100000, 200000]);
    assert.deepEqual([st("made/by").uid, st("made/by").gid], [100000, 200000]);
    assert.deepEqual([st("made/by/parents/f").uid, st("made/by/parents/f").gid], [101000, 201001]);
    assert.equal(st("hard").uid, 101000);
    assert.equal(st("suid").mode & 0o7777, 0o4755);
    assert.deepEqual([st("link").uid, st("link").gid], [100005, 200006]);
    const big = writeTar([{ name: "big", type: "file", mode: 0o644, uid: 70000, gid: 0, source: Buffer.from("x") }]);
    await assert.rejects(snaps.applyLayer(null, big), /Container ID 70000 cannot be mapped to a host ID/);
    await snaps.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
