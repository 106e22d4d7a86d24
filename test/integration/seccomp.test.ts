/**
 * Seccomp and the security options as dockerd applies them (issue 10),
 * through the docker CLI against berthd. Docker's default profile refuses
 * user namespaces, mounts without CAP_SYS_ADMIN and the kernel keyring
 * (keyctl, add_key) with EPERM, and allows ptrace (kernel >= 4.8);
 * --privileged and seccomp=unconfined run with no filter; a profile file
 * is sent as its JSON and applied; no-new-privileges sets NoNewPrivs.
 * Every expected answer below was taken from dockerd 20.10 on this machine
 * (except --privileged, which dockerd cannot start here: root lacks caps;
 * Docker documents that it turns seccomp off).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Daemon, api } from "./harness.js";
import { detectCgroupMode } from "../../src/runtime/cgroups.js";

const d = new Daemon();
const tmp = mkdtempSync(join(tmpdir(), "berth-seccomp-"));
const probe = join(tmp, "probe");

// Each argument names one system call; the probe prints "<name> ok" or "<name> <errno name>".
const PROBE_C = `
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/stat.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *t = argv[i]; long r = -1;
    if (!strcmp(t, "unshare-user")) r = unshare(CLONE_NEWUSER);
    else if (!strcmp(t, "keyctl")) r = syscall(SYS_keyctl, 0, -3, 0);
    else if (!strcmp(t, "add_key")) r = syscall(SYS_add_key, "user", "berth-probe", "x", 1, -3);
    else if (!strcmp(t, "ptrace1")) { r = ptrace(PTRACE_ATTACH, 1, 0, 0); if (r == 0) { waitpid(1, 0, __WALL); ptrace(PTRACE_DETACH, 1, 0, 0); } }
    else if (!strcmp(t, "mount")) { mkdir("/probe-mnt", 0755); r = mount("tmpfs", "/probe-mnt", "tmpfs", 0, 0); }
    printf("%s %s\\n", t, r < 0 ? strerrorname_np(errno) : "ok");
  }
  return 0;
}
`;

before(async () => {
  writeFileSync(join(tmp, "probe.c"), PROBE_C);
  const cc = spawnSync("cc", ["-static", "-O1", "-o", probe, join(tmp, "probe.c")], { encoding: "utf8" });
  assert.equal(cc.status, 0, `cc: ${cc.stderr}`);
  await d.start();
  await d.bootstrap();
});

after(async () => {
  try { await d.stop(); } finally { rmSync(tmp, { recursive: true, force: true }); }
});

/** Runs the probe (pid 1 is sh, so ptrace of pid 1 is of another process) and a few status lines; returns name → result. */
function probeRun(opts: string[], calls = "unshare-user keyctl add_key ptrace1 mount"): Record<string, string> {
  // unshare-user last: once in a user namespace of its own, pid 1 and the container's mount namespace are out of reach whatever the filter says.
  const rank = ["ptrace1", "mount", "keyctl", "add_key", "unshare-user"];
  const order = calls.split(" ").sort((x, y) => rank.indexOf(x) - rank.indexOf(y)).join(" ");
  const r = d.docker(["run", "--rm", ...opts, "-v", `${probe}:/probe:ro`, "busybox", "sh", "-c",
    `/probe ${order}; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' | tr ':' ' '; unshare -U true 2>/dev/null; echo unshare-cmd $?; true`]);
  assert.equal(r.code, 0, `run ${opts.join(" ")}: ${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" ") as [string, string]));
}

test("the default profile refuses user namespaces, mounts and the keyring with EPERM, and allows ptrace", () => {
  const r = probeRun([]);
  assert.equal(r.Seccomp, "2", "a seccomp filter is in force");
  assert.equal(r["unshare-user"], "EPERM");
  assert.equal(r["unshare-cmd"], "1", "busybox unshare -U true fails");
  assert.equal(r.keyctl, "EPERM");
  assert.equal(r.add_key, "EPERM");
  assert.equal(r.mount, "EPERM");
  assert.equal(r.ptrace1, "ok", "Docker's default allows ptrace on kernels >= 4.8");
  assert.equal(r.NoNewPrivs, "0");
});

test("--cap-add SYS_ADMIN opens mount and unshare, not the keyring", () => {
  const r = probeRun(["--cap-add", "SYS_ADMIN"], "unshare-user keyctl add_key mount");
  assert.equal(r.Seccomp, "2");
  assert.equal(r.mount, "ok");
  assert.equal(r["unshare-user"], "ok");
  assert.equal(r.keyctl, "EPERM");
  assert.equal(r.add_key, "EPERM");
});

test("--security-opt seccomp=unconfined and --privileged run without a filter", () => {
  for (const opts of [["--security-opt", "seccomp=unconfined"], ["--privileged"]]) {
    const r = probeRun(opts);
    assert.equal(r.Seccomp, "0", opts.join(" "));
    assert.equal(r["unshare-user"], "ok", opts.join(" "));
    assert.equal(r["unshare-cmd"], "0", opts.join(" "));
    assert.equal(r.keyctl, "ok", opts.join(" "));
    assert.equal(r.add_key, "ok", opts.join(" "));
    assert.equal(r.ptrace1, "ok", opts.join(" "));
    // Without CAP_SYS_ADMIN the kernel still refuses the mount; --privileged has it.
    assert.equal(r.mount, opts[0] === "--privileged" ? "ok" : "EPERM", opts.join(" "));
  }
});

test("--security-opt no-new-privileges sets NoNewPrivs; =false and the default do not", () => {
  assert.equal(probeRun(["--security-opt", "no-new-privileges"], "keyctl").NoNewPrivs, "1");
  assert.equal(probeRun(["--security-opt", "no-new-privileges=true"], "keyctl").NoNewPrivs, "1");
  const off = probeRun(["--security-opt", "no-new-privileges=false"], "keyctl");
  assert.equal(off.NoNewPrivs, "0");
  assert.equal(off.Seccomp, "2");
});

test("a profile file is sent as its JSON and applied: one that refuses mkdir makes mkdir fail with EPERM", () => {
  const file = join(tmp, "nomkdir.json");
  writeFileSync(file, JSON.stringify({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO" }] }, null, 2));
  const c = d.docker(["create", "--security-opt", `seccomp=${file}`, "busybox", "mkdir", "/x"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  const opt = JSON.parse(d.docker(["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", id]).stdout) as string[];
  assert.deepEqual(opt, ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}']);
  const s = d.docker(["start", "-a", id]);
  assert.equal(s.code, 1);
  assert.match(s.stderr, /mkdir: can't create directory '\/x': Operation not permitted/);
  d.docker(["rm", id]);
  // Without the profile mkdir works.
  assert.equal(d.docker(["run", "--rm", "busybox", "mkdir", "/x"]).code, 0);
});

test("security options dockerd refuses, and those it accepts on a host without AppArmor or SELinux", async () => {
  const create = async (opts: string[]) => {
    const r = await api(d.sock, "POST", "/v1.41/containers/create", JSON.stringify({ Image: "busybox", Cmd: ["true"], HostConfig: { SecurityOpt: opts } }), { "Content-Type": "application/json" });
    return { status: r.status, body: JSON.parse(r.body) as { message?: string; Id?: string } };
  };
  for (const [opt, msg] of [["foo", 'invalid --security-opt 1: "foo"'], ["seccomp", 'invalid --security-opt 1: "seccomp"'], ["foo=bar", 'invalid --security-opt 2: "foo=bar"'],
    ["no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'], ["systempaths=unconfined", 'invalid --security-opt 2: "systempaths=unconfined"']]) {
    const r = await create([opt]);
    assert.equal(r.status, 500, opt);
    assert.equal(r.body.message, msg);
  }
  // AppArmor is not enabled here: dockerd keeps the name in inspect and runs the container unconfined.
  for (const [opt, profile] of [["apparmor=foo", "foo"], ["apparmor:foo", "foo"], ["label=disable", ""], ["label:disable", ""], ["label=user:x", ""]]) {
    const r = await create([opt]);
    assert.equal(r.status, 201, `${opt}: ${r.body.message}`);
    assert.equal(d.docker(["inspect", "-f", "{{.AppArmorProfile}}", r.body.Id!]).stdout.trim(), profile, opt);
    const s = d.docker(["start", "-a", r.body.Id!]);
    assert.equal(s.code, 0, `${opt}: ${s.stderr}`);
    d.docker(["rm", r.body.Id!]);
  }
  // A profile that is not JSON is refused at start, as dockerd does.
  const bad = await create(["seccomp=notjson"]);
  assert.equal(bad.status, 201);
  const s = await api(d.sock, "POST", `/v1.41/containers/${bad.body.Id}/start`);
  assert.equal(s.status, 500);
  assert.match(JSON.parse(s.body).message, /^Decoding seccomp profile failed: /);
  d.docker(["rm", bad.body.Id!]);
});

test("info lists the security options in force", () => {
  const r = d.docker(["info", "--format", "{{json .SecurityOptions}}"]);
  assert.equal(r.code, 0, r.stderr);
  const want = ["name=seccomp,profile=default", ...(detectCgroupMode() === "v2" ? ["name=cgroupns"] : [])];
  assert.deepEqual(JSON.parse(r.stdout), want);
  assert.match(d.docker(["info"]).stdout, /Security Options:\n\s+seccomp\n\s+Profile: default/);
});

test("berth run --security-opt: a profile file sent as its compacted JSON, and the docker CLI's refusals", () => {
  const file = join(tmp, "nomkdir2.json");
  writeFileSync(file, '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [ { "names": [ "mkdir", "mkdirat" ], "action": "SCMP_ACT_ERRNO", "comment": "a string with  spaces" } ]\n}\n');
  const c = d.berth(["create", "--security-opt", `seccomp=${file}`, "--security-opt", "no-new-privileges", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status; mkdir /x"]);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  const opt = JSON.parse(d.docker(["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", id]).stdout) as string[];
  assert.deepEqual(opt, ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","comment":"a string with  spaces"}]}', "no-new-privileges"]);
  const s = d.berth(["start", "-a", id]);
  assert.equal(s.code, 1);
  assert.match(s.stdout, /NoNewPrivs:\s+1/);
  assert.match(s.stderr, /mkdir: can't create directory '\/x': Operation not permitted/);
  d.berth(["rm", id]);
  for (const [o, want] of [["seccomp=unconfined", "keyctl ok"], ["seccomp=builtin", "keyctl EPERM"]]) {
    const r = d.berth(["run", "--rm", "--security-opt", o, "-v", `${probe}:/probe:ro`, "busybox", "/probe", "keyctl"]);
    assert.equal(r.stdout.trim(), want, `${o}: ${r.stderr}`);
  }
  const runOpt = (o: string) => d.berth(["run", "--rm", "--security-opt", o, "busybox", "true"]);
  for (const [o, msg] of [["foo", 'Invalid --security-opt: "foo"'], ["apparmor=", 'Invalid --security-opt: "apparmor="'],
    [`seccomp=${join(tmp, "missing.json")}`, `opening seccomp profile (${join(tmp, "missing.json")}) failed: open ${join(tmp, "missing.json")}: no such file or directory`]]) {
    const x = runOpt(o);
    assert.equal(x.code, 125, o);
    assert.ok(x.stderr.includes(msg), `${o}: ${x.stderr}`);
  }
  writeFileSync(join(tmp, "bad.json"), "{bad");
  const bad = runOpt(`seccomp=${join(tmp, "bad.json")}`);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /compacting json for seccomp profile \(.*bad\.json\) failed: /);
  assert.equal(runOpt("no-new-privileges").code, 0);
});
