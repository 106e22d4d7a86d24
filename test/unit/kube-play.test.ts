/** The pure parts of `kube play` and `berth pod`: YAML as Kubernetes reads it, quantities, names, `run --pod`'s flags. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse, playName, bytes, cpus } from "../../src/kube/play.js";
import { podRunArgs } from "../../src/kube/pod.js";

test("parse: every document, List items flattened, nulls skipped; YAML 1.1 as Kubernetes (0400 octal, yes a boolean)", () => {
  const docs = parse(`---
apiVersion: v1
kind: List
items:
  - { apiVersion: v1, kind: ConfigMap, metadata: { name: a } }
  - { apiVersion: v1, kind: ConfigMap, metadata: { name: b } }
---
---
apiVersion: v1
kind: Secret
metadata: { name: s }
x: { mode: 0400, flag: yes }
`);
  assert.deepEqual(docs.map((d) => d.metadata.name), ["a", "b", "s"]);
  assert.deepEqual(docs[2].x, { mode: 0o400, flag: true });
  assert.throws(() => parse("a: [1\n"), /invalid YAML/);
  assert.throws(() => parse("- 1\n"), /not a mapping/);
});

test("names and quantities", () => {
  assert.equal(playName("/x/My_App.yaml"), "my-app");
  assert.equal(playName("-"), "stdin");
  assert.equal(bytes("256Mi"), 256 * 1024 * 1024);
  assert.equal(bytes("1G"), 1e9);
  assert.equal(bytes("1k"), 1000);
  assert.equal(bytes("12345"), 12345);
  assert.throws(() => bytes("lots"), /invalid quantity/);
  assert.equal(cpus("500m"), 0.5);
  assert.equal(cpus("2"), 2);
});

test("run --pod POD: the pod's network, IPC and label in its place; the command's own --pod untouched", () => {
  assert.deepEqual(podRunArgs(["-d", "--pod", "p1", "--name", "w", "busybox", "sh"]).args,
    ["--network", "container:p1-infra", "--ipc", "container:p1-infra", "--label", "io.berth.pod=p1", "-d", "--name", "w", "busybox", "sh"]);
  const r = podRunArgs(["--pod=p2", "busybox", "app", "--pod", "x"]);
  assert.equal(r.pod, "p2");
  assert.deepEqual(r.args.slice(6), ["busybox", "app", "--pod", "x"]);
  assert.deepEqual(podRunArgs(["busybox"]), { args: ["busybox"] });
});
