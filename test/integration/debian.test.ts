/** `image bootstrap debian:bookworm-slim`: a Debian base image from Debian's packages, no registry. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Daemon } from "./harness.js";

const d = new Daemon();
before(async () => { await d.start(); });
after(async () => { await d.stop(); });

test("bootstrap debian:bookworm-slim with mmdebstrap, then run it", () => {
  const b = d.berth(["image", "bootstrap", "debian:bookworm-slim"], { timeout: 300_000 });
  assert.equal(b.code, 0, b.stderr);
  const r = d.berth(["run", "--rm", "debian:bookworm-slim", "sh", "-c", "cat /etc/debian_version; dpkg -s bash | grep ^Status; ls /usr/share/man 2>/dev/null | wc -l"]);
  assert.equal(r.code, 0, r.stderr);
  const [version, status, man] = r.stdout.trim().split("\n");
  assert.match(version, /^12\./);
  assert.equal(status, "Status: install ok installed");
  assert.equal(man.trim(), "0", "slim leaves the manual pages out");
  assert.deepEqual(JSON.parse(d.berth(["image", "inspect", "-f", "{{json .Config.Cmd}}", "debian:bookworm-slim"]).stdout), ["bash"]);
  const bad = d.berth(["image", "bootstrap", "debian:nosuchsuite"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /use debian:<suite> or debian:<suite>-slim/);
});
