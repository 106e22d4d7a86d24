#!/usr/bin/env python3
"""Everyday flows of the Docker SDK for Python (Debian's python3-docker 5.0.3).

Usage: DOCKER_HOST=unix:///path/to.sock python3 docker_py_flows.py FLOW [PREFIX]

Each flow asserts what dockerd answers (the same script runs unchanged against
dockerd: that is how the expectations were checked), prints "ok" and exits 0;
a failed assertion exits 1 with the traceback. Every flow removes what it made.
"""
import io
import sys
import tarfile
import time

import docker
from docker.errors import ContainerError, NotFound, APIError

client = docker.from_env(version="auto", timeout=120)
FLOW = sys.argv[1]
P = sys.argv[2] if len(sys.argv) > 2 else "py"


def poll(fn, secs=15.0):
    deadline = time.time() + secs
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def cleanup(*names):
    for n in names:
        try:
            client.containers.get(n).remove(force=True)
        except NotFound:
            pass


def run_attached():
    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"], remove=True, name=P + "-att1")
    assert out == b"hello\n", out
    both = client.containers.run("busybox", ["sh", "-c", "echo out; echo err >&2"], remove=True, stderr=True, stdout=True)
    assert sorted(both.split()) == [b"err", b"out"], both
    try:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True, name=P + "-att2")
        raise AssertionError("a non-zero exit must raise ContainerError")
    except ContainerError as e:
        assert e.exit_status == 3, e.exit_status
        assert e.stderr == b"bad\n", e.stderr
    left = [c.name for c in client.containers.list(all=True) if c.name.startswith(P + "-att")]
    assert left == [], "remove=True left %s" % left


def run_detached():
    name = P + "-det"
    try:
        c = client.containers.run("busybox", ["sh", "-c", "echo a; echo b >&2; exec sleep 300"], detach=True, name=name,
                                  environment={"K": "v"}, labels={"app": "py"})
        assert c.name == name
        c.reload()
        assert c.status == "running", c.status
        assert c.attrs["Config"]["Labels"] == {"app": "py"}, c.attrs["Config"]["Labels"]
        assert "K=v" in c.attrs["Config"]["Env"]
        assert [x.name for x in client.containers.list(filters={"label": "app=py"})] == [name]
        assert poll(lambda: c.logs(stdout=True, stderr=False) == b"a\n" and c.logs(stdout=False, stderr=True) == b"b\n"), c.logs()
        code, out = c.exec_run(["sh", "-c", "echo $K $X; exit 3"], environment={"X": "y"})
        assert (code, out) == (3, b"v y\n"), (code, out)
        code, (o, e) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, o, e) == (0, b"o\n", b"e\n"), (code, o, e)
        code, out = c.exec_run(["sh", "-c", "id -u; pwd"], user="1000", workdir="/etc")
        assert (code, out) == (0, b"1000\n/etc\n"), (code, out)
        top = c.top()
        assert any("sleep" in " ".join(p) for p in top["Processes"]), top
        c.kill()
        res = c.wait(timeout=30)
        assert res["StatusCode"] == 137, res
        c.reload()
        assert c.status == "exited", c.status
        assert c.attrs["State"]["ExitCode"] == 137
        c.remove()
        try:
            client.containers.get(name)
            raise AssertionError("removed container still found")
        except NotFound:
            pass
    finally:
        cleanup(name)


def exec_repeat():
    """exec_run of a command that exits at once, many times: the output is never lost (dockerd: 50 of 50)."""
    name = P + "-execrep"
    try:
        c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=name)
        got = [c.exec_run(["echo", "n%d" % i]) for i in range(50)]
        bad = [(i, g) for i, g in enumerate(got) if g != (0, b"n%d\n" % i)]
        assert not bad, "%d of 50 exec_run answers wrong, first: %r" % (len(bad), bad[:3])
    finally:
        cleanup(name)


def build():
    tag = P + "-built:1"
    df = b"FROM busybox\nRUN echo app:x:1000:1000::/work:/bin/sh >> /etc/passwd && mkdir /work && chown app /work\nUSER app\nWORKDIR /work\nENV GREETING=hi\nENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"echo $GREETING $(id -u) $(pwd)\"]\n"
    try:
        img, logs = client.images.build(fileobj=io.BytesIO(df), tag=tag, rm=True)
        logs = list(logs)
        assert any("Successfully built" in (l.get("stream") or "") for l in logs), logs
        assert tag in img.tags, img.tags
        assert img.attrs["Config"]["User"] == "app", img.attrs["Config"]
        # The SDK sends the image's fields empty: the image's USER, WORKDIR and ENTRYPOINT apply, as with dockerd.
        out = client.containers.run(tag, remove=True)
        assert out == b"hi 1000 /work\n", out
        out = client.containers.run(tag, ["echo override $(id -u)"], remove=True)
        assert out == b"override 1000\n", out
        hist = img.history()
        assert any("USER app" in (h.get("CreatedBy") or "") for h in hist), hist
        client.images.get(tag).tag(P + "-built", "2")
        assert P + "-built:2" in client.images.get(tag).tags
        try:
            client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 9\n"), tag=P + "-bad")
            raise AssertionError("a failing RUN must raise BuildError")
        except docker.errors.BuildError as e:
            assert "returned a non-zero code: 9" in str(e), str(e)
    finally:
        for t in (tag, P + "-built:2"):
            try:
                client.images.remove(t, force=True)
            except NotFound:
                pass


def networks():
    net_name = P + "-net"
    srv, cli = P + "-srv", P + "-late"
    try:
        net = client.networks.create(net_name, driver="bridge", labels={"k": "v"})
        assert net.name == net_name
        assert client.networks.get(net.id).attrs["Labels"] == {"k": "v"}
        assert [n.name for n in client.networks.list(names=[net_name])] == [net_name]
        s = client.containers.run("busybox", ["sh", "-c", "mkdir /w; echo served > /w/index.html; exec httpd -f -p 80 -h /w"],
                                  detach=True, name=srv, network=net_name)
        out = poll(lambda: client.containers.run("busybox", ["wget", "-qO-", "http://%s/" % srv], network=net_name, remove=True))
        assert out == b"served\n", out
        c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=cli)
        net.connect(c, aliases=["other"])
        net.reload()
        assert sorted(x.name for x in net.containers) == sorted([srv, cli]), [x.name for x in net.containers]
        c.reload()
        assert "other" in c.attrs["NetworkSettings"]["Networks"][net_name]["Aliases"], c.attrs["NetworkSettings"]["Networks"][net_name]
        net.disconnect(c)
        net.reload()
        assert [x.name for x in net.containers] == [srv]
        s.remove(force=True)
        c.remove(force=True)
        net.remove()
        try:
            client.networks.get(net_name)
            raise AssertionError("removed network still found")
        except NotFound:
            pass
    finally:
        cleanup(srv, cli)
        for n in client.networks.list(names=[net_name]):
            n.remove()


def volumes():
    vname = P + "-vol"
    try:
        v = client.volumes.create(vname, labels={"k": "v"})
        assert v.name == vname and v.attrs["Driver"] == "local" and v.attrs["Labels"] == {"k": "v"}, v.attrs
        client.containers.run("busybox", ["sh", "-c", "echo kept > /data/f"], volumes={vname: {"bind": "/data", "mode": "rw"}}, remove=True)
        out = client.containers.run("busybox", ["cat", "/data/f"], volumes=[vname + ":/data:ro"], remove=True)
        assert out == b"kept\n", out
        assert vname in [x.name for x in client.volumes.list(filters={"label": "k=v"})]
        client.volumes.get(vname).remove()
        assert vname not in [x.name for x in client.volumes.list()]
    finally:
        try:
            client.volumes.get(vname).remove(force=True)
        except NotFound:
            pass


def archive():
    name = P + "-arc"
    try:
        c = client.containers.run("busybox", ["sh", "-c", "mkdir -p /tmp; exec sleep 300"], detach=True, name=name)
        assert poll(lambda: c.exec_run("test -d /tmp")[0] == 0)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            data = b"through put_archive\n"
            ti = tarfile.TarInfo("f.txt")
            ti.size = len(data)
            ti.mode = 0o640
            t.addfile(ti, io.BytesIO(data))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        code, out = c.exec_run("cat /tmp/f.txt")
        assert (code, out) == (0, b"through put_archive\n"), (code, out)
        stream, stat = c.get_archive("/tmp/f.txt")
        assert stat["name"] == "f.txt" and stat["size"] == 20, stat
        assert stat["mode"] & 0o777 == 0o640, oct(stat["mode"])
        raw = b"".join(stream)
        with tarfile.open(fileobj=io.BytesIO(raw)) as t:
            assert t.extractfile("f.txt").read() == b"through put_archive\n"
        try:
            c.get_archive("/nosuch")
            raise AssertionError("get_archive of a missing path must raise NotFound")
        except NotFound:
            pass
    finally:
        cleanup(name)


def stats():
    name = P + "-stats"
    try:
        c = client.containers.run("busybox", ["sleep", "300"], detach=True, name=name)
        s = c.stats(stream=False)
        assert s["name"] == "/" + name, s.get("name")
        assert s["id"] == c.id
        for k in ("read", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "blkio_stats"):
            assert k in s, k
        assert s["memory_stats"]["usage"] > 0, s["memory_stats"]
        assert s["pids_stats"]["current"] >= 1, s["pids_stats"]
        assert "eth0" in s["networks"], s.get("networks")
        assert c.stats(stream=False, decode=None)["id"] == c.id
    finally:
        cleanup(name)


def events():
    name = P + "-evt"
    since = int(time.time())
    client.containers.run("busybox", ["true"], name=name, remove=True)
    until = int(time.time()) + 1
    got = [e["Action"] for e in client.events(since=since, until=until, filters={"container": name, "type": "container"}, decode=True)]
    # run(): create, start, wait, die, destroy (the SDK does not attach when it does not stream).
    assert got == ["create", "start", "die", "destroy"], got
    ev = list(client.events(since=since, until=until, filters={"event": "die", "container": name}, decode=True))
    assert len(ev) == 1 and ev[0]["Actor"]["Attributes"]["exitCode"] == "0" and ev[0]["Actor"]["Attributes"]["name"] == name, ev


def inspect_fields():
    """Fields the SDK and its users read: absent ones raise KeyError in real programs."""
    name = P + "-insp"
    try:
        c = client.containers.create("busybox", ["true"], name=name)
        a = c.attrs
        hc = a["HostConfig"]
        for k in ("Binds", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove", "VolumeDriver", "VolumesFrom", "CapAdd", "CapDrop",
                  "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Links", "OomScoreAdj", "PidMode", "Privileged",
                  "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "UTSMode", "UsernsMode", "ShmSize", "Runtime", "Isolation", "CpuShares",
                  "Memory", "CgroupParent", "BlkioWeight", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules", "LogConfig",
                  "MaskedPaths", "ReadonlyPaths"):
            assert k in hc, "HostConfig." + k
        assert hc["LogConfig"]["Type"] == "json-file", hc["LogConfig"]
        for k in ("Hostname", "Domainname", "User", "AttachStdin", "Tty", "OpenStdin", "Env", "Cmd", "Image", "Volumes", "WorkingDir",
                  "Entrypoint", "Labels"):
            assert k in a["Config"], "Config." + k
        for k in ("Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath", "HostnamePath", "HostsPath", "LogPath", "Name",
                  "RestartCount", "Driver", "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "Mounts", "NetworkSettings", "GraphDriver"):
            assert k in a, k
        assert c.image.tags == ["busybox:latest"], c.image.tags
        assert client.version()["ApiVersion"]
        info = client.info()
        for k in ("ID", "Containers", "Images", "Driver", "OSType", "Architecture", "NCPU", "MemTotal", "ServerVersion", "KernelVersion"):
            assert k in info, "info." + k
        assert client.ping() is True
        df = client.df()
        assert {"Images", "Containers", "Volumes"} <= set(df), df.keys()
    finally:
        cleanup(name)


FLOWS = {f.__name__: f for f in (run_attached, run_detached, exec_repeat, build, networks, volumes, archive, stats, events, inspect_fields)}

if __name__ == "__main__":
    if FLOW == "list":
        print("\n".join(FLOWS))
        sys.exit(0)
    FLOWS[FLOW]()
    print("ok")
