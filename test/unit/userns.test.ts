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

test("shifting a layer: every owner into the host range once (hard links too), set-id bits kept, unmappable ids refused", async () => {
  const { mkdtempSync, writeFileSync, linkSync, symlinkSync, mkdirSync, chownSync, chmodSync, lstatSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { shiftTree } = await import("../../src/store/snapshots.js");
  const dir = mkdtempSync(join(tmpdir(), "berth-shift-"));
  try {
    const maps = { uids: [{ containerID: 0, hostID: 100000, size: 65536 }], gids: [{ containerID: 0, hostID: 200000, size: 65536 }] };
    mkdirSync(join(dir, "d"));
    writeFileSync(join(dir, "d", "f"), "x");
    chownSync(join(dir, "d", "f"), 1000, 1001);
    linkSync(join(dir, "d", "f"), join(dir, "hard"));
    writeFileSync(join(dir, "suid"), "x");
    chmodSync(join(dir, "suid"), 0o4755);
    symlinkSync("d/f", join(dir, "link"));
    await shiftTree(dir, maps);
    const st = (p: string) => lstatSync(join(dir, p));
    assert.deepEqual([st("").uid, st("").gid], [100000, 200000]);
    assert.deepEqual([st("d/f").uid, st("d/f").gid], [101000, 201001]);
    assert.equal(st("hard").uid, 101000);
    assert.equal(st("link").uid, 100000);
    assert.equal(st("suid").mode & 0o7777, 0o4755);
    mkdirSync(join(dir, "fresh"));
    writeFileSync(join(dir, "fresh", "big"), "x");
    chownSync(join(dir, "fresh"), 0, 0);
    chownSync(join(dir, "fresh", "big"), 70000, 0);
    await assert.rejects(shiftTree(join(dir, "fresh"), maps), /Container ID 70000 cannot be mapped to a host ID/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
