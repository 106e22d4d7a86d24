/**
 * The events dockerd 20.10 sends, and `events` filters as it applies them (issue 10). Every
 * Action name and Actor.Attributes key below was read from `docker events --format '{{json .}}'`
 * on dockerd on this machine after the same actions; the filter answers are dockerd's for the
 * same script (the order of two containers removed at once is not dockerd's to keep, so those
 * are compared as sorted lists).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon, api, until } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  await d.stop();
});

interface Ev { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> }; time: number; timeNano: number }

function events(since: number, until: number, filters: string[] = []): Ev[] {
  const args = ["events", "--since", String(since), "--until", String(until), "--format", "{{json .}}"];
  for (const f of filters) args.push("--filter", f);
  const r = d.docker(args);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Ev);
}

const nowS = () => Math.floor(Date.now() / 1000);


/** A container's events as [Action, sorted attribute keys], without the labels. */
function shape(list: Ev[]): [string, string[]][] {
  return list.map((e) => [e.Action, Object.keys(e.Actor.Attributes).sort()]);
}

test("a container's events: Action names and attribute keys as dockerd sends them", async (t) => {
  t.after(() => { d.berth(["rm", "-f", "ev2"]); d.berth(["rmi", "-f", "evimg:t"]); });
  const since = nowS() - 1;
  const run = d.docker(["run", "-d", "-t", "--name", "ev1", "busybox", "sleep", "300"]);
  assert.equal(run.code, 0, run.stderr);
  const id = run.stdout.trim();
  const ex = d.docker(["exec", "ev1", "sh", "-c", "exit 3"]);
  assert.equal(ex.code, 3);
  assert.equal(d.docker(["exec", "ev1", "true"]).code, 0);
  const rs = await api(d.sock, "POST", "/v1.41/containers/ev1/resize?h=10&w=20");
  assert.equal(rs.status, 200, rs.body);
  assert.equal(d.docker(["rename", "ev1", "ev2"]).code, 0);
  assert.equal(d.docker(["pause", "ev2"]).code, 0);
  assert.equal(d.docker(["unpause", "ev2"]).code, 0);
  assert.equal(d.docker(["kill", "-s", "USR1", "ev2"]).code, 0);
  assert.equal(d.docker(["update", "--cpu-shares", "512", "ev2"]).code, 0);
  assert.equal(d.docker(["top", "ev2"]).code, 0);
  assert.equal(d.docker(["cp", "ev2:/etc/hostname", "-"]).code, 0);
  assert.equal(d.docker(["commit", "ev2", "evimg:t"]).code, 0);
  assert.equal(d.docker(["stop", "-t", "1", "ev2"]).code, 0);
  const evs = events(since, nowS() + 1, [`container=${id}`]);
  const actions = evs.map((e) => e.Action);
  const want: [string, string[]][] = [
    ["create", ["image", "name"]],
    ["start", ["image", "name"]],
    ["exec_create: sh -c exit 3", ["execID", "image", "name"]],
    ["exec_start: sh -c exit 3", ["execID", "image", "name"]],
    ["exec_die", ["execID", "exitCode", "image", "name"]],
    ["exec_create: true ", ["execID", "image", "name"]],
    ["exec_start: true ", ["execID", "image", "name"]],
    ["exec_die", ["execID", "exitCode", "image", "name"]],
    ["resize", ["height", "image", "name", "width"]],
    ["rename", ["image", "name", "oldName"]],
    ["pause", ["image", "name"]],
    ["unpause", ["image", "name"]],
    ["kill", ["image", "name", "signal"]],
    ["update", ["image", "name"]],
    ["top", ["image", "name"]],
    ["archive-path", ["image", "name"]],
  ];
  assert.deepEqual(shape(evs).slice(0, want.length), want, actions.join(","));
  const get = (a: string, i = 0) => evs.filter((e) => e.Action === a)[i];
  assert.equal(get("exec_die").Actor.Attributes.exitCode, "3");
  assert.equal(get("exec_die", 1).Actor.Attributes.exitCode, "0");
  assert.equal(get("exec_create: true ").Actor.Attributes.execID, get("exec_die", 1).Actor.Attributes.execID);
  assert.deepEqual([get("resize").Actor.Attributes.height, get("resize").Actor.Attributes.width], ["10", "20"]);
  assert.equal(get("rename").Actor.Attributes.oldName, "/ev1");
  assert.equal(get("rename").Actor.Attributes.name, "ev2");
  assert.equal(get("kill").Actor.Attributes.signal, "10");
  // commit: dockerd pauses around it and names the image it made.
  const commit = get("commit");
  assert.ok(commit, actions.join(","));
  for (const k of ["comment", "imageID", "imageRef", "name"]) assert.ok(k in commit.Actor.Attributes, k);
  // stop: kill with the stop signal's number (busybox sleep as pid 1 ignores it), kill 9, die 137, stop.
  const tail = evs.slice(evs.indexOf(commit) + 1).filter((e) => ["kill", "die", "stop"].includes(e.Action));
  assert.deepEqual(tail.map((e) => [e.Action, e.Actor.Attributes.signal ?? e.Actor.Attributes.exitCode ?? ""]), [["kill", "15"], ["kill", "9"], ["die", "137"], ["stop", ""]]);
  // The legacy fields docker's older clients read.
  assert.equal((evs[0] as unknown as { status: string }).status, "create");
  assert.equal((evs[0] as unknown as { from: string }).from, "busybox");
});

test("health_status: healthy and unhealthy, with the probes' exec events", async (t) => {
  t.after(() => d.berth(["rm", "-f", "hc-ok", "hc-bad"]));
  const since = nowS() - 1;
  for (const [name, cmd] of [["hc-ok", "true"], ["hc-bad", "exit 1"]]) {
    const r = d.docker(["run", "-d", "--name", name, "--health-cmd", cmd, "--health-interval", "300ms", "--health-retries", "1", "busybox", "sleep", "300"]);
    assert.equal(r.code, 0, r.stderr);
  }
  await until("both health states", () => {
    const s = d.berth(["inspect", "-f", "{{.State.Health.Status}}", "hc-ok", "hc-bad"]).stdout.trim().split("\n");
    return s[0] === "healthy" && s[1] === "unhealthy";
  });
  const ok = events(since, nowS() + 1, ["container=hc-ok"]);
  const bad = events(since, nowS() + 1, ["container=hc-bad"]);
  const hs = (l: Ev[]) => l.find((e) => e.Action.startsWith("health_status"));
  assert.equal(hs(ok)?.Action, "health_status: healthy");
  assert.equal(hs(bad)?.Action, "health_status: unhealthy");
  assert.deepEqual(Object.keys(hs(bad)!.Actor.Attributes).sort(), ["image", "name"]);
  // dockerd runs the probe through /bin/sh -c, and says so in the exec events.
  assert.ok(bad.some((e) => e.Action === "exec_start: /bin/sh -c exit 1"), bad.map((e) => e.Action).join(","));
  // `--filter event=health_status` matches the worded actions (dockerd's fuzzy match for these three).
  const only = events(since, nowS() + 1, ["event=health_status"]);
  assert.ok(only.length >= 2 && only.every((e) => e.Action.startsWith("health_status: ")), only.map((e) => e.Action).join(","));
});

test("events filters of every kind, with --since/--until, answer as dockerd's", async () => {
  // A second of its own: the earlier tests' removals stay out of the window.
  const prev = nowS();
  const since = await until("a fresh second", () => nowS() > prev && nowS());
  const ok = (args: string[]) => { const r = d.docker(args); assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`); };
  ok(["volume", "create", "fvol"]);
  ok(["network", "create", "fnet"]);
  ok(["run", "-d", "--name", "fc1", "--label", "tier=web", "-v", "fvol:/data", "--network", "fnet", "busybox", "sleep", "300"]);
  ok(["run", "-d", "--name", "fc2", "--label", "tier=db", "busybox", "sleep", "300"]);
  ok(["exec", "fc1", "true"]);
  ok(["kill", "-s", "USR1", "fc1"]);
  ok(["rm", "-f", "fc1", "fc2"]);
  ok(["network", "rm", "fnet"]);
  ok(["volume", "rm", "fvol"]);
  // Everything above is in the past once the clock has passed the next second.
  await until("the next second", () => nowS() > since + 1 && nowS());
  const end = nowS() + 1;
  const q = (...f: string[]) => events(since, end, f).map((e) => `${e.Type} ${e.Action} ${e.Actor.Attributes.name ?? ""}`.trimEnd());
  const sorted = (l: string[]) => [...l].sort();
  // dockerd sends a second volume create when run -v finds the volume; berth one: compare what each kind is.
  assert.deepEqual([...new Set(q("type=volume"))], ["volume create", "volume mount", "volume unmount", "volume destroy"]);
  // fc1 and fc2 go at once: their disconnects may come in either order.
  const nets = q("type=network");
  assert.deepEqual(nets.slice(0, 3), ["network create fnet", "network connect fnet", "network connect bridge"]);
  assert.deepEqual(sorted(nets.slice(3, 5)), ["network disconnect bridge", "network disconnect fnet"]);
  assert.deepEqual(nets.slice(5), ["network destroy fnet"]);
  assert.deepEqual(q("event=exec_start"), ["container exec_start: true  fc1"]);
  assert.deepEqual(sorted(q("event=die", "event=kill")), sorted(["container kill fc1", "container kill fc1", "container kill fc2", "container die fc2", "container die fc1"]));
  assert.deepEqual(q("container=fc2"), ["container create fc2", "container start fc2", "container kill fc2", "container die fc2", "container destroy fc2"]);
  assert.deepEqual(q("label=tier=web"), ["container create fc1", "container start fc1", "container exec_create: true  fc1", "container exec_start: true  fc1", "container exec_die fc1", "container kill fc1", "container kill fc1", "container die fc1", "container destroy fc1"]);
  assert.deepEqual(sorted(q("label=tier")), sorted([...q("label=tier=web"), "container create fc2", "container start fc2", "container kill fc2", "container die fc2", "container destroy fc2"]));
  assert.deepEqual(q("image=busybox", "event=start"), ["container start fc1", "container start fc2"]);
  assert.deepEqual(q("network=fnet"), ["network create fnet", "network connect fnet", "network disconnect fnet", "network destroy fnet"]);
  assert.deepEqual([...new Set(q("volume=fvol"))], ["volume create", "volume mount", "volume unmount", "volume destroy"]);
  assert.deepEqual(sorted(q("type=container", "event=destroy")), ["container destroy fc1", "container destroy fc2"]);
  assert.deepEqual(q("event=exec_die", "container=fc1"), ["container exec_die fc1"]);
  // The volume mount's attributes, as dockerd's.
  const mount = events(since, end, ["type=volume", "event=mount"])[0];
  assert.deepEqual(Object.keys(mount.Actor.Attributes).sort(), ["container", "destination", "driver", "propagation", "read/write"]);
  assert.equal(mount.Actor.Attributes.destination, "/data");
  assert.equal(mount.Actor.Attributes["read/write"], "true");
  // --until before everything: nothing; a window of one second: only that second's events.
  assert.deepEqual(events(since - 100, since - 50), []);
  const all = events(since, end);
  const t0 = all[0].time;
  assert.ok(events(t0, t0).every((e) => e.time === t0));
});
