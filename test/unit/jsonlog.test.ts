import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { promises as fsp, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import zlib from "node:zlib";
import { encodeEntry, decodeLine, JsonLogWriter, readJsonLog, rotatedFiles, gzipFile } from "../../src/runtime/jsonlog.js";
import { spoolEntries, utcNano, SpoolPump, type LogEntry } from "../../src/runtime/logs.js";
import { settingsFor, mergeLogConfig, setDaemonLogConfig, daemonLogConfig, logAttrs } from "../../src/engine/logging.js";

const e = (data: string, stream: "stdout" | "stderr" = "stdout", time = "2026-12-01T22:44:57.718978466Z"): LogEntry => ({ time, stream, data: Buffer.from(data) });

async function collect(it: AsyncIterable<LogEntry>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x.data.toString());
  return out;
}

function tmp(): string { return mkdtempSync(join(tmpdir(), "jsonlog-")); }

describe("json-file encoding", () => {
  test("lines are byte-for-byte what dockerd 20.10 wrote for the same output", () => {
    // Captured from /var/lib/docker/containers/<id>/<id>-json.log (busybox: echo hello; echo err >&2; printf 'a\tb"c\\ \x01 é\n').
    assert.equal(encodeEntry(e("err\n", "stderr", "2026-12-01T22:44:57.718789675Z")), '{"log":"err\\n","stream":"stderr","time":"2026-12-01T22:44:57.718789675Z"}\n');
    assert.equal(encodeEntry(e("hello\n")), '{"log":"hello\\n","stream":"stdout","time":"2026-12-01T22:44:57.718978466Z"}\n');
    assert.equal(encodeEntry(e('a\tb"c\\ \x01 é\n', "stdout", "2026-12-01T22:44:58.721315396Z")), '{"log":"a\\u0009b\\"c\\\\ \\u0001 é\\n","stream":"stdout","time":"2026-12-01T22:44:58.721315396Z"}\n');
  });
  test("Docker's other escapes: < > & U+2028, \\r by name, an empty log has no log key", () => {
    assert.equal(encodeEntry(e("<a&b>\r\u2028\\t")), '{"log":"\\u003ca\\u0026b\\u003e\\r\\u2028\\\\t","stream":"stdout","time":"2026-12-01T22:44:57.718978466Z"}\n');
    assert.equal(encodeEntry(e("")), '{"stream":"stdout","time":"2026-12-01T22:44:57.718978466Z"}\n');
    assert.deepEqual(decodeLine('{"log":"\\u003cx\\u0009\\n","stream":"stderr","time":"t"}'), { time: "t", stream: "stderr", data: Buffer.from("<x\t\n") });
    // Stored as Go prints RFC3339Nano (zeros trimmed); read back as `logs -t` shows it (nine digits, as dockerd).
    assert.equal(decodeLine('{"log":"x","stream":"stdout","time":"2026-12-01T22:44:57.5Z"}')!.time, "2026-12-01T22:44:57.500000000Z");
    assert.equal(decodeLine('{"log":"x","stream":"stdout","time":"2026-12-01T22:44:57Z"}')!.time, "2026-12-01T22:44:57.000000000Z");
  });
  test("conmon's stamps become UTC RFC3339Nano without trailing zeros", () => {
    assert.equal(utcNano("2026-12-01T22:44:57.718978400+00:00"), "2026-12-01T22:44:57.7189784Z");
    assert.equal(utcNano("2026-12-02T01:44:57.000000000+03:00"), "2026-12-01T22:44:57Z");
    assert.equal(utcNano("2026-12-01T20:14:57.5-02:30"), "2026-12-01T22:44:57.5Z");
  });
});

describe("spool conversion", () => {
  test("F lines get their newline back; P pieces join the line they end; an open one stays partial", () => {
    const lines = [
      "2026-12-01T22:44:57.100000000+00:00 stdout F hello",
      "2026-12-01T22:44:57.200000000+00:00 stdout P par",
      "2026-12-01T22:44:57.300000000+00:00 stdout F tial",
      "2026-12-01T22:44:57.400000000+00:00 stderr F",
      "2026-12-01T22:44:57.500000000+00:00 stdout P no newline yet",
    ].map((s) => Buffer.from(s));
    const out = spoolEntries(lines);
    assert.deepEqual(out.map((x) => [x.stream, x.data.toString(), x.time]), [
      ["stdout", "hello\n", "2026-12-01T22:44:57.1Z"],
      ["stdout", "partial\n", "2026-12-01T22:44:57.2Z"],
      ["stderr", "\n", "2026-12-01T22:44:57.4Z"],
      ["stdout", "no newline yet", "2026-12-01T22:44:57.5Z"],
    ]);
  });

  test("the pump converts, remembers its offset across restarts, and follows conmon's rename", async () => {
    const d = tmp();
    try {
      const spool = join(d, "container.log");
      const got: string[] = [];
      const sink = async (es: LogEntry[]) => { for (const x of es) got.push(x.data.toString()); };
      await fsp.writeFile(spool, "2026-12-01T22:44:57.1+00:00 stdout F one\n2026-12-01T22:44:57.2+00:00 stdout F two\n");
      let p = new SpoolPump({ spool, ctl: null, sink });
      await p.flush();
      await p.stop();
      assert.deepEqual(got, ["one\n", "two\n"]);
      // A new daemon: nothing is converted twice; what was appended meanwhile is.
      await fsp.appendFile(spool, "2026-12-01T22:44:57.3+00:00 stderr F three\n");
      p = new SpoolPump({ spool, ctl: null, sink });
      await p.flush();
      assert.deepEqual(got, ["one\n", "two\n", "three\n"]);
      // conmon's reopen: more lines in the old file, then a new file renamed over it.
      await fsp.appendFile(spool, "2026-12-01T22:44:57.4+00:00 stdout F four\n");
      await fsp.writeFile(spool + ".tmp", "2026-12-01T22:44:57.5+00:00 stdout F five\n");
      await fsp.rename(spool + ".tmp", spool);
      await p.flush();
      await p.stop();
      assert.deepEqual(got, ["one\n", "two\n", "three\n", "four\n", "five\n"]);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
});

describe("the pump under a burst", () => {
  test("conmon renaming twice while the pump still reads the first file loses nothing (the middle file is caught between blocks)", async () => {
    const d = tmp();
    try {
      const spool = join(d, "container.log");
      const line = (tag: string, i: number) => `2026-12-01T22:44:57.1+00:00 stdout F ${tag}-${String(i).padStart(6, "0")}-${"x".repeat(60)}\n`;
      const file = (tag: string, n: number) => Array.from({ length: n }, (_, i) => line(tag, i)).join("");
      // A: more than two of the pump's 256 KiB blocks.
      await fsp.writeFile(spool, file("a", 8000));
      const got: string[] = [];
      let batches = 0;
      let release: (() => void) | undefined;
      const held: Promise<void>[] = [];
      const sink = async (es: LogEntry[]) => {
        for (const x of es) got.push(x.data.toString().slice(0, 8));
        batches++;
        if (batches <= 2) await new Promise<void>((r) => { release = r; });
      };
      const p = new SpoolPump({ spool, ctl: null, sink });
      held.push(p.flush());
      const waitHeld = async (n: number) => { while (batches < n || !release) await new Promise((r) => setTimeout(r, 5)); };
      // While the first block is in the sink, conmon renames B over A.
      await waitHeld(1);
      await fsp.writeFile(spool + ".tmp", file("b", 100));
      await fsp.rename(spool + ".tmp", spool);
      const r1 = release!; release = undefined; r1();
      // While the second block is in the sink, conmon renames C over B: B is unlinked before A is done.
      await waitHeld(2);
      await fsp.writeFile(spool + ".tmp", file("c", 100));
      await fsp.rename(spool + ".tmp", spool);
      const r2 = release!; release = undefined; r2();
      await Promise.all(held);
      await p.flush();
      await p.stop();
      const count = (tag: string) => got.filter((g) => g.startsWith(`${tag}-`)).length;
      assert.deepEqual([count("a"), count("b"), count("c")], [8000, 100, 100]);
      // In order: all of A, then B, then C.
      assert.deepEqual([...new Set(got.map((g) => g[0]))], ["a", "b", "c"]);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
});

describe("json-file rotation and reading", () => {
  test("max-size/max-file rotate as Docker: .1 .2, each file at most one entry over max-size", async () => {
    const d = tmp();
    try {
      const path = join(d, "x-json.log");
      const w = new JsonLogWriter(path, { maxSize: 1000, maxFiles: 3, compress: false });
      const lines = Array.from({ length: 200 }, (_, i) => `line ${i}\n`);
      for (let i = 0; i < lines.length; i += 7) await w.write(lines.slice(i, i + 7).map((l) => e(l)));
      await w.close();
      const names = (await fsp.readdir(d)).sort();
      assert.deepEqual(names, ["x-json.log", "x-json.log.1", "x-json.log.2"]);
      for (const n of names) {
        const size = (await fsp.stat(join(d, n))).size;
        assert.ok(size < 1000 + 100, `${n} is ${size} bytes`);
      }
      const all = await collect(readJsonLog(path));
      assert.equal(all.at(-1), "line 199\n");
      assert.deepEqual(all, lines.slice(lines.length - all.length), "the newest lines, in order, none missing between files");
      assert.deepEqual(await collect(readJsonLog(path, { tail: 3 })), ["line 197\n", "line 198\n", "line 199\n"]);
      // A tail longer than the current file reaches into the rotated ones.
      assert.deepEqual(await collect(readJsonLog(path, { tail: 0 })), []);
      const cur = (await fsp.readFile(path, "utf8")).split("\n").length - 1;
      const t = await collect(readJsonLog(path, { tail: cur + 3 }));
      assert.deepEqual(t, lines.slice(-(cur + 3)));
      assert.deepEqual(await collect(readJsonLog(path, { tail: 10000 })), all);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });

  test("compress=true: rotated files are .N.gz with Docker's lastTime header, and are read back", async () => {
    const d = tmp();
    try {
      const path = join(d, "x-json.log");
      const w = new JsonLogWriter(path, { maxSize: 500, maxFiles: 3, compress: true });
      for (let i = 0; i < 60; i++) await w.write([e(`entry ${i}\n`, "stdout", `2026-12-01T22:00:${String(i).padStart(2, "0")}Z`)]);
      await w.close();
      const r = await rotatedFiles(path);
      assert.deepEqual(r.map((x) => [x.n, x.gz]), [[2, true], [1, true]]);
      const raw = await fsp.readFile(join(d, "x-json.log.1.gz"));
      assert.equal(raw[3] & 4, 4, "FEXTRA set");
      const xlen = raw.readUInt16LE(10);
      const extra = JSON.parse(raw.subarray(12, 12 + xlen).toString()) as { lastTime: string };
      const inner = zlib.gunzipSync(raw).toString().trimEnd().split("\n");
      assert.equal(extra.lastTime, JSON.parse(inner.at(-1)!).time);
      const all = await collect(readJsonLog(path));
      assert.equal(all.at(-1), "entry 59\n");
      const n = all.length;
      assert.deepEqual(all, Array.from({ length: n }, (_, k) => `entry ${60 - n + k}\n`));
      // since skips what is older, across the gz files too.
      const since = Date.parse("2026-12-01T22:00:58Z") / 1000;
      assert.deepEqual(await collect(readJsonLog(path, { since })), ["entry 58\n", "entry 59\n"]);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });

  test("gzipFile output is a valid gzip stream", async () => {
    const d = tmp();
    try {
      await fsp.writeFile(join(d, "a"), "x".repeat(100000) + "end\n");
      await gzipFile(join(d, "a"), join(d, "a.gz"), "2026-12-01T22:00:00Z");
      assert.equal(zlib.gunzipSync(await fsp.readFile(join(d, "a.gz"))).toString(), "x".repeat(100000) + "end\n");
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });

  test("follow keeps reading across a rotation", async () => {
    const d = tmp();
    try {
      const path = join(d, "x-json.log");
      const w = new JsonLogWriter(path, { maxSize: 200, maxFiles: 2, compress: false });
      await w.write([e("first\n")]);
      let done = false;
      const ac = new AbortController();
      const got: string[] = [];
      const reader = (async () => { for await (const x of readJsonLog(path, { follow: true, stopWhen: () => done, signal: ac.signal })) got.push(x.data.toString()); })();
      const want = ["first\n"];
      for (let i = 0; i < 30; i++) {
        const l = `follow ${i} ${"y".repeat(20)}\n`;
        want.push(l);
        await w.write([e(l)]);
        const deadline = Date.now() + 5000;
        while (got.length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      }
      done = true;
      await reader;
      await w.close();
      assert.ok((await rotatedFiles(path)).length === 1, "it did rotate");
      assert.deepEqual(got, want);
    } finally {
      await fsp.rm(d, { recursive: true, force: true });
    }
  });
});

describe("log settings", () => {
  test("json-file sizes are decimal (go-units FromHumanSize), local's binary; berth caps a json-file log without max-size", () => {
    assert.deepEqual(settingsFor({ Type: "json-file", Config: { "max-size": "1m", "max-file": "3" } }, "/c", "id"),
      { driver: "json-file", path: "/c/id-json.log", maxSize: 1_000_000, maxFiles: 3, compress: false, spoolMax: 3_000_000 });
    const capped = settingsFor({ Type: "json-file", Config: {} }, "/c", "id");
    assert.deepEqual([capped.maxSize, capped.maxFiles], [10_000_000, 5]);
    assert.deepEqual([settingsFor({ Type: "json-file", Config: { "max-file": "2" } }, "/c", "id").maxFiles], [2]);
    const local = settingsFor({ Type: "local", Config: {} }, "/c", "id");
    assert.deepEqual([local.path, local.maxSize, local.maxFiles, local.compress], ["/c/local-logs/container.log", 20 * 1024 * 1024, 5, true]);
    assert.equal(settingsFor({ Type: "local", Config: { "max-size": "1m" } }, "/c", "id").maxSize, 1024 * 1024);
    assert.equal(settingsFor({ Type: "none", Config: {} }, "/c", "id").path, null);
  });
  test("daemon defaults merge into containers of the daemon's driver only, and info shows the cap", () => {
    try {
      assert.deepEqual(daemonLogConfig(), { Type: "json-file", Config: { "max-size": "10m", "max-file": "5" } });
      assert.deepEqual(mergeLogConfig(undefined), { Type: "json-file", Config: {} });
      setDaemonLogConfig("json-file", { "max-file": "3", labels: "a" });
      assert.deepEqual(mergeLogConfig({ Type: "", Config: { "max-file": "7" } }), { Type: "json-file", Config: { "max-file": "7", labels: "a" } });
      assert.deepEqual(mergeLogConfig({ Type: "local" }), { Type: "local", Config: {} });
      assert.deepEqual(daemonLogConfig(), { Type: "json-file", Config: { "max-file": "3", labels: "a", "max-size": "10m" } });
      assert.throws(() => setDaemonLogConfig("json-file", { "max-size": "abc" }), /invalid size: 'abc'/);
      assert.throws(() => setDaemonLogConfig("json-file", { nope: "1" }), /unknown log opt 'nope' for json-file log driver/);
    } finally {
      setDaemonLogConfig(undefined, undefined);
    }
  });
});

test("labels/env/tag attrs as dockerd wrote them for the same container", () => {
  // dockerd 20.10: --label b=2 --label a='x<y' -e E=3 -e F=4 --log-opt labels=a,b,zz --log-opt env=F,E --log-opt tag='{{.Name}}/{{.ID}}'
  const id = "d1ec30eeb867" + "0".repeat(52);
  const ctr = { Name: "/p10attr", Image: "sha256:" + "ab".repeat(32), Config: { Labels: { b: "2", a: "x<y" }, Env: ["E=3", "F=4", "PATH=/bin"], Image: "busybox" } };
  const attrs = logAttrs({ labels: "a,b,zz", env: "F,E", tag: "{{.Name}}/{{.ID}}" }, id, ctr);
  assert.equal(attrs, '{"E":"3","F":"4","a":"x\\u003cy","b":"2","tag":"p10attr/d1ec30eeb867"}');
  assert.equal(encodeEntry(e("hi\n", "stdout", "2026-12-01T23:28:27.937326479Z"), attrs),
    '{"log":"hi\\n","stream":"stdout","attrs":{"E":"3","F":"4","a":"x\\u003cy","b":"2","tag":"p10attr/d1ec30eeb867"},"time":"2026-12-01T23:28:27.937326479Z"}\n');
  // env-regex alone counts; labels-regex only with labels (dockerd's check).
  assert.equal(logAttrs({ "env-regex": "^E", "labels-regex": "." }, id, ctr), '{"E":"3"}');
  assert.equal(logAttrs({}, id, ctr), undefined);
});
