/**
 * Bad input gets Docker's 400 and creates nothing; the daemon stays up.
 *   - every list and prune route refuses a filter key it does not know, with
 *     dockerd's status and message (asked of dockerd 20.10, API 1.41), and a
 *     refused prune removes nothing; the forms the docker CLI and compose send
 *     keep working;
 *   - a create that is refused after it named a new volume leaves no volume,
 *     no container, no host directory, and its name free;
 *   - concurrent commits (and a cp-in) of one running container all succeed,
 *     and the container is running, unpaused, afterwards; a container the
 *     user paused stays paused.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Daemon, api } from "../integration/harness.js";

const q = (filters: unknown) => `filters=${encodeURIComponent(JSON.stringify(filters))}`;
const LISTS = ["GET /containers/json", "GET /images/json", "GET /volumes", "GET /networks"];
const PRUNES = ["POST /containers/prune", "POST /images/prune", "POST /volumes/prune", "POST /networks/prune"];

async function call(d: Daemon, route: string, query = "", body?: unknown): Promise<{ status: number; json: any; body: string }> {
  const [method, path] = route.split(" ");
  const r = await api(d.sock, method, `/v1.41${path}${query ? (path.includes("?") ? "&" : "?") + query : ""}`, body === undefined ? undefined : JSON.stringify(body));
  let json: unknown;
  try { json = JSON.parse(r.body); } catch { json = undefined; }
  return { status: r.status, json, body: r.body };
}

async function state(d: Daemon): Promise<{ containers: string[]; volumes: string[]; networks: string[]; images: string[] }> {
  const c = (await call(d, "GET /containers/json", "all=1")).json as { Id: string }[];
  const v = (await call(d, "GET /volumes")).json as { Volumes: { Name: string }[] };
  const n = (await call(d, "GET /networks")).json as { Id: string }[];
  const i = (await call(d, "GET /images/json", "all=1")).json as { Id: string }[];
  return { containers: c.map((x) => x.Id).sort(), volumes: v.Volumes.map((x) => x.Name).sort(), networks: n.map((x) => x.Id).sort(), images: i.map((x) => x.Id).sort() };
}

test("filters, failed creates and concurrent commits", { timeout: 300_000 }, async (t) => {
  const d = new Daemon();
  await d.start();
  try {
    await d.bootstrap();
    // Something for every prune to remove, were it to ignore the refusal.
    assert.equal(d.berth(["create", "--name", "stopped1", "--label", "k=v", "busybox", "true"]).code, 0);
    assert.equal(d.berth(["volume", "create", "keepvol"]).code, 0);
    assert.equal(d.berth(["network", "create", "keepnet"]).code, 0);
    assert.equal(d.berth(["tag", "busybox", "other:1"]).code, 0);
    // An anonymous volume (volume prune takes those).
    assert.equal(d.berth(["volume", "create", "--label", "com.docker.volume.anonymous=", "anonvol"]).code, 0);

    await t.test("unknown filter keys: Docker's 400, and nothing pruned", async () => {
      const before = await state(d);
      for (const route of [...LISTS, ...PRUNES]) {
        for (const f of [{ nope: ["x"] }, { nope: null }, { nope: [] }, { label: ["k=v"], nope: ["x"] }]) {
          const r = await call(d, route, q(f));
          assert.equal(r.status, 400, `${route} ${JSON.stringify(f)}: ${r.body}`);
          assert.deepEqual(r.json, { message: "Invalid filter 'nope'" }, `${route} ${JSON.stringify(f)}`);
        }
      }
      // Keys one route knows and another does not (dockerd's lists).
      for (const [route, key] of [["GET /containers/json", "until"], ["GET /containers/json", "label!"], ["GET /images/json", "until"], ["GET /volumes", "until"],
        ["GET /networks", "until"], ["POST /containers/prune", "status"], ["POST /images/prune", "before"], ["POST /volumes/prune", "until"], ["POST /networks/prune", "dangling"]]) {
        const r = await call(d, route, q({ [key]: ["x"] }));
        assert.equal(r.status, 400, `${route} ${key}: ${r.body}`);
        assert.deepEqual(r.json, { message: `Invalid filter '${key}'` }, `${route} ${key}`);
      }
      assert.deepEqual(await state(d), before, "a refused prune removed something");
      // dockerd accepts any key on /events (unknown ones are ignored): so does berth.
      const ev = await call(d, "GET /events", `since=0&until=${Math.floor(Date.now() / 1000) + 1}&${q({ nope: ["x"] })}`);
      assert.equal(ev.status, 200, ev.body);
    });

    await t.test("bad values of known keys: Docker's answers", async () => {
      const cases: [string, unknown, number, string][] = [
        ["GET /containers/json", { status: ["bogus"] }, 400, "Invalid filter 'status=bogus'"],
        ["GET /containers/json", { status: ["running", "Running"] }, 400, "Invalid filter 'status=Running'"],
        ["GET /containers/json", { health: ["maybe"] }, 400, "Unrecognised filter value for health: maybe"],
        ["GET /containers/json", { "is-task": ["maybe"] }, 400, "Invalid filter 'is-task=[maybe]'"],
        ["GET /images/json", { dangling: ["maybe"] }, 400, "Invalid filter 'dangling=[maybe]'"],
        ["GET /images/json", { dangling: ["1"] }, 400, "Invalid filter 'dangling=[1]'"],
        ["GET /images/json", { before: ["nosuch"] }, 404, "No such image: nosuch:latest"],
        ["POST /images/prune", { dangling: ["maybe", "x"] }, 400, "Invalid filter 'dangling=[maybe x]'"],
        ["GET /volumes", { dangling: ["maybe"] }, 400, "Invalid filter 'dangling=[maybe]'"],
        ["GET /networks", { dangling: ["maybe"] }, 400, `invalid value for filter 'dangling', must be "true" (or "1"), or "false" (or "0")`],
        ["GET /networks", { dangling: ["true", "false"] }, 400, `got more than one value for filter key "dangling"`],
      ];
      const before = await state(d);
      for (const [route, f, status, message] of cases) {
        const r = await call(d, route, q(f));
        assert.equal(r.status, status, `${route} ${JSON.stringify(f)}: ${r.body}`);
        assert.deepEqual(r.json, { message }, `${route} ${JSON.stringify(f)}`);
      }
      // dockerd answers these with a 500; the request is at fault, so berth says 400 with the same words.
      for (const [route, f, message] of [
        ["GET /containers/json", { exited: ["x"] }, `strconv.Atoi: parsing "x": invalid syntax`],
        ["POST /containers/prune", { until: ["bad"] }, `failed to parse value as time or duration: "bad"`],
        ["POST /images/prune", { until: ["bad"] }, `failed to parse value as time or duration: "bad"`],
        ["POST /networks/prune", { until: ["bad"] }, `failed to parse value as time or duration: "bad"`],
        ["POST /networks/prune", { until: ["1s", "2s"] }, "more than one until filter specified"],
      ] as [string, unknown, string][]) {
        const r = await call(d, route, q(f));
        assert.equal(r.status, 400, `${route} ${JSON.stringify(f)}: ${r.body}`);
        assert.deepEqual(r.json, { message }, `${route} ${JSON.stringify(f)}`);
      }
      assert.deepEqual(await state(d), before, "a refused request changed something");
    });

    await t.test("the forms the docker CLI and compose send still work", async () => {
      const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => { assert.equal(r.code, 0, `${what}: ${r.stderr}`); return r.stdout; };
      assert.match(ok(d.docker(["ps", "-a", "-f", "status=created", "-f", "label=k=v", "--format", "{{.Names}}"]), "ps -f"), /stopped1/);
      assert.equal(ok(d.docker(["ps", "-a", "-f", "status=running", "--format", "{{.Names}}"]), "ps -f running").trim(), "");
      ok(d.docker(["ps", "-a", "-f", "name=stop", "-f", "ancestor=busybox", "-f", "health=none", "-f", "is-task=false", "-f", "exited=0", "-f", "before=stopped1", "-f", "volume=x", "-f", "network=bridge", "-f", "publish=80", "-f", "expose=80/tcp"]), "ps -f every key");
      assert.match(ok(d.docker(["images", "-f", "dangling=false", "-f", "reference=other", "--format", "{{.Repository}}:{{.Tag}}"]), "images -f"), /other:1/);
      ok(d.docker(["images", "-f", "dangling=true", "-f", "label=x", "-f", "since=busybox"]), "images -f dangling");
      assert.match(ok(d.docker(["volume", "ls", "-f", "dangling=true", "-f", "name=keep", "-f", "driver=local", "-q"]), "volume ls -f"), /keepvol/);
      assert.match(ok(d.docker(["network", "ls", "-f", "type=custom", "-f", "driver=bridge", "-f", "name=keep", "-f", "scope=local", "-f", "dangling=true", "--format", "{{.Name}}"]), "network ls -f"), /keepnet/);
      // Prunes with label filters that match nothing: accepted, remove nothing.
      const before = await state(d);
      ok(d.docker(["container", "prune", "-f", "--filter", "label=nomatch", "--filter", "until=1h"]), "container prune --filter");
      ok(d.docker(["image", "prune", "-a", "-f", "--filter", "label=nomatch", "--filter", "until=2001-01-01"]), "image prune --filter");
      ok(d.docker(["network", "prune", "-f", "--filter", "label!=com.docker.compose.project", "--filter", "label=nomatch"]), "network prune --filter");
      ok(d.docker(["volume", "prune", "-f", "--filter", "label=nomatch"]), "volume prune --filter");
      assert.deepEqual(await state(d), before);
      // label filters do select: a matching container prune removes exactly the labelled stopped container.
      const r = await call(d, "POST /containers/prune", q({ label: ["k=v"] }));
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.ContainersDeleted.length, 1);
      assert.equal(d.berth(["inspect", "stopped1"]).code, 1);
    });

    await t.test("a refused create creates nothing and keeps no name", async () => {
      const scratch = mkdtempSync(join(tmpdir(), "berth-input-"));
      t.after(() => rmSync(scratch, { recursive: true, force: true }));
      const missing = join(scratch, "not-there");
      const before = await state(d);
      const bodies: [string, Record<string, unknown>][] = [
        ["named volume, then a bind whose source does not exist", { Mounts: [{ Type: "volume", Source: "newvol1", Target: "/a" }, { Type: "bind", Source: missing, Target: "/b" }] }],
        ["named volume, then a bad -v mode", { Binds: ["newvol2:/a", `${missing}/dir:/b:bogus`] }],
        ["named volume, then a volume name Docker refuses", { Mounts: [{ Type: "volume", Source: "newvol3", Target: "/a" }, { Type: "volume", Source: "bad name!", Target: "/b" }] }],
        ["existing and new volume, then a duplicate mount point", { Binds: ["keepvol:/k", "newvol4:/a", `${missing}/x:/a`] }],
        ["volumes and an anonymous one, then a bad DNS server", { Binds: ["newvol5:/a", "/c"], Dns: ["not-an-ip"] }],
      ];
      for (const [what, hc] of bodies) {
        const r = await call(d, "POST /containers/create?name=taken-once", "", { Image: "busybox", Cmd: ["true"], Volumes: { "/anon": {} }, HostConfig: hc });
        assert.equal(r.status, 400, `${what}: ${r.body}`);
        assert.deepEqual(await state(d), before, `${what}: something was left behind`);
        assert.equal(existsSync(missing), false, `${what}: a host directory was made`);
      }
      assert.ok(d.berth(["volume", "inspect", "keepvol"]).code === 0, "an existing volume named in a refused create was removed");
      // The name is free: the same create with good mounts works, and -v makes its host directory at start.
      const r = await call(d, "POST /containers/create?name=taken-once", "", { Image: "busybox", Cmd: ["true"], HostConfig: { Binds: ["newvol1:/a", `${missing}:/b`] } });
      assert.equal(r.status, 201, r.body);
      assert.equal(existsSync(missing), false, "docker makes a -v host directory at start, not at create");
      const s = d.berth(["start", "-a", "taken-once"]);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(existsSync(missing), true, "-v host directory made at start");
      assert.equal(d.berth(["rm", "-v", "taken-once"]).code, 0);
      assert.equal(d.berth(["volume", "rm", "newvol1"]).code, 0);
    });

    await t.test("concurrent commits and a cp-in of one running container all succeed; it keeps running", async () => {
      const run = d.berth(["run", "-d", "--name", "busy", "busybox", "sh", "-c", "while :; do echo x >> /tmp/log; sleep 0.1; done"]);
      assert.equal(run.code, 0, run.stderr);
      const id = run.stdout.trim();
      const src = mkdtempSync(join(tmpdir(), "berth-input-tar-"));
      t.after(() => rmSync(src, { recursive: true, force: true }));
      writeFileSync(join(src, "copied.txt"), "in\n");
      const tar = spawnSync("tar", ["-C", src, "-c", "copied.txt"]).stdout;
      const commits = Array.from({ length: 5 }, (_, i) => api(d.sock, "POST", `/v1.41/commit?container=${id}&repo=snap&tag=${i}`, "{}"));
      const cp = api(d.sock, "PUT", `/v1.41/containers/${id}/archive?path=/tmp`, tar, { "Content-Type": "application/x-tar" });
      const results = await Promise.all([...commits, cp]);
      for (const [i, r] of results.entries()) assert.ok(r.status === 201 || r.status === 200, `request ${i}: ${r.status} ${r.body}`);
      const st = JSON.parse((await api(d.sock, "GET", `/v1.41/containers/${id}/json`)).body).State;
      assert.equal(st.Running, true);
      assert.equal(st.Paused, false);
      assert.equal(st.Status, "running");
      for (let i = 0; i < 5; i++) assert.equal(d.berth(["image", "inspect", `snap:${i}`]).code, 0, `snap:${i}`);
      assert.equal(d.berth(["exec", "busy", "cat", "/tmp/copied.txt"]).stdout, "in\n");

      // A container the user paused: commits succeed and it stays paused (nobody unpauses it behind the user's back).
      assert.equal(d.berth(["pause", "busy"]).code, 0);
      const paused = await Promise.all([0, 1, 2].map((i) => api(d.sock, "POST", `/v1.41/commit?container=${id}&repo=paused&tag=${i}`, "{}")));
      for (const r of paused) assert.equal(r.status, 201, r.body);
      const st2 = JSON.parse((await api(d.sock, "GET", `/v1.41/containers/${id}/json`)).body).State;
      assert.equal(st2.Paused, true);
      assert.equal(d.berth(["unpause", "busy"]).code, 0);
      const st3 = JSON.parse((await api(d.sock, "GET", `/v1.41/containers/${id}/json`)).body).State;
      assert.equal(st3.Running, true);
      assert.equal(st3.Paused, false);
      assert.equal(d.berth(["rm", "-f", "busy"]).code, 0);
    });
  } finally {
    await d.stop();
  }
});
