/** The builder's step graph (pass 3): which stages a target needs, which are independent, step digests. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDockerfile } from "../../src/builder/dockerfile.js";
import { buildGraph, independent, stepDigest } from "../../src/builder/graph.js";
import { OrderedOutput, Semaphore } from "../../src/builder/schedule.js";

const df = (lines: string[]) => parseDockerfile(lines.join("\n") + "\n");

test("only the stages the target needs are in the graph, with their dependencies", () => {
  const d = df([
    "ARG BASE=busybox",
    "FROM $BASE AS base",
    "RUN echo base",
    "FROM busybox AS unused",
    "RUN exit 1",
    "FROM base AS a",
    "RUN echo a",
    "FROM busybox AS b",
    "ARG SRC=base",
    "COPY --from=$SRC /x /x",
    "FROM busybox",
    "COPY --from=a /a /a",
    "COPY --from=3 /b /b",
  ]);
  const g = buildGraph(d);
  assert.deepEqual(g.stages.map((s) => s.stage.name ?? String(s.stage.index)), ["base", "a", "b", "4"]);
  assert.deepEqual(g.stages.map((s) => s.deps), [[], [0], [0], [2, 3]]);
  // Steps are numbered over the needed stages only (the global ARG is step 1).
  assert.deepEqual(g.stages.map((s) => s.firstStep), [2, 4, 6, 9]);
  assert.equal(g.total, 11);
  assert.equal(g.target, 4);
  // a and b both need base, not each other.
  assert.equal(independent(g, 2, 3), true);
  assert.equal(independent(g, 0, 2), false);

  // --target: only it and what it needs; a --build-arg changes what --from names.
  const t = buildGraph(d, { target: "b", buildArgs: { SRC: "busybox" } });
  assert.deepEqual(t.stages.map((s) => s.stage.name), ["b"]);
  assert.deepEqual(t.stages[0].deps, []);
  assert.throws(() => buildGraph(d, { target: "nope" }), /failed to reach build target nope in Dockerfile/);
});

test("a --from naming a later stage or an image is not a dependency; RUN --mount from= is", () => {
  const d = df([
    "FROM busybox AS one",
    "COPY --from=two /x /x",
    "COPY --from=alpine:3 /y /y",
    "FROM busybox AS two",
    "RUN --mount=type=bind,from=one,target=/one true",
  ]);
  const g = buildGraph(d);
  assert.deepEqual(g.stages.map((s) => [s.stage.name, s.deps]), [["one", []], ["two", [0]]]);
});

test("step digests: the same inputs give the same digest; parent, text, args and content each change it", () => {
  const ins = { keyword: "COPY", original: "COPY a /a" };
  const base = stepDigest("sha256:p", ins, ["X=1"], ["/a", "content-1"]);
  assert.match(base, /^sha256:[0-9a-f]{64}$/);
  assert.equal(stepDigest("sha256:p", { ...ins }, ["X=1"], ["/a", "content-1"]), base);
  assert.notEqual(stepDigest("sha256:q", ins, ["X=1"], ["/a", "content-1"]), base);
  assert.notEqual(stepDigest("sha256:p", { keyword: "COPY", original: "COPY a /b" }, ["X=1"], ["/a", "content-1"]), base);
  assert.notEqual(stepDigest("sha256:p", ins, ["X=2"], ["/a", "content-1"]), base);
  assert.notEqual(stepDigest("sha256:p", ins, ["X=1"], ["/a", "content-2"]), base);
});

test("the solver's output stays in file order while stages run side by side; at most n stages hold a slot", async () => {
  const got: string[] = [];
  const out = new OrderedOutput(3, { say: (l) => got.push(l), output: (c) => got.push(c.toString()) });
  const [a, b, c] = [out.stream(0), out.stream(1), out.stream(2)];
  a.say("a1");
  c.say("c1");
  b.say("b1");
  a.output(Buffer.from("a2"));
  assert.deepEqual(got, ["a1", "a2"]);
  out.finish(2); // c finished first: still held behind b
  c.say("c-late");
  assert.deepEqual(got, ["a1", "a2"]);
  out.finish(0); // a done: b's held lines come, and b streams from now on
  assert.deepEqual(got, ["a1", "a2", "b1"]);
  b.say("b2");
  assert.deepEqual(got, ["a1", "a2", "b1", "b2"]);
  out.finish(1);
  assert.deepEqual(got, ["a1", "a2", "b1", "b2", "c1", "c-late"]);

  const sem = new Semaphore(2);
  let holding = 0, most = 0;
  await Promise.all([1, 2, 3, 4, 5].map(async () => {
    await sem.acquire();
    holding++; most = Math.max(most, holding);
    await new Promise((r) => setImmediate(r));
    holding--;
    sem.release();
  }));
  assert.equal(most, 2);
});
