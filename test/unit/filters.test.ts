/**
 * Docker's filter rule (moby api/types/filters), as dockerd 20.10 applies it:
 * different keys AND, one key's values OR, except `label` whose values AND;
 * prune spares an object only when every `label!` matches it. The expected
 * answers were taken from dockerd (ps/prune with the same labels).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { matchFilters, labelsMatch, pruneLabelsMatch, matchKVList, fuzzyMatch, regexMatch, exactMatch } from "../../src/engine/filters.js";
import { matches, type EngineEvent } from "../../src/engine/events.js";

const bf1 = { bft: "1", a: "1" };
const bf2 = { bft: "1", a: "1", b: "2" };
const bf3 = { bft: "1" };

test("label values AND: label=a=1 and label=b=2 select only what has both (dockerd: bf2)", () => {
  const f = { label: ["a=1", "b=2"] };
  assert.deepEqual([bf1, bf2, bf3].map((l) => labelsMatch(l, f)), [false, true, false]);
  assert.deepEqual([bf1, bf2, bf3].map((l) => matchFilters(f, {}, l)), [false, true, false]);
});

test("label forms: key only, key=value, key= (empty value), no labels", () => {
  assert.equal(matchKVList({ label: ["a"] }, "label", { a: "" }), true);
  assert.equal(matchKVList({ label: ["a="] }, "label", { a: "" }), true);
  assert.equal(matchKVList({ label: ["a="] }, "label", { a: "x" }), false);
  assert.equal(matchKVList({ label: ["a=x=y"] }, "label", { a: "x=y" }), true);
  assert.equal(matchKVList({ label: ["constructor"] }, "label", {}), false);
  assert.equal(matchKVList({ label: ["a"] }, "label", null), false);
  assert.equal(matchKVList({ label: [] }, "label", null), true);
  assert.equal(matchKVList({}, "label", null), true);
});

test("one key's values OR, different keys AND (dockerd: name=bf1 name=bf3 → both; name=bf label=b → bf2)", () => {
  const rows = [{ name: "bf1", labels: bf1 }, { name: "bf2", labels: bf2 }, { name: "bf3", labels: bf3 }];
  const pick = (f: Record<string, string[]>) => rows.filter((r) => matchFilters(f, { name: (v) => r.name.includes(v) }, r.labels)).map((r) => r.name);
  assert.deepEqual(pick({ name: ["bf1", "bf3"] }), ["bf1", "bf3"]);
  assert.deepEqual(pick({ name: ["bf"], label: ["b"] }), ["bf2"]);
  assert.deepEqual(pick({ name: [] }), ["bf1", "bf2", "bf3"]);
});

test("prune's label!: kept out only when every label! matches (dockerd pruned bf1 and bf3, kept bf2)", () => {
  const f = { label: ["bft=1"], "label!": ["a", "b=2"] };
  assert.deepEqual([bf1, bf2, bf3].map((l) => pruneLabelsMatch(l, f)), [true, false, true]);
  assert.equal(pruneLabelsMatch({ x: "1" }, { label: ["bft=1"] }), false);
  assert.equal(pruneLabelsMatch({ a: "1" }, { "label!": ["a"] }), false);
  assert.equal(pruneLabelsMatch({}, { "label!": ["a"] }), true);
});

test("Go's ExactMatch, FuzzyMatch and Match", () => {
  assert.equal(exactMatch({}, "k", "x"), true);
  assert.equal(exactMatch({ k: ["y"] }, "k", "x"), false);
  assert.equal(fuzzyMatch({ k: ["ab"] }, "k", "abc"), true);
  assert.equal(fuzzyMatch({ k: ["bc"] }, "k", "abc"), false);
  assert.equal(regexMatch({ k: ["^a.c$"] }, "k", "abc"), true);
  assert.equal(regexMatch({ k: ["("] }, "k", "abc"), false);
});

function ev(type: EngineEvent["Type"], action: string, id: string, attrs: Record<string, string>): EngineEvent {
  return { Type: type, Action: action, Actor: { ID: id, Attributes: attrs }, scope: "local", time: 0, timeNano: 0 };
}

test("events: label values AND, same-key values OR, keys AND, unknown keys ignored", () => {
  const e1 = ev("container", "start", "c1", { name: "web", image: "busybox:latest", a: "1" });
  const e2 = ev("container", "start", "c2", { name: "db", image: "busybox", a: "1", b: "2" });
  const e3 = ev("network", "connect", "n1", { name: "bridge", container: "c1" });
  const all = [e1, e2, e3];
  const pick = (f: Record<string, string[]>) => all.filter((e) => matches(e, f)).map((e) => e.Actor.ID);
  assert.deepEqual(pick({ label: ["a=1", "b=2"] }), ["c2"]);
  assert.deepEqual(pick({ label: ["a=1"] }), ["c1", "c2"]);
  assert.deepEqual(pick({ container: ["web", "db"] }), ["c1", "c2"]);
  assert.deepEqual(pick({ container: ["web"], label: ["b"] }), []);
  assert.deepEqual(pick({ type: ["network", "container"], event: ["connect"] }), ["n1"]);
  assert.deepEqual(pick({ image: ["busybox"] }), ["c1", "c2"]);
  assert.deepEqual(pick({ bogus: ["x"] }), ["c1", "c2", "n1"]);
  assert.deepEqual(pick({ network: ["bri"] }), ["n1"]);
});

test("events: exec_start matches exec_start: <cmd> by prefix, other actions exactly", () => {
  const e = ev("container", "exec_start: sh -c true", "c1", {});
  assert.equal(matches(e, { event: ["exec_start"] }), true);
  assert.equal(matches(ev("container", "start", "c1", {}), { event: ["sta"] }), false);
});
