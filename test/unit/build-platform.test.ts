/** build --platform lists: parsed and normalised as containerd's platforms package does; the automatic platform ARGs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parsePlatforms, platformArgs, normalizePlatform } from "../../src/builder/platform.js";

test("platform parsing: normalised as containerd does", async () => {
  assert.deepEqual(parsePlatforms("linux/amd64, linux/arm64/v8,linux/aarch64,linux/arm"), [
    { os: "linux", architecture: "amd64" }, { os: "linux", architecture: "arm64" }, { os: "linux", architecture: "arm", variant: "v7" },
  ]);
  assert.deepEqual(platformArgs({ os: "linux", architecture: "arm64" }, { os: "linux", architecture: "amd64" }), {
    TARGETPLATFORM: "linux/arm64", TARGETOS: "linux", TARGETARCH: "arm64", TARGETVARIANT: "",
    BUILDPLATFORM: "linux/amd64", BUILDOS: "linux", BUILDARCH: "amd64", BUILDVARIANT: "",
  });
});

test("a bad platform is a 400 naming it", () => {
  assert.throws(() => normalizePlatform("linux//arm64"), (e: Error & { status?: number }) => e.status === 400 && /linux\/\/arm64/.test(e.message));
});
