/**
 * User-namespace remapping (issue 10): a berthd started with
 * `--userns-remap <user>` runs containers in a user namespace whose root is
 * the user's first subordinate id, keeps its store under
 * <data-root>/<uid>.<gid>, unpacks layers shifted, makes named volumes owned
 * by the remapped root and leaves bind mounts unshifted; `--userns host` opts
 * one container out; --privileged, --net host and --pid host with a private
 * user namespace get dockerd's refusals (moby daemon_unix.go). The test makes
 * its own user and /etc/subuid, /etc/subgid lines, and puts those files back
 * as they were. Also: `--userns-remap default` creates dockremap with a
 * 65536-id range (removed again here when the test made it), and a user
 * without ranges keeps the daemon from starting, as dockerd.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, readFileSync, readlinkSync, statSync, chmodSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon } from "./harness.js";

const USER = `berthus${process.pid % 100000}`;
const START = 2_000_000 + (process.pid % 50) * 65536;
const RANGE = 65536;
const files = ["/etc/subuid", "/etc/subgid"];
// useradd/usermod/userdel leave backups beside them: those go back as they were too.
const backups = ["/etc/subuid-", "/etc/subgid-"];
const saved = new Map<string, string>();
const savedBackups = new Map<string, string | undefined>();
const d = new Daemon();
const tmp = mkdtempSync(join(tmpdir(), "berth-userns-"));
let hadDockremap = false;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  for (const f of files) saved.set(f, existsSync(f) ? readFileSync(f, "utf8") : "");
  for (const f of backups) savedBackups.set(f, existsSync(f) ? readFileSync(f, "utf8") : undefined);
  hadDockremap = spawnSync("getent", ["passwd", "dockremap"]).status === 0;
  sh("useradd", ["-r", "-U", "-M", "-s", "/bin/false", USER]);
  for (const f of files) writeFileSync(f, `${saved.get(f)}${USER}:${START}:${RANGE}\n`);
  d.extraArgs = ["--userns-remap", USER];
  // The remapped root walks down to its root and to bind-mount sources (dockerd refuses to start otherwise).
  chmodSync(d.root, 0o711);
  chmodSync(tmp, 0o711);
  await d.start();
  await d.bootstrap();
});

after(async () => {
  try { await d.stop(); } finally {
    spawnSync("userdel", [USER]);
    spawnSync("groupdel", [USER]);
    for (const [f, text] of saved) writeFileSync(f, text);
    for (const [f, text] of savedBackups) if (text === undefined) rmSync(f, { force: true }); else writeFileSync(f, text);
    rmSync(tmp, { recursive: true, force: true });
  }
});

function run(args: string[]): { code: number; out: string; err: string } {
  const r = d.docker(["run", "--rm", ...args]);
  return { code: r.code, out: r.stdout.trim(), err: r.stderr.trim() };
}

test("inside, id says root, and the uid and gid maps are the user's subordinate range", () => {
  const r = run(["busybox", "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"]);
  assert.equal(r.code, 0, r.err);
  const [uid, gid, umap, gmap] = r.out.split("\n").map((l) => l.trim().split(/\s+/).join(" "));
  assert.equal(uid, "0");
  assert.equal(gid, "0");
  assert.equal(umap, `0 ${START} ${RANGE}`);
  assert.equal(gmap, `0 ${START} ${RANGE}`);
});

test("info: name=userns in SecurityOptions and the remapped root as DockerRootDir", () => {
  const info = JSON.parse(d.docker(["info", "-f", "{{json .}}"]).stdout) as { SecurityOptions: string[]; DockerRootDir: string };
  assert.ok(info.SecurityOptions.includes("name=userns"), JSON.stringify(info.SecurityOptions));
  assert.equal(info.DockerRootDir, join(d.dataRoot, `${START}.${START}`));
  const st = statSync(info.DockerRootDir);
  assert.equal(st.mode & 0o777, 0o710);
  assert.equal(st.gid, START);
  // Images and layers live there, not in the top-level root.
  assert.ok(existsSync(join(info.DockerRootDir, "snapshots")));
  assert.ok(!existsSync(join(d.dataRoot, "snapshots")));
});

test("a file made in the container is owned by the shifted ids on the host; image files are shifted too", () => {
  const c = d.docker(["run", "-d", "busybox", "sh", "-c", "touch /made /made2 && chown 7:8 /made2 && sleep 600"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  try {
    const upper = d.docker(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", id]).stdout.trim();
    const deadline = Date.now() + 10_000;
    while (!existsSync(join(upper, "made2")) && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
    // The chown may land a moment after the touch: poll for it.
    while (statSync(join(upper, "made2")).uid !== START + 7 && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
    assert.equal(statSync(join(upper, "made")).uid, START);
    assert.equal(statSync(join(upper, "made")).gid, START);
    assert.equal(statSync(join(upper, "made2")).uid, START + 7);
    assert.equal(statSync(join(upper, "made2")).gid, START + 8);
    // Inside, the image's own files are root's.
    const ls = d.docker(["exec", id, "stat", "-c", "%u:%g", "/bin/busybox", "/"]);
    assert.equal(ls.stdout.trim(), "0:0\n0:0");
  } finally {
    d.docker(["rm", "-f", id]);
  }
});

test("docker cp: copied-in files are the container's root's, copied-out ones carry the container's ids", () => {
  const c = d.docker(["run", "-d", "busybox", "sh", "-c", "mkdir /out && touch /out/f && chown 3:4 /out/f && sleep 600"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  try {
    const src = join(tmp, "cpin");
    writeFileSync(src, "in\n");
    assert.equal(d.docker(["cp", src, `${id}:/cpin`]).code, 0);
    assert.equal(d.docker(["exec", id, "stat", "-c", "%u:%g", "/cpin"]).stdout.trim(), "0:0");
    const upper = d.docker(["inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", id]).stdout.trim();
    assert.equal(statSync(join(upper, "cpin")).uid, START);
    const deadline = Date.now() + 10_000;
    while (d.docker(["exec", id, "stat", "-c", "%u", "/out/f"]).stdout.trim() !== "3" && Date.now() < deadline) spawnSync("sleep", ["0.05"]);
    const out = spawnSync("sh", ["-c", `DOCKER_HOST=${d.host} DOCKER_CONFIG=${join(d.root, "docker-config")} /usr/local/bin/docker cp ${id}:/out - | tar -tv --numeric-owner`], { encoding: "utf8" });
    assert.match(out.stdout, /^-\S+ 3\/4 .*out\/f$/m, out.stdout + out.stderr);
  } finally {
    d.docker(["rm", "-f", id]);
  }
});

test("an image layer's files owned by uid 1000 are 1000 inside and start+1000 on the host", () => {
  // A one-file layer over busybox, made with COPY --chown.
  const ctx = join(tmp, "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "f"), "x\n");
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nCOPY --chown=1000:1001 f /owned\n");
  const b = d.docker(["build", "-q", "-t", "userns-owned", ctx]);
  assert.equal(b.code, 0, b.stderr);
  const r = run(["userns-owned", "stat", "-c", "%u:%g", "/owned"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, "1000:1001");
  const top = d.docker(["image", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "userns-owned"]).stdout.trim();
  const st = statSync(join(top, "owned"));
  assert.equal(st.uid, START + 1000);
  assert.equal(st.gid, START + 1001);
  d.docker(["rmi", "userns-owned"]);
});

test("a RUN step and a commit make layers with the container's ids, shifted once", () => {
  const ctx = join(tmp, "ctx-run");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "Dockerfile"), "FROM busybox\nRUN touch /ran && chown 5:6 /ran\n");
  const b = d.docker(["build", "-q", "-t", "userns-ran", ctx]);
  assert.equal(b.code, 0, b.stderr);
  const r = run(["userns-ran", "stat", "-c", "%u:%g", "/ran"]);
  assert.equal(r.out, "5:6", r.err);
  const top = d.docker(["image", "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", "userns-ran"]).stdout.trim();
  assert.equal(statSync(join(top, "ran")).uid, START + 5);
  const c = d.docker(["run", "--name", "usc", "busybox", "sh", "-c", "mkdir /made && chown 9:9 /made"]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(d.docker(["commit", "usc", "userns-committed"]).code, 0);
  assert.equal(run(["userns-committed", "stat", "-c", "%u:%g", "/made"]).out, "9:9");
  d.docker(["rm", "usc"]);
  d.docker(["rmi", "userns-ran", "userns-committed"]);
});

test("named volumes belong to the remapped root; bind mounts are not shifted", () => {
  assert.equal(d.docker(["volume", "create", "usv"]).code, 0);
  try {
    const r = run(["-v", "usv:/data", "busybox", "sh", "-c", "touch /data/f && stat -c %u /data"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, "0");
    const mp = d.docker(["volume", "inspect", "-f", "{{.Mountpoint}}", "usv"]).stdout.trim();
    assert.equal(statSync(mp).uid, START);
    assert.equal(statSync(join(mp, "f")).uid, START);
    // An empty volume over image content gets a copy of it, owners as the image's (root's, inside).
    const cp = run(["-v", "usv2:/bin", "busybox", "stat", "-c", "%u:%g", "/bin/busybox", "/bin"]);
    assert.equal(cp.code, 0, cp.err);
    assert.equal(cp.out, "0:0\n0:0");
  } finally {
    d.docker(["volume", "rm", "usv", "usv2"]);
  }
  // A host directory owned by root shows as the overflow id inside; one owned by the remapped root is root's.
  const bind = join(tmp, "bind");
  mkdirSync(bind, { recursive: true });
  chmodSync(bind, 0o777);
  writeFileSync(join(bind, "hostfile"), "h\n");
  const r = run(["-v", `${bind}:/b`, "busybox", "sh", "-c", "stat -c %u /b/hostfile; touch /b/fromc"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, "65534");
  assert.equal(statSync(join(bind, "hostfile")).uid, 0, "the bind mount's files keep their owner");
  assert.equal(statSync(join(bind, "fromc")).uid, START);
});

test("container root with every capability and no seccomp is still not host root", () => {
  const dir = join(tmp, "secret");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "key"), "top secret\n", { mode: 0o600 });
  chmodSync(dir, 0o755);
  const r = run(["--cap-add", "ALL", "--security-opt", "seccomp=unconfined", "-v", `${dir}:/s`, "busybox", "sh", "-c",
    "cat /s/key; echo cat=$?; touch /s/new; echo touch=$?; unshare -U -r cat /s/key; echo unshare=$?; mount -t tmpfs t /s && echo mounted; chmod 777 /s/key; echo chmod=$?"]);
  assert.doesNotMatch(r.out, /top secret/);
  assert.match(r.out, /cat=1/);
  assert.match(r.out, /touch=1/);
  assert.match(r.out, /unshare=1/);
  assert.match(r.out, /chmod=1/);
  assert.equal(statSync(join(dir, "key")).mode & 0o777, 0o600);
  assert.ok(!existsSync(join(dir, "new")));
});

test("--userns host runs with the host's mapping (and may be privileged)", () => {
  const r = run(["--userns", "host", "busybox", "cat", "/proc/self/uid_map"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out.split(/\s+/).join(" "), "0 0 4294967295");
  const p = run(["--userns", "host", "--privileged", "busybox", "cat", "/proc/self/uid_map"]);
  assert.equal(p.code, 0, p.err);
  assert.equal(p.out.split(/\s+/).join(" "), "0 0 4294967295");
  // berth's own CLI takes the flag as the docker CLI does.
  const b = d.berth(["run", "--rm", "--userns", "host", "busybox", "cat", "/proc/self/uid_map"]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout.trim().split(/\s+/).join(" "), "0 0 4294967295");
  const bad = d.berth(["create", "--userns", "foo", "busybox"]);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /--userns: invalid USER mode/);
  const inspect = d.docker(["create", "--userns", "host", "busybox"]);
  assert.equal(d.docker(["inspect", "-f", "{{.HostConfig.UsernsMode}}", inspect.stdout.trim()]).stdout.trim(), "host");
  d.docker(["rm", inspect.stdout.trim()]);
});

test("--net, --ipc and --pid container:<x> share x's user namespace", () => {
  const x = d.docker(["run", "-d", "--ipc", "shareable", "busybox", "sleep", "600"]);
  assert.equal(x.code, 0, x.stderr);
  const id = x.stdout.trim();
  try {
    const pid = d.docker(["inspect", "-f", "{{.State.Pid}}", id]).stdout.trim();
    const want = readlinkSync(`/proc/${pid}/ns/user`);
    for (const flag of ["--net", "--ipc", "--pid"]) {
      const r = run([flag, `container:${id}`, "busybox", "sh", "-c", "readlink /proc/self/ns/user; cat /proc/self/uid_map"]);
      assert.equal(r.code, 0, `${flag}: ${r.err}`);
      const [ns, map] = r.out.split("\n");
      assert.equal(ns, want, flag);
      assert.equal(map.trim().split(/\s+/).join(" "), `0 ${START} ${RANGE}`);
    }
  } finally {
    d.docker(["rm", "-f", id]);
  }
});

test("dockerd's refusals: --privileged, --net host and --pid host need --userns host", () => {
  const cases: [string[], string][] = [
    [["--privileged"], "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"],
    [["--net", "host"], "cannot share the host's network namespace when user namespaces are enabled"],
    [["--pid", "host"], "cannot share the host PID namespace when user namespaces are enabled"],
  ];
  for (const [flags, msg] of cases) {
    const r = d.docker(["create", ...flags, "busybox"]);
    assert.notEqual(r.code, 0, `${flags.join(" ")}: ${r.stdout}`);
    assert.ok(r.stderr.includes(`Error response from daemon: ${msg}`), r.stderr);
  }
  const ok = d.docker(["run", "--rm", "--net", "host", "--pid", "host", "--userns", "host", "busybox", "true"]);
  assert.equal(ok.code, 0, ok.stderr);
});

test("a daemon restart re-adopts remapped containers; an exec joins their user namespace", async () => {
  const c = d.docker(["run", "-d", "busybox", "sleep", "600"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  try {
    await d.stopDaemon();
    await d.start();
    assert.equal(d.docker(["inspect", "-f", "{{.State.Running}}", id]).stdout.trim(), "true");
    const r = d.docker(["exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert.equal(r.code, 0, r.stderr);
    const [uid, map] = r.stdout.trim().split("\n");
    assert.equal(uid, "0");
    assert.equal(map.trim().split(/\s+/).join(" "), `0 ${START} ${RANGE}`);
  } finally {
    d.docker(["rm", "-f", id]);
  }
});

test("daemon.json \"userns-remap\" is the flag's equivalent; both at once is dockerd's error", async () => {
  const cfg = join(tmp, "daemon.json");
  writeFileSync(cfg, JSON.stringify({ "userns-remap": USER }));
  const j = new Daemon();
  j.extraArgs = ["--config-file", cfg];
  chmodSync(j.root, 0o711);
  try {
    await j.start();
    const info = JSON.parse(j.docker(["info", "-f", "{{json .}}"]).stdout) as { SecurityOptions: string[]; DockerRootDir: string };
    assert.ok(info.SecurityOptions.includes("name=userns"));
    assert.equal(info.DockerRootDir, join(j.dataRoot, `${START}.${START}`));
  } finally { await j.stop(); }
  const both = new Daemon();
  both.extraArgs = ["--config-file", cfg, "--userns-remap", USER];
  await assert.rejects(both.start(), /the following directives are specified both as a flag and in the configuration file: userns-remap/);
  await both.stop();
});

test("a user without subordinate ranges keeps the daemon from starting; `default` creates dockremap", async () => {
  const bad = new Daemon();
  bad.extraArgs = ["--userns-remap", "nobody:nogroup"];
  await assert.rejects(bad.start(), /Can't create ID mappings: no subuid ranges found for user "nobody"/);
  await bad.stop();
  if (hadDockremap) return; // an existing dockremap is the machine's: not ours to create or remove
  const def = new Daemon();
  def.extraArgs = ["--userns-remap", "default"];
  try {
    // mkdtemp's 0700 directory above the data root: the remapped root could not reach its rootfs (dockerd's check).
    await assert.rejects(def.start(), /a subdirectory in your graphroot path \(.*\) restricts access to the remapped root uid\/gid; please fix by allowing 'o\+x' permissions on existing directories/);
    chmodSync(def.root, 0o711);
    await def.start();
    const line = readFileSync("/etc/subuid", "utf8").split("\n").find((l) => l.startsWith("dockremap:"));
    assert.ok(line, "a dockremap range in /etc/subuid");
    const [, start, len] = line!.split(":");
    assert.equal(len, "65536");
    assert.ok(readFileSync("/etc/subgid", "utf8").split("\n").some((l) => l.startsWith("dockremap:")));
    const info = JSON.parse(def.docker(["info", "-f", "{{json .}}"]).stdout) as { DockerRootDir: string };
    const gstart = readFileSync("/etc/subgid", "utf8").split("\n").find((l) => l.startsWith("dockremap:"))!.split(":")[1];
    assert.equal(info.DockerRootDir, join(def.dataRoot, `${start}.${gstart}`));
  } finally {
    await def.stop();
    spawnSync("userdel", ["dockremap"]);
    spawnSync("groupdel", ["dockremap"]);
    for (const f of files) writeFileSync(f, readFileSync(f, "utf8").split("\n").filter((l) => !l.startsWith("dockremap:")).join("\n"));
  }
});
