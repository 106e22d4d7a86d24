/**
 * Images through the API (import, tag, rmi, inspect, history), events, the
 * data-root lock, and exec -it: with bin/berth and the docker CLI.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, statSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, BERTH, BERTHD, DOCKER, sleep } from "./harness.js";

const d = new Daemon();
let work: string;

before(async () => {
  await d.start();
  await d.bootstrap();
  work = mkdtempSync(join(tmpdir(), "berth-img-it-"));
});

after(async () => {
  rmSync(work, { recursive: true, force: true });
  await d.stop();
});

test("the API socket is 0660", () => {
  assert.equal(statSync(d.sock).mode & 0o777, 0o660);
});

test("import FILE and - make images that run, with --change and tags", () => {
  const root = join(work, "rootfs");
  mkdirSync(join(root, "bin"), { recursive: true });
  spawnSync("cp", ["/bin/busybox", join(root, "bin/busybox")]);
  spawnSync("ln", ["-s", "busybox", join(root, "bin/sh")]);
  spawnSync("ln", ["-s", "busybox", join(root, "bin/cat")]);
  writeFileSync(join(root, "greeting"), "hello from an imported image\n");
  const tarPath = join(work, "rootfs.tar");
  assert.equal(spawnSync("tar", ["-C", root, "-cf", tarPath, "."]).status, 0);

  const imp = d.berth(["import", "-c", 'CMD ["/bin/cat", "/greeting"]', "-m", "my import", tarPath, "myimg:1.0"]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.match(imp.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
  assert.equal(d.berth(["run", "--rm", "myimg:1.0"]).stdout, "hello from an imported image\n");

  const gz = spawnSync("sh", ["-c", `gzip -c ${tarPath} | ${process.execPath} ${BERTH} -H ${d.host} import - piped`], { encoding: "utf8" });
  assert.equal(gz.status, 0, gz.stderr);
  assert.equal(d.berth(["run", "--rm", "piped", "/bin/cat", "/greeting"]).stdout, "hello from an imported image\n");

  const dk = spawnSync("sh", ["-c", `DOCKER_HOST=${d.host} DOCKER_CONFIG=${d.root}/docker-config ${DOCKER} import --change 'ENV A=b' ${tarPath} viadocker`], { encoding: "utf8" });
  assert.equal(dk.status, 0, dk.stderr);
  assert.equal(d.berth(["run", "--rm", "viadocker", "/bin/sh", "-c", "echo $A"]).stdout, "b\n");

  const hist = d.berth(["history", "myimg:1.0"]);
  assert.match(hist.stdout, /IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT/);
  assert.match(hist.stdout, /my import/);
  const bad = d.berth(["import", join(work, "missing.tar")]);
  assert.notEqual(bad.code, 0);
});

test("images, tag, inspect and rmi (untag vs delete, refused while in use)", () => {
  assert.equal(d.berth(["tag", "busybox", "registry.local:5000/team/bb:2"]).code, 0);
  const list = d.berth(["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split("\n");
  assert.ok(list.includes("registry.local:5000/team/bb:2"));
  assert.ok(list.includes("busybox:latest"));
  const id = d.berth(["image", "inspect", "-f", "{{.Id}}", "busybox"]).stdout.trim();
  assert.equal(d.berth(["image", "inspect", "-f", "{{.Id}}", "registry.local:5000/team/bb:2"]).stdout.trim(), id);
  assert.deepEqual(JSON.parse(d.berth(["image", "inspect", "-f", "{{json .Config.Cmd}}", "busybox"]).stdout), ["sh"]);
  const un = d.berth(["rmi", "registry.local:5000/team/bb:2"]);
  assert.equal(un.stdout.trim(), "Untagged: registry.local:5000/team/bb:2");
  assert.equal(d.berth(["image", "inspect", "busybox"]).code, 0, "the image stays while another tag points at it");

  d.berth(["tag", "myimg:1.0", "inuse:1"]);
  d.berth(["rmi", "myimg:1.0"]);
  d.berth(["create", "--name", "user1", "inuse:1"]);
  const refused = d.berth(["rmi", "inuse:1"]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /conflict: unable to remove repository reference "inuse:1" \(must force\) - container [0-9a-f]{12} is using its referenced image/);
  d.berth(["rm", "user1"]);
  const del = d.berth(["rmi", "inuse:1"]);
  assert.match(del.stdout, /Untagged: inuse:1\nDeleted: sha256:[0-9a-f]{64}/);
  assert.notEqual(d.berth(["image", "inspect", "inuse:1"]).code, 0);
  const nf = d.docker(["rmi", "nosuchimage"]);
  assert.notEqual(nf.code, 0);
  assert.match(nf.stderr, /No such image: nosuchimage/);
});

test("events stream container lifecycle (berth and docker CLI)", async () => {
  const since = Math.floor(Date.now() / 1000) - 1;
  d.berth(["run", "--rm", "--name", "ev1", "busybox", "true"]);
  await sleep(200);
  const until = Math.floor(Date.now() / 1000) + 1;
  const r = d.berth(["events", "--since", String(since), "--until", String(until), "--filter", "container=ev1", "--format", "{{.Action}}"]);
  // As dockerd: run attaches before it starts.
  assert.deepEqual(r.stdout.trim().split("\n"), ["create", "attach", "start", "die", "destroy"]);
  const dk = d.docker(["events", "--since", String(since), "--until", String(until), "--filter", "event=start", "--format", "{{.Actor.Attributes.name}}"]);
  assert.ok(dk.stdout.split("\n").includes("ev1"), dk.stdout + dk.stderr);
});

test("exec -it and exec -d", async () => {
  d.berth(["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]);
  const r = spawnSync("script", ["-qfec", `stty rows 20 cols 70; ${process.execPath} ${BERTH} -H ${d.host} exec -it ex sh -c 'tty; stty size; exit 3'`, "/dev/null"], { encoding: "utf8", timeout: 30_000 });
  assert.match(r.stdout, /\/dev\/pts\/\d+/);
  assert.match(r.stdout, /20 70/);
  assert.equal(r.status, 3);
  assert.equal(d.berth(["exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/done"]).code, 0);
  await sleep(300);
  assert.equal(d.berth(["exec", "ex", "cat", "/tmp/done"]).stdout, "bg\n");
  d.berth(["rm", "-f", "ex"]);
});

test("one daemon per data root", async () => {
  const second = spawn(process.execPath, [BERTHD, "--data-root", d.dataRoot, "--exec-root", join(d.root, "run2"), "-H", `unix://${join(d.root, "other.sock")}`], { stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  second.stderr.on("data", (x) => { err += x; });
  const code = await new Promise<number | null>((res) => second.on("exit", res));
  assert.equal(code, 1);
  assert.match(err, /another berthd \(pid \d+\) is using data root/);
  assert.equal(d.berth(["ps"]).code, 0, "the first daemon is unaffected");
});

test("system check verifies blobs and unpacked layers, and reports what is wrong", () => {
  const ok = d.berth(["system", "check"]);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /all good/);
  const tarPath = join(work, "tiny.tar");
  writeFileSync(join(work, "tiny.txt"), "tiny\n");
  spawnSync("tar", ["-C", work, "-cf", tarPath, "tiny.txt"]);
  assert.equal(d.berth(["import", tarPath, "victim:1"]).code, 0);
  const manifest = JSON.parse(d.berth(["image", "inspect", "-f", "{{json .Descriptor}}", "victim:1"]).stdout) as { digest: string };
  const blobs = join(d.dataRoot, "content/blobs/sha256");
  const m = JSON.parse(readFileSync(join(blobs, manifest.digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
  writeFileSync(join(blobs, m.layers[0].digest.slice(7)), "corrupted");
  const bad = d.berth(["system", "check"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, new RegExp(`PROBLEM: blob ${m.layers[0].digest}: content hashes to sha256:`));
  assert.equal(d.berth(["rmi", "victim:1"]).code, 0);
  assert.equal(d.berth(["system", "check"]).code, 0, "deleting the image took its blobs away");
});

test("images filters, image prune (dangling, then -a) and system df", () => {
  const tarPath = join(work, "p.tar");
  writeFileSync(join(work, "p.txt"), "p\n");
  spawnSync("tar", ["-C", work, "-cf", tarPath, "p.txt"]);
  d.berth(["import", "-c", "LABEL team=blue", tarPath, "prune-me:1"]);
  writeFileSync(join(work, "p.txt"), "q\n");
  spawnSync("tar", ["-C", work, "-cf", tarPath, "p.txt"]);
  d.berth(["import", tarPath, "prune-me:1"]); // the tag moves: the first image is now dangling
  const dangling = d.berth(["images", "-q", "--filter", "dangling=true"]).stdout.trim().split("\n").filter(Boolean);
  assert.equal(dangling.length, 1);
  assert.equal(d.berth(["images", "--filter", "label=team=blue", "--format", "{{.ID}}"]).stdout.trim(), dangling[0]);
  assert.equal(d.berth(["images", "--format", "{{.Repository}}:{{.Tag}}", "prune-*"]).stdout.trim(), "prune-me:1");
  const df = d.berth(["system", "df"]);
  assert.match(df.stdout, /TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\nImages\s+\d+/);
  const p1 = d.berth(["image", "prune", "-f"]);
  assert.match(p1.stdout, new RegExp(`deleted: sha256:${dangling[0]}`));
  assert.equal(d.berth(["images", "-q", "--filter", "dangling=true"]).stdout.trim(), "");
  d.berth(["create", "--name", "keeper", "busybox", "true"]);
  const p2 = d.berth(["image", "prune", "-a", "-f"]);
  assert.match(p2.stdout, /untagged: prune-me:1/);
  assert.ok(d.berth(["image", "inspect", "busybox"]).code === 0, "an image a container uses stays");
  d.berth(["rm", "keeper"]);
});

test("diff lists a container's changes; commit makes an image of them (berth and docker CLI), pausing a running one", async () => {
  assert.equal(d.berth(["run", "--name", "changer", "busybox", "sh", "-c", "echo hi > /greeting && rm /bin/vi && mkdir /data && echo x > /data/f && ln /greeting /hard"]).code, 0);
  assert.equal(d.berth(["diff", "changer"]).stdout, "C /bin\nD /bin/vi\nA /data\nA /data/f\nA /greeting\nA /hard\n");
  assert.equal(d.docker(["diff", "changer"]).stdout, "C /bin\nD /bin/vi\nA /data\nA /data/f\nA /greeting\nA /hard\n");
  const id = d.berth(["commit", "-m", "my change", "-a", "Ann <ann@example.com>", "-c", 'CMD ["cat", "/greeting"]', "-c", "ENV FOO=bar", "changer", "committed:1"]);
  assert.equal(id.code, 0, id.stderr);
  assert.match(id.stdout, /^sha256:[0-9a-f]{64}\n$/);
  assert.equal(d.berth(["run", "--rm", "committed:1"]).stdout, "hi\n");
  assert.equal(d.berth(["run", "--rm", "committed:1", "sh", "-c", "echo $FOO; test -e /bin/vi || echo vi-gone; stat -c %h /hard; cat /data/f"]).stdout, "bar\nvi-gone\n2\nx\n");
  const inspect = JSON.parse(d.berth(["image", "inspect", "committed:1"]).stdout)[0];
  assert.equal(inspect.Author, "Ann <ann@example.com>");
  assert.equal(inspect.RootFS.Layers.length, 2);
  assert.match(d.berth(["history", "committed:1"]).stdout, /my change/);
  // Through the docker CLI, and of a running container (paused meanwhile, running after).
  assert.equal(d.berth(["run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /state; sleep 60"]).code, 0);
  for (const deadline = Date.now() + 10_000; d.berth(["exec", "live", "cat", "/state"]).stdout !== "live\n" && Date.now() < deadline;) await sleep(50);
  const viaDocker = d.docker(["commit", "live", "fromlive"]);
  assert.equal(viaDocker.code, 0, viaDocker.stderr);
  assert.equal(d.berth(["inspect", "-f", "{{.State.Status}}", "live"]).stdout.trim(), "running");
  assert.equal(d.docker(["run", "--rm", "fromlive", "cat", "/state"]).stdout, "live\n");
  const bad = d.berth(["commit", "changer", "Bad:Name"]);
  assert.notEqual(bad.code, 0);
  assert.equal(d.berth(["commit", "nosuch"]).code, 1);
  // A container that was created and never started: no changes, and it commits (as Docker's).
  assert.equal(d.berth(["create", "--name", "unstarted", "busybox", "true"]).code, 0);
  assert.equal(d.berth(["diff", "unstarted"]).stdout, "");
  const fresh = d.docker(["commit", "unstarted", "fromcreated"]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.equal(d.berth(["run", "--rm", "fromcreated", "cat", "/greeting"]).code, 1);
  d.berth(["rm", "-f", "changer", "live", "unstarted"]);
  d.berth(["rmi", "committed:1", "fromlive", "fromcreated"]);
});
