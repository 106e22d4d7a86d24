/** System: ping, version, info, disk use, events. */
import { release } from "node:os";
import { ENGINE_VERSION, runcVersion } from "../../engine/engine.js";
import { daemonLogConfig } from "../../engine/logging.js";
import { API_VERSION, MIN_API_VERSION, route, Reply, HANDLED, filters, timeParam, streamHeaders } from "../router.js";

route("GET", "/_ping", () => "OK");
route("HEAD", "/_ping", () => new Reply(200, ""));
route("GET", "/version", () => {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const runc = runcVersion();
  return {
    Platform: { Name: "berth" },
    Components: [
      { Name: "Engine", Version: ENGINE_VERSION, Details: { ApiVersion: API_VERSION, Arch: arch, BuildTime: "", Experimental: "false", GitCommit: "", GoVersion: `node${process.versions.node}`, KernelVersion: release(), MinAPIVersion: MIN_API_VERSION, Os: "linux" } },
      { Name: "runc", Version: runc.Version, Details: { GitCommit: runc.GitCommit } },
    ],
    Version: ENGINE_VERSION, ApiVersion: API_VERSION, MinAPIVersion: MIN_API_VERSION, GitCommit: "", GoVersion: `node${process.versions.node}`,
    Os: "linux", Arch: arch, KernelVersion: release(), BuildTime: "",
  };
});
// The containers' default log driver (Docker's LoggingDriver) and, berth's field, its options: the cap every json-file log gets.
route("GET", "/info", async (e) => ({ ...(await e.info()), ...loggingInfo() }));
route("GET", "/system/df", async (e) => ({
  ...(await e.images.diskUsage()),
  Containers: e.containers.list({ all: true, imageName: (id) => e.images.displayName(id) }),
  Volumes: e.volumes.list().Volumes, BuildCache: await e.builds.diskUsage(),
}));
route("GET", "/events", (e, c) => {
  const res = c.res!;
  const f = { since: timeParam(c.query, "since"), until: timeParam(c.query, "until"), filters: filters(c.query) };
  streamHeaders(res, "application/json");
  for (const ev of e.events.past(f)) res.write(JSON.stringify(ev) + "\n");
  const now = Date.now() / 1000;
  if (f.until !== undefined && f.until <= now) { res.end(); return HANDLED; }
  const unsub = e.events.subscribe(f, (ev) => res.write(JSON.stringify(ev) + "\n"));
  let timer: NodeJS.Timeout | undefined;
  const done = () => { unsub(); if (timer) clearTimeout(timer); res.end(); };
  if (f.until !== undefined) timer = setTimeout(done, (f.until - now) * 1000);
  res.on("close", done);
  return HANDLED;
});

function loggingInfo(): { LoggingDriver: string; LogOpts: Record<string, string> } {
  const d = daemonLogConfig();
  return { LoggingDriver: d.Type, LogOpts: d.Config };
}
