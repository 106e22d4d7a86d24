// The compose loader against many small compose files: merge tags and multi-file merges, .env and env_file
// forms and their errors, extends, include, profiles, secrets/configs/scale in the model, schema errors with
// their paths, project names and the COMPOSE_* variables. No daemon.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDotEnv } from "../../src/compose/dotenv.js";
import { loadProject, projectModel, ComposeError, type LoadOptions } from "../../src/compose/loader.js";

/** A temporary project directory with files; removed after fn. */
function withDir(files: Record<string, string>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "compose-loader-"));
  try {
    for (const [p, c] of Object.entries(files)) {
      mkdirSync(join(dir, p, ".."), { recursive: true });
      writeFileSync(join(dir, p), c);
    }
    fn(dir);
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

const docs = (...contents: string[]) => contents.map((content, i) => ({ path: `/nonexistent-proj/c${i}.yaml`, content }));
const load = (contents: string | string[], o: Partial<LoadOptions> = {}) =>
  loadProject({ documents: docs(...(Array.isArray(contents) ? contents : [contents])), env: {}, projectName: "t", ...o });
const fails = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: Error) => e instanceof ComposeError && re.test(e.message), re.source);

// ---------- merge tags and multi-file merges ----------

test("!reset drops a value, in the same file and over earlier files", () => {
  const p = load([`
services:
  web:
    image: busybox
    ports: ["8080:80", "8443:443"]
    environment: {FOO: "1", BAR: "2"}
    command: ["a"]
    labels: [x=1]
`, `
services:
  web:
    ports: !reset []
    environment:
      FOO: !reset null
    command: !reset null
    labels: !reset {}
`]);
  const w = p.services.web;
  assert.deepEqual(w.ports, []);
  assert.deepEqual(w.environment, { BAR: "2" });
  assert.equal(w.command, undefined);
  assert.deepEqual(w.labels, {});
  // In a single file: FOO is not the string "null".
  const q = load("services:\n  web:\n    image: busybox\n    environment:\n      FOO: !reset null\n      K: v\n");
  assert.deepEqual(q.services.web.environment, { K: "v" });
});

test("!override replaces a value instead of merging it", () => {
  const p = load([`
services:
  web:
    image: busybox
    ports: ["8080:80"]
    environment: {A: "1", B: "1"}
    volumes: ["/h1:/one"]
`, `
services:
  web:
    ports: !override ["9090:90"]
    environment: !override {C: "3"}
    volumes: !override
      - /h2:/two
`]);
  const w = p.services.web;
  assert.deepEqual(w.ports, [{ target: 90, published: "9090", protocol: "tcp" }]);
  assert.deepEqual(w.environment, { C: "3" });
  assert.deepEqual(w.volumes.map((v) => `${v.source}:${v.target}`), ["/h2:/two"]);
});

test("merging files: ports unique by binding, depends_on and networks as maps, build merged, command replaced, lists appended", () => {
  const p = load([`
services:
  web:
    build: ./app
    command: [a, b]
    ports: ["8080:80", "127.0.0.1:9000:9000/udp"]
    depends_on: [db]
    networks: [front]
    dns: 1.1.1.1
    cap_add: [NET_ADMIN]
    expose: ["80"]
    extra_hosts: ["a:10.0.0.1"]
    healthcheck: {test: ["CMD", "a"], interval: 10s}
  db:
    image: busybox
networks: {front: {}, back: {}}
`, `
services:
  web:
    build: {dockerfile: Other.Dockerfile, args: [V=2]}
    command: c
    ports: ["8080:80", "8081:81"]
    depends_on: {db: {condition: service_healthy}}
    networks: {back: {aliases: [b]}}
    dns: [8.8.8.8, 1.1.1.1]
    cap_add: [NET_ADMIN, SYS_TIME]
    expose: ["80", "81"]
    extra_hosts: {b: 10.0.0.2}
    healthcheck: {test: ["CMD", "b"]}
`]);
  const w = p.services.web;
  assert.deepEqual(w.build, { context: "/nonexistent-proj/app", dockerfile: "Other.Dockerfile", args: { V: "2" } });
  assert.deepEqual(w.command, ["c"]);
  assert.deepEqual(w.ports.map((x) => `${x.published}:${x.target}/${x.protocol}`), ["8080:80/tcp", "9000:9000/udp", "8081:81/tcp"]);
  assert.deepEqual(w.depends_on, { db: { condition: "service_healthy", required: true } });
  const r = load("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_started, restart: true, required: false}}\n  db:\n    image: x\n");
  assert.deepEqual(r.services.web.depends_on, { db: { condition: "service_started", required: false, restart: true } });
  assert.deepEqual(Object.keys(w.networks).sort(), ["back", "front"]);
  assert.deepEqual(w.networks.back.aliases, ["b"]);
  assert.deepEqual(w.dns, ["1.1.1.1", "8.8.8.8"]);
  assert.deepEqual(w.cap_add, ["NET_ADMIN", "SYS_TIME"]);
  assert.deepEqual(w.expose, ["80", "81"]);
  assert.deepEqual(w.extra_hosts.sort(), ["a:10.0.0.1", "b:10.0.0.2"]);
  assert.deepEqual(w.healthcheck?.Test, ["CMD", "b"]);
  assert.equal(w.healthcheck?.Interval, 10e9);
});

test("files on disk: compose.override.yaml is read after compose.yaml; COMPOSE_FILE with its separator; -f - reads stdin", () => {
  withDir({
    "compose.yaml": "services:\n  web:\n    image: busybox:1\n    environment: {A: base}\n",
    "compose.override.yaml": "services:\n  web:\n    environment: {A: override}\n",
    "extra.yaml": "services:\n  extra:\n    image: busybox\n",
    "sub/.keep": "",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: {} });
    assert.equal(p.services.web.environment.A, "override");
    assert.deepEqual(p.configFiles, [join(dir, "compose.yaml"), join(dir, "compose.override.yaml")]);
    // From a subdirectory, the nearest parent's compose.yaml (and that directory is the project's).
    const q = loadProject({ cwd: join(dir, "sub"), env: {} });
    assert.equal(q.workingDir, dir);
    const r = loadProject({ cwd: dir, env: { COMPOSE_FILE: "compose.yaml;extra.yaml", COMPOSE_PATH_SEPARATOR: ";" } });
    assert.deepEqual(Object.keys(r.services).sort(), ["extra", "web"]);
    assert.equal(r.services.web.environment.A, "base");
    const s = loadProject({ cwd: dir, env: {}, files: ["-"], stdin: "services:\n  piped:\n    image: busybox\n" });
    assert.deepEqual(Object.keys(s.services), ["piped"]);
    assert.equal(s.workingDir, dir);
  });
});

test("a file of several YAML documents: each is merged over the ones before, as compose-go reads them", () => {
  const p = load("services:\n  web:\n    image: busybox:1\n    ports: [\"80\"]\n---\nservices:\n  web:\n    image: busybox:2\n  db:\n    image: x\n");
  assert.equal(p.services.web.image, "busybox:2");
  assert.deepEqual(p.services.web.ports.map((x) => x.target), [80]);
  assert.ok(p.services.db);
});

// ---------- .env and env_file ----------

test(".env: compose-go's dotenv forms", () => {
  const env = parseDotEnv([
    "# comment",
    "PLAIN=value # inline comment",
    "HASH=a#b",
    "export EXPORTED=yes",
    "YAML_STYLE: colon",
    "  SPACED = around  ",
    "EMPTY=",
    "SINGLE='lit $PLAIN \\n \\' quote'",
    'DOUBLE="tab\\there\\nnew \\$PLAIN \\\\ \\"q\\" oct:\\0101"',
    "EXPANDED=${PLAIN}-$EXPORTED-${MISSING:-dflt}",
    "FROM_OS=${OS_VAR}",
    'MULTI="line one',
    'line two"',
    "MULTI_SINGLE='a",
    "b'",
    "INHERITED",
    "NOT_IN_OS",
    "OVERRIDDEN=from-file",
  ].join("\n") + "\n", (k) => ({ OS_VAR: "os", INHERITED: "from-os", OVERRIDDEN: "from-os" } as Record<string, string>)[k]);
  assert.deepEqual(env, {
    PLAIN: "value", HASH: "a#b", EXPORTED: "yes", YAML_STYLE: "colon", SPACED: "around", EMPTY: "",
    SINGLE: "lit $PLAIN \\n ' quote", DOUBLE: 'tab\there\nnew $PLAIN \\ "q" oct:A', EXPANDED: "value-yes-dflt",
    FROM_OS: "os", MULTI: "line one\nline two", MULTI_SINGLE: "a\nb", INHERITED: "from-os", OVERRIDDEN: "from-file",
  });
});

test(".env: escapes and comments exactly as compose-go's parser", () => {
  const env = parseDotEnv([
    'ESC="\\a|\\b|\\f|\\v|\\r|\\c|\\x41|\\\'|\\0101|\\012"',
    "HASH_ONLY= # not a comment: no space before it once the value starts",
    "TAB_HASH=a\t#b",
    "DOLLARS=$$literal",
  ].join("\n"));
  assert.equal(env.ESC, "\x07|\b|\f|\v|\r|\\c|\\x41|\\'|A|\\12");
  assert.equal(env.HASH_ONLY, "# not a comment: no space before it once the value starts");
  assert.equal(env.TAB_HASH, "a\t#b");
  assert.equal(env.DOLLARS, "$literal");
});

test(".env: malformed lines are errors naming the line", () => {
  assert.throws(() => parseDotEnv("A=1\nB=\"unterminated\nC=3\n"), /line 2: unterminated quoted value "unterminated/);
  assert.throws(() => parseDotEnv("A=1\n\nMY KEY=2\n"), /line 3: key cannot contain a space/);
  assert.throws(() => parseDotEnv("A=1\nB$=2\n"), /line 2: unexpected character "\$" in variable name "B\$=2"/);
  assert.throws(() => parseDotEnv("A=${B:?B is required}\n"), (e: Error) => e.message === "expanding variables: required variable B is missing a value: B is required");
});

test(".env on disk: interpolation source, errors name the file, --env-file and COMPOSE_ENV_FILES, COMPOSE_* variables", () => {
  withDir({
    "compose.yaml": "services:\n  web:\n    image: busybox:${TAG}\n    environment: {GREETING: $GREETING}\n    profiles: [debug]\n  always:\n    image: busybox\n",
    ".env": "TAG=1.36\nGREETING=\"hello ${TAG}\"\nCOMPOSE_PROJECT_NAME=fromdotenv\nCOMPOSE_PROFILES=debug\n",
    "other.env": "TAG=other\n",
    "bad.env": "OK=1\nBROKEN='x\n",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: {} });
    assert.equal(p.name, "fromdotenv");
    assert.equal(p.services.web.image, "busybox:1.36");
    assert.equal(p.services.web.environment.GREETING, "hello 1.36");
    // The OS environment wins over .env.
    assert.equal(loadProject({ cwd: dir, env: { TAG: "os" } }).services.web.image, "busybox:os");
    // --env-file replaces .env (no COMPOSE_PROFILES there: web's profile is off).
    const q = loadProject({ cwd: dir, env: {}, envFiles: ["other.env"] });
    assert.equal(q.services.always.image, "busybox");
    assert.equal(q.services.web, undefined);
    assert.equal(q.disabledServices?.web.image, "busybox:other");
    assert.equal(loadProject({ cwd: dir, env: { COMPOSE_ENV_FILES: "other.env" } }).disabledServices?.web.image, "busybox:other");
    fails(() => loadProject({ cwd: dir, env: {}, envFiles: ["bad.env"] }), new RegExp(`failed to read ${join(dir, "bad.env")}: line 2: unterminated quoted value 'x`));
    fails(() => loadProject({ cwd: dir, env: {}, envFiles: ["nope.env"] }), /couldn't find env file: .*nope\.env/);
  });
});

test("env_file: path/required/format, bare keys from the environment, later files and environment: win", () => {
  withDir({
    "compose.yaml": `
services:
  app:
    image: busybox
    env_file:
      - a.env
      - path: b.env
        required: true
      - path: missing.env
        required: false
      - path: raw.env
        format: raw
    environment:
      FROM_YAML: yes
`,
    "a.env": "A=1\nSHARED=a\nHOST_ONLY\nUNSET_ONLY\n",
    "b.env": "B=\"${A}-two\"\nSHARED=b\n",
    "raw.env": "RAW='kept quotes' $A\n",
    ".env": "A=from-dotenv\n",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: { HOST_ONLY: "host" } });
    assert.deepEqual(p.services.app.environment, { A: "1", SHARED: "b", HOST_ONLY: "host", B: "from-dotenv-two", RAW: "'kept quotes' $A", FROM_YAML: "yes" });
    writeFileSync(join(dir, "compose.yaml"), "services:\n  app:\n    image: busybox\n    env_file: gone.env\n");
    fails(() => loadProject({ cwd: dir, env: {} }), /env file .*gone\.env not found/);
    writeFileSync(join(dir, "compose.yaml"), "services:\n  app:\n    image: busybox\n    env_file: bad.env\n");
    writeFileSync(join(dir, "bad.env"), "GOOD=1\nBAD KEY=2\n");
    fails(() => loadProject({ cwd: dir, env: {} }), /failed to read .*bad\.env: line 2: key cannot contain a space/);
  });
});

test("label_file: labels from files, under the service's own labels", () => {
  withDir({
    "compose.yaml": "services:\n  app:\n    image: busybox\n    label_file: [team.labels, ./more.labels]\n    labels: {tier: from-yaml}\n",
    "team.labels": "com.example.team=core\ntier=from-file\n",
    "more.labels": "com.example.owner=\"ops\"\n",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: {} });
    assert.deepEqual(p.services.app.labels, { "com.example.team": "core", tier: "from-yaml", "com.example.owner": "ops" });
    assert.equal(p.warnings.length, 0);
  });
});

// ---------- extends, include, profiles ----------

test("extends: same file and another file, merged by the rules, relative paths of the other file kept relative to it", () => {
  withDir({
    "compose.yaml": `
services:
  base:
    image: busybox
    environment: {LEVEL: base, KEEP: "1"}
    ports: ["8080:80"]
  web:
    extends: base
    environment: {LEVEL: web}
    ports: ["8081:81"]
  worker:
    extends: {file: common/common.yaml, service: job}
    command: ["run", "it"]
`,
    "common/common.yaml": `
services:
  job:
    build: ./ctx
    volumes: ["./data:/data"]
    env_file: job.env
    command: ["never"]
    labels: {tier: jobs}
`,
    "common/job.env": "JOB=1\n",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: {} });
    assert.deepEqual(p.services.web.environment, { LEVEL: "web", KEEP: "1" });
    assert.deepEqual(p.services.web.ports.map((x) => x.target), [80, 81]);
    assert.equal(p.services.web.image, "busybox");
    const w = p.services.worker;
    assert.equal(w.build?.context, join(dir, "common/ctx"));
    assert.equal(w.volumes[0].source, join(dir, "common/data"));
    assert.deepEqual(w.environment, { JOB: "1" });
    assert.deepEqual(w.command, ["run", "it"]);
    assert.deepEqual(w.labels, { tier: "jobs" });
  });
  fails(() => load("services:\n  a:\n    extends: b\n  b:\n    extends: a\n    image: x\n"), /^Circular reference:\n  a in \/nonexistent-proj\/c0\.yaml\n  extends b in \/nonexistent-proj\/c0\.yaml\n  extends a in \/nonexistent-proj\/c0\.yaml$/);
  fails(() => load("services:\n  a:\n    extends: nope\n"), /cannot extend service "a" in .*: service "nope" not found/);
  // The merge tags work on what extends brings in too.
  const t = load("services:\n  base:\n    image: x\n    ports: [\"80\"]\n    environment: {A: \"1\", B: \"2\"}\n  web:\n    extends: base\n    ports: !reset []\n    environment: !override {C: \"3\"}\n");
  assert.deepEqual(t.services.web.ports, []);
  assert.deepEqual(t.services.web.environment, { C: "3" });
  assert.deepEqual(t.services.base.environment, { A: "1", B: "2" });
});

test("include: sub-projects with their own directory and .env, conflicts and cycles refused", () => {
  withDir({
    "compose.yaml": "include:\n  - db/compose.yaml\n  - path: cache/compose.yaml\n    env_file: cache.env\nservices:\n  web:\n    image: busybox\n    depends_on: [db, cache]\n",
    "db/compose.yaml": "services:\n  db:\n    image: postgres:${PG}\n    volumes: [\"./init:/docker-entrypoint-initdb.d\", \"dbdata:/var/lib/postgresql\"]\nvolumes:\n  dbdata: {}\n",
    "db/.env": "PG=16\n",
    "cache/compose.yaml": "services:\n  cache:\n    image: redis:${REDIS}\n",
    "cache.env": "REDIS=7\n",
  }, (dir) => {
    const p = loadProject({ cwd: dir, env: {} });
    assert.deepEqual(Object.keys(p.services).sort(), ["cache", "db", "web"]);
    assert.equal(p.services.db.image, "postgres:16");
    assert.equal(p.services.cache.image, "redis:7");
    // The include's env file only gives defaults: the including project's environment wins.
    assert.equal(loadProject({ cwd: dir, env: { REDIS: "6" } }).services.cache.image, "redis:6");
    assert.equal(p.services.db.volumes[0].source, join(dir, "db/init"));
    assert.equal(p.volumes.dbdata.name, `${p.name}_dbdata`);
    writeFileSync(join(dir, "compose.yaml"), "include: [db/compose.yaml]\nservices:\n  db:\n    image: busybox\n");
    fails(() => loadProject({ cwd: dir, env: {} }), /^services\.db conflicts with imported resource$/);
    writeFileSync(join(dir, "compose.yaml"), "include: [db/compose.yaml]\nservices: {}\n");
    writeFileSync(join(dir, "db/compose.yaml"), "include: [../compose.yaml]\nservices:\n  db:\n    image: x\n");
    fails(() => loadProject({ cwd: dir, env: {} }), /include cycle detected:\n.*compose\.yaml\n include .*db\/compose\.yaml\n include .*compose\.yaml/);
  });
});

test("profiles: inactive services are dropped before the consistency check; --profile, COMPOSE_PROFILES, '*'", () => {
  const y = `
services:
  web:
    image: busybox
  debug:
    image: busybox
    profiles: [debug]
    volumes: ["undeclared:/x"]
  tools:
    image: busybox
    profiles: [tools, debug]
    depends_on: {web: {condition: service_started}}
`;
  const off = load(y);
  assert.deepEqual(Object.keys(off.services), ["web"]);
  assert.deepEqual(off.profiles, ["debug", "tools"]);
  assert.deepEqual(Object.keys(load(y, { profiles: ["tools"] }).services).sort(), ["tools", "web"]);
  assert.deepEqual(Object.keys(load(y, { env: { COMPOSE_PROFILES: "tools" } }).services).sort(), ["tools", "web"]);
  // An active service's undefined volume is an error (and only then).
  fails(() => load(y, { profiles: ["debug"] }), /service "debug" refers to undefined volume undeclared/);
  fails(() => load(y, { profiles: ["*"] }), /undefined volume undeclared/);
  // A required dependency left out by profiles.
  fails(() => load("services:\n  web:\n    image: x\n    depends_on: [db]\n  db:\n    image: x\n    profiles: [db]\n"), /service "db" was pulled in as a dependency of service "web" but is not enabled by the active profiles/);
  const opt = load("services:\n  web:\n    image: x\n    depends_on: {db: {condition: service_started, required: false}}\n  db:\n    image: x\n    profiles: [db]\n");
  assert.deepEqual(opt.services.web.depends_on, {});
  // A service named on the command line runs whatever its profiles, with its dependencies.
  const named = load("services:\n  web:\n    image: x\n  tool:\n    image: x\n    profiles: [tools]\n    depends_on: [helper]\n  helper:\n    image: x\n    profiles: [helpers]\n", { enableServices: ["tool"] });
  assert.deepEqual(Object.keys(named.services).sort(), ["helper", "tool", "web"]);
});

// ---------- secrets, configs, scale, develop ----------

test("secrets and configs (file, environment, content), scale and deploy.replicas, develop.watch in the model", () => {
  const p = load(`
services:
  web:
    image: busybox
    secrets: [token, {source: cert, target: server.crt, mode: "0400", uid: "1000"}]
    configs: [{source: app, target: /etc/app.conf, mode: 0440}]
    deploy: {replicas: 3}
    develop:
      watch:
        - {path: ./src, action: sync, target: /app/src, ignore: [node_modules/]}
        - {path: Dockerfile, action: rebuild}
  worker:
    image: busybox
    scale: "2"
secrets:
  token: {environment: TOKEN}
  cert: {file: ./cert.pem}
configs:
  app: {content: "debug=true"}
`, { env: { TOKEN: "s3cr3t" } });
  const w = p.services.web;
  assert.deepEqual(w.secrets, [{ source: "token" }, { source: "cert", target: "server.crt", mode: 0o400, uid: "1000" }]);
  // An unquoted 0440 is octal, as yaml.v3 reads it.
  assert.deepEqual(w.configs, [{ source: "app", target: "/etc/app.conf", mode: 0o440 }]);
  assert.equal(w.scale, 3);
  assert.deepEqual(w.deploy, { replicas: 3 });
  assert.equal(p.services.worker.scale, 2);
  assert.deepEqual(w.develop?.watch, [
    { path: "/nonexistent-proj/src", action: "sync", target: "/app/src", ignore: ["node_modules/"], include: [] },
    { path: "/nonexistent-proj/Dockerfile", action: "rebuild", ignore: [], include: [] },
  ]);
  assert.deepEqual(p.secrets, {
    token: { name: "t_token", environment: "TOKEN", external: false, labels: {} },
    cert: { name: "t_cert", file: "/nonexistent-proj/cert.pem", external: false, labels: {} },
  });
  assert.deepEqual(p.configs?.app, { name: "t_app", content: "debug=true", external: false, labels: {} });
  assert.equal(p.environment?.TOKEN, "s3cr3t");
  const m = projectModel(p);
  assert.deepEqual((m.secrets as Record<string, unknown>).token, { name: "t_token", environment: "TOKEN" });
  fails(() => load("services:\n  web:\n    image: x\n    configs: [nope]\n"), /service "web" refers to undefined config nope: invalid compose project/);
  fails(() => load("services:\n  web:\n    image: x\n    develop: {watch: [{path: ., action: sync}]}\n"), /^services\.web\.develop\.watch: target is required for non-rebuild actions: invalid compose project$/);
  fails(() => load("services:\n  web:\n    image: x\n    develop: {watch: [{path: ., action: restart}]}\n"), /target is required for non-rebuild actions/);
  fails(() => load("services:\n  web:\n    image: x\n    container_name: one\n    deploy: {replicas: 2}\n"), /^services\.web: can't set container_name and deploy\.replicas as container name must be unique: invalid compose project$/);
  fails(() => load("services:\n  web:\n    image: x\n    secrets: [s]\nsecrets:\n  s: {labels: {a: b}}\n"), /^secret "s" must declare either `file` or `environment`: invalid compose project$/);
  fails(() => load("services:\n  web:\n    image: x\n    scale: 2\n    deploy: {replicas: 3}\n"), /^services\.web: can't set distinct values on 'scale' and 'deploy\.replicas': invalid compose project$/);
});

// ---------- schema ----------

test("every key of the current schema is accepted; the ones berth does not apply are warned about once", () => {
  const p = load(`
services:
  web:
    image: busybox
    pre_start: [{command: ["true"]}]
    post_start: [{command: ["true"]}]
    build:
      context: .
      additional_contexts: {base: ../base}
      ulimits: {nofile: 1024}
      privileged: true
    volumes:
      - {type: volume, source: data, target: /data, volume: {nocopy: true}}
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    x-custom: anything
  other:
    image: busybox
    ulimits: {nproc: 64}
networks:
  front: {enable_ipv4: true, enable_ipv6: false}
volumes:
  data: {}
x-top: {anything: true}
`);
  const warnings = p.warnings.join("\n");
  for (const k of ["services.web.pre_start", "services.web.post_start", "services.web.build.additional_contexts", "services.web.build.ulimits", "services.web.build.privileged", "services.web.ulimits", "services.other.ulimits", "networks.front.enable_ipv4", "services.web.volumes[0].volume"]) {
    assert.match(warnings, new RegExp(`${k.replace(/[.[\]]/g, "\\$&")} is not supported by berth and is ignored`), k);
  }
  assert.equal(p.warnings.length, new Set(p.warnings).size);
  // What berth does anyway is not warned about.
  assert.deepEqual(load("services:\n  web:\n    image: x\n    volumes: [{type: bind, source: /h, target: /h, bind: {create_host_path: true}}]\n").warnings, []);
  assert.deepEqual(load("version: '3.8'\nservices: {}\n").warnings, ["/nonexistent-proj/c0.yaml: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"]);
  // A remote build context is kept as written, not made a path.
  assert.equal(load("services:\n  web:\n    build: https://github.com/docker/welcome.git#main\n").services.web.build?.context, "https://github.com/docker/welcome.git#main");
  // An image mount is valid compose, but berth cannot do it: said so.
  fails(() => load("services:\n  web:\n    image: x\n    volumes: [{type: image, source: alpine, target: /img}]\n"), /services\.web\.volumes\[0\]: volume type image is not supported by berth/);
});

test("schema errors name the path as compose-go does", () => {
  const v = (y: string, re: RegExp) => fails(() => load(y), re);
  v("services:\n  web:\n    image: busybox\n    ports: [{target: 80, bogus: 1}]\n", /^validating \/nonexistent-proj\/c0\.yaml: services\.web\.ports\.0 additional properties 'bogus' not allowed$/);
  v("services:\n  web:\n    image: busybox\n    environment: {A: [1]}\n", /services\.web\.environment\.A must be a string, number, boolean or null$/);
  v("services:\n  web:\n    image: busybox\n    networks: {default: {aliases: x}}\n", /services\.web\.networks\.default\.aliases must be a list$/);
  // compose-go validates after making sequences unique: a repeated capability is dropped, not an error.
  assert.deepEqual(load("services:\n  web:\n    image: busybox\n    cap_add: [A, A]\n").services.web.cap_add, ["A"]);
  v("services:\n  web:\n    image: busybox\n    depends_on: {db: {required: true}}\n  db: {image: x}\n", /services\.web\.depends_on\.db missing property 'condition'$/);
  v("services:\n  web:\n    image: busybox\n    develop: {watch: [{path: ., action: teleport}]}\n", /services\.web\.develop\.watch\.0\.action must be one of "rebuild", "sync", "restart", "sync\+restart", "sync\+exec"$/);
  v("services: []\n", /: services must be a mapping$/);
  v("networks:\n  n: {ipam: {bogus: 1}}\nservices: {}\n", /networks\.n\.ipam additional properties 'bogus' not allowed/);
  v("", /^empty compose file$/);
  v("# only a comment\n", /^empty compose file$/);
  // An empty override file is fine; validation names the file whose merge broke the model.
  assert.equal(load(["services:\n  web:\n    image: busybox\n", ""]).services.web.image, "busybox");
  fails(() => load(["services:\n  web:\n    image: busybox\n", "services:\n  web:\n    ports: 80\n"]), /^validating \/nonexistent-proj\/c1\.yaml: services\.web\.ports must be a list$/);
  v("services:\n  web:\n    image: busybox\n    image: again\n", /^failed to parse \/nonexistent-proj\/c0\.yaml: yaml: line 4: Map keys must be unique$/);
});

test("consistency errors as compose-go words them", () => {
  fails(() => load("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n"), /^dependency cycle detected: a -> b -> c -> a$/);
  fails(() => load("services:\n  web:\n    image: x\n    secrets: [nope]\n"), /service "web" refers to undefined secret nope: invalid compose project/);
  fails(() => load("services:\n  web:\n    image: x\n    networks: [nope]\n"), /service "web" refers to undefined network nope: invalid compose project/);
});

// ---------- project name ----------

test("project names: -p and COMPOSE_PROJECT_NAME are checked, not rewritten; `name:` and the directory's name are made valid", () => {
  const msg = /invalid project name "My_App": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number/;
  fails(() => load("services: {}\n", { projectName: "My_App" }), msg);
  fails(() => load("services: {}\n", { projectName: undefined, env: { COMPOSE_PROJECT_NAME: "My_App" } }), msg);
  assert.equal(load("name: My_App\nservices: {}\n", { projectName: undefined }).name, "my_app");
  assert.equal(load("name: from-file\nservices: {}\n", { projectName: undefined }).name, "from-file");
  assert.equal(load("name: from-file\nservices: {}\n", { projectName: undefined, env: { COMPOSE_PROJECT_NAME: "from-env" } }).name, "from-env");
  assert.equal(load("name: from-file\nservices: {}\n", { projectName: "flag", env: { COMPOSE_PROJECT_NAME: "from-env" } }).name, "flag");
  withDir({ "My.Dir/compose.yaml": "services: {}\n" }, (dir) => {
    assert.equal(loadProject({ cwd: join(dir, "My.Dir"), env: {} }).name, "mydir");
    // --project-directory: the working directory (and its name) with files from elsewhere.
    mkdirSync(join(dir, "elsewhere"));
    writeFileSync(join(dir, "elsewhere/.env"), "X=from-project-dir\n");
    const p = loadProject({ cwd: dir, env: {}, files: ["My.Dir/compose.yaml"], projectDirectory: "elsewhere" });
    assert.equal(p.workingDir, join(dir, "elsewhere"));
    assert.equal(p.name, "elsewhere");
    assert.equal(p.environment?.X, "from-project-dir");
  });
});

// ---------- the schema validator ----------

test("the schema validator knows every keyword of compose-spec.json and agrees with ajv", async () => {
  const { SchemaValidator, unsupportedKeywords } = await import("../../src/compose/schema/interpreter.js");
  const { readFileSync } = await import("node:fs");
  const schema = JSON.parse(readFileSync(new URL("../../src/compose/schema/compose-spec.json", import.meta.url), "utf8"));
  assert.deepEqual(unsupportedKeywords(schema), []);
  const { Ajv } = await import("ajv");
  const { $schema: _s, ...rest } = schema;
  const ajv = new Ajv({ strict: false, validateFormats: false }).compile(rest);
  const mine = new SchemaValidator(schema);
  const corpus: unknown[] = [
    { services: { web: { image: "x", ports: ["80", 81, { target: 82, published: "8082" }], volumes: ["a:/a", { type: "bind", source: ".", target: "/b" }] } } },
    { services: { web: { image: "x", ports: [{ target: 80, bogus: 1 }] } } },
    { services: { web: { image: "x", ports: [true] } } },
    { services: { web: { build: { context: ".", additional_contexts: { a: "b" }, ulimits: { nofile: 1 }, privileged: true }, pre_start: [{ command: "x" }] } } },
    { services: { web: { image: "x", depends_on: { db: { condition: "service_healthy", required: false, restart: true } } }, db: { image: "y" } } },
    { services: { web: { image: "x", depends_on: { db: { required: true } } } } },
    { services: { web: { image: "x", cap_add: ["A", "A"] } } },
    { services: { web: { image: "x", environment: { A: [1] } } } },
    { services: { web: { image: "x", deploy: { replicas: 2, resources: { limits: { cpus: "0.5" } } }, scale: 2 } } },
    { services: { "bad name": { image: "x" } } },
    { services: { web: { image: "x", develop: { watch: [{ path: ".", action: "sync", target: "/a" }] } } } },
    { services: { web: { image: "x", develop: { watch: [{ path: ".", action: "teleport" }] } } } },
    { networks: { n: { enable_ipv4: true, ipam: { config: [{ subnet: "10.0.0.0/24" }] } } }, services: {} },
    { volumes: { v: { external: true } }, secrets: { s: { file: "./s" } }, configs: { c: { content: "x" } }, services: {} },
    { include: ["a.yaml", { path: ["b.yaml"], project_directory: ".", env_file: ".env" }], services: {} },
    { servics: {} }, { services: [] }, { "x-anything": 1, services: {} }, { name: 1 },
  ];
  for (const doc of corpus) assert.equal(mine.check(doc).length === 0, ajv(doc), JSON.stringify(doc));
});

test("interpolation: values cast where compose-go casts them, errors worded as compose-go's", () => {
  const p = load(`
services:
  web:
    image: busybox:\${TAG:-latest}
    read_only: \${RO}
    tty: "on"
    scale: \${N}
    ports: [{target: "\${P}", published: "\${P}"}]
    healthcheck: {test: ["CMD", "true"], retries: "\${R}"}
    environment: {PLAIN: "\${RO}"}
    labels: !override {from: "\${TAG:-latest}"}
`, { env: { RO: "yes", N: "3", P: "8080", R: "5" } });
  const w = p.services.web;
  assert.equal(w.image, "busybox:latest");
  assert.equal(w.read_only, true);
  assert.equal(w.tty, true);
  assert.equal(w.scale, 3);
  assert.deepEqual(w.ports, [{ target: 8080, published: "8080", protocol: "tcp" }]);
  assert.equal(w.healthcheck?.Retries, 5);
  // Not a cast path: the string stays a string.
  assert.equal(w.environment.PLAIN, "yes");
  assert.deepEqual(w.labels, { from: "latest" });
  fails(() => load("services:\n  web:\n    image: x\n    scale: ${N}\n", { env: { N: "many" } }), /^error while interpolating services\.web\.scale: failed to cast to expected type: strconv\.Atoi: parsing "many": invalid syntax$/);
  fails(() => load("services:\n  web:\n    image: x\n    ports: [\"${P:?the port}:80\"]\n"), /^error while interpolating services\.web\.ports\.\[\]: required variable P is missing a value: the port$/);
  fails(() => load("services:\n  web:\n    image: \"${1}\"\n"), /^invalid interpolation format for services\.web\.image\.\nYou may need to escape any \$ with another \$\.\n\$\{1\}$/);
});

test("config prints the model as docker compose does (keys sorted, port mode, mount options, Go durations)", async () => {
  const { yamlLib, goDuration } = await import("../../src/compose/loader.js");
  const p = load(`
services:
  web:
    image: busybox
    ports: ["8080:80"]
    volumes: ["data:/data", "/h:/h:ro"]
    healthcheck: {test: [CMD, "true"], interval: 90s, timeout: 500ms}
    environment: {A: "1"}
volumes: {data: {}}
`);
  assert.equal(yamlLib().stringify(projectModel(p), { aliasDuplicateObjects: false }), `name: t
services:
  web:
    environment:
      A: "1"
    healthcheck:
      test:
        - CMD
        - "true"
      interval: 1m30s
      timeout: 500ms
    image: busybox
    networks:
      default: null
    ports:
      - mode: ingress
        target: 80
        published: "8080"
        protocol: tcp
    volumes:
      - type: volume
        source: data
        target: /data
        volume: {}
      - type: bind
        source: /h
        target: /h
        read_only: true
        bind:
          create_host_path: true
networks:
  default:
    name: t_default
volumes:
  data:
    name: t_data
`);
  assert.deepEqual([0, 1500, 2e6, 1.5e9, 90e9, 3600e9, 3725e9].map(goDuration), ["0s", "1.5µs", "2ms", "1.5s", "1m30s", "1h0m0s", "1h2m5s"]);
});
