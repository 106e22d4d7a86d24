/**
 * src/lib/mounter.ts: mount(2)/umount2(2) through bin/berth-mounter (one helper, no fork of
 * the caller per call), with mount(8)'s option words turned into flags, the lazy unmount of a
 * busy mount, "not mounted" told apart, and the mount command where a path cannot go on the
 * helper's line protocol; network namespaces kept on a file, and `ip -batch` run by the helper
 * (in such a namespace, too).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { mountFs, unmountFs, mountOptions, stopMounter, MountError, makeNetns, removeNetns, ipBatches, helperRun, helperStartSynced, HelperTimeoutError } from "../../src/lib/mounter.js";

const root = mkdtempSync(join(tmpdir(), "berth-mounter-"));
after(() => {
  stopMounter();
  for (const l of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const p = l.split(" ")[4];
    if (p?.startsWith(root)) spawnSync("umount", ["-l", p]);
  }
  rmSync(root, { recursive: true, force: true });
});

function mountLine(path: string): string | undefined {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === path);
}

test("option words become mount(2) flags, the rest the data string", () => {
  assert.deepEqual(mountOptions(["nosuid", "nodev", "noexec", "mode=1777", "size=1048576"]), { flags: 2 | 4 | 8, data: "mode=1777,size=1048576" });
  assert.deepEqual(mountOptions(["ro", "lowerdir=/a:/b", "upperdir=/u"]), { flags: 1, data: "lowerdir=/a:/b,upperdir=/u" });
  assert.deepEqual(mountOptions([]), { flags: 0, data: "" });
});

test("a tmpfs mounted through the helper has the flags and options asked for, and goes with unmountFs", { skip: !existsSync(join(import.meta.dirname, "../../bin/berth-mounter")) && "bin/berth-mounter not built" }, async () => {
  const dir = join(root, "shm");
  mkdirSync(dir);
  await mountFs("tmpfs", "shm", dir, ["nosuid", "nodev", "noexec", "mode=1770", "size=1048576"]);
  const line = mountLine(dir);
  assert.ok(line, "not mounted");
  const [, rest] = line!.split(" - ");
  assert.match(line!.split(" ")[5], /nosuid/);
  assert.match(line!.split(" ")[5], /nodev/);
  assert.match(line!.split(" ")[5], /noexec/);
  assert.match(rest, /^tmpfs shm /);
  assert.match(rest, /size=1024k/);
  assert.match(rest, /mode=1770/);
  writeFileSync(join(dir, "f"), "x");
  assert.equal(await unmountFs(dir), true);
  assert.equal(mountLine(dir), undefined);
  assert.equal(existsSync(join(dir, "f")), false);
  // Not a mount point (any more): false, no error.
  assert.equal(await unmountFs(dir), false);
});

test("an overlay over two lower dirs shows the upper layer over the lower ones", async () => {
  const [l1, l2, up, work, merged] = ["l1", "l2", "up", "work", "merged"].map((n) => { const p = join(root, n); mkdirSync(p); return p; });
  writeFileSync(join(l1, "a"), "lower1");
  writeFileSync(join(l2, "a"), "lower2");
  writeFileSync(join(l2, "b"), "only2");
  await mountFs("overlay", "overlay", merged, [`lowerdir=${l1}:${l2}`, `upperdir=${up}`, `workdir=${work}`]);
  assert.equal(readFileSync(join(merged, "a"), "utf8"), "lower1");
  assert.equal(readFileSync(join(merged, "b"), "utf8"), "only2");
  writeFileSync(join(merged, "c"), "new");
  assert.equal(readFileSync(join(up, "c"), "utf8"), "new");
  assert.equal(await unmountFs(merged), true);
});

test("a busy mount is unmounted lazily; a lazy unmount can be asked for", async () => {
  const dir = join(root, "busy");
  mkdirSync(dir);
  await mountFs("tmpfs", "t", dir, []);
  writeFileSync(join(dir, "held"), "x");
  const fd = openSync(join(dir, "held"), "r");
  // An open file makes umount2(…, 0) fail with EBUSY? Only a cwd or a mount under it does for tmpfs:
  // mount one below to make it busy.
  mkdirSync(join(dir, "sub"));
  await mountFs("tmpfs", "t2", join(dir, "sub"), []);
  try {
    assert.equal(await unmountFs(dir), true);
    assert.equal(mountLine(dir), undefined);
  } finally { closeSync(fd); }
  const lazy = join(root, "lazy");
  mkdirSync(lazy);
  await mountFs("tmpfs", "t", lazy, []);
  assert.equal(await unmountFs(lazy, { lazy: true }), true);
  assert.equal(mountLine(lazy), undefined);
});

test("a refusal comes back as the system call's error, naming what was mounted", async () => {
  const dir = join(root, "bad");
  mkdirSync(dir);
  await assert.rejects(mountFs("no-such-fs-type", "x", dir, []), (e: unknown) => e instanceof MountError && /mount no-such-fs-type on .*bad: No such device/.test((e as Error).message));
  await assert.rejects(mountFs("tmpfs", "x", join(root, "missing", "dir"), []), (e: unknown) => e instanceof MountError && /No such file or directory/.test((e as Error).message));
});

test("a path the helper's line protocol cannot carry (a tab) is mounted by the mount command", async () => {
  const dir = join(root, "with\ttab");
  mkdirSync(dir);
  await mountFs("tmpfs", "t", dir, ["size=1m"]);
  assert.ok(readFileSync("/proc/self/mountinfo", "utf8").includes("with\\011tab"));
  assert.equal(await unmountFs(dir), true);
  assert.ok(!readFileSync("/proc/self/mountinfo", "utf8").includes("with\\011tab"));
});

const nsLinks = (path: string): string[] => spawnSync("nsenter", [`--net=${path}`, "ip", "-o", "link", "show"], { encoding: "utf8" }).stdout
  .split("\n").filter(Boolean).map((l) => `${l.split(": ")[1]} ${/state (\S+)/.exec(l)?.[1]}`);

test("a network namespace kept on a file: a new one (only lo, down), ip batches run in it, gone with removeNetns", async () => {
  const ns = join(root, "ns1");
  await makeNetns(ns);
  assert.ok(mountLine(ns)?.includes(" nsfs "), "bind-mounted nsfs");
  assert.deepEqual(nsLinks(ns), ["lo DOWN"]);
  // Both steps in one request: the first in the helper's own namespace (the host's), the second in ns.
  const a = `bmta${process.pid % 100000}`, b = `bmtb${process.pid % 100000}`;
  const p = ipBatches([{ lines: [`link add ${a} type veth peer name ${b} netns ${ns}`, `link set ${a} netns ${ns}`] }, { netns: ns, lines: ["link set lo up", `link set ${a} up`, `link set ${b} up`] }]);
  assert.ok(p, "the helper is there (make build made bin/berth-mounter)");
  await p;
  assert.deepEqual(nsLinks(ns).map((l) => l.replace(/@\S+/, "")).sort(), [`${a} UP`, `${b} UP`, "lo UNKNOWN"]);
  assert.equal(existsSync(`/sys/class/net/${a}`), false, "moved out of the host's namespace");
  await removeNetns(ns);
  assert.equal(mountLine(ns), undefined);
  assert.equal(existsSync(ns), false);
  await removeNetns(ns); // nothing to do the second time
});

test("a batch ip refuses: rejected with ip's words; the steps after it do not run", async () => {
  const ns = join(root, "ns2");
  await makeNetns(ns);
  try {
    await assert.rejects(ipBatches([{ netns: ns, lines: ["link set nosuchdev0 up"] }, { netns: ns, lines: ["link set lo up"] }])!, /nosuchdev0/);
    assert.deepEqual(nsLinks(ns), ["lo DOWN"]);
  } finally {
    await removeNetns(ns);
  }
});

const haveHelper = existsSync(join(import.meta.dirname, "../../bin/berth-mounter"));

test("helperRun: a program's exit code, signal and output, byte for byte, in its cwd with the environment given", { skip: !haveHelper && "bin/berth-mounter not built" }, async () => {
  const r = await helperRun(["/bin/sh", "-c", "printf 'a\\tb\\\\n\\n\\037x'; printf 'err %s' \"$X\" >&2; pwd; exit 3"], { cwd: root, env: { X: "v=1", PATH: "/bin" } });
  assert.ok(r, "the helper should run it");
  assert.equal(r!.code, 3);
  assert.equal(r!.signal, null);
  assert.equal(r!.stdout, `a\tb\\n\n\x1fx${root}\n`);
  assert.equal(r!.stderr, "err v=1");
  // Without an environment of its own, the program gets the helper's (its caller's, as spawn() gives it).
  const inherited = await helperRun(["/bin/sh", "-c", "printf %s \"$PATH\""]);
  assert.equal(inherited!.stdout, process.env.PATH ?? "");
  const killed = await helperRun(["/bin/sh", "-c", "kill -9 $$"]);
  assert.equal(killed!.signal, "SIGKILL");
  assert.equal(killed!.code, -1);
  // Many at once: each answer whole, even past what a pipe writes in one piece (PIPE_BUF).
  const big = await Promise.all(Array.from({ length: 12 }, (_, i) => helperRun(["/bin/sh", "-c", `head -c ${20000 + i} /dev/zero | tr '\\0' '${i % 10}'`])));
  big.forEach((b, i) => { assert.equal(b!.stdout.length, 20000 + i); assert.equal(b!.stdout, String(i % 10).repeat(20000 + i)); });
});

test("helperRun: a program that does not finish in time is killed with its process group; a missing one is an error", { skip: !haveHelper && "bin/berth-mounter not built" }, async () => {
  const pidFile = join(root, "grandchild.pid");
  const t0 = Date.now();
  await assert.rejects(helperRun(["/bin/sh", "-c", `sleep 30 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 })!, (e: unknown) => e instanceof HelperTimeoutError && e.pid > 0);
  assert.ok(Date.now() - t0 < 10_000);
  const grandchild = Number(readFileSync(pidFile, "utf8"));
  const deadline = Date.now() + 5000;
  while (existsSync(`/proc/${grandchild}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${grandchild}/status`, "utf8")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!existsSync(`/proc/${grandchild}`) || /^State:\s+Z/m.test(readFileSync(`/proc/${grandchild}/status`, "utf8")), "the program's child outlived the timeout");
  await assert.rejects(helperRun(["/nonexistent/prog"])!, /nonexistent\/prog.*No such file/);
  // Not run by the helper: a relative program, or an argument its line cannot carry.
  assert.equal(helperRun(["sh", "-c", "true"]), undefined);
  assert.equal(helperRun(["/bin/echo", "a\nb"]), undefined);
});

test("helperStartSynced: answered at the first line on fd 3 while the program runs on; its stderr when the pipe ends without one", { skip: !haveHelper && "bin/berth-mounter not built" }, async () => {
  const marker = join(root, "synced-still-running");
  const t0 = Date.now();
  const r = await helperStartSynced(["/bin/sh", "-c", `echo '{"data": 42}' >&3; sleep 0.5; touch ${marker}`], { env: { PATH: "/bin:/usr/bin" } });
  assert.ok(Date.now() - t0 < 450, "answered before the program ended");
  assert.deepEqual(JSON.parse(r!.line), { data: 42 });
  assert.ok(r!.pid > 0);
  const deadline = Date.now() + 5000;
  while (!existsSync(marker) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  assert.ok(existsSync(marker), "the program went on after the answer");
  const failed = await helperStartSynced(["/bin/sh", "-c", "echo 'conmon: bad' >&2; exit 1"]);
  assert.equal(failed!.line, "");
  assert.equal(failed!.stderr, "conmon: bad\n");
});
