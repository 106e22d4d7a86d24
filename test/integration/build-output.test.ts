/**
 * The builder's output side, as buildx has it: --progress plain/quiet/tty (BuildKit's vertices), --output
 * local/tar/oci/docker (the image not tagged unless asked), --iidfile, --metadata-file, --label (berth and the
 * docker CLI), --annotation; Ctrl-C cancels the build on the daemon and leaves nothing behind.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, readdirSync, existsSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, runSync, until, mountsUnder } from "./harness.js";

const d = new Daemon();
const dirs: string[] = [];

function context(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-bout-"));
  dirs.push(dir);
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), data);
  }
  return dir;
}

/** Times and IDs as BuildKit prints them, made comparable. */
function normalize(s: string): string {
  return s.replace(/DONE \d+\.\ds/g, "DONE X.Xs").replace(/^(#\d+) \d+\.\d{3} /gm, "$1 T.TTT ").replace(/sha256:[0-9a-f]{64}/g, "sha256:ID");
}

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  try { await d.stop(); } finally { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }); }
});

const TWO_STAGE = "FROM busybox AS build\nWORKDIR /w\nRUN echo hi > /w/a && echo out\nENV X=1\nFROM busybox\nCOPY --from=build /w/a /a\nLABEL x=y\n";

test("--progress=plain prints BuildKit's vertices (as dockerd 20.10 with BuildKit: numbered, [stage k/n], CACHED on a rebuild); quiet only the ID", () => {
  const ctx = context({ Dockerfile: TWO_STAGE });
  try {
    const r = d.berth(["build", "--progress=plain", "-t", "bout-plain", ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.equal(normalize(r.stderr), [
      "#1 [internal] load build definition from Dockerfile", `#1 transferring dockerfile: ${Buffer.byteLength(TWO_STAGE)}B done`, "#1 DONE X.Xs", "",
      "#2 [internal] load .dockerignore", "#2 transferring context: 2B done", "#2 DONE X.Xs", "",
      "#3 [internal] load metadata for docker.io/library/busybox:latest", "#3 DONE X.Xs", "",
      "#4 [build 1/3] FROM docker.io/library/busybox", "#4 CACHED", "",
      "#5 [build 2/3] WORKDIR /w", "#5 DONE X.Xs", "",
      "#6 [build 3/3] RUN echo hi > /w/a && echo out", "#6 T.TTT out", "#6 DONE X.Xs", "",
      "#7 [stage-1 2/2] COPY --from=build /w/a /a", "#7 DONE X.Xs", "",
      "#8 exporting to image", "#8 exporting layers done", "#8 writing image sha256:ID done", "#8 naming to docker.io/library/bout-plain done", "#8 DONE X.Xs", "",
    ].join("\n"));
    // The same build again: every step from the cache.
    const again = d.berth(["build", "--progress=plain", "-t", "bout-plain", ctx]);
    assert.equal(again.code, 0, again.stderr);
    for (const n of [5, 6, 7]) assert.match(again.stderr, new RegExp(`^#${n} CACHED$`, "m"));
    assert.doesNotMatch(again.stderr, /T\.TTT|^#6 \d/m);

    // A failing step: its ERROR line, then BuildKit's frame of it with its last lines, then the error; exit 1.
    const bad = context({ Dockerfile: "FROM busybox\nRUN echo about to fail && false\n" });
    const f = d.berth(["build", "--progress=plain", bad]);
    assert.equal(f.code, 1);
    assert.match(normalize(f.stderr), /\n#5 \[2\/2\] RUN echo about to fail && false\n#5 T\.TTT about to fail\n#5 ERROR: The command '\/bin\/sh -c echo about to fail && false' returned a non-zero code: 1\n------\n > \[2\/2\] RUN echo about to fail && false:\n#5 T\.TTT about to fail\n------\nThe command '\/bin\/sh -c echo about to fail && false' returned a non-zero code: 1\n$/);

    // quiet: the image ID alone, on stdout (as `docker build -q` and --progress=quiet).
    for (const flag of ["--progress=quiet", "-q"]) {
      const q = d.berth(["build", flag, "-t", "bout-plain", ctx]);
      assert.equal(q.code, 0, q.stderr);
      assert.equal(q.stderr, "");
      assert.equal(q.stdout, d.berth(["image", "inspect", "-f", "{{.Id}}", "bout-plain"]).stdout);
      assert.match(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
    }
  } finally { d.berth(["rmi", "-f", "bout-plain"]); }
});

test("--progress=tty: the live view on a terminal (tmux), its last screen FINISHED with every step, CACHED on a rebuild", async () => {
  const ctx = context({ Dockerfile: "FROM busybox\nRUN for i in 1 2 3; do echo line $i; sleep 0.2; done\nCOPY f /f\n", f: "x\n" });
  const sock = `berth-bout-${randomBytes(4).toString("hex")}`;
  const tmux = (...a: string[]) => runSync("tmux", ["-L", sock, ...a]);
  const screen = async (args: string): Promise<string> => {
    tmux("new-session", "-d", "-x", "120", "-y", "40", `${process.execPath} ${BERTH} -H ${d.host} build ${args} ${ctx}; echo EXIT=$?; sleep 60`);
    try {
      return await until("the build to finish on the terminal", () => { const s = tmux("capture-pane", "-p").stdout; return /EXIT=\d+/.test(s) && s; }, 60_000);
    } finally { tmux("kill-server"); }
  };
  try {
    const first = await screen("--progress=tty -t bout-tty");
    assert.match(first, /EXIT=0/, first);
    assert.match(first, /^\[\+\] Building \d+\.\ds \(7\/7\) FINISHED$/m, first);
    assert.match(first, /^ => CACHED \[1\/3\] FROM docker\.io\/library\/busybox +0\.0s$/m, first);
    assert.match(first, /^ => \[2\/3\] RUN for i in 1 2 3; do echo line \$i; sleep 0\.2; done +\d+\.\ds$/m, first);
    assert.match(first, /^ => \[3\/3\] COPY f \/f +\d+\.\ds$/m, first);
    assert.match(first, /^ => exporting to image +\d+\.\ds$/m, first);
    // No progress flag: a terminal gets the same view (auto); the rebuild is all CACHED.
    const second = await screen("-t bout-tty");
    assert.match(second, /EXIT=0/, second);
    assert.match(second, /^ => CACHED \[2\/3\] RUN for i in 1 2 3/m, second);
    assert.match(second, /^ => CACHED \[3\/3\] COPY f \/f +0\.0s$/m, second);
    assert.doesNotMatch(second, /Step 1\/3/);
  } finally { d.berth(["rmi", "-f", "bout-tty"]); }
});

test("--output: type=local (and -o DIR) and type=tar (-o -) export the target's filesystem; the image is not tagged unless asked", async () => {
  const ctx = context({ Dockerfile: "FROM busybox AS b\nRUN mkdir -p /o && echo built > /o/made\nFROM scratch\nCOPY a.txt /a.txt\nCOPY --from=b /o/ /sub/\n", "a.txt": "hello\n" });
  const out = mkdtempSync(join(tmpdir(), "berth-bout-o-"));
  dirs.push(out);
  const r = d.berth(["build", "-t", "bout-notag", "--output", `type=local,dest=${join(out, "local")}`, ctx]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.deepEqual(readdirSync(join(out, "local")).sort(), ["a.txt", "sub"]);
  assert.equal(readFileSync(join(out, "local/a.txt"), "utf8"), "hello\n");
  assert.equal(readFileSync(join(out, "local/sub/made"), "utf8"), "built\n");
  // As buildx: with an --output that is not the image store, -t names nothing.
  assert.equal(d.berth(["image", "inspect", "bout-notag"]).code, 1);

  const short = d.berth(["build", "-o", join(out, "short"), ctx]);
  assert.equal(short.code, 0, short.stderr);
  assert.equal(readFileSync(join(out, "short/sub/made"), "utf8"), "built\n");

  const tarOut = runSync("sh", ["-c", `${process.execPath} ${BERTH} -H ${d.host} build -q -o - ${ctx} | tar -t`]);
  assert.equal(tarOut.code, 0, tarOut.stderr);
  assert.deepEqual(tarOut.stdout.split("\n").filter(Boolean).sort(), ["a.txt", "sub/", "sub/made"]);
  const tarFile = d.berth(["build", "-o", `type=tar,dest=${join(out, "fs.tar")}`, ctx]);
  assert.equal(tarFile.code, 0, tarFile.stderr);
  assert.equal(runSync("tar", ["-xOf", join(out, "fs.tar"), "a.txt"]).stdout, "hello\n");

  // Nothing of the export is left on the daemon (its mounted snapshot, its scratch directory), once the tar has ended.
  await until("the exports' mounts and scratch directories to be gone", () =>
    !mountsUnder(d.dataRoot).length && !readdirSync(join(d.dataRoot, "tmp")).some((n) => n.startsWith("build-")), 10_000,
  () => `${mountsUnder(d.dataRoot).join(" ")} ${readdirSync(join(d.dataRoot, "tmp")).join(" ")}`);
});

test("--output type=oci and type=docker: archives skopeo reads and `berth load` loads, with --annotation in the manifest and index", () => {
  const ctx = context({ Dockerfile: "FROM busybox\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n", "a.txt": "from the archive\n" });
  const out = mkdtempSync(join(tmpdir(), "berth-bout-a-"));
  dirs.push(out);
  try {
    const oci = join(out, "img.oci.tar");
    const r = d.berth(["build", "-t", "bout-arch:1", "--annotation", "org.opencontainers.image.title=bout", "--annotation", "index:com.example.where=index",
      "--annotation", "manifest-descriptor:com.example.desc=d", "-o", `type=oci,dest=${oci}`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(d.berth(["image", "inspect", "bout-arch:1"]).code, 1);
    const raw = runSync("skopeo", ["inspect", "--raw", `oci-archive:${oci}`]);
    assert.equal(raw.code, 0, raw.stderr);
    assert.equal(JSON.parse(raw.stdout).annotations["org.opencontainers.image.title"], "bout");
    const index = JSON.parse(runSync("tar", ["-xOf", oci, "index.json"]).stdout);
    assert.equal(index.annotations["com.example.where"], "index");
    assert.equal(index.manifests[0].annotations["com.example.desc"], "d");
    assert.equal(index.manifests[0].annotations["io.containerd.image.name"], "docker.io/library/bout-arch:1");

    const dockerTar = join(out, "img.docker.tar");
    const r2 = d.berth(["build", "-t", "bout-arch:2", "-o", `type=docker,dest=${dockerTar}`, ctx]);
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(runSync("skopeo", ["inspect", `docker-archive:${dockerTar}`]).code, 0);
    const loaded = d.berth(["load", "-i", dockerTar]);
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(loaded.stdout, "Loaded image: bout-arch:2\n");
    assert.equal(d.berth(["run", "--rm", "bout-arch:2"]).stdout, "from the archive\n");

    // type=docker without dest (and type=image): into the daemon's store, tagged.
    const r3 = d.berth(["build", "-t", "bout-arch:3", "-o", "type=image", ctx]);
    assert.equal(r3.code, 0, r3.stderr);
    assert.equal(d.berth(["image", "inspect", "bout-arch:3"]).code, 0);
  } finally { d.berth(["rmi", "-f", "bout-arch:2", "bout-arch:3"]); }
});

test("--iidfile and --metadata-file (BuildKit's keys); --label from berth and the docker CLI", () => {
  const ctx = context({ Dockerfile: "FROM busybox\nLABEL from.file=1\n" });
  const out = mkdtempSync(join(tmpdir(), "berth-bout-m-"));
  dirs.push(out);
  try {
    const r = d.berth(["build", "-t", "bout-meta", "--label", "team=blue", "--label", "from.file=2", "--iidfile", join(out, "iid"), "--metadata-file", join(out, "meta.json"), ctx]);
    assert.equal(r.code, 0, r.stderr);
    const id = d.berth(["image", "inspect", "-f", "{{.Id}}", "bout-meta"]).stdout.trim();
    assert.equal(readFileSync(join(out, "iid"), "utf8"), id);
    const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8"));
    assert.equal(meta["containerimage.config.digest"], id);
    assert.match(meta["containerimage.digest"], /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(meta["containerimage.digest"], id);
    const desc = meta["containerimage.descriptor"];
    assert.equal(desc.digest, meta["containerimage.digest"]);
    assert.equal(desc.mediaType, "application/vnd.oci.image.manifest.v1+json");
    assert.ok(desc.size > 0);
    assert.equal(meta["image.name"], "docker.io/library/bout-meta:latest");
    assert.equal(d.berth(["image", "inspect", "-f", "{{json .Config.Labels}}", "bout-meta"]).stdout, '{"from.file":"2","team":"blue"}\n');

    const viaDocker = d.docker(["build", "-q", "--label", "via=docker", "-t", "bout-meta-docker", ctx]);
    assert.equal(viaDocker.code, 0, viaDocker.stderr);
    assert.equal(d.berth(["image", "inspect", "-f", "{{json .Config.Labels}}", "bout-meta-docker"]).stdout, '{"from.file":"1","via":"docker"}\n');
  } finally { d.berth(["rmi", "-f", "bout-meta", "bout-meta-docker"]); }
});

test("Ctrl-C: SIGINT to `berth build` exits 130 (as the docker CLI's build) and the daemon kills and removes every running RUN container, leaving no mount", async () => {
  // Two stages side by side, each in a RUN of a minute: both are killed.
  const ctx = context({ Dockerfile: "FROM busybox AS a\nRUN echo started && sleep 60\nFROM busybox AS b\nRUN echo started && sleep 61\nFROM busybox\nCOPY --from=a /etc/hostname /a\nCOPY --from=b /etc/hostname /b\n" });
  const p = spawn(process.execPath, [BERTH, "-H", d.host, "build", "--progress=plain", "--no-cache", ctx], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  p.stderr.on("data", (c) => { err += c; });
  const exited = new Promise<number | null>((r) => p.on("exit", (code, sig) => r(code ?? (sig === "SIGINT" ? 130 : null))));
  try {
    await until("both RUN steps to start", () => (err.match(/#\d+ \d+\.\d{3} started/g) ?? []).length === 2, 60_000, () => err);
    assert.equal(d.berth(["ps", "-q"]).stdout.trim().split("\n").filter(Boolean).length, 2);
    p.kill("SIGINT");
    assert.equal(await exited, 130);
  } finally { if (p.exitCode === null) p.kill("SIGKILL"); }
  await until("the build's container to be gone", () => d.berth(["ps", "-aq"]).stdout.trim() === "", 30_000);
  await until("the build's mounts and scratch directory to be gone", () =>
    !mountsUnder(d.root).length && !readdirSync(join(d.dataRoot, "tmp")).some((n) => n.startsWith("build-")), 30_000,
  () => `${mountsUnder(d.root).join(" ")} ${readdirSync(join(d.dataRoot, "tmp")).join(" ")}`);
  assert.equal(spawnSync("pgrep", ["-f", `conmon.*${d.root}`]).status, 1);
  assert.ok(existsSync(d.dataRoot));
});

test("--build-context name=DIR and name=docker-image://ref: FROM and COPY --from read them; the uploaded directory is removed after the build", () => {
  const ctx = context({ Dockerfile: "FROM base\nCOPY --from=extra e.txt /e.txt\nCOPY --from=img /bin/busybox /bb\nCOPY --from=more m.txt /m.txt\n" });
  const extra = context({ "e.txt": "from the extra context\n" });
  const more = context({ "m.txt": "more\n" });
  try {
    const r = d.berth(["build", "-q", "--build-context", "base=docker-image://busybox", "--build-context", `extra=${extra}`,
      "--build-context", "img=docker-image://busybox:latest", "--build-context", `more=${more}`, "-t", "bout-ctx", ctx]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(d.berth(["run", "--rm", "bout-ctx", "cat", "/e.txt", "/m.txt"]).stdout, "from the extra context\nmore\n");
    assert.equal(d.berth(["run", "--rm", "bout-ctx", "sh", "-c", "cmp /bb /bin/busybox && echo same"]).stdout, "same\n");
    assert.deepEqual(readdirSync(join(d.dataRoot, "tmp")).filter((n) => n.startsWith("build-")), []);
    // A changed file in a named context is a changed input: the step runs again.
    writeFileSync(join(extra, "e.txt"), "changed\n");
    assert.equal(d.berth(["build", "-q", "--build-context", "base=docker-image://busybox", "--build-context", `extra=${extra}`,
      "--build-context", "img=docker-image://busybox:latest", "--build-context", `more=${more}`, "-t", "bout-ctx", ctx]).code, 0);
    assert.equal(d.berth(["run", "--rm", "bout-ctx", "cat", "/e.txt"]).stdout, "changed\n");
    // Not a directory, not an image: the docker CLI's words.
    const bad = d.berth(["build", "--build-context", `x=${join(extra, "nope")}`, ctx]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unable to prepare context: path ".*nope" not found/);
  } finally { d.berth(["rmi", "-f", "bout-ctx"]); }
});
