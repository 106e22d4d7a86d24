import { test } from "node:test";
import assert from "node:assert/strict";
import { KeyedMutex } from "../../src/lib/mutex.js";

test("KeyedMutex: a bounded wait behind a stuck holder fails with the caller's error and never runs; the queue behind it keeps its order", async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const stuck = m.run("a", async () => { order.push("holder"); await gate; order.push("holder-end"); });
  const gaveUp = m.run("a", async () => { order.push("never"); }, { waitMs: 20, busy: () => new Error("a is busy") });
  const patient = m.run("a", async () => { order.push("patient"); });
  await assert.rejects(gaveUp, /a is busy/);
  // Other keys are free all along.
  await m.run("b", async () => { order.push("b"); }, { waitMs: 20 });
  assert.ok(m.held("a"));
  release();
  await Promise.all([stuck, patient]);
  assert.deepEqual(order, ["holder", "b", "holder-end", "patient"]);
  assert.equal(m.held("a"), false);
  // A free key with a bound runs at once.
  assert.equal(await m.run("a", async () => 7, { waitMs: 1 }), 7);
});
