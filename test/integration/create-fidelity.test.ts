/**
 * Containers as dockerd creates and runs them (issue 9): empty create fields
 * are "not set" (the image's USER, WORKDIR, ENTRYPOINT apply whatever client
 * sends ""), Docker's merge of Entrypoint/Cmd/Env/Labels, the create options
 * dockerd accepts (links, volumes-from, pid/ipc/uts modes, mac address,
 * group-add, device cgroup rules, cpusets, log drivers, storage-opt,
 * isolation), single-file binds, a volume's owner and mode from the image,
 * exec of a missing binary, attach with a JSON body, TTY CRLF. Expected
 * answers were taken from dockerd 20.10 on this machine.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { Daemon, api, runSync, sleep, apiJson } from "./harness.js";

const d = new Daemon();
const ctx = mkdtempSync(join(tmpdir(), "berth-create-"));

const DOCKERFILE = `FROM busybox
RUN echo 'appuser:x:1234:1234::/home/appuser:/bin/sh' >> /etc/passwd && printf 'appgrp:x:1234:\\nextra:x:2345:\\n' >> /etc/group && mkdir -p /home/appuser /data && chown 1234:1234 /home/appuser && chown 999:999 /data && chmod 0700 /data
ENV A=1 B=2
LABEL l1=a l2=b
EXPOSE 80
STOPSIGNAL SIGUSR1
USER appuser
WORKDIR /home/appuser
ENTRYPOINT ["/bin/sh","-c"]
CMD ["id -u; pwd"]
`;

before(async () => {
  await d.start();
  await d.bootstrap();
  writeFileSync(join(ctx, "Dockerfile"), DOCKERFILE);
  writeFileSync(join(ctx, "afile"), "hello from the host\n");
  const b = d.berth(["build", "-q", "-t", "p9user", ctx], { timeout: 120_000 });
  assert.equal(b.code, 0, b.stderr);
});

after(async () => {
  rmSync(ctx, { recursive: true, force: true });
  await d.stop();
});

const json = (method: string, path: string, body?: unknown) => apiJson(d.sock, method, path, body);

async function create(body: unknown, name?: string): Promise<{ status: number; body: any }> {
  return json("POST", `/v1.41/containers/create${name ? `?name=${name}` : ""}`, body);
}

async function inspect(id: string): Promise<any> { return (await json("GET", `/v1.41/containers/${id}/json`)).body; }
async function rm(id: string): Promise<void> { await api(d.sock, "DELETE", `/v1.41/containers/${id}?force=1&v=1`); }

test("an image's USER, WORKDIR and ENTRYPOINT apply through the berth CLI, the docker CLI and the Python SDK", () => {
  const want = "1234\n/home/appuser\n";
  const b = d.berth(["run", "--rm", "p9user"]);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(b.stdout, want);
  const k = d.docker(["run", "--rm", "p9user"]);
  assert.equal(k.code, 0, k.stderr);
  assert.equal(k.stdout, want);
  const py = runSync("python3", ["-c", `import docker, sys\nc = docker.DockerClient(base_url="unix://${d.sock}")\nsys.stdout.write(c.containers.run("p9user", remove=True).decode())`]);
  assert.equal(py.code, 0, py.stderr);
  assert.equal(py.stdout, want);
});

test("empty strings and nulls are not set: the image's values stay, as dockerd merges them", async () => {
  const r = await create({ Image: "p9user", User: "", WorkingDir: "", Entrypoint: null, Cmd: null, Env: ["B=3", "C=4"], Labels: { l2: "x" }, StopSignal: "", Hostname: "", Domainname: "" });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const c = await inspect(r.body.Id);
  await rm(r.body.Id);
  assert.equal(c.Config.User, "appuser");
  assert.equal(c.Config.WorkingDir, "/home/appuser");
  assert.deepEqual(c.Config.Entrypoint, ["/bin/sh", "-c"]);
  assert.deepEqual(c.Config.Cmd, ["id -u; pwd"]);
  assert.equal(c.Config.StopSignal, "SIGUSR1");
  assert.equal(c.Config.Hostname, c.Id.slice(0, 12));
  // Docker's order: the request's entries, then the image's it does not set.
  assert.deepEqual(c.Config.Env.filter((e: string) => !e.startsWith("PATH=")), ["B=3", "C=4", "A=1"]);
  assert.deepEqual(c.Config.Labels, { l1: "a", l2: "x" });
  assert.deepEqual(c.Config.ExposedPorts, { "80/tcp": {} });
  assert.equal(c.Path, "/bin/sh");
  assert.deepEqual(c.Args, ["-c", "id -u; pwd"]);
});

test("Entrypoint [] keeps the image's Cmd, [\"\"] drops the entrypoint, Cmd [] takes the image's", async () => {
  const cases: [unknown, number, string?, string[]?, unknown?][] = [
    [{ Image: "p9user", Entrypoint: [] }, 201, "id -u; pwd", [], []],
    [{ Image: "p9user", Entrypoint: [""] }, 400],
    [{ Image: "p9user", Entrypoint: [""], Cmd: ["ls"] }, 201, "ls", [], null],
    [{ Image: "p9user", Entrypoint: "", Cmd: ["ls"] }, 201, "ls", [], null],
    [{ Image: "p9user", Cmd: [] }, 201, "/bin/sh", ["-c", "id -u; pwd"], ["/bin/sh", "-c"]],
    [{ Image: "p9user", Entrypoint: ["echo"] }, 201, "echo", [], ["echo"]],
  ];
  for (const [body, status, path, args, ep] of cases) {
    const r = await create(body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    if (status !== 201) { assert.equal(r.body.message, "No command specified"); continue; }
    const c = await inspect(r.body.Id);
    await rm(r.body.Id);
    assert.equal(c.Path, path, JSON.stringify(body));
    assert.deepEqual(c.Args, args, JSON.stringify(body));
    assert.deepEqual(c.Config.Entrypoint, ep, JSON.stringify(body));
  }
});

test("links: /etc/hosts names the alias, the short ID and the name; Docker's link env vars; inspect shows /name:/this/alias", async (t) => {
  t.after(() => d.berth(["rm", "-f", "lk-db", "lk-app"]));
  assert.equal(d.berth(["run", "-d", "--name", "lk-db", "-e", "FOO=bar", "--expose", "80", "--expose", "53/udp", "busybox", "sleep", "60"]).code, 0);
  const ip = d.berth(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "lk-db"]).stdout.trim();
  const id = d.berth(["inspect", "-f", "{{.Id}}", "lk-db"]).stdout.trim();
  const r = d.docker(["run", "--name", "lk-app", "--link", "lk-db:db", "busybox", "sh", "-c", "grep -w db /etc/hosts; env | grep ^DB_ | sort"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines[0], `${ip}\tdb ${id.slice(0, 12)} lk-db`);
  assert.deepEqual(lines.slice(1), [
    "DB_ENV_FOO=bar", "DB_NAME=/lk-app/db", `DB_PORT=udp://${ip}:53`,
    `DB_PORT_53_UDP=udp://${ip}:53`, `DB_PORT_53_UDP_ADDR=${ip}`, "DB_PORT_53_UDP_PORT=53", "DB_PORT_53_UDP_PROTO=udp",
    `DB_PORT_80_TCP=tcp://${ip}:80`, `DB_PORT_80_TCP_ADDR=${ip}`, "DB_PORT_80_TCP_PORT=80", "DB_PORT_80_TCP_PROTO=tcp",
  ]);
  assert.equal(d.berth(["inspect", "-f", "{{json .HostConfig.Links}}", "lk-app"]).stdout.trim(), '["/lk-db:/lk-app/db"]');
  const bad = await create({ Image: "busybox", HostConfig: { Links: ["nope:alias"] } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "could not get container for nope: No such container: nope");
});

test("volumes-from shares the other container's volumes, :ro makes them read-only", async (t) => {
  t.after(() => { d.berth(["rm", "-f", "vf-src"]); d.berth(["volume", "rm", "vfdata"]); });
  assert.equal(d.berth(["run", "--name", "vf-src", "-v", "vfdata:/shared", "busybox", "sh", "-c", "echo one > /shared/f"]).code, 0);
  const rw = d.docker(["run", "--rm", "--volumes-from", "vf-src", "busybox", "sh", "-c", "cat /shared/f; echo two >> /shared/f && cat /shared/f"]);
  assert.equal(rw.stdout, "one\none\ntwo\n", rw.stderr);
  const ro = d.docker(["run", "--rm", "--volumes-from", "vf-src:ro", "busybox", "sh", "-c", "echo x > /shared/f"]);
  assert.notEqual(ro.code, 0);
  assert.match(ro.stderr, /Read-only file system/);
  const bad = await create({ Image: "busybox", HostConfig: { VolumesFrom: ["nope"] } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "No such container: nope");
});

test("pid, uts, ipc and cgroupns modes: host, container:<name>, shareable, private", async (t) => {
  t.after(() => d.berth(["rm", "-f", "ns-donor"]));
  // --pid host sees the host's processes (this test's own pid among them).
  const pid = d.docker(["run", "--rm", "--pid", "host", "busybox", "sh", "-c", `test -d /proc/${process.pid} && echo seen`]);
  assert.equal(pid.stdout, "seen\n", pid.stderr);
  // --domainname: the UTS namespace's domain, and /etc/hosts maps the FQDN first (dockerd's lines).
  const dn = d.docker(["run", "--rm", "--domainname", "example.com", "busybox", "sh", "-c", "cat /proc/sys/kernel/domainname; hostname; tail -1 /etc/hosts"]);
  const [domain, host, line] = dn.stdout.trim().split("\n");
  assert.equal(domain, "example.com", dn.stderr);
  assert.match(line, new RegExp(`^\\S+\\t${host}\\.example\\.com ${host}$`));
  // --cgroupns private: the container sees its own cgroup as the root.
  const cgns = d.docker(["run", "--rm", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup"]);
  assert.equal(cgns.code, 0, cgns.stderr);
  assert.ok(cgns.stdout.trim().split("\n").every((l) => l.endsWith(":/")), cgns.stdout);
  const uts = d.docker(["run", "--rm", "--uts", "host", "busybox", "hostname"]);
  assert.equal(uts.stdout.trim(), readFileSync("/proc/sys/kernel/hostname", "utf8").trim());
  assert.equal(d.docker(["run", "-d", "--name", "ns-donor", "--ipc", "shareable", "busybox", "sh", "-c", "echo shm > /dev/shm/f; sleep 60"]).code, 0);
  const donorPid = d.berth(["inspect", "-f", "{{.State.Pid}}", "ns-donor"]).stdout.trim();
  const deadline = Date.now() + 10_000;
  let ipc;
  do { ipc = d.docker(["run", "--rm", "--ipc", "container:ns-donor", "busybox", "cat", "/dev/shm/f"]); } while (ipc.stdout !== "shm\n" && Date.now() < deadline && (await sleep(100), true));
  assert.equal(ipc.stdout, "shm\n", ipc.stderr);
  const pidns = d.docker(["run", "--rm", "--pid", "container:ns-donor", "busybox", "sh", "-c", "ps -o comm | grep -c sleep"]);
  assert.equal(pidns.stdout.trim(), "1", pidns.stderr);
  assert.match(donorPid, /^\d+$/);
  const c = await create({ Image: "busybox" });
  const hc = (await inspect(c.body.Id)).HostConfig;
  await rm(c.body.Id);
  assert.equal(hc.IpcMode, "private");
  assert.equal(hc.PidMode, "");
  assert.equal(hc.UTSMode, "");
  const bad = await create({ Image: "busybox", HostConfig: { IpcMode: "container:nope" } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "No such container: nope");
});

test("mac address, group-add (names and ids), device cgroup rule, cpuset in the container's cgroup", async (t) => {
  const mac = d.docker(["run", "--rm", "--mac-address", "02:42:ac:11:00:99", "busybox", "cat", "/sys/class/net/eth0/address"]);
  assert.equal(mac.stdout, "02:42:ac:11:00:99\n", mac.stderr);
  const groups = d.docker(["run", "--rm", "--group-add", "extra", "--group-add", "4321", "--entrypoint", "id", "p9user", "-G"]);
  assert.equal(groups.code, 0, groups.stderr);
  assert.deepEqual(groups.stdout.trim().split(" ").sort(), ["1234", "2345", "4321"]);
  const badGroup = d.docker(["run", "--rm", "--group-add", "nosuchgroup", "busybox", "true"]);
  assert.notEqual(badGroup.code, 0);
  assert.match(badGroup.stderr, /Unable to find group nosuchgroup/);
  // The rule and the cpusets land in the cgroup the container runs in (read from the host).
  const id = d.docker(["run", "-d", "--device-cgroup-rule", "c 42:* rwm", "--cpuset-cpus", "0", "--cpuset-mems", "0", "busybox", "sleep", "60"]).stdout.trim();
  t.after(() => d.berth(["rm", "-f", id]));
  assert.match(id, /^[0-9a-f]{64}$/);
  const cg = (ctl: string, file: string) => {
    for (const p of [`/sys/fs/cgroup/${ctl}/berth/${id}/${file}`, `/sys/fs/cgroup/berth/${id}/${file}`]) if (existsSync(p)) return readFileSync(p, "utf8").trim();
    return undefined;
  };
  assert.equal(cg("cpuset", "cpuset.cpus"), "0");
  assert.equal(cg("cpuset", "cpuset.mems"), "0");
  const devices = cg("devices", "devices.list");
  if (devices !== undefined) assert.match(devices, /^c 42:\* rwm$/m);
  assert.equal(d.berth(["inspect", "-f", "{{json .HostConfig.DeviceCgroupRules}} {{.HostConfig.CpusetCpus}}", id]).stdout.trim(), '["c 42:* rwm"] 0');
  const r = await create({ Image: "busybox", HostConfig: { CpusetCpus: "0-99" } });
  assert.equal(r.status, 400);
  assert.match(r.body.message, /^Requested CPUs are not available - requested 0-99, available: /);
  const f = await create({ Image: "busybox", HostConfig: { CpusetCpus: "abc" } });
  assert.equal(f.status, 400);
  assert.equal(f.body.message, "Invalid value abc for cpuset cpus: invalid format: abc");
});

test("log drivers, storage-opt, isolation, swap, cpu, oom score and shm checks: dockerd's answers", async () => {
  const cases: [unknown, number, string][] = [
    [{ LogConfig: { Type: "bogus" } }, 400, 'error looking up logging plugin bogus: plugin "bogus" not found'],
    [{ LogConfig: { Type: "json-file", Config: { bogus: "1" } } }, 400, "unknown log opt 'bogus' for json-file log driver"],
    [{ StorageOpt: { size: "1G" } }, 500, "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"],
    [{ Isolation: "hyperv" }, 500, `Invalid isolation: "hyperv" - linux only supports 'default'`],
    [{ Memory: 10_000_000, MemorySwap: 5_000_000 }, 400, "Minimum memoryswap limit should be larger than memory limit, see usage"],
    [{ OomScoreAdj: 2000 }, 400, "Invalid value 2000, range for oom score adj is [-1000, 1000]"],
    [{ ShmSize: -1 }, 400, "SHM size can not be less than 0"],
    [{ CpuQuota: 100 }, 400, "CPU cfs quota can not be less than 1ms (i.e. 1000)"],
    [{ CpuPeriod: 100 }, 400, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"],
    [{ NanoCpus: 1_000_000_000, CpuPeriod: 100000 }, 400, "Conflicting options: Nano CPUs and CPU Period cannot both be set"],
    [{ NanoCpus: 1_000_000_000, CpuQuota: 100000 }, 400, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"],
  ];
  for (const [hc, status, message] of cases) {
    const r = await create({ Image: "busybox", HostConfig: hc });
    assert.equal(r.status, status, JSON.stringify(hc));
    assert.equal(r.body.message, message);
  }
  for (const [hc, type] of [[{ LogConfig: { Type: "none" } }, "none"], [{ LogConfig: { Type: "local", Config: { "max-size": "10m" } } }, "local"], [{ Isolation: "default" }, "json-file"], [{}, "json-file"]] as const) {
    const r = await create({ Image: "busybox", HostConfig: hc });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const c = await inspect(r.body.Id);
    await rm(r.body.Id);
    assert.equal(c.HostConfig.LogConfig.Type, type);
  }
  // PidsLimit 0 and -1 mean unlimited: stored as not set (dockerd's null).
  for (const pids of [0, -1]) {
    const r = await create({ Image: "busybox", HostConfig: { PidsLimit: pids } });
    assert.equal(r.status, 201);
    assert.equal((await inspect(r.body.Id)).HostConfig.PidsLimit, null);
    await rm(r.body.Id);
  }
  const oom = d.docker(["run", "--rm", "--oom-score-adj", "10", "busybox", "cat", "/proc/self/oom_score_adj"]);
  assert.equal(oom.stdout, "10\n", oom.stderr);
  // json-file semantics through logs; none refuses to read, as dockerd (501).
  const id = d.berth(["run", "-d", "--log-driver", "none", "busybox", "echo", "hi"]).stdout.trim();
  d.berth(["wait", id]);
  const logs = await api(d.sock, "GET", `/v1.41/containers/${id}/logs?stdout=1`);
  await rm(id);
  assert.equal(logs.status, 501);
  assert.equal(JSON.parse(logs.body).message, "configured logging driver does not support reading");
  const jf = d.docker(["run", "--name", "jf", "busybox", "echo", "hi"]);
  assert.equal(jf.code, 0);
  assert.equal(d.docker(["logs", "jf"]).stdout, "hi\n");
  assert.equal(d.docker(["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "jf"]).stdout.trim(), "json-file");
  d.berth(["rm", "jf"]);
});

test("-v of a single host file binds the file; --mount of a missing source is dockerd's error; a missing -v source is made as a directory", async () => {
  const file = join(ctx, "afile");
  const r = d.docker(["run", "--rm", "-v", `${file}:/etc/app/afile:ro`, "busybox", "cat", "/etc/app/afile"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "hello from the host\n");
  const lng = d.docker(["run", "--rm", "--mount", `type=bind,source=${file},target=/x/afile`, "busybox", "cat", "/x/afile"]);
  assert.equal(lng.stdout, "hello from the host\n", lng.stderr);
  const missing = join(ctx, "nope");
  const m = d.docker(["run", "--rm", "--mount", `type=bind,source=${missing},target=/n`, "busybox", "true"]);
  assert.notEqual(m.code, 0);
  assert.match(m.stderr, new RegExp(`invalid mount config for type "bind": bind source path does not exist: ${missing}`));
  const made = join(ctx, "made", "dir");
  assert.equal(d.docker(["run", "--rm", "-v", `${made}:/m`, "busybox", "true"]).code, 0);
  assert.ok(existsSync(made));
});

test("a new named volume over an image directory takes its owner and mode, even when it is empty", (t) => {
  t.after(() => d.berth(["volume", "rm", "-f", "pgdata"]));
  const r = d.docker(["run", "--rm", "-v", "pgdata:/data", "--entrypoint", "stat", "p9user", "-c", "%u:%g %a", "/data"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "999:999 700");
});

test("exec of a missing binary: 200 with the runtime's error in the stream, ExitCode 126; detached: 400", async (t) => {
  t.after(() => d.berth(["rm", "-f", "ex"]));
  assert.equal(d.berth(["run", "-d", "--name", "ex", "busybox", "sleep", "60"]).code, 0);
  const want = 'OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown';
  const e = (await json("POST", "/v1.41/containers/ex/exec", { Cmd: ["nope"], AttachStdout: true, AttachStderr: true })).body.Id;
  const s = await api(d.sock, "POST", `/v1.41/exec/${e}/start`, JSON.stringify({ Detach: false }));
  assert.equal(s.status, 200);
  const raw = Buffer.from(s.body, "latin1");
  assert.equal(raw[0], 1); // stdout, as dockerd writes it
  assert.equal(raw.subarray(8).toString(), want + "\r\n");
  assert.equal((await json("GET", `/v1.41/exec/${e}/json`)).body.ExitCode, 126);
  const e2 = (await json("POST", "/v1.41/containers/ex/exec", { Cmd: ["nope"] })).body.Id;
  const s2 = await json("POST", `/v1.41/exec/${e2}/start`, { Detach: true });
  assert.equal(s2.status, 400);
  assert.equal(s2.body.message, want);
  const cli = d.docker(["exec", "ex", "nope"]);
  assert.equal(cli.code, 126);
  assert.match(cli.stdout + cli.stderr, /executable file not found in \$PATH/);
  // The Python SDK's exec_run (upgraded start, then the raw socket): dockerd's answer, and no output lost.
  const py = runSync("python3", ["-c", [
    "import docker, json", `c = docker.DockerClient(base_url="unix://${d.sock}").containers.get("ex")`,
    "r = c.exec_run(['nope'])", "ok = sum(c.exec_run(['echo', 'n%d' % i]) == (0, b'n%d\\n' % i) for i in range(20))",
    "print(json.dumps([r.exit_code, r.output.decode(), ok]))",
  ].join("\n")]);
  assert.equal(py.code, 0, py.stderr);
  assert.deepEqual(JSON.parse(py.stdout), [126, want + "\r\n", 20]);
});

test("a hijacked attach's JSON body never reaches the container's stdin; TTY output carries CRLF in attach, exec and logs", async (t) => {
  t.after(() => d.berth(["rm", "-f", "att", "tty"]));
  const c = await create({ Image: "busybox", Cmd: ["sh", "-c", "read line; echo got:$line"], OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true }, "att");
  assert.equal(c.status, 201);
  const body = JSON.stringify({ stream: true, stdin: true, stdout: true });
  const out = await new Promise<string>((resolve, reject) => {
    const s = net.connect(d.sock);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on("connect", () => {
      s.write(`POST /v1.41/containers/att/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n${body}`);
    });
    s.on("data", async (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded && buf.includes("\r\n\r\n")) {
        upgraded = true;
        buf = buf.subarray(buf.indexOf("\r\n\r\n") + 4);
        await api(d.sock, "POST", "/v1.41/containers/att/start");
        s.write("typed\n");
      }
    });
    s.on("end", () => resolve(buf.subarray(8).toString()));
    s.on("error", reject);
    setTimeout(() => { s.destroy(); resolve(`timeout: ${buf.toString()}`); }, 20_000).unref();
  });
  assert.equal(out, "got:typed\n");
  const run = d.docker(["run", "--rm", "-t", "busybox", "sh", "-c", "echo a; echo b"]);
  assert.equal(run.stdout, "a\r\nb\r\n");
  assert.equal(d.docker(["run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", "echo a; echo b; sleep 60"]).code, 0);
  const ex = d.docker(["exec", "-t", "tty", "sh", "-c", "echo c; echo d"]);
  assert.equal(ex.stdout, "c\r\nd\r\n");
  const deadline = Date.now() + 10_000;
  let logs = "";
  while (Date.now() < deadline && (logs = d.docker(["logs", "tty"]).stdout) !== "a\r\nb\r\n") await sleep(100);
  assert.equal(logs, "a\r\nb\r\n");
});
