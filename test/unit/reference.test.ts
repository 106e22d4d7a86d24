import { test } from "node:test";
import assert from "node:assert/strict";
import { parseReference, normalizeReference, familiarString } from "../../src/oci/reference.js";

test("references normalise as Docker's", () => {
  const table: [string, string, string][] = [
    ["busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"],
    ["user/app", "docker.io/user/app:latest", "user/app:latest"],
    ["docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"],
    ["index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"],
    ["localhost:5000/ns/app:1.0", "localhost:5000/ns/app:1.0", "localhost:5000/ns/app:1.0"],
    ["registry.local/team/flask-app:1.0", "registry.local/team/flask-app:1.0", "registry.local/team/flask-app:1.0"],
    [`app@sha256:${"a".repeat(64)}`, `docker.io/library/app@sha256:${"a".repeat(64)}`, `app@sha256:${"a".repeat(64)}`],
  ];
  for (const [input, full, familiar] of table) {
    assert.equal(normalizeReference(input), full, input);
    assert.equal(familiarString(parseReference(input)), familiar, input);
  }
});

test("invalid references get Docker's error", () => {
  for (const bad of ["", "UPPER/x:", "a:b:c", "-bad", "name@sha256:123", "x/..y", "busybox:ta g"]) {
    assert.throws(() => parseReference(bad), /invalid reference format/, bad);
  }
  assert.throws(() => parseReference("Busybox"), /repository name \(library\/Busybox\) must be lowercase/);
});
