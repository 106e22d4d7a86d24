/**
 * secureJoinSync / lstatInRoot: a path resolved inside a root as if the root
 * were "/": chained links, absolute and relative targets, "..", loops and a
 * missing last component all stay inside root.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { secureJoinSync, lstatInRoot } from "../../src/lib/securejoin.js";
import { BadParameterError } from "../../src/lib/errors.js";

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), "berth-sj-"));
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc/passwd"), "root:x:0:0::/:/bin/sh\n");
  symlinkSync("/", join(root, "slash"));
  symlinkSync("../../../../..", join(root, "up"));
  symlinkSync("l2", join(root, "l1"));
  symlinkSync("etc/../up", join(root, "l2"));
  symlinkSync("/etc", join(root, "e"));
  symlinkSync("/nowhere/at/all", join(root, "dangling"));
  symlinkSync("loop2", join(root, "loop1"));
  symlinkSync("loop1", join(root, "loop2"));
  symlinkSync("../passwd", join(root, "etc/p"));
});
after(() => rmSync(root, { recursive: true, force: true }));

test("absolute, relative and chained links, and .., resolve inside root", () => {
  assert.equal(secureJoinSync(root, "/slash/etc/passwd"), join(root, "etc/passwd"));
  assert.equal(secureJoinSync(root, "up/etc/passwd"), join(root, "etc/passwd"));
  assert.equal(secureJoinSync(root, "l1/etc/passwd"), join(root, "etc/passwd"));
  assert.equal(secureJoinSync(root, "../../../e/passwd"), join(root, "etc/passwd"));
  assert.equal(secureJoinSync(root, "e/p"), join(root, "passwd"));
  assert.equal(secureJoinSync(root, "/"), root);
  assert.equal(secureJoinSync(root, ""), root);
});

test("a dangling link leads to where its target would be inside root; followLast=false keeps the link itself", () => {
  assert.equal(secureJoinSync(root, "dangling"), join(root, "nowhere/at/all"));
  assert.equal(secureJoinSync(root, "dangling/../x"), join(root, "nowhere/at/x"));
  assert.equal(secureJoinSync(root, "e", false), join(root, "e"));
  assert.equal(secureJoinSync(root, "missing/../../etc/./passwd"), join(root, "etc/passwd"));
});

test("a loop is an error, not a hang", () => {
  assert.throws(() => secureJoinSync(root, "loop1/x"), BadParameterError);
});

test("lstatInRoot: the resolved path, relative to root, and what is there", () => {
  const f = lstatInRoot(root, "/slash/e/passwd");
  assert.equal(f.rel, "etc/passwd");
  assert.ok(f.stat?.isFile());
  const m = lstatInRoot(root, "dangling");
  assert.equal(m.rel, "nowhere/at/all");
  assert.equal(m.stat, undefined);
  const l = lstatInRoot(root, "e", false);
  assert.ok(l.stat?.isSymbolicLink());
  assert.equal(lstatInRoot(root, "/").rel, "");
});
