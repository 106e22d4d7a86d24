import { test } from "node:test";
import assert from "node:assert/strict";
import { mergeEnv } from "../../src/engine/launch-spec.js";
import { parseChanges } from "../../src/engine/images.js";
import { humanDuration } from "../../src/lib/human.js";
import { EventBus } from "../../src/engine/events.js";
import { KeyedMutex } from "../../src/lib/mutex.js";

test("mergeEnv: later lists override by key, order kept", () => {
  assert.deepEqual(mergeEnv(["PATH=/bin", "A=1"], ["A=2", "B=3"]), ["PATH=/bin", "A=2", "B=3"]);
  assert.deepEqual(mergeEnv(null, undefined, ["X=y=z"]), ["X=y=z"]);
});

test("parseChanges: the Dockerfile subset docker import accepts", () => {
  const c = parseChanges(['CMD ["sh","-c","echo hi"]', "ENTRYPOINT /bin/app --flag", "ENV A=1 B=2", "ENV C 3", "EXPOSE 80 53/udp", "LABEL k=v x=\"y z\"", "USER nobody", "WORKDIR /srv", "STOPSIGNAL SIGINT"]);
  assert.deepEqual(c.Cmd, ["sh", "-c", "echo hi"]);
  assert.deepEqual(c.Entrypoint, ["/bin/sh", "-c", "/bin/app --flag"]);
  assert.deepEqual(c.Env, ["A=1", "B=2", "C=3"]);
  assert.deepEqual(c.ExposedPorts, { "80/tcp": {}, "53/udp": {} });
  assert.equal(c.Labels?.k, "v");
  assert.equal(c.User, "nobody");
  assert.equal(c.WorkingDir, "/srv");
  assert.equal(c.StopSignal, "SIGINT");
  assert.throws(() => parseChanges(["RUN rm -rf /"]), /RUN is not a valid change command/);
});

test("humanDuration matches Docker's wording", () => {
  assert.equal(humanDuration(500), "Less than a second");
  assert.equal(humanDuration(1000), "1 second");
  assert.equal(humanDuration(45_000), "45 seconds");
  assert.equal(humanDuration(90_000), "About a minute");
  assert.equal(humanDuration(30 * 60_000), "30 minutes");
  assert.equal(humanDuration(3600_000), "About an hour");
  assert.equal(humanDuration(5 * 3600_000), "5 hours");
  assert.equal(humanDuration(3 * 86400_000), "3 days");
});

test("EventBus: filters by type, event, container name and label; since replays history", () => {
  const bus = new EventBus();
  const seen: string[] = [];
  const stop = bus.subscribe({ filters: { type: ["container"], event: ["start"] } }, (e) => seen.push(e.Actor.Attributes.name));
  bus.publish("container", "create", "a1", { name: "web" });
  bus.publish("container", "start", "a1", { name: "web" });
  bus.publish("image", "start", "i1", {});
  stop();
  bus.publish("container", "start", "b1", { name: "db" });
  assert.deepEqual(seen, ["web"]);
  const past = bus.past({ since: 0, filters: { container: ["db"] } });
  assert.equal(past.length, 1);
  assert.equal(past[0].Actor.ID, "b1");
  assert.equal(bus.past({ since: 0, filters: { label: ["name=web"] } }).length, 2);
});

test("KeyedMutex serialises one key and leaves others free", async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const a = m.run("x", async () => { order.push("x1-start"); await gate; order.push("x1-end"); });
  const b = m.run("x", async () => { order.push("x2"); });
  await m.run("y", async () => { order.push("y"); });
  release();
  await Promise.all([a, b]);
  assert.deepEqual(order, ["x1-start", "y", "x1-end", "x2"]);
});
