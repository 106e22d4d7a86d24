/**
 * Container logs that cannot fill the disk (issue 10): the json-file driver
 * in dockerd's on-disk format with max-size/max-file/compress, Docker's
 * validation errors (names at create: 400; values at start: 500, dockerd
 * 20.10's words), `logs` across rotated and compressed files, `logs -f`
 * across a rotation, local and none, berthd's default cap (info and
 * inspect), output written while berthd is down, and logs right after exit.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { Daemon, apiJson, BERTH, until as untilH } from "./harness.js";

const d = new Daemon();

before(async () => {
  await d.start();
  await d.bootstrap();
});

after(async () => {
  if (!d.proc) await d.start().catch(() => {});
  await d.stop();
});

/** The harness's poll, with a minute by default: a few of these wait for tens of MB of output. */
const until = <T>(what: string, fn: () => T | undefined | false, ms = 60_000): Promise<T> => untilH(what, fn, ms);

function ok(args: string[], daemon = d): string {
  const r = daemon.berth(args, { timeout: 120_000 });
  assert.equal(r.code, 0, `berth ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function inspect(name: string, daemon = d): { Id: string; LogPath: string; HostConfig: { LogConfig: { Type: string; Config: Record<string, string> } }; State: { Running: boolean } } {
  return JSON.parse(ok(["inspect", name], daemon))[0];
}

function dirOf(id: string, daemon = d): string { return join(daemon.dataRoot, "containers", id); }

/** Bytes of the container's log files: the converted log, its rotations, and conmon's spool. */
function logBytes(id: string, daemon = d): { total: number; files: Record<string, number> } {
  const files: Record<string, number> = {};
  let total = 0;
  const dir = dirOf(id, daemon);
  for (const n of readdirSync(dir)) {
    if (!n.includes("-json.log") && !n.startsWith("container.log")) continue;
    const s = statSync(join(dir, n), { throwIfNoEntry: false })?.size ?? 0; // rotated away meanwhile
    files[n] = s;
    total += s;
  }
  return { total, files };
}


test("json-file writes dockerd's format at <data-root>/containers/<id>/<id>-json.log, and the berth cap shows in inspect and info", async () => {
  ok(["run", "--name", "fmt", "busybox", "sh", "-c", "echo hello; echo err >&2; printf 'a\\tb<&>\\n'"]);
  const c = inspect("fmt");
  assert.equal(c.LogPath, join(dirOf(c.Id), `${c.Id}-json.log`));
  const lines = readFileSync(c.LogPath, "utf8").trimEnd().split("\n");
  assert.equal(lines.length, 3);
  const re = /^\{"log":"(.*)","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}$/;
  const parsed = lines.map((l) => { const m = re.exec(l); assert.ok(m, `not Docker's line: ${l}`); return [m[2], m[1]]; });
  assert.deepEqual(parsed.sort(), [["stderr", "err\\n"], ["stdout", "a\\u0009b\\u003c\\u0026\\u003e\\n"], ["stdout", "hello\\n"]]);
  // As a stock dockerd's inspect (berth's cap is its own, not a daemon.json option: info shows it).
  assert.deepEqual(c.HostConfig.LogConfig, { Type: "json-file", Config: {} });
  const info = (await apiJson(d.sock, "GET", "/info")).body as { LoggingDriver: string; LogOpts: Record<string, string> };
  assert.equal(info.LoggingDriver, "json-file");
  assert.deepEqual(info.LogOpts, { "max-size": "10m", "max-file": "5" });
  const text = ok(["info"]);
  assert.match(text, / Logging Driver: json-file\n Logging Options: max-file=5 max-size=10m\n/);
  assert.equal(ok(["logs", "fmt"]), "hello\na\tb<&>\n");
  ok(["rm", "fmt"]);
});

test("--log-opt labels/env/tag put dockerd's attrs on every line", () => {
  ok(["run", "--name", "attrs", "--label", "b=2", "--label", "a=x<y", "-e", "E=3", "-e", "F=4", "--log-opt", "labels=a,b,zz", "--log-opt", "env=F,E",
    "--log-opt", "tag={{.Name}}/{{.ID}}", "busybox", "echo", "hi"]);
  const c = inspect("attrs");
  const line = readFileSync(c.LogPath, "utf8").trimEnd();
  assert.match(line, new RegExp(`^\\{"log":"hi\\\\n","stream":"stdout","attrs":\\{"E":"3","F":"4","a":"x\\\\u003cy","b":"2","tag":"attrs/${c.Id.slice(0, 12)}"\\},"time":"[^"]+Z"\\}$`));
  assert.equal(ok(["logs", "attrs"]), "hi\n");
  ok(["rm", "attrs"]);
});

test("with no daemon.json and no log options, berthd still caps json-file logs (10m x 5 files)", async () => {
  ok(["run", "-d", "--name", "capped", "busybox", "sh", "-c", "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 40000040"]);
  const c = inspect("capped");
  await until("capped to exit", () => !inspect("capped").State.Running, 120_000);
  const { files } = logBytes(c.Id);
  const json = Object.entries(files).filter(([n]) => n.includes("-json.log")).sort();
  // ~66 MB of json lines would need 7 files: the cap keeps 5.
  assert.deepEqual(json.map(([n]) => n), [`${c.Id}-json.log`, ...[1, 2, 3, 4].map((k) => `${c.Id}-json.log.${k}`)]);
  for (const [n, size] of json) assert.ok(size <= 10_000_000 + 1024, `${n}: ${size}`);
  ok(["rm", "capped"]);
});

test("log options: unknown names are refused at create (400), bad values at start (500), as dockerd 20.10", async () => {
  const create = (lc: unknown) => apiJson(d.sock, "POST", "/containers/create", { Image: "busybox", Cmd: ["true"], HostConfig: { LogConfig: lc } });
  let r = await create({ Type: "json-file", Config: { foo: "bar" } });
  assert.deepEqual([r.status, r.body.message], [400, "unknown log opt 'foo' for json-file log driver"]);
  r = await create({ Type: "local", Config: { foo: "1" } });
  assert.deepEqual([r.status, r.body.message], [400, "unknown log opt 'foo' for log driver local"]);
  r = await create({ Type: "bogus" });
  assert.deepEqual([r.status, r.body.message], [400, 'error looking up logging plugin bogus: plugin "bogus" not found']);
  const cases: [Record<string, string>, string, string][] = [
    [{ "max-size": "abc" }, "json-file", "invalid size: 'abc'"],
    [{ "max-size": "0" }, "json-file", "max-size must be a positive number"],
    [{ "max-size": "-1" }, "json-file", "invalid size: '-1'"],
    [{ "max-size": "1m", "max-file": "0" }, "json-file", "max-file cannot be less than 1"],
    [{ "max-size": "1m", "max-file": "x" }, "json-file", 'strconv.Atoi: parsing "x": invalid syntax'],
    [{ "max-size": "1m", compress: "maybe" }, "json-file", 'strconv.ParseBool: parsing "maybe": invalid syntax'],
    [{ "max-size": "1m", "max-file": "1", compress: "true" }, "json-file", "compress cannot be true when max-file is less than 2 or max-size is not set"],
    [{ "max-size": "abc" }, "local", "invalid value for max-size: abc: invalid size: 'abc'"],
    [{ "max-file": "0" }, "local", "compression cannot be enabled when max file count is 1"],
    [{ "max-file": "-1" }, "local", "max file count cannot be less than 0"],
    [{ compress: "x" }, "local", 'error reading compress log option: strconv.ParseBool: parsing "x": invalid syntax'],
  ];
  for (const [cfg, type, msg] of cases) {
    const c = await create({ Type: type, Config: cfg });
    assert.equal(c.status, 201, JSON.stringify(c.body));
    const s = await apiJson(d.sock, "POST", `/containers/${c.body.Id}/start`);
    assert.deepEqual([s.status, s.body.message], [500, `failed to initialize logging driver: ${msg}`], `${type} ${JSON.stringify(cfg)}`);
    ok(["rm", "-f", c.body.Id]);
  }
});

test("50 MB of logs with max-size=1m,max-file=3 keep at most 3 MB on disk, and logs --tail 5 shows the last lines", async () => {
  // 50 MB (whole 101-byte lines) through the container's stdout as fast as busybox can write it, then five marked lines.
  ok(["run", "-d", "--name", "big", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "busybox", "sh", "-c",
    "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -c 50000050; for i in 1 2 3 4 5; do echo last-$i; done"]);
  let peak = 0;
  const c = inspect("big");
  await until("big to exit", () => { peak = Math.max(peak, logBytes(c.Id).total); return !inspect("big").State.Running; }, 180_000);
  const { total, files } = logBytes(c.Id);
  // Each file may exceed max-size by one entry (Docker's rule); the spool is rotated away once converted.
  const slack = 64 * 1024;
  assert.ok(total <= 3 * 1_000_000 + slack, `on disk: ${total} bytes ${JSON.stringify(files)}`);
  // While the burst lasts the spool may lag behind, up to conmon's --log-size-max (the log's own cap): never more.
  assert.ok(peak <= 2 * 3 * 1_000_000 + slack, `peak while writing: ${peak} bytes`);
  assert.deepEqual(Object.keys(files).filter((n) => n.includes("-json.log")).sort(), [`${c.Id}-json.log`, `${c.Id}-json.log.1`, `${c.Id}-json.log.2`]);
  assert.equal(ok(["logs", "--tail", "5", "big"]), "last-1\nlast-2\nlast-3\nlast-4\nlast-5\n");
  // Across the rotated files, in order: whole lines of the stream, then the markers.
  const full = spawnSync(process.execPath, [BERTH, "-H", d.host, "logs", "big"], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  assert.equal(full.status, 0, full.stderr);
  const all = full.stdout.split("\n");
  assert.ok(all.length > 10_000, `logs gave ${all.length} lines`);
  assert.deepEqual(all.slice(-6), ["last-1", "last-2", "last-3", "last-4", "last-5", ""]);
  assert.ok(all.slice(1, -6).every((l) => l === "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"));
  ok(["rm", "big"]);
});

test("compress=true keeps .1.gz .2.gz, and logs (with --since and --timestamps) reads through them", async () => {
  ok(["run", "--name", "gz", "--log-opt", "max-size=20k", "--log-opt", "max-file=3", "--log-opt", "compress=true", "busybox", "sh", "-c",
    "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"]);
  const c = inspect("gz");
  await until("the rotated files to be compressed", () => existsSync(`${c.LogPath}.1.gz`) && existsSync(`${c.LogPath}.2.gz`) && !existsSync(`${c.LogPath}.1`));
  const lines = ok(["logs", "gz"]).trimEnd().split("\n");
  const first = Number(lines[0].slice(5));
  assert.ok(first > 0, "the oldest lines were rotated away");
  assert.deepEqual(lines, Array.from({ length: 3000 - first }, (_, k) => `line-${first + k}`));
  const ts = ok(["logs", "--timestamps", "--tail", "2", "gz"]).trimEnd().split("\n");
  assert.match(ts[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line-2998$/);
  assert.equal(ok(["logs", "--since", "2000-01-01T00:00:00Z", "gz"]).trimEnd().split("\n").length, lines.length);
  assert.equal(ok(["logs", "--until", "2000-01-01T00:00:00Z", "gz"]), "");
  ok(["rm", "gz"]);
});

test("logs -f keeps following across rotations", async () => {
  ok(["run", "-d", "--name", "fol", "--log-opt", "max-size=4k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
    "sleep 1; i=0; while [ $i -lt 600 ]; do echo follow-$i; i=$((i+1)); usleep 2000; done"]);
  const f = spawn(process.execPath, [BERTH, "-H", d.host, "logs", "-f", "fol"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  f.stdout.on("data", (b) => { out += b; });
  const code = await new Promise<number | null>((r) => f.once("close", r));
  assert.equal(code, 0);
  const c = inspect("fol");
  assert.ok(existsSync(`${c.LogPath}.1`), "the log rotated while followed");
  assert.deepEqual(out.trimEnd().split("\n"), Array.from({ length: 600 }, (_, k) => `follow-${k}`));
  ok(["rm", "fol"]);
});

test("while berthd runs, conmon's spool stays small: berthd asks conmon to reopen it once converted (ctl fifo)", async () => {
  // ~1.6 MB through the spool, at a pace the pump keeps up with; only the ctl reopen can keep the spool
  // under 1 MiB here (conmon's own --log-size-max for the default cap is 10m x 5).
  ok(["run", "-d", "--name", "spool", "busybox", "sh", "-c",
    "i=0; while [ $i -lt 16000 ]; do echo spool-$i-0123456789012345678901234567890123456789; i=$((i+1)); [ $((i % 200)) = 0 ] && usleep 20000; done; echo spool-end; sleep 600"]);
  const c = inspect("spool");
  const spool = join(dirOf(c.Id), "container.log");
  let max = 0;
  await until("the last line in the log", () => {
    max = Math.max(max, statSync(spool, { throwIfNoEntry: false })?.size ?? 0);
    return ok(["logs", "--tail", "1", "spool"]) === "spool-end\n";
  }, 120_000);
  assert.ok(max < 1024 * 1024, `the spool reached ${max} bytes`);
  const lines = ok(["logs", "spool"]).trimEnd().split("\n");
  assert.equal(lines.length, 16001, "nothing lost across the spool's reopenings");
  ok(["rm", "-f", "spool"]);
});

test("logs right after the container exits show all of its output", () => {
  for (let round = 0; round < 3; round++) {
    ok(["run", "--name", `quick${round}`, "busybox", "seq", "1", "20000"]);
    const got = ok(["logs", `quick${round}`]);
    assert.equal(got.split("\n").length, 20001);
    assert.ok(got.endsWith("\n19999\n20000\n"));
    ok(["rm", `quick${round}`]);
  }
});

test("output written while berthd is stopped is kept, bounded, and converted when it starts again", async () => {
  ok(["run", "-d", "--name", "away", "--log-opt", "max-size=100k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
    "echo before; while [ ! -e /go ]; do usleep 20000; done; i=0; while [ $i -lt 50000 ]; do echo away-line-$i-0123456789012345678901234567890123456789; i=$((i+1)); done; echo done-away; sleep 1000"]);
  const c = inspect("away");
  await until("the first line", () => ok(["logs", "away"]) === "before\n");
  await d.stopDaemon();
  // The container keeps running under conmon; it writes ~3.5 MB into conmon's spool meanwhile.
  writeFileSync(join(dirOf(c.Id), "rootfs", "go"), "");
  const spool = join(dirOf(c.Id), "container.log");
  await until("the container to finish writing", () => readFileSync(spool, "utf8").includes("done-away"));
  // conmon's --log-size-max (the log's own cap, at least 1 MiB) bounds the spool while nobody converts it.
  assert.ok(statSync(spool).size <= 1024 * 1024 + 16 * 1024, `spool is ${statSync(spool).size} bytes`);
  await d.start();
  assert.equal(ok(["logs", "--tail", "2", "away"]), "away-line-49999-0123456789012345678901234567890123456789\ndone-away\n");
  const all = ok(["logs", "away"]).trimEnd().split("\n");
  const firstN = Number(/^away-line-(\d+)-/.exec(all[0])?.[1]);
  assert.ok(Number.isFinite(firstN), `first line: ${all[0]}`);
  assert.deepEqual(all.slice(0, -1), Array.from({ length: 50000 - firstN }, (_, k) => `away-line-${firstN + k}-0123456789012345678901234567890123456789`));
  const { total, files } = logBytes(c.Id);
  assert.ok(total <= 2 * 100_000 + 1024 * 1024 + 16 * 1024, `on disk: ${JSON.stringify(files)}`);
  ok(["rm", "-f", "away"]);
});

test("local keeps Docker's defaults in local-logs/, none keeps nothing and refuses logs", async () => {
  ok(["run", "--name", "loc", "--log-driver", "local", "busybox", "sh", "-c", "echo one; echo two >&2"]);
  const c = inspect("loc");
  assert.equal(c.LogPath, "");
  assert.deepEqual(c.HostConfig.LogConfig, { Type: "local", Config: {} });
  assert.ok(existsSync(join(dirOf(c.Id), "local-logs", "container.log")));
  const r = d.berth(["logs", "loc"]);
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, "one\n", "two\n"]);
  ok(["rm", "loc"]);

  ok(["run", "--name", "nolog", "--log-driver", "none", "busybox", "sh", "-c", "echo invisible"]);
  const n = inspect("nolog");
  const rn = d.berth(["logs", "nolog"]);
  assert.notEqual(rn.code, 0);
  assert.match(rn.stderr, /configured logging driver does not support reading/);
  const spool = join(dirOf(n.Id), "container.log");
  assert.ok(!existsSync(spool) || statSync(spool).size === 0, "conmon wrote no log");
  ok(["rm", "nolog"]);
});

test("daemon.json log-driver and log-opts set the default, merged into containers of that driver as dockerd does", async () => {
  const d2 = new Daemon();
  const cfg = join(d2.root, "daemon.json");
  writeFileSync(cfg, JSON.stringify({ "log-driver": "json-file", "log-opts": { "max-size": "3k", "max-file": "2" } }));
  d2.extraArgs = ["--config-file", cfg];
  try {
    await d2.start();
    await d2.bootstrap();
    const info = (await apiJson(d2.sock, "GET", "/info")).body as { LoggingDriver: string; LogOpts: Record<string, string> };
    assert.deepEqual([info.LoggingDriver, info.LogOpts], ["json-file", { "max-size": "3k", "max-file": "2" }]);
    ok(["run", "--name", "dflt", "--log-opt", "max-file=3", "busybox", "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo l-$i; i=$((i+1)); done"], d2);
    const c = inspect("dflt", d2);
    assert.deepEqual(c.HostConfig.LogConfig, { Type: "json-file", Config: { "max-file": "3", "max-size": "3k" } });
    await until("rotation", () => existsSync(`${c.LogPath}.2`));
    assert.ok(!existsSync(`${c.LogPath}.3`));
    for (const f of [c.LogPath, `${c.LogPath}.1`, `${c.LogPath}.2`]) assert.ok(statSync(f).size < 3000 + 200, `${f}: ${statSync(f).size}`);
    assert.equal(ok(["logs", "--tail", "1", "dflt"], d2), "l-399\n");
    // Another driver does not take the daemon's options.
    ok(["create", "--name", "other", "--log-driver", "local", "busybox", "true"], d2);
    assert.deepEqual(inspect("other", d2).HostConfig.LogConfig, { Type: "local", Config: {} });
  } finally {
    await d2.stop();
  }
  // A bad default refuses to start the daemon, with dockerd's words.
  const d3 = new Daemon();
  const bad = join(d3.root, "daemon.json");
  writeFileSync(bad, JSON.stringify({ "log-opts": { "max-size": "abc" } }));
  d3.extraArgs = ["--config-file", bad];
  try {
    await assert.rejects(d3.start(), /invalid size: 'abc'/);
  } finally {
    await d3.stop();
  }
});
