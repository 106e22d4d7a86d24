import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSpec, capabilities, DEFAULT_CAPS } from "../../src/runtime/spec.js";
import { resolveUser } from "../../src/runtime/user.js";

const base = { id: "x", rootfs: "/r", args: ["sh"], env: [], cwd: "/", user: { uid: 0, gid: 0 }, hostname: "h", tty: false, cgroupsPath: "/berth/x" };

test("the spec carries Docker's defaults", () => {
  const s = buildSpec(base);
  assert.deepEqual(s.linux.namespaces.map((n) => n.type).sort(), ["ipc", "mount", "network", "pid", "uts"]);
  assert.equal(s.process.capabilities?.bounding?.length, 14);
  assert.deepEqual(s.process.capabilities?.effective, DEFAULT_CAPS);
  assert.ok(s.linux.maskedPaths?.includes("/proc/kcore"));
  assert.ok(s.linux.readonlyPaths?.includes("/proc/sys"));
  for (const d of ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]) assert.ok(s.mounts.some((m) => m.destination === d), d);
  assert.equal(s.process.rlimits, undefined, "no rlimits beyond the daemon's own");
  assert.equal(s.hostname, "h");
  assert.equal(buildSpec({ ...base, networkNamespacePath: "host" }).linux.namespaces.some((n) => n.type === "network"), false);
  const priv = buildSpec({ ...base, privileged: true });
  assert.equal(priv.linux.maskedPaths, undefined);
  assert.ok(priv.process.capabilities!.bounding!.includes("CAP_SYS_ADMIN"));
  // Never more than this process holds (root here lacks CAP_SYS_RESOURCE, so asking for it would fail in runc).
  const own = BigInt("0x" + readFileSync("/proc/self/status", "utf8").match(/CapBnd:\s+(\w+)/)![1]);
  assert.equal(priv.process.capabilities!.bounding!.length, own.toString(2).split("").filter((b) => b === "1").length);
  const init = buildSpec({ ...base, init: true });
  assert.deepEqual(init.process.args, ["/sbin/docker-init", "--", "sh"]);
});

test("cap-add and cap-drop", () => {
  assert.ok(capabilities(["NET_ADMIN"]).includes("CAP_NET_ADMIN"));
  assert.ok(!capabilities([], ["chown"]).includes("CAP_CHOWN"));
  assert.deepEqual(capabilities(["KILL"], ["ALL"]), ["CAP_KILL"]);
  assert.throws(() => capabilities(["BOGUS"]), /unknown capability/);
});

test("users resolve inside the rootfs and never through symlinks out of it", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "berth-user-"));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n");
  writeFileSync(join(root, "etc/group"), "root:x:0:\napp:x:1000:\nextra:x:2000:app\n");
  assert.deepEqual(await resolveUser(root, ""), { uid: 0, gid: 0, additionalGids: [], home: "/root" });
  assert.deepEqual(await resolveUser(root, "app"), { uid: 1000, gid: 1000, additionalGids: [2000], home: "/home/app" });
  assert.equal((await resolveUser(root, "1000:extra")).gid, 2000);
  assert.equal((await resolveUser(root, "4242")).uid, 4242);
  await assert.rejects(resolveUser(root, "ghost"), /unable to find user ghost: no matching entries in passwd file/);
  // A hostile image pointing /etc/passwd at the host's file gets its own (missing) one.
  rmSync(join(root, "etc/passwd"));
  symlinkSync("/etc/../../etc/shadow", join(root, "etc/passwd"));
  await assert.rejects(resolveUser(root, "app"), /unable to find user app/);
});
