import { test } from "node:test";
import assert from "node:assert/strict";
import { compile, formatRows, tabulate } from "../../src/lib/template.js";
import { parseFlags } from "../../src/lib/args.js";
import { humanSize, ellipsis } from "../../src/lib/format.js";

const dot = { ID: "abc", Names: "web", Labels: { tier: "front", "a.b": "x" }, List: ["x", "y"], Nested: { Deep: { V: 3 } }, Empty: "", Label: (k: string) => (k === "tier" ? "front" : "") };

test("Go template subset", () => {
  assert.equal(compile("{{.ID}} {{.Names}}")(dot), "abc web");
  assert.equal(compile("{{.Nested.Deep.V}}")(dot), "3");
  assert.equal(compile("{{json .List}}")(dot), '["x","y"]');
  assert.equal(compile('{{index .Labels "a.b"}}')(dot), "x");
  assert.equal(compile('{{.Label "tier"}}')(dot), "front");
  assert.equal(compile("{{range .List}}<{{.}}>{{end}}")(dot), "<x><y>");
  assert.equal(compile("{{if .Empty}}yes{{else}}no{{end}}")(dot), "no");
  assert.equal(compile('{{join .List ","}}')(dot), "x,y");
  assert.equal(compile("{{.Names | upper}}")(dot), "WEB");
  assert.equal(compile('{{printf "%s-%d" .ID 7}}')(dot), "abc-7");
  assert.equal(compile("{{json .}}")({ a: 1 }), '{"a":1}');
  assert.throws(() => compile("{{if .X}}"), /missing \{\{end\}\}/);
  assert.throws(() => compile("{{nosuchfunc .X}}")(dot), /function "nosuchfunc" not defined/);
});

test("table formats align like docker's tabwriter", () => {
  const out = formatRows("table {{.ID}}\t{{.Names}}", [{ ID: "0123456789ab", Names: "web" }], { ID: "CONTAINER ID", Names: "NAMES" });
  assert.equal(out, "CONTAINER ID   NAMES\n0123456789ab   web\n");
  assert.equal(tabulate([["A", "B"], ["ccc", "d"]]), "A         B\nccc       d\n");
});

test("flag parsing: bundles, =values, lists, stop at the first positional", () => {
  const specs = [
    { long: "detach", short: "d", type: "bool" as const }, { long: "interactive", short: "i", type: "bool" as const },
    { long: "tty", short: "t", type: "bool" as const }, { long: "env", short: "e", type: "list" as const }, { long: "name", type: "string" as const },
  ];
  const r = parseFlags(["-dit", "-e", "A=1", "-e=B=2", "--name=x", "busybox", "ls", "-l", "--name", "y"], specs, { stopAtPositional: true });
  assert.equal(r.flags.detach, true);
  assert.equal(r.flags.tty, true);
  assert.deepEqual(r.flags.env, ["A=1", "B=2"]);
  assert.equal(r.flags.name, "x");
  assert.deepEqual(r.args, ["busybox", "ls", "-l", "--name", "y"]);
  assert.equal(parseFlags(["--detach=false"], specs).flags.detach, false);
  assert.throws(() => parseFlags(["--nope"], specs), /unknown flag: --nope/);
  assert.throws(() => parseFlags(["-x"], specs), /unknown shorthand flag: 'x' in -x/);
  assert.throws(() => parseFlags(["--name"], specs), /flag needs an argument: --name/);
});

test("human sizes and truncation as the docker CLI prints them", () => {
  assert.equal(humanSize(1_980_000), "1.98MB");
  assert.equal(humanSize(10_500), "10.5kB");
  assert.equal(humanSize(123), "123B");
  assert.equal(humanSize(1_234_567_890), "1.23GB");
  assert.equal(ellipsis("sh -c 'echo started; sleep 1000'", 20), "sh -c 'echo started…");
});

test("pull progress: one line per layer redrawn in place on a terminal, status changes only elsewhere", async () => {
  const { progressPrinter } = await import("../../src/lib/stdio.js");
  let out = "";
  const tty = progressPrinter(false, (s) => { out += s; }, true);
  tty({ status: "Pulling from team/bb", id: "1" });
  tty({ status: "Pulling fs layer", id: "aaaaaaaaaaaa" });
  tty({ status: "Pulling fs layer", id: "bbbbbbbbbbbb" });
  tty({ status: "Downloading", id: "aaaaaaaaaaaa", progress: "[==>  ] 1MB/2MB" });
  assert.equal(out, "1: Pulling from team/bb\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Pulling fs layer\n\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading [==>  ] 1MB/2MB\x1b[2B\r");
  out = "";
  const plain = progressPrinter(false, (s) => { out += s; }, false);
  plain({ status: "Pulling fs layer", id: "aaaaaaaaaaaa" });
  plain({ status: "Downloading", id: "aaaaaaaaaaaa", progress: "[=>] 1/2" });
  plain({ status: "Pull complete", id: "aaaaaaaaaaaa" });
  assert.equal(out, "aaaaaaaaaaaa: Pulling fs layer\naaaaaaaaaaaa: Pull complete\n");
});

test("variables: range $k, $v; assignment; $ is the root; (pipeline).Field — Docker's inspect examples", () => {
  const d = { Name: "web", NetworkSettings: { Ports: { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "8080" }], "443/tcp": null }, Networks: { bridge: { IPAddress: "10.88.0.2" }, app: { IPAddress: "10.89.0.3" } } } };
  assert.equal(compile("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{$conf}};{{end}}")(d), "443/tcp -> <no value>;80/tcp -> [map[HostIp:0.0.0.0 HostPort:8080]];");
  assert.equal(compile("{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}} {{end}}{{$.Name}}")(d), "app=10.89.0.3 bridge=10.88.0.2 web");
  assert.equal(compile("{{$n := .Name}}{{range .NetworkSettings.Networks}}{{$n}}:{{.IPAddress}} {{end}}")(d), "web:10.89.0.3 web:10.88.0.2 ");
  assert.equal(compile('{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}}')({ NetworkSettings: { Ports: { "80/tcp": [{ HostPort: "8080" }] } } }), "8080");
  assert.equal(compile("{{range $i, $x := .L}}{{$i}}{{$x}}{{end}}")({ L: ["a", "b"] }), "0a1b");
  assert.throws(() => compile("{{$nope}}")({}), /undefined variable "\$nope"/);
});

// What the docker CLI prints (checked with docker 20.10 and 28 against dockerd 20.10): it decodes inspect answers
// into moby's typed structs, and Go's encoding/json writes a map's keys sorted, a struct's fields in order.
const inspected = {
  Id: "c1",
  Config: { Hostname: "h", User: "", Env: ["B=1"], Labels: { zz: "1", aa: "2", "a.b": "3" }, ExposedPorts: { "80/tcp": {}, "443/tcp": {} }, Volumes: null },
  NetworkSettings: { Ports: { "80/tcp": null, "443/tcp": [{ HostIp: "", HostPort: "8443" }] }, Networks: { zeta: { NetworkID: "z", IPAddress: "10.0.0.2" }, alpha: { NetworkID: "a", IPAddress: "10.1.0.2" } } },
  HostConfig: { LogConfig: { Type: "json-file", Config: {} }, Tmpfs: { "/t2": "", "/t1": "size=1m" }, Sysctls: { "net.b": "1", "net.a": "0" } },
};

test("json of a map-typed field prints sorted keys (docker inspect -f '{{json .Config.Labels}}')", () => {
  assert.equal(compile("{{json .Config.Labels}}")(inspected), '{"a.b":"3","aa":"2","zz":"1"}');
  assert.equal(compile("{{.Config.Labels | json}}")(inspected), '{"a.b":"3","aa":"2","zz":"1"}');
  assert.equal(compile("{{json .HostConfig.Tmpfs}}")(inspected), '{"/t1":"size=1m","/t2":""}');
  assert.equal(compile("{{json .NetworkSettings.Ports}}")(inspected), '{"443/tcp":[{"HostIp":"","HostPort":"8443"}],"80/tcp":null}');
});

test("json of a struct keeps its field order, its map fields sorted; an endpoint struct inside Networks keeps its order", () => {
  assert.equal(compile("{{json .Config}}")(inspected),
    '{"Hostname":"h","User":"","Env":["B=1"],"Labels":{"a.b":"3","aa":"2","zz":"1"},"ExposedPorts":{"443/tcp":{},"80/tcp":{}},"Volumes":null}');
  assert.equal(compile("{{json .NetworkSettings.Networks}}")(inspected),
    '{"alpha":{"NetworkID":"a","IPAddress":"10.1.0.2"},"zeta":{"NetworkID":"z","IPAddress":"10.0.0.2"}}');
  const all = compile("{{json .}}")(inspected);
  assert.match(all, /^\{"Id":"c1","Config":\{"Hostname":"h"/);
  assert.match(all, /"HostConfig":\{"LogConfig":\{"Type":"json-file","Config":\{\}\},"Tmpfs":\{"\/t1":"size=1m","\/t2":""\},"Sysctls":\{"net.a":"0","net.b":"1"\}\}/);
});

test("json escapes <, > and & as Go does (docker images --format '{{json .}}' prints \\u003cnone\\u003e)", () => {
  assert.equal(compile("{{json .}}")({ Digest: "<none>", Q: "a&b" }), '{"Digest":"\\u003cnone\\u003e","Q":"a\\u0026b"}');
  assert.equal(compile("{{json .Digest}}")({ Digest: "<none>" }), '"\\u003cnone\\u003e"');
});

test("--format '{{json .}}' of list rows: keys sorted, methods left out (docker ps/images/network ls/volume ls)", () => {
  const row = { ID: "83da7d5742c1", Image: "busybox", Command: '"sleep 100"', Names: "ftk", Labels: "aa=2,zz=1", Label: (k: string) => k, State: "created" };
  assert.equal(formatRows("{{json .}}", [row], {}),
    '{"Command":"\\"sleep 100\\"","ID":"83da7d5742c1","Image":"busybox","Labels":"aa=2,zz=1","Names":"ftk","State":"created"}\n');
  // Other placeholders of the row still work, and the row's own text is unchanged.
  assert.equal(formatRows('{{.Names}} {{.Label "x"}}', [row], {}), "ftk x\n");
});

test("humanSize with a precision (docker images' VirtualSize has 4 digits)", () => {
  assert.equal(humanSize(1_983_504), "1.98MB");
  assert.equal(humanSize(1_983_504, 4), "1.984MB");
});
