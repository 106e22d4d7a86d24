/**
 * The CRI log reader (src/runtime/logs.ts): `tail` found from the end equals
 * the last lines of a full read, whatever the block boundaries and partial
 * entries; a reader is not held by a writer that never pauses.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, appendFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readLog, type LogEntry } from "../../src/runtime/logs.js";

const T = "2026-12-01T00:00:00.000000000+00:00";
async function all(path: string, opts: Parameters<typeof readLog>[1] = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const e of readLog(path, opts)) out.push(e);
  return out;
}
const text = (es: LogEntry[]) => Buffer.concat(es.map((e) => e.data)).toString();

test("tail from the end equals the last lines of the whole log, across blocks and partial entries", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-logs-"));
  try {
    const path = join(dir, "log");
    let seed = 7;
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const lines: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const stream = rnd(3) ? "stdout" : "stderr";
      // Some lines come in partial entries (P ... F), some are long enough to straddle 64 KiB blocks.
      const parts = rnd(10) === 0 ? 3 : 1;
      for (let p = 0; p < parts; p++) {
        const body = `${i}.${p}:` + "x".repeat(rnd(10) === 0 ? 3000 + rnd(70000) : rnd(40));
        lines.push(`${T} ${stream} ${p === parts - 1 ? "F" : "P"} ${body}`);
      }
    }
    writeFileSync(path, lines.join("\n") + "\n");
    const whole = await all(path);
    // The reference: the last N full lines of the whole read.
    const lastN = (n: number) => {
      let count = 0, i = whole.length;
      while (i > 0) { const e = whole[i - 1]; if (e.data.at(-1) === 10) { if (count === n) break; count++; } i--; }
      return whole.slice(i);
    };
    for (const n of [1, 2, 3, 10, 99, 1000, 5999, 6000, 7000]) {
      assert.equal(text(await all(path, { tail: n })), text(lastN(n)), `tail ${n}`);
    }
    assert.equal((await all(path, { tail: 0 })).length, 0);
    // A trailing entry without its newline (conmon mid-write) is not an entry yet.
    appendFileSync(path, `${T} stdout F half`);
    assert.equal(text(await all(path, { tail: 1 })), text(lastN(1)));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test("a reader answers while a writer keeps appending", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-logs-"));
  try {
    const path = join(dir, "log");
    writeFileSync(path, `${T} stdout F first\n`);
    let stop = false, n = 0;
    // The writer appends on every turn of the event loop; the old reader read until EOF and never got there.
    const writer = (async () => { while (!stop) { appendFileSync(path, `${T} stdout F line ${n++}\n`.repeat(50)); await new Promise((r) => setImmediate(r)); } })();
    const got = await all(path);
    stop = true;
    await writer;
    assert.ok(got.length >= 1 && text(got).startsWith("first\n"));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
