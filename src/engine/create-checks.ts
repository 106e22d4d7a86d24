/**
 * What dockerd refuses in a create body before it makes anything, with its
 * status and words (asked of dockerd 20.10 on this machine, field by field):
 * restart policies, AutoRemove with a restart policy, `container:` network
 * modes without a name, cgroup namespace modes, mount types, port
 * specifications and stop signals. Engine.createContainer runs these first,
 * so a refused request leaves no container, name, volume or directory.
 */
import { BadParameterError } from "../lib/errors.js";
import { parseSignal } from "../lib/signals.js";

interface Body {
  StopSignal?: string;
  HostConfig?: {
    RestartPolicy?: { Name?: string; MaximumRetryCount?: number };
    AutoRemove?: boolean;
    NetworkMode?: string;
    CgroupnsMode?: string;
    PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null>;
    Mounts?: { Type?: string; Source?: string; Target?: string }[];
  } & Record<string, unknown>;
}

const PORT = /^[0-9]{1,5}$/;
const inRange = (p: string) => PORT.test(p) && Number(p) <= 65535;

/** A port or a range ("8000-8010") as nat.ParsePortRange accepts it. */
function portRange(s: string): boolean {
  const [a, b, ...more] = s.split("-");
  if (more.length) return false;
  if (b === undefined) return inRange(a);
  return inRange(a) && inRange(b) && Number(a) <= Number(b);
}

export function checkCreateBody(body: Body): void {
  const hc = body.HostConfig ?? {};
  const rp = hc.RestartPolicy;
  const name = rp?.Name ?? "";
  const count = rp?.MaximumRetryCount ?? 0;
  switch (name) {
    case "": case "no": case "always": case "unless-stopped":
      if (count !== 0) throw new BadParameterError(`maximum retry count cannot be used with restart policy '${name}'`);
      break;
    case "on-failure":
      if (count < 0) throw new BadParameterError("maximum retry count cannot be negative");
      break;
    default: throw new BadParameterError(`invalid restart policy '${name}'`);
  }
  if (hc.AutoRemove && name !== "" && name !== "no") throw new BadParameterError("can't create 'AutoRemove' container with restart policy");
  const nm = hc.NetworkMode ?? "";
  if (nm.startsWith("container:") && nm.slice("container:".length) === "") throw new BadParameterError("Invalid network mode: invalid container format container:<name|id>");
  const cg = hc.CgroupnsMode ?? "";
  if (cg !== "" && cg !== "host" && cg !== "private") throw new BadParameterError(`invalid cgroup namespace mode: ${cg}`);
  for (const m of hc.Mounts ?? []) {
    const t = m.Type ?? "";
    if (!["bind", "volume", "tmpfs", "npipe"].includes(t)) throw new BadParameterError(`invalid mount config for type ${JSON.stringify(t)}: mount type unknown`);
    if (t === "tmpfs" && m.Source) throw new BadParameterError('invalid mount config for type "tmpfs": field Source must not be specified');
  }
  for (const [k, list] of Object.entries(hc.PortBindings ?? {})) {
    const [port, proto, ...more] = k.split("/");
    if (more.length || !portRange(port) || (proto !== undefined && proto === "")) throw new BadParameterError(`invalid port specification: ${JSON.stringify(port)}`);
    for (const b of list ?? []) {
      const hp = b?.HostPort ?? "";
      if (hp !== "" && !portRange(hp)) throw new BadParameterError(`invalid port specification: ${JSON.stringify(hp)}`);
    }
  }
  if (body.StopSignal) parseSignal(body.StopSignal);
}
