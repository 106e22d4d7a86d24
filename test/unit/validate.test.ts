/**
 * The API door's validator: Go's wording (checked against dockerd 20.10 on
 * this machine), null as "not set", Go's case-insensitive field names,
 * integers, JSON depth, filters, path escapes, signals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { check, parseJson, parseFilters, unescapePath, checkQueryEscapes, atoi, boolParam, jsonDepth, ValidationError } from "../../src/api/validate.js";
import { ContainerCreateSchema, ExecCreateSchema, ExecStartSchema, VolumeCreateSchema, NetworkCreateSchema, NetworkConnectSchema, AuthSchema } from "../../src/api/types.js";
import { parseSignal } from "../../src/lib/signals.js";

function rejects(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ValidationError || (e as { status?: number }).status === 400, `not a 400: ${String(e)}`);
    assert.equal((e as Error).message, message);
    return true;
  });
}

test("create: wrong kinds get dockerd's messages", () => {
  const cases: [unknown, string][] = [
    [{ Image: 123 }, "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Image of type string"],
    [{ Image: "b", Cmd: 5 }, "json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Cmd of type string"],
    [{ Image: "b", Cmd: [1] }, "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Cmd of type string"],
    [{ Image: "b", Env: {} }, "json: cannot unmarshal object into Go struct field ContainerConfigWrapper.Env of type []string"],
    [{ Image: "b", HostConfig: "x" }, "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.HostConfig of type container.HostConfig"],
    [{ Image: "b", Labels: [1] }, "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.Labels of type map[string]string"],
    [{ Image: "b", Tty: "yes" }, "json: cannot unmarshal string into Go struct field ContainerConfigWrapper.Tty of type bool"],
    [{ Image: "b", ExposedPorts: [] }, "json: cannot unmarshal array into Go struct field ContainerConfigWrapper.ExposedPorts of type nat.PortSet"],
    [{ Image: "b", HostConfig: { Memory: "x" } }, "json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64"],
    [{ Image: "b", HostConfig: { Binds: [1] } }, "json: cannot unmarshal number into Go struct field HostConfig.HostConfig.Binds of type string"],
    [{ Image: "b", NetworkingConfig: { EndpointsConfig: { x: 5 } } }, "json: cannot unmarshal number into Go struct field NetworkingConfig.NetworkingConfig.EndpointsConfig of type network.EndpointSettings"],
    [[1], "json: cannot unmarshal array into Go value of type runconfig.ContainerConfigWrapper"],
    [5, "json: cannot unmarshal number into Go value of type runconfig.ContainerConfigWrapper"],
  ];
  for (const [body, msg] of cases) rejects(() => check(ContainerCreateSchema, body), msg);
});

test("integers are integers within their Go type's range", () => {
  rejects(() => check(ContainerCreateSchema, { HostConfig: { Memory: 1.5 } }), "json: cannot unmarshal number 1.5 into Go struct field HostConfig.HostConfig.Memory of type int64");
  rejects(() => check(ContainerCreateSchema, { HostConfig: { BlkioWeight: 70000 } }), "json: cannot unmarshal number 70000 into Go struct field HostConfig.HostConfig.BlkioWeight of type uint16");
  rejects(() => check(ContainerCreateSchema, { HostConfig: { ConsoleSize: [-1, 2] } }), "json: cannot unmarshal number -1 into Go struct field HostConfig.HostConfig.ConsoleSize of type uint");
  assert.equal(check(ContainerCreateSchema, { HostConfig: { Memory: 6291456 } }).HostConfig?.Memory, 6291456);
});

test("null is not set: fields dropped, elements zeroed, as Go decodes them", () => {
  const v = check(ContainerCreateSchema, { Image: "busybox", Env: null, Cmd: null, Labels: null, HostConfig: null, Entrypoint: null });
  assert.deepEqual(v, { Image: "busybox" });
  const m = check(ContainerCreateSchema, { HostConfig: { Mounts: [null], Binds: [null] }, Labels: { a: null } });
  assert.deepEqual(m.HostConfig?.Mounts, [{}]);
  assert.deepEqual(m.HostConfig?.Binds, [""]);
  assert.deepEqual(m.Labels, { a: "" });
});

test("a string Cmd is a one-element list (strslice); unknown fields pass through; Go's case-insensitive names", () => {
  const v = check(ContainerCreateSchema, { image: "busybox", Cmd: "ls", Whatever: { deep: 1 }, hostconfig: { memory: 7000000 } });
  assert.equal(v.Image, "busybox");
  assert.deepEqual(v.Cmd, ["ls"]);
  assert.deepEqual(v.Whatever, { deep: 1 });
  assert.equal(v.HostConfig?.Memory, 7000000);
  // An exact match wins over a case-insensitive one.
  const w = check(ContainerCreateSchema, { Image: "a", image: "b" });
  assert.equal(w.Image, "a");
});

test("a map key named __proto__ is data, not a prototype", () => {
  const v = check(ContainerCreateSchema, JSON.parse('{"Labels":{"__proto__":"x","a":"b"}}'));
  assert.equal(Object.getPrototypeOf(v.Labels), Object.prototype);
  assert.deepEqual(Object.keys(v.Labels!), ["__proto__", "a"]);
});

test("exec, volumes, networks, auth: dockerd's messages", () => {
  rejects(() => check(ExecCreateSchema, { Cmd: [1, 2] }), "json: cannot unmarshal number into Go struct field ExecConfig.Cmd of type string");
  rejects(() => check(ExecCreateSchema, { Cmd: "ls" }), "json: cannot unmarshal string into Go struct field ExecConfig.Cmd of type []string");
  rejects(() => check(ExecCreateSchema, { Cmd: ["ls"], Tty: "x" }), "json: cannot unmarshal string into Go struct field ExecConfig.Tty of type bool");
  rejects(() => check(ExecStartSchema, { Detach: "x" }), "json: cannot unmarshal string into Go struct field ExecStartCheck.Detach of type bool");
  rejects(() => check(VolumeCreateSchema, { Name: 5 }), "json: cannot unmarshal number into Go struct field VolumeCreateBody.Name of type string");
  rejects(() => check(VolumeCreateSchema, { DriverOpts: { a: 1 } }), "json: cannot unmarshal number into Go struct field VolumeCreateBody.DriverOpts of type string");
  rejects(() => check(VolumeCreateSchema, 5), "json: cannot unmarshal number into Go value of type volume.VolumeCreateBody");
  rejects(() => check(NetworkCreateSchema, { Name: 5 }), "json: cannot unmarshal number into Go struct field NetworkCreateRequest.Name of type string");
  rejects(() => check(NetworkCreateSchema, { Name: "x", IPAM: "y" }), "json: cannot unmarshal string into Go struct field NetworkCreateRequest.IPAM of type network.IPAM");
  rejects(() => check(NetworkConnectSchema, { Container: 5 }), "json: cannot unmarshal number into Go struct field NetworkConnect.Container of type string");
  rejects(() => check(AuthSchema, { username: 5 }), "json: cannot unmarshal number into Go struct field AuthConfig.username of type string");
});

test("JSON depth is limited before parsing; the scan skips strings", () => {
  assert.equal(jsonDepth('{"a":[1,{"b":"[[[["}]}'), 3);
  rejects(() => parseJson("[".repeat(100_000) + "]".repeat(100_000)), "invalid JSON: exceeded max depth 256");
  assert.throws(() => parseJson("{bad"), (e: unknown) => (e as { status: number }).status === 400);
  assert.deepEqual(parseJson('{"a":"\\\\"}'), { a: "\\" });
});

test("filters as Docker parses them", () => {
  assert.deepEqual(parseFilters(null), {});
  assert.deepEqual(parseFilters(""), {});
  assert.deepEqual(parseFilters("null"), {});
  assert.deepEqual(parseFilters('{"status":null}'), { status: [] });
  assert.deepEqual(parseFilters('{"status":["running"]}'), { status: ["running"] });
  assert.deepEqual(parseFilters('{"status":{"running":true}}'), { status: ["running"] });
  rejects(() => parseFilters("5"), "json: cannot unmarshal number into Go value of type map[string]map[string]bool");
  rejects(() => parseFilters("[]"), "json: cannot unmarshal array into Go value of type map[string]map[string]bool");
  rejects(() => parseFilters('{"status":5}'), "json: cannot unmarshal number into Go value of type map[string]bool");
  rejects(() => parseFilters('{"status":[5]}'), "json: cannot unmarshal array into Go value of type map[string]bool");
  rejects(() => parseFilters('{"status":{"running":5}}'), "json: cannot unmarshal number into Go value of type bool");
  assert.throws(() => parseFilters("bad"), (e: unknown) => (e as { status: number }).status === 400);
});

test("query integers are strconv.Atoi; booleans are httputils.BoolValue", () => {
  assert.equal(atoi("42"), 42);
  assert.equal(atoi("-1"), -1);
  assert.equal(atoi("+5"), 5);
  rejects(() => atoi("abc"), 'strconv.Atoi: parsing "abc": invalid syntax');
  rejects(() => atoi("1.5"), 'strconv.Atoi: parsing "1.5": invalid syntax');
  rejects(() => atoi("99999999999999999999"), 'strconv.Atoi: parsing "99999999999999999999": value out of range');
  const q = new URLSearchParams("a=abc&b=0&c=no&d=FALSE&e=none&f=&g=1");
  assert.deepEqual(["a", "b", "c", "d", "e", "f", "g"].map((k) => boolParam(q, k)), [true, false, false, false, false, false, true]);
  assert.equal(boolParam(q, "absent", true), true);
});

test("path escapes: malformed is a 400, bytes that are not UTF-8 decode leniently", () => {
  rejects(() => unescapePath("%E0%A4%A"), 'invalid URL escape "%A"');
  rejects(() => unescapePath("%ZZ"), 'invalid URL escape "%ZZ"');
  assert.equal(unescapePath("a%2Fb%20c"), "a/b c");
  assert.equal(unescapePath("caf%C3%A9"), "café");
  assert.equal(typeof unescapePath("%E0%A4"), "string");
  rejects(() => checkQueryEscapes("?name=%G1"), 'invalid URL escape "%G1"');
  checkQueryEscapes("?name=a%20b&x=%7B%7D");
});

test("signals as Docker parses them", () => {
  assert.equal(parseSignal("KILL"), 9);
  assert.equal(parseSignal("SIGKILL"), 9);
  assert.equal(parseSignal("hup"), 1);
  assert.equal(parseSignal("15"), 15);
  assert.equal(parseSignal("SIGRTMIN+1"), 35);
  assert.equal(parseSignal("RTMAX"), 64);
  for (const bad of ["SIG", "SIGFOO", "foo", "0", "-1", "65", "1.5", "RTMIN 1", "", "__proto__", "constructor"]) {
    assert.throws(() => parseSignal(bad), new RegExp(`^BadParameterError: Invalid signal: ${bad.replace(/[.+]/g, "\\$&")}$`), bad);
  }
});
