#!/usr/bin/env node
/**
 * The README's "Clients tested" table, made from the client suites' results.
 *
 *   node scripts/client-table.mjs                 runs test/clients/*.test.ts against berthd, then writes the table
 *   node scripts/client-table.mjs --from FILE     uses results saved by an earlier run (JSON lines of test/clients/json-reporter.mjs)
 *   node scripts/client-table.mjs --print         prints the table instead of writing README.md
 *
 * The table goes into README.md between <!-- clients:begin --> and <!-- clients:end -->.
 * It says which client and version ran, what the suite does with it, and the result,
 * naming every failing test (nothing is left out: a gap shows as a failure).
 * Exit status: 0 when the table was written, whatever the tests said; 1 when it could not be.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, readdirSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve, basename } from "node:path";
import { tmpdir } from "node:os";

const REPO = resolve(import.meta.dirname, "..");
const DIR = join(REPO, "test/clients");
const README = join(REPO, "README.md");
const BEGIN = "<!-- clients:begin -->";
const END = "<!-- clients:end -->";

const sh = (cmd, args) => { const r = spawnSync(cmd, args, { encoding: "utf8" }); return r.status === 0 ? r.stdout.trim() : ""; };
const deb = (pkg) => sh("dpkg-query", ["-W", "-f", "${Version}", pkg]) || "not installed";
const npmVersion = (pkg) => { try { return JSON.parse(readFileSync(join(REPO, "node_modules", pkg, "package.json"), "utf8")).version; } catch { return "not installed"; } };

/** One row per suite: file → the client it drives, how its version is found, and what it runs. */
const CLIENTS = {
  "docker-cli.test.ts": { client: "docker CLI", version: () => sh("/usr/local/bin/docker", ["--version"]).replace(/^Docker version ([^,]+).*/, "$1") || "not installed",
    what: "run (exit codes, -i, -t, -e, -w, -u), create/start/stop/kill/restart/rm/ps/rename/pause/unpause/top/stats/wait/inspect, logs/exec/attach/start -a, cp/export/diff/commit/port, build/images/tag/history/save/load/import/rmi, push/pull via a local registry, network and volume commands, version/info/system df/events/system prune" },
  "docker-py.test.ts": { client: "Docker SDK for Python (Debian python3-docker)", version: () => deb("python3-docker"),
    what: "containers.run attached and detached, logs, exec_run, wait, images.build from a fileobj, networks, volumes, put/get_archive, stats(stream=False), events with filters, inspect/info/df fields" },
  "docker-compose.test.ts": { client: "docker-compose (Debian, Python)", version: () => deb("docker-compose"),
    what: "the seed Flask + Redis app: up -d --build, ps, logs, up again, down, down -v" },
  "dockerode.test.ts": { client: "dockerode (npm)", version: () => npmVersion("dockerode"),
    what: "create/start/logs/wait, attach with stdin, exec (and a missing binary: 126), put/getArchive, stats, buildImage, getEvents, networks, volumes" },
  "testcontainers.test.ts": { client: "testcontainers (npm; reaper off)", version: () => `${npmVersion("testcontainers")} (newest on Node 20)`,
    what: "GenericContainer on busybox with log-message, listening-port and HTTP wait strategies, exec, logs, a Network with aliases" },
};

function runSuites() {
  const out = mkdtempSync(join(tmpdir(), "berth-clients-"));
  const results = join(out, "results.jsonl");
  const files = readdirSync(DIR).filter((f) => f.endsWith(".test.ts")).sort().map((f) => join("test/clients", f));
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", "--test-timeout=600000",
    "--test-reporter=spec", "--test-reporter-destination=stdout",
    `--test-reporter=${join(DIR, "json-reporter.mjs")}`, `--test-reporter-destination=${results}`, ...files], { cwd: REPO, stdio: ["ignore", "inherit", "inherit"] });
  let text = "";
  try { text = readFileSync(results, "utf8"); } catch { /* no results: the table says so */ }
  rmSync(out, { recursive: true, force: true });
  return { text, status: r.status };
}

function table(lines) {
  const byFile = new Map();
  for (const l of lines) { const k = basename(l.file); if (!byFile.has(k)) byFile.set(k, []); byFile.get(k).push(l); }
  const esc = (s) => String(s).replace(/\|/g, "\\|").replace(/\n/g, " ");
  const rows = ["| client | version | what runs | result |", "|---|---|---|---|"];
  for (const [file, c] of Object.entries(CLIENTS)) {
    const ts = (byFile.get(file) ?? []).filter((t) => !t.skipped);
    let result;
    if (!ts.length) result = "not run";
    else {
      const pass = ts.filter((t) => t.ok).length;
      const fails = ts.filter((t) => !t.ok);
      result = `${pass}/${ts.length} pass`;
      if (fails.length) result += `; failing: ${fails.map((t) => `${t.name.replace(/^[^:]+: /, "")}${t.error ? ` (${t.error})` : ""}`).join("; ")}`;
    }
    rows.push(`| ${esc(c.client)} | ${esc(c.version())} | ${esc(c.what)} | ${esc(result)} |`);
  }
  const commit = sh("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]);
  const when = new Date().toISOString().slice(0, 10);
  return `${rows.join("\n")}\n\nGenerated by \`make clients\` (\`scripts/client-table.mjs\`) on ${when} at commit ${commit || "?"}: each client runs against a real berthd (test/clients/); the expectations are dockerd's answers to the same calls.`;
}

const args = process.argv.slice(2);
const from = args.includes("--from") ? args[args.indexOf("--from") + 1] : undefined;
const { text } = from ? { text: readFileSync(from, "utf8") } : runSuites();
const lines = text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
const md = table(lines);
if (args.includes("--print")) { console.log(md); process.exit(0); }
const readme = readFileSync(README, "utf8");
const b = readme.indexOf(BEGIN), e = readme.indexOf(END);
if (b < 0 || e < b) { console.error(`client-table: README.md has no ${BEGIN} ... ${END} markers`); process.exit(1); }
writeFileSync(README, `${readme.slice(0, b + BEGIN.length)}\n${md}\n${readme.slice(e)}`);
console.log(`client-table: README.md updated (${lines.length} test results)`);
