/**
 * Seccomp profile → linux.seccomp as moby's profiles/seccomp converts it:
 * archMap by the native architecture, includes/excludes by capabilities,
 * architecture and minKernel; Docker's default on top of the maintained
 * containers-common profile; dockerd's --security-opt parsing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { toLinuxSeccomp, parseSecurityOpt, containerSeccomp, defaultSeccompProfile, type SeccompProfile } from "../../src/runtime/seccomp.js";
import { buildSpec, DEFAULT_CAPS } from "../../src/runtime/spec.js";

const profile: SeccompProfile = {
  defaultAction: "SCMP_ACT_ERRNO",
  defaultErrnoRet: 1,
  archMap: [
    { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
    { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
  ],
  syscalls: [
    { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
    { name: "old_style", action: "SCMP_ACT_ALLOW" },
    { names: ["mount"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["both"], action: "SCMP_ACT_ALLOW", includes: { caps: ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"] } },
    { names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: 0x7e020000, op: "SCMP_CMP_MASKED_EQ" }], excludes: { caps: ["CAP_SYS_ADMIN"] } },
    { names: ["arch_prctl"], action: "SCMP_ACT_ALLOW", includes: { arches: ["amd64", "x32"] } },
    { names: ["not_on_amd64"], action: "SCMP_ACT_ALLOW", excludes: { arches: ["amd64"] } },
    { names: ["ptrace"], action: "SCMP_ACT_ALLOW", includes: { minKernel: "4.8" } },
    { names: ["old_kernels_only"], action: "SCMP_ACT_ALLOW", excludes: { minKernel: "4.8" } },
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38, excludes: { caps: ["CAP_SYS_ADMIN"] } },
  ],
};

const names = (s: ReturnType<typeof toLinuxSeccomp>) => s.syscalls!.flatMap((r) => r.names);

test("archMap gives the native architecture and its sub-architectures", () => {
  assert.deepEqual(toLinuxSeccomp(profile, [], "x64", [6, 1]).architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  assert.deepEqual(toLinuxSeccomp(profile, [], "arm64", [6, 1]).architectures, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
  assert.throws(() => toLinuxSeccomp({ ...profile, architectures: ["SCMP_ARCH_X86_64"] }, []), /use either 'architectures' or 'archMap'/);
});

test("includes and excludes by capability, architecture and kernel version", () => {
  const plain = toLinuxSeccomp(profile, ["CAP_CHOWN"], "x64", [6, 1]);
  assert.deepEqual(names(plain), ["read", "write", "old_style", "clone", "arch_prctl", "ptrace", "clone3"]);
  assert.deepEqual(plain.syscalls!.find((r) => r.names[0] === "clone")!.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }]);
  assert.equal(plain.syscalls!.find((r) => r.names[0] === "clone3")!.errnoRet, 38);
  const admin = toLinuxSeccomp(profile, ["CAP_SYS_ADMIN"], "x64", [6, 1]);
  assert.deepEqual(names(admin), ["read", "write", "old_style", "mount", "arch_prctl", "ptrace"]);
  assert.ok(names(toLinuxSeccomp(profile, ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"], "x64", [6, 1])).includes("both"), "every included capability is needed");
  const arm = toLinuxSeccomp(profile, [], "arm64", [4, 4]);
  assert.deepEqual(names(arm), ["read", "write", "old_style", "clone", "not_on_amd64", "old_kernels_only", "clone3"]);
  assert.throws(() => toLinuxSeccomp({ defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ name: "a", names: ["a"], action: "SCMP_ACT_ERRNO" }] }, []), /'name' and 'names' were specified/);
});

test("the default profile is Docker's: namespaces, mounts and the keyring gated, EPERM, cached per capability set", { skip: !existsSync("/usr/share/containers/seccomp.json") }, () => {
  assert.ok(defaultSeccompProfile());
  const s = containerSeccomp(undefined, DEFAULT_CAPS, false)!;
  assert.equal(s.defaultAction, "SCMP_ACT_ERRNO");
  assert.equal(s.defaultErrnoRet, 1);
  if (process.arch === "x64") assert.deepEqual(s.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]);
  const allowed = (sc: typeof s, n: string) => sc.syscalls!.some((r) => r.action === "SCMP_ACT_ALLOW" && r.names.includes(n) && !r.args?.length);
  for (const n of ["read", "write", "execve", "ptrace", "chown"]) assert.ok(allowed(s, n), n);
  for (const n of ["unshare", "mount", "umount2", "setns", "keyctl", "add_key", "request_key", "pivot_root", "reboot", "clone", "clone3"]) assert.ok(!allowed(s, n), n);
  assert.ok(allowed(s, "chroot"), "CAP_SYS_CHROOT is a default capability");
  assert.ok(s.syscalls!.some((r) => r.names.includes("clone") && r.args?.[0]?.op === "SCMP_CMP_MASKED_EQ"), "clone without namespace flags");
  assert.ok(s.syscalls!.some((r) => r.names.includes("clone3") && r.errnoRet === 38), "clone3 is ENOSYS, so libc falls back to clone");
  const admin = containerSeccomp(undefined, [...DEFAULT_CAPS, "CAP_SYS_ADMIN"], false)!;
  for (const n of ["unshare", "mount", "umount2", "setns", "clone", "clone3"]) assert.ok(allowed(admin, n), n);
  assert.ok(!allowed(admin, "keyctl"));
  assert.equal(containerSeccomp(undefined, [...DEFAULT_CAPS], false), s, "the same capability set reuses the result");
  assert.equal(containerSeccomp(undefined, DEFAULT_CAPS, true), undefined, "privileged: no filter");
  assert.equal(containerSeccomp("unconfined", DEFAULT_CAPS, false), undefined);
});

test("buildSpec: the profile from the bounding set, no-new-privileges, none when privileged", { skip: !existsSync("/usr/share/containers/seccomp.json") }, () => {
  const base = { id: "x", rootfs: "/r", args: ["true"], env: [], cwd: "/", user: { uid: 0, gid: 0 }, hostname: "h", tty: false, cgroupsPath: "/b/x" };
  const spec = buildSpec(base);
  assert.ok(spec.linux.seccomp);
  assert.equal(spec.process.noNewPrivileges, false);
  assert.equal(buildSpec({ ...base, privileged: true }).linux.seccomp, undefined);
  assert.equal(buildSpec({ ...base, securityOpt: ["seccomp=unconfined"] }).linux.seccomp, undefined);
  assert.equal(buildSpec({ ...base, securityOpt: ["no-new-privileges"] }).process.noNewPrivileges, true);
  assert.equal(buildSpec({ ...base, securityOpt: ["no-new-privileges:true", "no-new-privileges=false"] }).process.noNewPrivileges, false);
  const custom = buildSpec({ ...base, securityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}'] }).linux.seccomp;
  assert.deepEqual(custom, { defaultAction: "SCMP_ACT_ALLOW", syscalls: [{ names: ["mkdir"], action: "SCMP_ACT_ERRNO" }] });
  assert.throws(() => buildSpec({ ...base, securityOpt: ["seccomp=notjson"] }), { message: /^Decoding seccomp profile failed: / });
});

test("--security-opt as dockerd parses it", () => {
  assert.deepEqual(parseSecurityOpt(["no-new-privileges", "apparmor=foo", "label=disable", "seccomp=unconfined"]), { noNewPrivileges: true, apparmor: "foo", labels: ["disable"], seccomp: "unconfined" });
  assert.deepEqual(parseSecurityOpt(["apparmor:bar", "disable"]), { noNewPrivileges: false, apparmor: "bar", labels: ["disable"] });
  assert.equal(parseSecurityOpt(["no-new-privileges=1"]).noNewPrivileges, true);
  assert.equal(parseSecurityOpt(null).noNewPrivileges, false);
  const refused = (o: string, msg: string) => assert.throws(() => parseSecurityOpt([o]), (e: Error & { status?: number }) => e.message === msg && e.status === 500);
  refused("foo", 'invalid --security-opt 1: "foo"');
  refused("seccomp", 'invalid --security-opt 1: "seccomp"');
  refused("foo=bar", 'invalid --security-opt 2: "foo=bar"');
  refused("no-new-privileges=yes", 'invalid --security-opt 2: "no-new-privileges=yes"');
});
