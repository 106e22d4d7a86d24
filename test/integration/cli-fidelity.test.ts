/**
 * Small CLI fidelity checks against a real berthd:
 * - a daemon that refuses a request before reading its body (`run --name a`: 400 from the query alone) is
 *   reported as the daemon's error, never as the client's `write: broken pipe`, also with a body of megabytes;
 * - `--format '{{json ...}}'` prints what the docker CLI prints against the same daemon (map keys sorted);
 * - `compose exec` exits with the exec's own status every time (a null ExitCode is not 0).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { Daemon, BERTH } from "./harness.js";

const d = new Daemon();
const made: string[] = [];

before(async () => { await d.start(); await d.bootstrap(); });
after(async () => {
  for (const c of made) d.berth(["rm", "-f", c]);
  d.berth(["volume", "rm", "-f", "clifid-vol"]);
  d.berth(["network", "rm", "clifid-net"]);
  await d.stop();
});

test("run --name a: the daemon's 400 and exit 125, also with a body far larger than the socket buffer", () => {
  const small = d.berth(["run", "--name", "a", "busybox", "true"]);
  assert.equal(small.code, 125, small.stderr);
  assert.match(small.stderr, /Error response from daemon: Invalid container name \(a\), only \[a-zA-Z0-9\]\[a-zA-Z0-9_.-\] are allowed/);
  // 3 MB of environment: the daemon answers from the query and the client is still writing the body.
  const envFile = join(d.root, "big.env");
  writeFileSync(envFile, Array.from({ length: 30 }, (_, i) => `V${i}=${"x".repeat(100_000)}`).join("\n") + "\n");
  for (let i = 0; i < 8; i++) {
    const r = d.berth(["run", "--name", "a", "--env-file", envFile, "busybox", "true"]);
    assert.doesNotMatch(r.stderr, /broken pipe|connection reset|error during connect/, `try ${i}: ${r.stderr}`);
    assert.match(r.stderr, /Invalid container name \(a\)/, `try ${i}`);
    assert.equal(r.code, 125, `try ${i}`);
  }
  assert.equal(d.berth(["ps", "-aq"]).stdout, "", "nothing was created");
});

/** The keys of each JSON line, in order. */
const keys = (out: string) => out.trim().split("\n").map((l) => Object.keys(JSON.parse(l) as object));

test("--format json prints what the docker CLI prints: inspect's maps sorted, list rows with docker's sorted keys", () => {
  const id = d.berth(["create", "--name", "clifid-c", "-l", "zz=1", "-l", "aa=2", "-l", "mm=3", "-p", "8081:80", "--expose", "443", "busybox", "sleep", "60"]);
  assert.equal(id.code, 0, id.stderr);
  made.push("clifid-c");
  assert.equal(d.berth(["volume", "create", "--label", "zz=1", "--label", "aa=2", "clifid-vol"]).code, 0);
  assert.equal(d.berth(["network", "create", "--label", "zz=1", "--label", "aa=2", "clifid-net"]).code, 0);
  for (const [args, what] of [
    [["inspect", "-f", "{{json .Config.Labels}}", "clifid-c"], "container labels"],
    [["inspect", "-f", "{{json .Config}}", "clifid-c"], "container Config"],
    [["inspect", "-f", "{{json .Config.ExposedPorts}}", "clifid-c"], "exposed ports"],
    [["inspect", "-f", "{{json .HostConfig.PortBindings}}", "clifid-c"], "port bindings"],
    [["volume", "inspect", "-f", "{{json .Labels}}", "clifid-vol"], "volume labels"],
    [["network", "inspect", "-f", "{{json .Labels}}", "clifid-net"], "network labels"],
  ] as [string[], string][]) {
    const b = d.berth(args), k = d.docker(args);
    assert.equal(k.code, 0, `${what}: docker: ${k.stderr}`);
    assert.equal(b.stdout, k.stdout, `${what}: berth and the docker CLI differ`);
  }
  assert.equal(d.berth(["inspect", "-f", "{{json .Config.Labels}}", "clifid-c"]).stdout, '{"aa":"2","mm":"3","zz":"1"}\n');
  // The list commands: the same placeholders in the same (sorted) order as the docker CLI's.
  for (const args of [["ps", "-a", "--filter", "name=clifid-c"], ["images", "busybox"], ["network", "ls", "--filter", "name=clifid-net"], ["volume", "ls", "--filter", "name=clifid-vol"]]) {
    const b = d.berth([...args, "--format", "{{json .}}"]), k = d.docker([...args, "--format", "{{json .}}"]);
    assert.equal(k.code, 0, k.stderr);
    assert.deepEqual(keys(b.stdout), keys(k.stdout), args.join(" "));
  }
  const img = JSON.parse(d.berth(["images", "busybox", "--format", "{{json .}}"]).stdout) as Record<string, string>;
  assert.equal(img.Digest, "<none>");
  assert.match(d.berth(["images", "busybox", "--format", "{{json .}}"]).stdout, /"Digest":"\\u003cnone\\u003e"/);
});

test("compose exec exits with the exec's status every time", () => {
  const dir = join(d.root, "clifid-compose");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "compose.yaml"), "services:\n  s:\n    image: busybox\n    command: sleep 300\n");
  const compose = (args: string[]) => spawnSync(process.execPath, [BERTH, "-H", d.host, "compose", "-p", "clifid", ...args], { cwd: dir, encoding: "utf8", timeout: 60_000, input: "" });
  try {
    const up = compose(["up", "-d"]);
    assert.equal(up.status, 0, up.stderr);
    for (let i = 0; i < 15; i++) {
      const code = 1 + ((i * 37 + 11) % 200);
      const r = compose(["exec", "-T", "s", "sh", "-c", `exit ${code}`]);
      assert.equal(r.status, code, `try ${i}: ${r.stderr}`);
    }
    const ok = compose(["exec", "-T", "s", "true"]);
    assert.equal(ok.status, 0, ok.stderr);
  } finally {
    compose(["down", "-t", "0"]);
  }
});
