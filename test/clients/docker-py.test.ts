/**
 * Debian's python3-docker (the Docker SDK for Python 5.0.3) against a real
 * berthd: the flows of docker_py_flows.py, each one a test. The script asserts
 * dockerd's answers (it runs unchanged against dockerd: DOCKER_HOST=unix:///var/run/docker.sock).
 * It runs under /usr/bin/python3, so Debian's package is the one imported.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { Daemon } from "../integration/harness.js";

const d = new Daemon();
// CLIENTS_DOCKERD=1 runs the same flows against the machine's dockerd: how the expectations were checked.
const AGAINST_DOCKERD = process.env.CLIENTS_DOCKERD === "1";
const SCRIPT = join(import.meta.dirname, "docker_py_flows.py");
const PY = "/usr/bin/python3";

function flow(name: string): void {
  const r = spawnSync(PY, [SCRIPT, name, "py"], { encoding: "utf8", env: { ...process.env, DOCKER_HOST: AGAINST_DOCKERD ? "unix:///var/run/docker.sock" : d.host, PYTHONDONTWRITEBYTECODE: "1" }, timeout: 180_000 });
  const last = (r.stderr ?? "").trim().split("\n").filter(Boolean).pop() ?? "";
  assert.equal(r.status, 0, `${name}: ${last}\n${r.stdout}\n${r.stderr}`);
  assert.equal(r.stdout, "ok\n");
}

before(async () => {
  const v = spawnSync(PY, ["-c", "import docker; print(docker.__version__)"], { encoding: "utf8" });
  assert.equal(v.status, 0, `python3-docker is not installed (scripts/setup.sh installs it): ${v.stderr}`);
  if (!AGAINST_DOCKERD) { await d.start(); await d.bootstrap(); }
});

after(async () => {
  if (!AGAINST_DOCKERD) await d.stop();
});

test("docker-py: containers.run attached returns the output; a non-zero exit raises ContainerError; remove=True", () => flow("run_attached"));
test("docker-py: containers.run detach, reload, labels filter, logs, exec_run (env, demux, user, workdir), top, kill, wait, remove", () => flow("run_detached"));
test("docker-py: exec_run 50 times in a row never loses the output of a command that exits at once", () => flow("exec_repeat"));
test("docker-py: images.build from a fileobj Dockerfile; the image's USER, WORKDIR and ENTRYPOINT apply; history, tag, BuildError", () => flow("build"));
test("docker-py: networks create/get/list, reach a container by name, connect with an alias, disconnect, remove", () => flow("networks"));
test("docker-py: volumes create/list/get/remove, data kept across containers", () => flow("volumes"));
test("docker-py: put_archive and get_archive (stat, mode, content), NotFound for a missing path", () => flow("archive"));
test("docker-py: stats(stream=False) has Docker's keys, networks per interface", () => flow("stats"));
test("docker-py: events with since/until and filters", () => flow("events"));
test("docker-py: inspect, info and df carry the fields the SDK's users read", () => flow("inspect_fields"));
