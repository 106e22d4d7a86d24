/**
 * The real docker CLI (/usr/local/bin/docker, 28) against a real berthd:
 * every command berth implements, as a user scripts it. Each assertion is what
 * the same command prints against dockerd (checked on dockerd 20.10 here).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync, readFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { Daemon } from "../integration/harness.js";
import { ok, poll, freePort, scratch, startRegistry, httpGet } from "./helpers.js";

const d = new Daemon();
const work = scratch("berth-cli-");
let registry: ChildProcess | undefined;
const docker = (args: string[], input?: string) => d.docker(args, { input, timeout: 120_000 });
const out = (args: string[], input?: string) => ok(docker(args, input), `docker ${args.join(" ")}`).stdout;

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  registry?.kill("SIGTERM");
  await d.stop();
  rmSync(work, { recursive: true, force: true });
});

test("docker run: output, stdout and stderr apart, exit codes, --rm, -i, -t, -e, -w, -u", () => {
  const r = docker(["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
  assert.equal(r.stdout, "out\n");
  assert.equal(r.stderr, "err\n");
  assert.equal(r.code, 3);
  for (const n of [0, 1, 7, 42]) assert.equal(docker(["run", "--rm", "busybox", "sh", "-c", `exit ${n}`]).code, n, `exit ${n}`);
  assert.equal(out(["run", "--rm", "-i", "busybox", "cat"], "piped in\n"), "piped in\n");
  assert.equal(out(["run", "--rm", "-e", "A=1", "-w", "/tmp", "-u", "1000:1000", "busybox", "sh", "-c", "echo $A $(pwd) $(id -u):$(id -g)"]), "1 /tmp 1000:1000\n");
  // With a TTY the output carries \r\n, as dockerd's.
  const tty = docker(["run", "--rm", "-t", "busybox", "sh", "-c", "echo hi; exit 2"]);
  assert.equal(tty.stdout, "hi\r\n");
  assert.equal(tty.code, 2);
  // A missing binary: 127, as dockerd.
  assert.equal(docker(["run", "--rm", "busybox", "nosuchbin"]).code, 127);
  assert.equal(docker(["ps", "-aq"]).stdout, "", "--rm left a container");
});

test("docker create/start/ps/rename/pause/unpause/top/stats/stop/kill/wait/inspect/rm", () => {
  const id = out(["create", "--name", "life", "busybox", "sleep", "300"]).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(out(["ps", "-a", "--filter", "name=life", "--format", "{{.Names}}|{{.Status}}"]), "life|Created\n");
  assert.equal(out(["ps", "-q"]), "", "a created container is not running");
  assert.equal(out(["start", "life"]), "life\n");
  assert.match(out(["ps", "--filter", "name=life", "--format", "{{.Status}}"]), /^Up /);
  assert.equal(out(["ps", "-q", "--no-trunc"]).trim(), id);
  ok(docker(["rename", "life", "life2"]), "rename");
  assert.equal(out(["inspect", "-f", "{{.Name}}", id]), "/life2\n");
  ok(docker(["pause", "life2"]), "pause");
  assert.equal(out(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "life2"]), "paused true\n");
  ok(docker(["unpause", "life2"]), "unpause");
  assert.equal(out(["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "life2"]), "running false\n");
  assert.match(out(["top", "life2"]), /sleep 300/);
  assert.equal(out(["stats", "--no-stream", "--format", "{{.Name}}", "life2"]), "life2\n");
  // sleep as pid 1 ignores SIGTERM: stop -t 1 kills it, 137.
  assert.equal(out(["stop", "-t", "1", "life2"]), "life2\n");
  assert.equal(out(["wait", "life2"]), "137\n");
  assert.equal(out(["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "life2"]), "exited 137\n");
  ok(docker(["start", "life2"]), "restart");
  ok(docker(["kill", "-s", "KILL", "life2"]), "kill");
  assert.equal(out(["wait", "life2"]), "137\n");
  ok(docker(["restart", "-t", "0", "life2"]), "restart");
  assert.equal(out(["inspect", "-f", "{{.State.Running}}", "life2"]), "true\n");
  const rmRunning = docker(["rm", "life2"]);
  assert.equal(rmRunning.code, 1, "rm of a running container without -f fails");
  assert.equal(out(["rm", "-f", "life2"]), "life2\n");
  const gone = docker(["inspect", "life2"]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /No such object: life2/);
  const rmGone = docker(["rm", "nosuch"]);
  assert.equal(rmGone.code, 1);
  assert.match(rmGone.stderr, /No such container: nosuch/);
});

test("docker logs, exec (-i, -e, -u, -w, exit code), attach and start -a", async (t) => {
  t.after(() => { docker(["rm", "-f", "lg", "tl", "att", "sa"]); });
  ok(docker(["run", "-d", "--name", "lg", "busybox", "sh", "-c", "echo one; echo two >&2; echo three; exec sleep 300"]), "run -d");
  await poll(() => docker(["logs", "lg"]).stdout.includes("three"));
  const l = docker(["logs", "lg"]);
  assert.equal(l.stdout, "one\nthree\n");
  assert.equal(l.stderr, "two\n");
  // --tail on stdout alone (stdout and stderr are two pipes: their order in the log is not defined).
  ok(docker(["run", "-d", "--name", "tl", "busybox", "sh", "-c", "seq 1 5; exec sleep 300"]), "run tl");
  await poll(() => docker(["logs", "tl"]).stdout.endsWith("5\n"));
  assert.equal(out(["logs", "--tail", "2", "tl"]), "4\n5\n");
  assert.match(out(["logs", "-t", "lg"]).split("\n")[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z one$/);
  const e = docker(["exec", "lg", "sh", "-c", "echo $((1+2)); exit 4"]);
  assert.equal(e.stdout, "3\n");
  assert.equal(e.code, 4);
  assert.equal(out(["exec", "-i", "lg", "cat"], "to exec\n"), "to exec\n");
  const et = docker(["exec", "-t", "lg", "sh", "-c", "echo tty; exit 9"]);
  assert.equal(et.stdout, "tty\r\n");
  assert.equal(et.code, 9);
  assert.equal(out(["exec", "-e", "FOO=bar", "-u", "1000", "-w", "/tmp", "lg", "sh", "-c", "echo $FOO $(id -u) $(pwd)"]), "bar 1000 /tmp\n");
  assert.equal(out(["exec", "-d", "lg", "sh", "-c", "echo hi > /tmp/detached"]), "");
  await poll(() => docker(["exec", "lg", "cat", "/tmp/detached"]).stdout === "hi\n");
  assert.equal(docker(["exec", "lg", "cat", "/tmp/detached"]).stdout, "hi\n");

  ok(docker(["create", "-i", "--name", "att", "busybox", "sh", "-c", "read x; echo got $x; exit 5"]), "create -i");
  ok(docker(["start", "att"]), "start");
  const a = docker(["attach", "att"], "hello\n");
  assert.equal(a.stdout, "got hello\n");
  assert.equal(a.code, 5, "attach exits with the container's code");

  ok(docker(["create", "-i", "--name", "sa", "busybox", "sh", "-c", "read x; echo [$x]; exit 6"]), "create");
  const s = docker(["start", "-ai", "sa"], "abc\n");
  assert.equal(s.stdout, "[abc]\n");
  assert.equal(s.code, 6);
});

test("docker cp both ways, export, diff, commit, port", async (t) => {
  t.after(() => { docker(["rm", "-f", "fs"]); docker(["rmi", "cli-committed:1"]); });
  const port = await freePort();
  ok(docker(["run", "-d", "--name", "fs", "-p", `127.0.0.1:${port}:80`, "busybox", "sh", "-c", "mkdir /www; echo hi > /www/index.html; exec httpd -f -p 80 -h /www"]), "run");
  assert.equal(out(["port", "fs"]), `80/tcp -> 127.0.0.1:${port}\n`);
  assert.equal(out(["port", "fs", "80"]), `127.0.0.1:${port}\n`);
  assert.equal(await poll(() => httpGet(port)), "hi\n");
  const diff = out(["diff", "fs"]).split("\n");
  assert.ok(diff.includes("A /www"), diff.join("|"));
  assert.ok(diff.includes("A /www/index.html"), diff.join("|"));
  // cp out (a file, a directory, to stdout as a tar) and in.
  ok(docker(["cp", "fs:/www/index.html", join(work, "index.html")]), "cp out");
  assert.equal(readFileSync(join(work, "index.html"), "utf8"), "hi\n");
  ok(docker(["cp", "fs:/www", join(work, "wwwcopy")]), "cp dir out");
  assert.equal(readFileSync(join(work, "wwwcopy", "index.html"), "utf8"), "hi\n");
  const tar = spawnSync("/usr/local/bin/docker", ["cp", "fs:/www/index.html", "-"], { env: { ...process.env, DOCKER_HOST: d.host } });
  assert.equal(tar.status, 0, String(tar.stderr));
  assert.equal(tar.stdout.subarray(0, 10).toString(), "index.html");
  writeFileSync(join(work, "in.txt"), "into the container\n");
  ok(docker(["cp", join(work, "in.txt"), "fs:/tmp/"]), "cp in");
  assert.equal(out(["exec", "fs", "cat", "/tmp/in.txt"]), "into the container\n");
  const missing = docker(["cp", "fs:/nosuch", join(work, "x")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Could not find the file \/nosuch in container fs/);
  // export: the whole root as a tar.
  ok(docker(["export", "-o", join(work, "fs.tar"), "fs"]), "export");
  const names = spawnSync("tar", ["tf", join(work, "fs.tar")], { encoding: "utf8" }).stdout.split("\n");
  assert.ok(names.includes("www/index.html"), `export names entries as dockerd does ("www/index.html", no "./" prefix): ${names.slice(0, 3).join(" ")}`);
  assert.ok(names.includes("bin/busybox"), "export has the image's files");
  // commit with a change, then run the new image.
  const img = out(["commit", "-m", "from fs", "-c", 'CMD ["cat", "/www/index.html"]', "fs", "cli-committed:1"]).trim();
  assert.match(img, /^sha256:[0-9a-f]{64}$/);
  assert.equal(out(["run", "--rm", "cli-committed:1"]), "hi\n");
  assert.equal(out(["image", "inspect", "-f", "{{.Comment}}", "cli-committed:1"]), "from fs\n");
});

test("docker build, images, tag, history, save/load, import, rmi", (t) => {
  t.after(() => { for (const i of ["cli-built:latest", "cli-built:v2", "cli-imported:1"]) docker(["rmi", "-f", i]); });
  const ctx = join(work, "ctx");
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, "msg.txt"), "from the context\n");
  writeFileSync(join(ctx, "Dockerfile.custom"), "FROM busybox\nARG WHO=nobody\nCOPY msg.txt /msg.txt\nRUN echo \"built by $WHO\" > /who\nLABEL org.example.k=v\nCMD cat /msg.txt /who\n");
  const b = docker(["build", "-q", "-t", "cli-built", "-f", join(ctx, "Dockerfile.custom"), "--build-arg", "WHO=cli", ctx]);
  ok(b, "build");
  assert.match(b.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  assert.equal(out(["run", "--rm", "cli-built"]), "from the context\nbuilt by cli\n");
  assert.equal(out(["image", "inspect", "-f", "{{index .Config.Labels \"org.example.k\"}}", "cli-built"]), "v\n");
  // A Dockerfile on stdin, no context.
  ok(docker(["build", "-q", "-t", "cli-built:stdin", "-"], "FROM busybox\nRUN echo stdin > /s\n"), "build -");
  assert.equal(out(["run", "--rm", "cli-built:stdin", "cat", "/s"]), "stdin\n");
  ok(docker(["rmi", "cli-built:stdin"]), "rmi");

  ok(docker(["tag", "cli-built", "cli-built:v2"]), "tag");
  const list = out(["images", "--format", "{{.Repository}}:{{.Tag}}"]).split("\n");
  for (const r of ["busybox:latest", "cli-built:latest", "cli-built:v2"]) assert.ok(list.includes(r), `${r} in ${list.join(",")}`);
  assert.ok(!list.includes("<none>:<none>"), `images hides intermediate images: ${list.join(",")}`);
  assert.equal(out(["images", "-q", "cli-built:v2"]).trim(), out(["images", "-q", "cli-built:latest"]).trim());
  const hist = out(["history", "--no-trunc", "--format", "{{.CreatedBy}}", "cli-built"]);
  assert.match(hist, /echo "built by \$WHO"/);
  assert.match(hist, /COPY msg.txt \/msg.txt/);

  ok(docker(["save", "-o", join(work, "img.tar"), "cli-built:v2"]), "save");
  assert.equal(out(["rmi", "cli-built:v2"]), "Untagged: cli-built:v2\n");
  assert.equal(out(["load", "-i", join(work, "img.tar")]).trim(), "Loaded image: cli-built:v2");
  assert.equal(out(["run", "--rm", "cli-built:v2"]), "from the context\nbuilt by cli\n");

  // import: a root file system tar (from export) becomes an image.
  const cid = out(["create", "busybox", "true"]).trim();
  ok(docker(["export", "-o", join(work, "root.tar"), cid]), "export");
  ok(docker(["rm", cid]), "rm");
  const imp = out(["import", "-c", 'CMD ["echo", "imported"]', join(work, "root.tar"), "cli-imported:1"]).trim();
  assert.match(imp, /^sha256:[0-9a-f]{64}$/);
  assert.equal(out(["run", "--rm", "cli-imported:1"]), "imported\n");

  // rmi of one of several tags untags, even with a container on the image; of the last one, refuses (as dockerd).
  const user = out(["create", "cli-built:v2"]).trim();
  assert.equal(out(["rmi", "cli-built:v2"]), "Untagged: cli-built:v2\n");
  ok(docker(["rm", user]), "rm");
  const inUse = out(["create", "cli-imported:1"]).trim();
  const refused = docker(["rmi", "cli-imported:1"]);
  assert.equal(refused.code, 1, "rmi of an image's last tag while a container uses it");
  assert.match(refused.stderr, /conflict: unable to remove repository reference "cli-imported:1" \(must force\) - container [0-9a-f]{12} is using its referenced image [0-9a-f]{12}/);
  ok(docker(["rm", inUse]), "rm");
  const nosuch = docker(["rmi", "nosuch:1"]);
  assert.equal(nosuch.code, 1);
  assert.match(nosuch.stderr, /No such image: nosuch:1/);
});

test("docker push and pull through a local registry", async (t) => {
  const reg = await startRegistry(work);
  registry = reg.proc;
  const port = reg.port;
  const ref = `127.0.0.1:${port}/team/bb:1`;
  t.after(() => { docker(["rmi", ref]); });
  ok(docker(["tag", "busybox", ref]), "tag");
  const p = docker(["push", ref]);
  ok(p, "push");
  assert.match(p.stdout, /1: digest: sha256:[0-9a-f]{64} size: \d+/);
  ok(docker(["rmi", ref]), "rmi");
  const pl = docker(["pull", ref]);
  ok(pl, "pull");
  assert.match(pl.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/team\/bb:1/);
  assert.equal(out(["run", "--rm", ref, "echo", "pulled"]), "pulled\n");
  const again = out(["pull", ref]);
  assert.match(again, /Status: Image is up to date for/, "a second pull of an image already here: dockerd says 'Image is up to date'");
});

test("docker network create/ls/inspect/connect/disconnect/rm/prune, and name resolution", async (t) => {
  t.after(() => { docker(["rm", "-f", "srv", "late"]); docker(["network", "rm", "cli-net", "cli-unused"]); });
  const nid = out(["network", "create", "--label", "k=v", "cli-net"]).trim();
  assert.match(nid, /^[0-9a-f]{64}$/);
  const dup = docker(["network", "create", "cli-net"]);
  assert.equal(dup.code, 1);
  assert.match(dup.stderr, /network with name cli-net already exists/);
  assert.equal(out(["network", "ls", "--filter", "name=cli-net", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"]), "cli-net bridge local\n");
  const ls = out(["network", "ls", "--format", "{{.Name}}"]).split("\n");
  for (const n of ["bridge", "host", "none", "cli-net"]) assert.ok(ls.includes(n), `${n} in ${ls.join(",")}`);
  assert.equal(out(["network", "inspect", "-f", "{{.Name}} {{.Driver}} {{index .Labels \"k\"}}", "cli-net"]), "cli-net bridge v\n");
  ok(docker(["run", "-d", "--name", "srv", "--network", "cli-net", "--network-alias", "web", "busybox", "sh", "-c", "mkdir /w; echo served > /w/index.html; exec httpd -f -p 80 -h /w"]), "run srv");
  // Reach it by name and by alias.
  assert.equal(await poll(() => docker(["run", "--rm", "--network", "cli-net", "busybox", "wget", "-qO-", "http://srv/"]).stdout), "served\n");
  assert.equal(out(["run", "--rm", "--network", "cli-net", "busybox", "wget", "-qO-", "http://web/"]), "served\n");
  // connect: a running container on the default bridge joins and resolves names at once, as with dockerd.
  ok(docker(["run", "-d", "--name", "late", "busybox", "sleep", "300"]), "run late");
  ok(docker(["network", "connect", "cli-net", "late"]), "connect");
  assert.equal(out(["network", "inspect", "-f", "{{len .Containers}}", "cli-net"]), "2\n");
  assert.equal(docker(["exec", "late", "wget", "-qO-", "http://srv/"]).stdout, "served\n");
  assert.equal(out(["inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "late"]), "bridge cli-net \n");
  ok(docker(["network", "disconnect", "cli-net", "late"]), "disconnect");
  assert.equal(out(["network", "inspect", "-f", "{{len .Containers}}", "cli-net"]), "1\n");
  const busy = docker(["network", "rm", "cli-net"]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /error while removing network: network cli-net id [0-9a-f]{64} has active endpoints/);
  ok(docker(["rm", "-f", "srv", "late"]), "rm");
  ok(docker(["network", "create", "cli-unused"]), "create");
  const pr = out(["network", "prune", "-f"]);
  assert.match(pr, /^Deleted Networks:\n/);
  assert.ok(pr.includes("cli-net\n") && pr.includes("cli-unused\n"), pr);
  assert.deepEqual(out(["network", "ls", "--format", "{{.Name}}"]).split("\n").filter(Boolean).sort(), ["bridge", "host", "none"]);
  const rmGone = docker(["network", "rm", "cli-net"]);
  assert.equal(rmGone.code, 1);
  assert.match(rmGone.stderr, /network cli-net not found/);
});

test("docker volume create/ls/inspect/rm/prune, data kept across containers", (t) => {
  t.after(() => { docker(["rm", "-f", "vuser"]); docker(["volume", "rm", "cli-vol", "cli-vol2"]); });
  assert.equal(out(["volume", "create", "--label", "k=v", "cli-vol"]), "cli-vol\n");
  assert.equal(out(["volume", "ls", "--filter", "name=cli-vol", "--format", "{{.Driver}} {{.Name}}"]), "local cli-vol\n");
  assert.equal(out(["volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}} {{index .Labels \"k\"}}", "cli-vol"]), "cli-vol local local v\n");
  assert.ok(existsSync(out(["volume", "inspect", "-f", "{{.Mountpoint}}", "cli-vol"]).trim()), "Mountpoint exists");
  ok(docker(["run", "--rm", "-v", "cli-vol:/data", "busybox", "sh", "-c", "echo kept > /data/f"]), "write");
  assert.equal(out(["run", "--rm", "-v", "cli-vol:/data:ro", "busybox", "cat", "/data/f"]), "kept\n");
  ok(docker(["create", "--name", "vuser", "-v", "cli-vol:/data", "busybox"]), "create");
  const inUse = docker(["volume", "rm", "cli-vol"]);
  assert.equal(inUse.code, 1);
  assert.match(inUse.stderr, /volume is in use/);
  ok(docker(["rm", "vuser"]), "rm");
  // An anonymous volume (from -v /path) is what prune removes; named ones need --all (API >= 1.42).
  const anon = out(["create", "-v", "/anon", "busybox"]).trim();
  const anonName = out(["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", anon]).trim();
  assert.match(anonName, /^[0-9a-f]{64}$/);
  ok(docker(["rm", anon]), "rm");
  ok(docker(["volume", "create", "cli-vol2"]), "create");
  const pr = out(["volume", "prune", "-f"]);
  assert.ok(pr.includes(anonName), pr);
  assert.ok(!pr.includes("cli-vol"), pr);
  const names = out(["volume", "ls", "-q"]).split("\n").filter(Boolean).sort();
  assert.deepEqual(names, ["cli-vol", "cli-vol2"]);
  const all = out(["volume", "prune", "-af"]);
  assert.ok(all.includes("cli-vol\n") && all.includes("cli-vol2\n"), all);
  assert.equal(out(["volume", "ls", "-q"]), "");
  const gone = docker(["volume", "inspect", "cli-vol"]);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /no such volume/i);
});

test("docker version, info, system df, events, system prune", () => {
  const v = JSON.parse(out(["version", "--format", "{{json .}}"]));
  assert.match(v.Client.Version, /^28\./);
  assert.equal(v.Server.ApiVersion, "1.47");
  assert.equal(v.Server.Os, "linux");
  const info = JSON.parse(out(["info", "--format", "{{json .}}"]));
  assert.equal(info.OSType, "linux");
  assert.equal(typeof info.Containers, "number");
  assert.equal(typeof info.Images, "number");
  assert.ok(info.ServerErrors === undefined || info.ServerErrors.length === 0, JSON.stringify(info.ServerErrors));
  const df = out(["system", "df"]).split("\n");
  assert.match(df[0], /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
  assert.deepEqual(df.slice(1, 5).map((l) => l.split(/\s{2,}/)[0]), ["Images", "Containers", "Local Volumes", "Build Cache"]);
  assert.match(out(["system", "df", "-v"]), /Images space usage:/);

  const t0 = Math.floor(Date.now() / 1000);
  ok(docker(["run", "--rm", "--name", "evt", "busybox", "true"]), "run");
  const ev = out(["events", "--since", String(t0), "--until", String(Math.floor(Date.now() / 1000) + 1), "--filter", "container=evt", "--format", "{{.Type}} {{.Action}}"]);
  assert.equal(ev, "container create\ncontainer attach\ncontainer start\ncontainer die\ncontainer destroy\n", "docker run: dockerd emits create, attach, start, die, destroy");

  const stopped = out(["create", "busybox", "true"]).trim();
  ok(docker(["network", "create", "cli-prune-net"]), "network create");
  const pr = out(["system", "prune", "-f"]);
  assert.match(pr, /Deleted Containers:\n/);
  assert.ok(pr.includes(stopped), pr);
  assert.match(pr, /Deleted Networks:\ncli-prune-net\n/);
  assert.match(pr, /Total reclaimed space: /);
  assert.equal(out(["ps", "-aq"]), "");
  assert.equal(docker(["network", "inspect", "cli-prune-net"]).code, 1);
  assert.ok(out(["images", "-q", "busybox"]).trim(), "prune keeps tagged images");
});
