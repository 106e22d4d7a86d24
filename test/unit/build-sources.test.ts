/**
 * The builder's sources and RUN options, piece by piece: which ADD sources are git repositories (and their
 * ref and subdirectory), COPY --parents' pivot, --exclude patterns, BuildKit's entitlements, the ssh
 * mounts a step gets (targets, SSH_AUTH_SOCK, a relay to the agent that answers), the client's --ssh and
 * --allow, and local archives unpacked through streams whatever their compression.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, connect } from "node:net";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseGitRef } from "../../src/builder/git.js";
import { parentsPivot, excludeMatcher, archiveKind, unpackArchive } from "../../src/builder/sources.js";
import { checkEntitlements, sshMount, SshAgents, parseSshHeader } from "../../src/builder/ssh.js";
import { sshHeader, allowHeader } from "../../src/cli/build.js";
import { parseDockerfile } from "../../src/builder/dockerfile.js";

test("git sources as BuildKit tells them: git://, ssh://, git@, github.com/ and http(s) URLs ending in .git; #ref:subdir", () => {
  assert.deepEqual(parseGitRef("https://example.com/org/repo.git#v1.2:app/sub"), { remote: "https://example.com/org/repo.git", ref: "v1.2", subdir: "app/sub" });
  assert.deepEqual(parseGitRef("git://127.0.0.1/repo#main"), { remote: "git://127.0.0.1/repo", ref: "main", subdir: "" });
  assert.deepEqual(parseGitRef("git@github.com:org/repo.git"), { remote: "git@github.com:org/repo.git", ref: "", subdir: "" });
  assert.deepEqual(parseGitRef("github.com/org/repo#:docs"), { remote: "https://github.com/org/repo", ref: "", subdir: "docs" });
  assert.deepEqual(parseGitRef("ssh://git@host/repo.git#abc123"), { remote: "ssh://git@host/repo.git", ref: "abc123", subdir: "" });
  // Not git: a plain URL, a local path, another scheme.
  for (const s of ["https://example.com/file.tar.gz", "https://example.com/repo", "./repo.git", "repo.git", "ftp://x/repo.git", "file:///tmp/repo.git"]) {
    assert.equal(parseGitRef(s), undefined, s);
  }
});

test("COPY --parents: the part above a /./ pivot is left out", () => {
  assert.equal(parentsPivot("src/lib/a.txt"), "");
  assert.equal(parentsPivot("./src/./lib/deep"), "src");
  assert.equal(parentsPivot("a/b/./c/./d/*.go"), "a/b/c");
  assert.equal(parentsPivot("./x/y"), "");
});

test("--exclude patterns match as .dockerignore lines, relative to the source", () => {
  assert.equal(excludeMatcher([]), undefined);
  const m = excludeMatcher(["*.md", "sub/d.txt", "**/*.log", "!keep.log"])!;
  assert.equal(m("a.md", false), true);
  assert.equal(m("sub/c.md", false), false);
  assert.equal(m("sub/d.txt", false), true);
  assert.equal(m("deep/x/y.log", false), true);
  assert.equal(m("keep.log", false), false);
  assert.equal(m("b.txt", false), false);
});

test("entitlements: --network=host needs network.host, --security=insecure security.insecure (BuildKit's words)", () => {
  const run = (line: string) => {
    const ins = parseDockerfile(`FROM busybox\n${line}\n`).stages[0].instructions[0];
    assert.equal(ins.keyword, "RUN");
    return ins as { network: string; security: string };
  };
  assert.throws(() => checkEntitlements(run("RUN --network=host true"), []), { message: "network.host is not allowed" });
  assert.throws(() => checkEntitlements(run("RUN --security=insecure true"), ["network.host"]), { message: "security.insecure is not allowed" });
  checkEntitlements(run("RUN --network=host --security=insecure true"), ["network.host", "security.insecure"]);
  checkEntitlements(run("RUN --network=none --security=sandbox true"), []);
  checkEntitlements(run("RUN true"), []);
});

test("ssh mounts: /run/buildkit/ssh_agent.<n> unless told, SSH_AUTH_SOCK the first one's, a relay that reaches the agent, none left once closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-ssh-unit-"));
  // A stand-in agent: answers every request with its bytes reversed.
  const agentPath = join(dir, "agent.sock");
  const agent = createServer((c) => c.on("data", (d: Buffer) => c.end(Buffer.from(d).reverse())));
  await new Promise<void>((r) => agent.listen(agentPath, () => r()));
  const agents = new SshAgents(new Map([["default", agentPath]]), join(dir, "relay"));
  try {
    const m = (x: object) => ({ type: "ssh", required: false, ...x });
    const got = await sshMount([m({}), { type: "secret", required: false }, m({ id: "default", target: "rel/agent", mode: 0o640, uid: 1000 }), m({ id: "other" })], agents, "/work", false);
    assert.deepEqual(got.mounts.map((x) => x.target), ["/run/buildkit/ssh_agent.0", "/work/rel/agent"]);
    assert.deepEqual(got.env, ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]);
    const st = statSync(got.mounts[1].source);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.uid, 1000);
    // The relay carries bytes both ways.
    const answer = await new Promise<string>((res, rej) => {
      const c = connect(got.mounts[0].source);
      let out = "";
      c.on("data", (d) => { out += d; }).on("end", () => res(out)).on("error", rej);
      c.write("abc");
    });
    assert.equal(answer, "cba");
    // The image's own SSH_AUTH_SOCK is kept; a required agent the client did not give fails.
    assert.deepEqual((await sshMount([m({})], agents, "/", true)).env, []);
    await assert.rejects(sshMount([m({ id: "nope", required: true })], agents, "/", false), { message: 'no SSH key "nope" forwarded from the client' });
    assert.deepEqual(await sshMount([m({})], undefined, "/", false), { mounts: [], env: ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"] });
    assert.deepEqual(await sshMount([{ type: "secret", required: false }], agents, "/", false), { mounts: [], env: [] });
    // Once the build is over, its relays are gone.
    await agents.close();
    await assert.rejects(new Promise((res, rej) => connect(got.mounts[0].source).on("connect", res).on("error", rej)), /ENOENT|ECONNREFUSED/);
  } finally {
    await agents.close();
    await new Promise<void>((r) => agent.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--ssh and --allow on the client; the daemon takes only sockets", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-ssh-cli-"));
  try {
    const file = join(dir, "key");
    writeFileSync(file, "");
    // A file that is no key: ssh-add refuses it.
    await assert.rejects(sshHeader([`default=${file}`]), /failed to parse .*key/);
    await assert.rejects(sshHeader([`default=${join(dir, "missing")}`]), /no such file or directory/);
    const saved = process.env.SSH_AUTH_SOCK;
    delete process.env.SSH_AUTH_SOCK;
    try { await assert.rejects(sshHeader(["default"]), { message: "invalid empty ssh agent socket, make sure SSH_AUTH_SOCK is set" }); } finally { if (saved !== undefined) process.env.SSH_AUTH_SOCK = saved; }
    assert.deepEqual(await sshHeader([]), {});
    assert.deepEqual(allowHeader(["network.host", "security.insecure"]), { "X-Berth-Build-Allow": "network.host,security.insecure" });
    assert.throws(() => allowHeader(["device"]), /invalid entitlement: device/);
    const header = Buffer.from(JSON.stringify({ default: file })).toString("base64");
    assert.throws(() => parseSshHeader(header), /is not a socket/);
    assert.throws(() => parseSshHeader(Buffer.from(JSON.stringify({ default: "relative.sock" })).toString("base64")), /invalid X-Berth-Build-Ssh header/);
    assert.equal(parseSshHeader(undefined), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("local archives: tar, gzip, bzip2, xz and zstd told by their first bytes and unpacked through streams; a broken one fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-archive-unit-"));
  try {
    const src = join(dir, "src");
    mkdirSync(join(src, "d"), { recursive: true });
    const data = randomBytes(1 << 20);
    writeFileSync(join(src, "d", "blob"), data);
    const kinds = [["tar", ""], ["gzip", "gzip"], ["bzip2", "bzip2"], ["xz", "xz"], ["zstd", "zstd"]] as const;
    for (const [kind, z] of kinds) {
      const file = join(dir, `a.${kind}`);
      const r = spawnSync("sh", ["-c", `tar -C ${src} -cf - d ${z ? `| ${z} -q -c` : ""} > ${file}`]);
      assert.equal(r.status, 0, String(r.stderr));
      assert.equal(archiveKind(file), kind);
      const into = join(dir, `out-${kind}`);
      await unpackArchive(file, kind, into);
      assert.ok(readFileSync(join(into, "d", "blob")).equals(data), kind);
    }
    writeFileSync(join(dir, "plain.txt"), "not an archive\n");
    assert.equal(archiveKind(join(dir, "plain.txt")), undefined);
    // A truncated xz: the decompressor's failure is the step's.
    const whole = readFileSync(join(dir, "a.xz"));
    writeFileSync(join(dir, "cut.xz"), whole.subarray(0, whole.length >> 1));
    await assert.rejects(unpackArchive(join(dir, "cut.xz"), "xz", join(dir, "out-cut")), /cannot decompress \(xz\)|unexpected end of data/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the archive path streams: no whole-file read or synchronous child in the builder's sources", () => {
  const text = readFileSync(new URL("../../src/builder/sources.ts", import.meta.url), "utf8");
  const body = text.slice(text.indexOf("export async function unpackArchive"), text.indexOf("export function glob"));
  assert.doesNotMatch(body, /readFileSync|spawnSync|execSync|maxBuffer/);
  assert.match(body, /createReadStream|spawn\(/);
});
