/**
 * The builder's mounts, network and sources, as BuildKit has them: RUN --mount=type=ssh forwarding an
 * ssh-agent the test starts (`build --ssh`), RUN --network=none|default|host and --security=insecure
 * (refused without `--allow`), COPY --parents, --exclude and --link, ADD of a git repository at a ref
 * (served on loopback over git's dumb HTTP protocol) with and without --keep-git-dir, a git build
 * context (`berth build <git url>#ref:dir`, and the docker CLI's), and ADD of local tar archives of a
 * few MB compressed each way (gzip, bzip2, xz, zstd), unpacked through streams.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, copyFileSync, existsSync, statSync, createReadStream } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { spawn, type ChildProcess } from "node:child_process";
import { tmpdir } from "node:os";
import { join, basename, normalize } from "node:path";
import { Daemon, runSync, runAsync, until, freePort, api, BERTH, DOCKER, type Result } from "./harness.js";

const d = new Daemon();
const dirs: string[] = [];
const images: string[] = [];
let agent: ChildProcess | undefined;
let gitServer: Server | undefined;
let gitDaemon: ChildProcess | undefined;

function tmp(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function context(files: Record<string, string | Buffer>): string {
  const dir = tmp("berth-src-");
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

function build(args: string[], opts: { env?: Record<string, string> } = {}): ReturnType<Daemon["berth"]> {
  const i = args.indexOf("-t");
  if (i >= 0) images.push(args[i + 1]);
  return d.berth(["build", ...args], { timeout: 120_000, ...opts });
}

/** Builds that do not block this process (its HTTP server must answer meanwhile). */
function buildAsync(args: string[]): Promise<Result> {
  const i = args.indexOf("-t");
  if (i >= 0) images.push(args[i + 1]);
  return runAsync(process.execPath, [BERTH, "-H", d.host, "build", ...args]);
}
function dockerBuildAsync(args: string[]): Promise<Result> {
  const i = args.indexOf("-t");
  if (i >= 0) images.push(args[i + 1]);
  return runAsync(DOCKER, ["build", ...args], { env: { DOCKER_HOST: d.host, DOCKER_CONFIG: join(d.root, "docker-config") } });
}

function dockerBuild(args: string[]): ReturnType<Daemon["docker"]> {
  const i = args.indexOf("-t");
  if (i >= 0) images.push(args[i + 1]);
  return d.docker(["build", ...args], { timeout: 120_000 });
}

const sh = (image: string, script: string): string => {
  const r = d.berth(["run", "--rm", image, "sh", "-c", script]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
};

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  agent?.kill("SIGTERM");
  gitDaemon?.kill("SIGTERM");
  await new Promise<void>((r) => (gitServer ? gitServer.close(() => r()) : r()));
  for (const i of images) d.berth(["rmi", "-f", i]);
  await d.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** An ssh-agent of the test's own (foreground, on a socket in a temp dir) holding one new key. */
async function startAgent(): Promise<{ sock: string; key: string; fingerprint: string }> {
  const dir = tmp("berth-agent-");
  const sock = join(dir, "agent.sock");
  const key = join(dir, "id_ed25519");
  let r = runSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "berth-test-key", "-f", key]);
  assert.equal(r.code, 0, r.stderr);
  agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
  await until("ssh-agent socket", () => existsSync(sock) && statSync(sock).isSocket(), 10_000);
  r = runSync("ssh-add", ["-q", key], { env: { SSH_AUTH_SOCK: sock } });
  assert.equal(r.code, 0, r.stderr);
  const fingerprint = runSync("ssh-keygen", ["-lf", `${key}.pub`]).stdout.split(" ")[1];
  assert.match(fingerprint, /^SHA256:/);
  return { sock, key, fingerprint };
}

/**
 * The host's ssh-add with its libraries and loader, for a busybox RUN to run (bound in from the context):
 * a real agent request (`ssh-add -l`) through the forwarded socket.
 */
function sshAddKit(ctx: string): void {
  const kit = join(ctx, "kit");
  mkdirSync(kit);
  copyFileSync("/usr/bin/ssh-add", join(kit, "ssh-add"));
  for (const line of runSync("ldd", ["/usr/bin/ssh-add"]).stdout.split("\n")) {
    const m = /=>\s*(\S+)/.exec(line) ?? /^\s*(\/\S+ld-linux\S*)/.exec(line);
    if (!m) continue;
    copyFileSync(m[1], join(kit, /ld-linux/.test(m[1]) ? "ld.so" : basename(m[1])));
  }
}
const SSH_ADD = "/kit/ld.so --library-path /kit /kit/ssh-add";

test("RUN --mount=type=ssh: the agent given with --ssh answers in the step (ssh-add -l lists its key), at /run/buildkit/ssh_agent.0 and SSH_AUTH_SOCK, in no layer", async () => {
  const { sock, key, fingerprint } = await startAgent();
  const ctx = context({
    Dockerfile: [
      "FROM busybox",
      `RUN --mount=type=bind,source=kit,target=/kit --mount=type=ssh echo "sock=$SSH_AUTH_SOCK" && stat -c 'mode=%a uid=%u' /run/buildkit/ssh_agent.0 && ${SSH_ADD} -l`,
      `RUN --mount=type=bind,source=kit,target=/kit --mount=type=ssh,id=work,target=/tmp/agent,mode=0640,uid=1000,required echo "sock=$SSH_AUTH_SOCK" && stat -c 'mode=%a uid=%u' /tmp/agent && ${SSH_ADD} -L`,
      // A key file: berth loads it into an agent of its own for the build.
      `RUN --mount=type=bind,source=kit,target=/kit --mount=type=ssh,id=keyed,required ${SSH_ADD} -l | sed 's/^/keyed: /'`,
      "",
    ].join("\n"),
  });
  sshAddKit(ctx);
  // --ssh default takes $SSH_AUTH_SOCK; id=path names one.
  const r = build(["--no-cache", "--ssh", "default", "--ssh", `work=${sock}`, "--ssh", `keyed=${key}`, "-t", "src-ssh", ctx], { env: { SSH_AUTH_SOCK: sock } });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.stdout.includes(`keyed: 256 ${fingerprint} berth-test-key (ED25519)`), r.stdout);
  // berth's own agent went with it.
  assert.equal(runSync("pgrep", ["-f", `ssh-agent -D -a ${tmpdir()}/berth-ssh-`]).stdout, "");
  assert.match(r.stdout, /sock=\/run\/buildkit\/ssh_agent\.0\n/);
  assert.match(r.stdout, /mode=600 uid=0\n/);
  assert.ok(r.stdout.includes(`256 ${fingerprint} berth-test-key (ED25519)`), r.stdout);
  assert.match(r.stdout, /sock=\/tmp\/agent\n/);
  assert.match(r.stdout, /mode=640 uid=1000\n/);
  assert.match(r.stdout, /ssh-ed25519 \S+ berth-test-key\n/);
  // Nothing of the sockets in the image: neither the mountpoints nor the directories made for them.
  assert.equal(sh("src-ssh", "ls -A /run 2>/dev/null | grep -c buildkit; ls -A /tmp | grep -c agent; true"), "0\n0\n");
});

test("RUN --mount=type=ssh without --ssh: a required mount fails with BuildKit's words, an optional one is left out (SSH_AUTH_SOCK still names it, as BuildKit)", () => {
  const req = context({ Dockerfile: "FROM busybox\nRUN --mount=type=ssh,required=true true\n" });
  let r = build(["--no-cache", req]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no SSH key "default" forwarded from the client/);
  const opt = context({ Dockerfile: "FROM busybox\nRUN --mount=type=ssh echo \"sock=[$SSH_AUTH_SOCK]\" && ls /run/buildkit 2>&1 | head -1\n" });
  r = build(["--no-cache", opt]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // As BuildKit: the variable is set (LLB names the socket), the socket is not there.
  assert.match(r.stdout, /sock=\[\/run\/buildkit\/ssh_agent\.0\]\n/);
  assert.match(r.stdout, /No such file or directory/);
  // A path that is neither an agent's socket nor a key: the client refuses it.
  r = build(["--ssh", `default=${join(opt, "Dockerfile")}`, opt]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /failed to parse .*Dockerfile/);
});

test("RUN --network=none has only lo, default the build's network, host the host's (only with --allow network.host); --security=insecure only with --allow security.insecure", () => {
  const devs = (out: string, tag: string): string[] => {
    const line = out.split("\n").find((l) => l.startsWith(`${tag}:`));
    assert.ok(line, out);
    return line.slice(tag.length + 1).trim().split(/\s+/).sort();
  };
  const ifaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ' '";
  const ctx = context({
    Dockerfile: `FROM busybox\nRUN --network=none echo "none: $(${ifaces})"\nRUN --network=default echo "default: $(${ifaces})"\nRUN echo "plain: $(${ifaces})"\n`,
  });
  for (const via of ["berth", "docker"]) {
    const r = via === "berth" ? build(["--no-cache", ctx]) : dockerBuild(["--no-cache", ctx]);
    assert.equal(r.code, 0, via + r.stderr + r.stdout);
    assert.deepEqual(devs(r.stdout, "none"), ["lo"], via);
    assert.deepEqual(devs(r.stdout, "default"), ["eth0", "lo"], via);
    assert.deepEqual(devs(r.stdout, "plain"), ["eth0", "lo"], via);
  }

  // The build's --network is the network of the RUN steps that name none (the API's networkmode).
  const plain = context({ Dockerfile: `FROM busybox\nRUN echo "plain: $(${ifaces})"\n` });
  for (const via of ["berth", "docker"]) {
    const r = via === "berth" ? build(["--no-cache", "--network", "none", plain]) : dockerBuild(["--no-cache", "--network", "none", plain]);
    assert.equal(r.code, 0, via + r.stderr + r.stdout);
    assert.deepEqual(devs(r.stdout, "plain"), ["lo"], via);
  }

  const host = context({ Dockerfile: `FROM busybox\nRUN --network=host echo "host: $(${ifaces})"\n` });
  let r = build(["--no-cache", host]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /network\.host is not allowed/);
  r = build(["--no-cache", "--allow", "network.host", host]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const hostDevs = readFileSync("/proc/net/dev", "utf8").split("\n").slice(2).map((l) => l.split(":")[0].trim()).filter(Boolean).sort();
  // The host's interfaces, as the host lists them (other tests add and remove veths meanwhile: compare the lasting ones).
  const lasting = (l: string[]) => l.filter((x) => !/^(veth|berth|br-|docker)/.test(x));
  assert.deepEqual(lasting(devs(r.stdout, "host")), lasting(hostDevs));
  // A build on the host's network may use it in RUN too (dockerd grants network.host with networkmode=host).
  r = dockerBuild(["--no-cache", "--network", "host", host]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.deepEqual(lasting(devs(r.stdout, "host")), lasting(hostDevs));

  const caps = "grep CapEff /proc/self/status | cut -f2";
  const ins = context({ Dockerfile: `FROM busybox\nRUN --security=insecure echo "caps=$(${caps})"\nRUN --security=sandbox echo "sandbox=$(${caps})"\n` });
  r = build(["--no-cache", ins]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /security\.insecure is not allowed/);
  r = build(["--no-cache", "--allow", "security.insecure", ins]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // Docker's default capability set in the sandbox; all of them (privileged) when insecure.
  assert.match(r.stdout, /sandbox=00000000a80425fb\n/);
  const all = /caps=([0-9a-f]+)\n/.exec(r.stdout)?.[1];
  assert.equal(all, readFileSync("/proc/self/status", "utf8").match(/CapBnd:\s*([0-9a-f]+)/)![1]);
});

test("COPY --parents keeps the matched paths' directories (below a /./ pivot), --exclude leaves patterns out, --link copies as COPY does", () => {
  const ctx = context({
    "packages/a/package.json": "a", "packages/b/package.json": "b", "packages/b/index.js": "x",
    "apps/web/package.json": "w", "src/lib/one.txt": "1", "src/lib/deep/two.txt": "2",
    "docs/a.md": "a", "docs/b.txt": "b", "docs/sub/c.md": "c", "docs/sub/d.txt": "d", "home.txt": "h", "homer.js": "j",
    Dockerfile: [
      "FROM busybox",
      "COPY --parents packages/*/package.json apps/*/package.json /app/",
      "COPY --parents ./src/./lib/deep /pivot/",
      "COPY --parents src/lib /whole/",
      "COPY --exclude=*.txt hom* /hom/",
      "COPY --exclude=*.md --exclude=sub/d.txt docs /docs/",
      "COPY --link docs/sub /linked/",
      "",
    ].join("\n"),
  });
  const expect = [
    "/app/apps/web/package.json", "/app/packages/a/package.json", "/app/packages/b/package.json",
    "/docs/b.txt", "/docs/sub/c.md",
    "/hom/homer.js",
    "/linked/c.md", "/linked/d.txt",
    "/pivot/lib/deep/two.txt",
    "/whole/src/lib/deep/two.txt", "/whole/src/lib/one.txt",
  ].join("\n") + "\n";
  const list = "find /app /pivot /whole /hom /docs /linked -type f -o -type d -empty | sort";
  for (const via of ["berth", "docker"]) {
    const tag = `src-copy-${via}`;
    const r = via === "berth" ? build(["--no-cache", "-t", tag, ctx]) : dockerBuild(["--no-cache", "-t", tag, ctx]);
    assert.equal(r.code, 0, via + r.stderr + r.stdout);
    assert.equal(sh(tag, list), expect, via);
  }
  // The kept directories are the context's (their mode), not made up.
  assert.equal(sh("src-copy-berth", "stat -c %a /app/packages"), "755\n");
});

/** A bare repository served read-only over git's dumb HTTP protocol on loopback. */
async function gitRepo(): Promise<{ url: string; gitUrl: string; commit1: string; commit2: string; pushDev: (content: string) => void }> {
  const root = tmp("berth-git-");
  const work = join(root, "work");
  const bare = join(root, "repo.git");
  const git = (args: string[]) => {
    const r = runSync("git", ["-c", "user.name=t", "-c", "user.email=t@e", "-c", "init.defaultBranch=main", ...args], { env: { HOME: root, GIT_CONFIG_NOSYSTEM: "1" } });
    assert.equal(r.code, 0, `git ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };
  mkdirSync(work);
  runSync("sh", ["-c", `cd ${work} && git init -q -b main && mkdir -p app/sub && echo one > app/file.txt && echo deep > app/sub/deep.txt && echo top > README && printf 'FROM busybox\\nCOPY . /ctx/\\n' > app/Dockerfile && echo sub > app/.dockerignore && git -c user.name=t -c user.email=t@e add -A && git -c user.name=t -c user.email=t@e commit -qm one && git tag v1`], { env: { HOME: root, GIT_CONFIG_NOSYSTEM: "1" } });
  const commit1 = git(["-C", work, "rev-parse", "HEAD"]);
  runSync("sh", ["-c", `cd ${work} && echo two > app/file.txt && git -c user.name=t -c user.email=t@e commit -qam two && git branch dev`], { env: { HOME: root, GIT_CONFIG_NOSYSTEM: "1" } });
  const commit2 = git(["-C", work, "rev-parse", "HEAD"]);
  git(["clone", "-q", "--bare", work, bare]);
  git(["-C", bare, "update-server-info"]);
  gitServer = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^\/+/, "");
    const file = join(root, path);
    if (!file.startsWith(bare + "/") || !existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "Content-Type": "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => gitServer!.listen(0, "127.0.0.1", () => r()));
  // The same repository over git's own protocol (which clones shallow), from `git daemon` on loopback.
  const port = await freePort();
  gitDaemon = spawn("git", ["daemon", "--listen=127.0.0.1", `--port=${port}`, `--base-path=${root}`, "--export-all", "--reuseaddr", root], { stdio: "ignore" });
  await until("git daemon", () => runSync("git", ["ls-remote", `git://127.0.0.1:${port}/repo.git`]).code === 0, 10_000);
  /** A new commit on dev (app/file.txt changed), pushed to the served repository. */
  const pushDev = (content: string): void => {
    runSync("sh", ["-c", `cd ${work} && git checkout -q dev && echo ${content} > app/file.txt && git -c user.name=t -c user.email=t@e commit -qam ${content} && git push -q ${bare} dev && git -C ${bare} update-server-info`], { env: { HOME: root, GIT_CONFIG_NOSYSTEM: "1" } });
  };
  return { url: `http://127.0.0.1:${(gitServer.address() as AddressInfo).port}/repo.git`, gitUrl: `git://127.0.0.1:${port}/repo.git`, commit1, commit2, pushDev };
}

test("ADD <git url>#ref:dir (http and git://) clones at a tag, a branch or a commit and copies that directory; .git only with --keep-git-dir; cached by commit; a git build context", async () => {
  const { url, gitUrl, commit1, commit2, pushDev } = await gitRepo();
  const ctx = context({
    Dockerfile: [
      "FROM busybox",
      `ADD ${gitUrl}#v1:app /tag/`,
      `ADD ${url}#dev /branch/`,
      `ADD ${url}#${commit1}:app/sub /commit/`,
      `ADD --keep-git-dir=true ${url}#main /kept/`,
      `ADD ${gitUrl}#dev:app/sub /shallow/`,
      "",
    ].join("\n"),
  });
  for (const via of ["berth", "docker"]) {
    const tag = `src-git-${via}`;
    const r = via === "berth" ? await buildAsync(["--no-cache", "-t", tag, ctx]) : await dockerBuildAsync(["--no-cache", "-t", tag, ctx]);
    assert.equal(r.code, 0, via + r.stderr + r.stdout);
    assert.equal(sh(tag, "cat /tag/file.txt /tag/sub/deep.txt /branch/app/file.txt /branch/README /commit/deep.txt; ls -A /tag /branch /commit"),
      "one\ndeep\ntwo\ntop\ndeep\n/branch:\nREADME\napp\n\n/commit:\ndeep.txt\n\n/tag:\n.dockerignore\nDockerfile\nfile.txt\nsub\n", via);
    assert.equal(sh(tag, "test -d /kept/.git && cat /kept/.git/HEAD | cut -c1-4; test -e /branch/.git || echo no-git; ls -A /shallow"), "ref:\nno-git\ndeep.txt\n", via);
  }
  // Keyed by the commit each ref names, as BuildKit: unchanged refs are cached (.git kept or not), a branch
  // that moved rebuilds from its step on, with the new content.
  let again = await buildAsync(["-t", "src-git-berth", ctx]);
  assert.equal(again.code, 0, again.stderr + again.stdout);
  assert.equal(again.stdout.match(/Using cache/g)?.length, 5, again.stdout);
  pushDev("three");
  again = await buildAsync(["-t", "src-git-berth", ctx]);
  assert.equal(again.code, 0, again.stderr + again.stdout);
  assert.match(again.stdout, new RegExp(`ADD ${url.replace(/[.]/g, "\\.")}#dev /branch/\n(?! ---> Using cache)`));
  assert.equal(again.stdout.match(/Using cache/g)?.length, 1, again.stdout);
  assert.equal(sh("src-git-berth", "cat /branch/app/file.txt /tag/file.txt /shallow/deep.txt"), "three\none\ndeep\n");

  // A ref that does not exist: the fetch fails, with the remote named.
  const bad = context({ Dockerfile: `FROM busybox\nADD ${url}#nosuchref /x/\n` });
  let r = await buildAsync(["--no-cache", bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, new RegExp(`failed to fetch remote ${url.replace(/[.]/g, "\\.")}`));

  // The build context itself from git: berth and the docker CLI clone it and send it; an API client's remote= has the daemon clone it.
  for (const via of ["berth", "docker"]) {
    const tag = `src-gitctx-${via}`;
    r = via === "berth" ? await buildAsync(["-t", tag, `${url}#v1:app`]) : await dockerBuildAsync(["-t", tag, `${url}#v1:app`]);
    assert.equal(r.code, 0, via + r.stderr + r.stdout);
    // Its .dockerignore applies (sub is left out), as to a directory sent by the client.
    assert.equal(sh(tag, "cat /ctx/file.txt; ls -A /ctx"), "one\n.dockerignore\nDockerfile\nfile.txt\n", via);
  }
  r = await buildAsync(["-t", "src-gitctx-dev", `${url}#${commit2}:app`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(sh("src-gitctx-dev", "cat /ctx/file.txt"), "two\n");
  images.push("src-gitctx-api");
  const res = await api(d.sock, "POST", `/build?t=src-gitctx-api&remote=${encodeURIComponent(`${gitUrl}#v1:app`)}`, "", { "Content-Type": "application/x-tar" });
  assert.equal(res.status, 200);
  assert.match(res.body, /Successfully tagged src-gitctx-api:latest/);
  assert.equal(sh("src-gitctx-api", "cat /ctx/file.txt; ls -A /ctx"), "one\n.dockerignore\nDockerfile\nfile.txt\n");
  // Not a repository: the daemon says so.
  const notGit = await api(d.sock, "POST", `/build?remote=${encodeURIComponent("https://example.invalid/x.tar")}`, "", { "Content-Type": "application/x-tar" });
  assert.match(notGit.body, /unsupported remote context/);
});

test("ADD of a local archive of a few MB, tar or compressed with gzip, bzip2, xz or zstd, is unpacked into the destination", () => {
  const src = tmp("berth-arch-");
  mkdirSync(join(src, "data/sub"), { recursive: true });
  const big = randomBytes(3 << 20);
  writeFileSync(join(src, "data/big.bin"), big);
  writeFileSync(join(src, "data/sub/small.txt"), "small\n");
  const sum = createHash("sha256").update(big).digest("hex");
  const ctx = context({});
  const kinds: [string, string][] = [["plain.tar", ""], ["gz.tar.gz", "gzip"], ["bz.tar.bz2", "bzip2"], ["xz.tar.xz", "xz"], ["zst.tar.zst", "zstd"]];
  for (const [name, z] of kinds) {
    const r = runSync("sh", ["-c", `tar -C ${src} -cf - data ${z ? `| ${z} -q -c` : ""} > ${join(ctx, name)}`]);
    assert.equal(r.code, 0, r.stderr);
  }
  writeFileSync(join(ctx, "Dockerfile"), ["FROM busybox", ...kinds.map(([name]) => `ADD ${name} /x/${name.split(".")[0]}/`), ""].join("\n"));
  const r = build(["--no-cache", "-t", "src-archives", ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const out = sh("src-archives", "for k in plain gz bz xz zst; do sha256sum /x/$k/data/big.bin | cut -d' ' -f1; cat /x/$k/data/sub/small.txt; done; ls /x/zst");
  assert.equal(out, `${sum}\nsmall\n`.repeat(5) + "data\n");
});
