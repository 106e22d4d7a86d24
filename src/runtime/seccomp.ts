/**
 * Security options as dockerd applies them: --security-opt parsing (dockerd's
 * words and status), the seccomp profile in force, and what `info` lists.
 *
 * The default profile is the maintained one Podman applies, from Debian's
 * golang-github-containers-common (/usr/share/containers/seccomp.json), read
 * once. It is derived from Docker's but is looser where Podman leans on
 * capabilities instead; DOCKER_DELTAS below puts Docker's own default back
 * on top of it (namespaces, mounts, keyrings, ...), so a container here is
 * refused what dockerd's default profile refuses. A profile given with
 * --security-opt seccomp=<json> is used as it is.
 *
 * A profile (Docker's format: archMap, includes/excludes by caps, arches and
 * minKernel) becomes the OCI runtime spec's linux.seccomp for one container
 * from its bounding capability set, this machine's architecture and kernel,
 * as moby's profiles/seccomp does. Results are cached per capability set.
 */
import { readFileSync, existsSync } from "node:fs";
import { release } from "node:os";
import { SystemError } from "../lib/errors.js";

export const DEFAULT_PROFILE_PATH = "/usr/share/containers/seccomp.json";

/** A profile in Docker's (and containers-common's) JSON format. */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures?: string[] | null }[];
  listenerPath?: string;
  listenerMetadata?: string;
  flags?: string[];
  syscalls?: ProfileSyscall[];
}

export interface ProfileFilter { caps?: string[]; arches?: string[]; minKernel?: string }
export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }
export interface ProfileSyscall {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  comment?: string;
  includes?: ProfileFilter;
  excludes?: ProfileFilter;
}

/** The OCI runtime spec's linux.seccomp. */
export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: Required<SeccompArg>[] }[];
}

/** What a container's HostConfig.SecurityOpt asks for. */
export interface SecurityOptions {
  noNewPrivileges: boolean;
  /** undefined: the default profile; "unconfined": none; otherwise the profile's JSON text. */
  seccomp?: string;
  /** --security-opt apparmor=<profile> (kept even where AppArmor is off, as dockerd keeps it). */
  apparmor?: string;
  labels: string[];
}

const TRUE = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE = ["0", "f", "F", "FALSE", "false", "False"];

/** dockerd's parseSecurityOpt: its checks and its words (a plain error, so a 500, as dockerd 20.10 answers). */
export function parseSecurityOpt(opts: readonly string[] | null | undefined): SecurityOptions {
  const out: SecurityOptions = { noNewPrivileges: false, labels: [] };
  for (const opt of opts ?? []) {
    if (opt === "no-new-privileges") { out.noNewPrivileges = true; continue; }
    if (opt === "disable") { out.labels.push("disable"); continue; }
    const sep = opt.includes("=") ? "=" : opt.includes(":") ? ":" : "";
    if (!sep) throw new SystemError(`invalid --security-opt 1: ${JSON.stringify(opt)}`);
    const i = opt.indexOf(sep);
    const k = opt.slice(0, i), v = opt.slice(i + 1);
    switch (k) {
      case "label": out.labels.push(v); break;
      case "apparmor": out.apparmor = v; break;
      case "seccomp": out.seccomp = v; break;
      case "no-new-privileges":
        if (TRUE.includes(v)) out.noNewPrivileges = true;
        else if (FALSE.includes(v)) out.noNewPrivileges = false;
        else throw new SystemError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
        break;
      default: throw new SystemError(`invalid --security-opt 2: ${JSON.stringify(opt)}`);
    }
  }
  return out;
}

// ------------------------------------------------------------ host facts

let seccompOk: boolean | undefined;
/** The kernel filters system calls (a Seccomp line in /proc/self/status, as dockerd checks). */
export function seccompSupported(): boolean {
  if (seccompOk === undefined) {
    try { seccompOk = /^Seccomp:/m.test(readFileSync("/proc/self/status", "utf8")); } catch { seccompOk = false; }
  }
  return seccompOk;
}

let apparmorOk: boolean | undefined;
/** AppArmor is enabled on this host (as dockerd's apparmor.IsEnabled reads it). */
export function apparmorEnabled(): boolean {
  if (apparmorOk === undefined) {
    try { apparmorOk = readFileSync("/sys/module/apparmor/parameters/enabled", "utf8").trim().startsWith("Y"); } catch { apparmorOk = false; }
  }
  return apparmorOk;
}

/** `info`'s SecurityOptions as dockerd lists them for this host. */
export function securityOptions(cgroupMode: string, extra: { userns?: boolean; rootless?: boolean } = {}): string[] {
  const out: string[] = [];
  if (apparmorEnabled()) out.push("name=apparmor");
  if (seccompSupported() && existsSync(DEFAULT_PROFILE_PATH)) out.push("name=seccomp,profile=default");
  if (extra.userns) out.push("name=userns");
  if (extra.rootless) out.push("name=rootless");
  if (cgroupMode === "v2") out.push("name=cgroupns");
  return out;
}

/** Go's GOARCH for this machine, and the seccomp architecture it runs natively. */
const ARCH: Record<string, { go: string; native: string }> = {
  x64: { go: "amd64", native: "SCMP_ARCH_X86_64" },
  ia32: { go: "386", native: "SCMP_ARCH_X86" },
  arm64: { go: "arm64", native: "SCMP_ARCH_AARCH64" },
  arm: { go: "arm", native: "SCMP_ARCH_ARM" },
  ppc64: { go: "ppc64le", native: "SCMP_ARCH_PPC64LE" },
  s390x: { go: "s390x", native: "SCMP_ARCH_S390X" },
  riscv64: { go: "riscv64", native: "SCMP_ARCH_RISCV64" },
  mips64el: { go: "mips64le", native: "SCMP_ARCH_MIPSEL64" },
};

function kernelVersion(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function kernelAtLeast(min: string, kernel: [number, number]): boolean {
  const m = /^(\d+)\.(\d+)/.exec(min);
  if (!m) throw new SystemError(`invalid kernel version: ${min}`);
  const [a, b] = [Number(m[1]), Number(m[2])];
  return kernel[0] > a || (kernel[0] === a && kernel[1] >= b);
}

// ------------------------------------------------------------ Docker's default over the maintained profile

/**
 * Where Docker's default profile is stricter than containers-common's: these
 * calls are allowed only with the capability named (CLONE_NEW* flags of clone
 * included), keyctl and pivot_root not at all, and a refused call is EPERM
 * (containers-common answers ENOSYS). See the report in the commit for the
 * full comparison.
 */
const DOCKER_DELTAS = {
  defaultErrnoRet: 1,
  /** Taken out of the unconditional allow-list. */
  unlisted: [
    "clone", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree",
    "setns", "syslog", "umount", "umount2", "unshare", "keyctl", "pivot_root", "reboot", "pidfd_getfd",
    "get_mempolicy", "mbind", "set_mempolicy",
  ],
  /** Allowed only with the capability. */
  gated: {
    CAP_SYS_ADMIN: ["clone", "clone3", "fsconfig", "fsmount", "fsopen", "fspick", "mount", "mount_setattr", "move_mount", "open_tree", "setns", "syslog", "umount", "umount2", "unshare"],
    CAP_SYS_BOOT: ["reboot"],
    CAP_SYS_PTRACE: ["pidfd_getfd"],
    CAP_SYS_NICE: ["get_mempolicy", "mbind", "set_mempolicy"],
    CAP_SYSLOG: ["syslog"],
  } as Record<string, string[]>,
};

/** The namespace flags of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
const CLONE_NEW_MASK = 0x7e020000;

function withDockerDeltas(p: SeccompProfile): SeccompProfile {
  const out = new Set(DOCKER_DELTAS.unlisted);
  const syscalls: ProfileSyscall[] = (p.syscalls ?? []).map((s) => {
    const plain = s.action === "SCMP_ACT_ALLOW" && !s.args?.length && !s.includes?.caps?.length && !s.includes?.arches?.length && !s.excludes?.caps?.length;
    return plain && s.names ? { ...s, names: s.names.filter((n) => !out.has(n)) } : s;
  });
  for (const [cap, names] of Object.entries(DOCKER_DELTAS.gated)) syscalls.push({ names, action: "SCMP_ACT_ALLOW", includes: { caps: [cap] } });
  // Without CAP_SYS_ADMIN: clone without namespace flags (the flags are argument 1 on s390), clone3 answers ENOSYS so libc falls back to clone.
  syscalls.push({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 0, value: CLONE_NEW_MASK, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], excludes: { caps: ["CAP_SYS_ADMIN"], arches: ["s390", "s390x"] } });
  syscalls.push({ names: ["clone"], action: "SCMP_ACT_ALLOW", args: [{ index: 1, value: CLONE_NEW_MASK, valueTwo: 0, op: "SCMP_CMP_MASKED_EQ" }], includes: { arches: ["s390", "s390x"] }, excludes: { caps: ["CAP_SYS_ADMIN"] } });
  syscalls.push({ names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: 38, excludes: { caps: ["CAP_SYS_ADMIN"] } });
  return { ...p, defaultErrnoRet: DOCKER_DELTAS.defaultErrnoRet, syscalls };
}

let defaultProfile: SeccompProfile | null | undefined;
/** The default profile (maintained file + Docker's deltas), read once; null when the file is missing. */
export function defaultSeccompProfile(path = DEFAULT_PROFILE_PATH): SeccompProfile | null {
  if (path !== DEFAULT_PROFILE_PATH) return withDockerDeltas(decodeProfile(readFileSync(path, "utf8")));
  if (defaultProfile === undefined) {
    try { defaultProfile = withDockerDeltas(decodeProfile(readFileSync(path, "utf8"))); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      process.stderr.write(`berthd: ${path} not found (install golang-github-containers-common): containers run without a seccomp profile\n`);
      defaultProfile = null;
    }
  }
  return defaultProfile;
}

function decodeProfile(text: string): SeccompProfile {
  let p: unknown;
  try { p = JSON.parse(text); } catch (e) { throw new SystemError(`Decoding seccomp profile failed: ${(e as Error).message}`); }
  if (!p || typeof p !== "object" || Array.isArray(p)) throw new SystemError("Decoding seccomp profile failed: json: cannot unmarshal into Go value of type seccomp.Seccomp");
  return p as SeccompProfile;
}

/** One profile → linux.seccomp for a container with these (bounding) capabilities, as moby's setupSeccomp. */
export function toLinuxSeccomp(p: SeccompProfile, caps: readonly string[], arch = process.arch, kernel = kernelVersion()): LinuxSeccomp {
  const a = ARCH[arch] ?? { go: arch, native: "" };
  const out: LinuxSeccomp = { defaultAction: p.defaultAction };
  if (p.defaultErrnoRet !== undefined) out.defaultErrnoRet = p.defaultErrnoRet;
  if (p.architectures?.length && p.archMap?.length) {
    throw new SystemError("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  if (p.archMap?.length) {
    const hit = p.archMap.find((m) => m.architecture === a.native);
    if (hit) out.architectures = [hit.architecture, ...(hit.subArchitectures ?? [])];
  } else if (p.architectures?.length) out.architectures = [...p.architectures];
  if (p.flags?.length) out.flags = [...p.flags];
  if (p.listenerPath) out.listenerPath = p.listenerPath;
  if (p.listenerMetadata) out.listenerMetadata = p.listenerMetadata;
  const have = new Set(caps);
  const syscalls: NonNullable<LinuxSeccomp["syscalls"]> = [];
  for (const s of p.syscalls ?? []) {
    if (s.name && s.names?.length) throw new SystemError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
    const ex = s.excludes, inc = s.includes;
    if (ex) {
      if (ex.arches?.includes(a.go)) continue;
      if (ex.caps?.some((c) => have.has(c))) continue;
      if (ex.minKernel && kernelAtLeast(ex.minKernel, kernel)) continue;
    }
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(a.go)) continue;
      if (inc.caps?.some((c) => !have.has(c))) continue;
      if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernel)) continue;
    }
    const names = s.names?.length ? [...s.names] : s.name ? [s.name] : [];
    if (!names.length) continue;
    const rule: NonNullable<LinuxSeccomp["syscalls"]>[number] = { names, action: s.action };
    if (s.errnoRet !== undefined && s.errnoRet !== null) rule.errnoRet = s.errnoRet;
    if (s.args?.length) rule.args = s.args.map((x) => ({ index: x.index, value: x.value, valueTwo: x.valueTwo ?? 0, op: x.op }));
    syscalls.push(rule);
  }
  out.syscalls = syscalls;
  return out;
}

const defaultCache = new Map<string, LinuxSeccomp | undefined>();
const customCache = new Map<string, LinuxSeccomp>();

/**
 * linux.seccomp for a container: none when privileged or unconfined, the
 * default profile otherwise (or with seccomp=builtin), or the profile given (its JSON text).
 */
export function containerSeccomp(opt: string | undefined, caps: readonly string[], privileged: boolean): LinuxSeccomp | undefined {
  if (privileged || opt === "unconfined") return undefined;
  // "builtin": the default profile by name (the docker CLI sends it as it is; dockerd 23+ reads it so).
  if (opt === "builtin") opt = undefined;
  if (!seccompSupported()) {
    if (opt) throw new SystemError("seccomp is not enabled in your kernel, cannot run a custom seccomp profile");
    return undefined;
  }
  const key = [...caps].sort().join(",");
  if (!opt) {
    if (defaultCache.has(key)) return defaultCache.get(key);
    const p = defaultSeccompProfile();
    const r = p ? toLinuxSeccomp(p, caps) : undefined;
    defaultCache.set(key, r);
    return r;
  }
  const ck = `${key}\n${opt}`;
  const hit = customCache.get(ck);
  if (hit) return hit;
  const r = toLinuxSeccomp(decodeProfile(opt), caps);
  if (customCache.size > 64) customCache.clear();
  customCache.set(ck, r);
  return r;
}
