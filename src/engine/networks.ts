/**
 * Networks as the API sees them, and the networking of containers.
 *
 * Predefined networks: `bridge` (the default, Linux bridge berth0 on a private
 * subnet that collides with no host route), `host` and `none`. User networks
 * are bridges `br-<id12>` with an embedded DNS server on their gateway
 * address that answers container names, aliases and short IDs of the
 * network's running containers and forwards other names to the host's
 * resolvers (or the daemon's --dns).
 *
 * A container gets its addresses when it starts (prepare: allocate IPs and
 * bind published host ports), is plugged in between `runc create` and `runc
 * start` (plug: one veth per network), and gives them back when it exits
 * (release). The firewall table is rendered from this state whenever the
 * published ports or the networks change. After a daemon restart, running
 * containers are re-adopted (adopt) and the table rebuilt, so nothing stale
 * remains and nothing live is lost.
 */
import { boolFilter, checkFilters, invalidFilter, labelsMatch, pruneLabelsMatch, untilLimit, type Filters } from "./filters.js";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { BadParameterError, ConflictError, NotFoundError, BerthError, SystemError, errorMessage } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { Store } from "../store/index.js";
import type { NetworkDoc } from "../store/networks.js";
import {
  IpPool, parseCidr, cidrString, ipToInt, intToIp, contains, overlaps, hostRoutes, chooseSubnet,
  defaultBridgeCandidates, userNetworkCandidates, macFor, type Cidr,
} from "../network/ipam.js";
import { ensureBridge, deleteBridge, plug, unplug, hostVethName, linkExists, masterOf, attachToBridge } from "../network/links.js";
import { renderRuleset, applyRuleset, deleteTable, ensureForwardAccept, removeForwardAccept, type FwPort } from "../network/firewall.js";
import { PortHolder, parsePortKey, parseHostPorts } from "../network/ports.js";
import { EmbeddedDns, nameserversFromResolvConf } from "../network/dns.js";
import type { EventBus } from "./events.js";
import type { ContainerRecord } from "./types.js";

export interface NetworkOptions { dataRoot: string; dns?: string[]; teardown?: boolean }

export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string } | null;
  Links: null;
  Aliases: string[] | null;
  MacAddress: string;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DriverOpts: null;
  DNSNames: string[] | null;
}

export interface CreateNetworkBody {
  Name?: string; Driver?: string; Internal?: boolean; Attachable?: boolean; EnableIPv6?: boolean; CheckDuplicate?: boolean;
  IPAM?: { Driver?: string; Config?: { Subnet?: string; Gateway?: string; IPRange?: string }[]; Options?: Record<string, string> };
  Options?: Record<string, string>; Labels?: Record<string, string>;
}

const PREDEFINED = ["bridge", "host", "none"];
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MODE_SHARED = /^(host|none|container:.+)$/;

function emptyEndpoint(netId: string, cfg?: Partial<EndpointSettings>): EndpointSettings {
  return {
    IPAMConfig: cfg?.IPAMConfig ?? null, Links: null, Aliases: cfg?.Aliases?.length ? cfg.Aliases : null, MacAddress: "", NetworkID: netId,
    EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, IPv6Gateway: "", GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, DriverOpts: null, DNSNames: null,
  };
}

/** Running state of one bridge network. */
interface Live { pool: IpPool; subnet: Cidr; gateway: string; dns?: EmbeddedDns }

export class NetworkService {
  private live = new Map<string, Live>();
  private portsHeld = new PortHolder();
  /** Published ports per container, for the firewall table. */
  private fwPorts = new Map<string, FwPort[]>();
  private readonly table: string;
  private readonly defaultBridge: string;
  private applying: Promise<void> | undefined;
  private dirty = false;
  private containers: () => ContainerRecord[] = () => [];

  constructor(private readonly store: Store, private readonly events: EventBus, private readonly opts: NetworkOptions) {
    // One daemon per data root: a daemon on another root (tests, a second instance) gets its own names.
    const dflt = opts.dataRoot === "/var/lib/berth";
    const h = createHash("sha256").update(opts.dataRoot).digest("hex").slice(0, 6);
    this.table = dflt ? "berth" : `berth_${h}`;
    this.defaultBridge = dflt ? "berth0" : `berth${h}`;
  }

  setContainerSource(fn: () => ContainerRecord[]): void { this.containers = fn; }

  // ---------------------------------------------------------------- start-up

  /** Makes sure the predefined networks exist and every bridge network's bridge, DNS server and firewall are in place. */
  async init(): Promise<void> {
    const docs = this.store.networks;
    for (const name of PREDEFINED) {
      if (docs.list().some((d) => d.Name === name)) continue;
      const doc = this.newDoc(name, name === "bridge" ? "bridge" : name === "host" ? "host" : "null", {});
      if (name === "bridge") {
        // A bridge of this name without a document is a leftover (a wiped data root): start clean.
        await deleteBridge(this.defaultBridge);
        const taken = [...hostRoutes(), ...this.subnetsInUse()];
        const sub = chooseSubnet(defaultBridgeCandidates(), taken);
        if (!sub) throw new SystemError("could not find a free private subnet for the default bridge network");
        doc.IPAM.Config = [{ Subnet: cidrString(sub), Gateway: intToIp(sub.base + 1) }];
        doc.Bridge = this.defaultBridge;
        doc.Options = {
          "com.docker.network.bridge.default_bridge": "true", "com.docker.network.bridge.enable_icc": "true",
          "com.docker.network.bridge.enable_ip_masquerade": "true", "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
          "com.docker.network.bridge.name": this.defaultBridge, "com.docker.network.driver.mtu": "1500",
        };
      }
      await docs.put(doc);
    }
    for (const d of docs.list()) if (d.Driver === "bridge") await this.bringUp(d);
    await ensureForwardAccept(this.bridgeDocs().map((d) => d.Bridge!));
    await this.applyFirewall();
  }

  /** Re-adopts a running container after a daemon restart: its addresses, host ports and DNS names. */
  async adopt(c: ContainerRecord): Promise<void> {
    for (const ep of Object.values(this.endpoints(c))) {
      const l = this.live.get(ep.NetworkID);
      if (l && ep.IPAddress) l.pool.reserve(ep.IPAddress);
      // A bridge that was re-created (host reboot of the bridge, teardown) lost its ports: plug the host end back in.
      const d = this.store.networks.get(ep.NetworkID);
      const hostIf = c.Berth.NetVeths?.[ep.NetworkID];
      if (d?.Bridge && hostIf && linkExists(hostIf) && masterOf(hostIf) !== d.Bridge) await attachToBridge(hostIf, d.Bridge).catch(() => {});
    }
    // The host ports it had (random ones included), not new ones.
    const had = (c.NetworkSettings.Ports ?? {}) as Record<string, { HostIp: string; HostPort: string }[] | null>;
    await this.bindPorts(c, had).catch((e) => process.stderr.write(`berthd: re-binding ports of ${c.Id.slice(0, 12)}: ${errorMessage(e)}\n`));
  }

  /** Rebuilds the firewall table once after adoption. */
  async adopted(): Promise<void> { await this.applyFirewall(); }

  async close(): Promise<void> {
    this.portsHeld.releaseAll();
    await Promise.all([...this.live.values()].map((l) => l.dns?.close()));
    if (this.opts.teardown) {
      await deleteTable(this.table).catch(() => {});
      for (const d of this.bridgeDocs()) {
        await removeForwardAccept(d.Bridge!).catch(() => {});
        await deleteBridge(d.Bridge!).catch(() => {});
      }
    }
  }

  private newDoc(name: string, driver: NetworkDoc["Driver"], body: CreateNetworkBody): NetworkDoc {
    return {
      Name: name, Id: newId(), Created: new Date().toISOString(), Scope: "local", Driver: driver, EnableIPv6: false,
      IPAM: { Driver: "default", Options: body.IPAM?.Options ?? null, Config: [] },
      Internal: !!body.Internal, Attachable: !!body.Attachable, Ingress: false, ConfigFrom: { Network: "" }, ConfigOnly: false,
      Options: body.Options ?? {}, Labels: body.Labels ?? {},
    };
  }

  private bridgeDocs(): NetworkDoc[] { return this.store.networks.list().filter((d) => d.Driver === "bridge" && d.Bridge); }

  private subnetsInUse(): Cidr[] {
    return this.store.networks.list().flatMap((d) => d.IPAM.Config.map((c) => parseCidr(c.Subnet, false)));
  }

  private isUserNetwork(d: NetworkDoc): boolean { return !PREDEFINED.includes(d.Name); }

  private async bringUp(d: NetworkDoc): Promise<void> {
    const cfg = d.IPAM.Config[0];
    const subnet = parseCidr(cfg.Subnet, false);
    const mtu = Number(d.Options["com.docker.network.driver.mtu"]) || undefined;
    await ensureBridge(d.Bridge!, `${cfg.Gateway}/${subnet.prefix}`, { forward: !d.Internal, mtu: mtu && mtu !== 1500 ? mtu : undefined });
    const pool = new IpPool(subnet, ipToInt(cfg.Gateway), cfg.IPRange ? parseCidr(cfg.IPRange, false) : undefined);
    const l: Live = { pool, subnet, gateway: cfg.Gateway };
    this.live.set(d.Id, l);
    if (this.isUserNetwork(d)) {
      const dns = new EmbeddedDns({
        address: cfg.Gateway,
        lookup: (name) => this.lookupName(d.Id, name),
        upstreams: (client) => this.upstreams(d.Id, client),
      });
      try { await dns.start(); l.dns = dns; } catch (e) { process.stderr.write(`berthd: DNS server for network ${d.Name}: ${errorMessage(e)}\n`); }
    }
  }

  /** Where the embedded DNS forwards a query: the asking container's --dns, else the daemon's --dns, else the host's. */
  private upstreams(netId: string, client?: string): string[] {
    if (client) {
      for (const c of this.containers()) {
        const dns = c.HostConfig.Dns as string[] | undefined;
        if (!dns?.length || !c.State.Running) continue;
        if (Object.values(this.endpoints(c)).some((e) => e.NetworkID === netId && e.IPAddress === client)) return dns;
      }
    }
    if (this.opts.dns?.length) return this.opts.dns;
    try { return nameserversFromResolvConf(readFileSync("/etc/resolv.conf", "utf8")); } catch { return []; }
  }

  /** Names on one network: container name, network aliases, short ID (running containers only). */
  private lookupName(netId: string, name: string): string[] | undefined {
    const out: string[] = [];
    for (const c of this.containers()) {
      if (!c.State.Running) continue;
      const ep = Object.values(this.endpoints(c)).find((e) => e.NetworkID === netId);
      if (!ep || !ep.IPAddress) continue;
      const names = [c.Name.slice(1), c.Id.slice(0, 12), ...(ep.Aliases ?? [])].map((n) => n.toLowerCase());
      if (names.includes(name)) out.push(ep.IPAddress);
    }
    return out.length ? out : undefined;
  }

  // ---------------------------------------------------------------- firewall

  /** Renders and applies the whole table; concurrent calls coalesce into one more run. */
  applyFirewall(): Promise<void> {
    if (this.applying) { this.dirty = true; return this.applying; }
    const go = async (): Promise<void> => {
      do {
        this.dirty = false;
        const nets = this.bridgeDocs().filter((d) => this.live.has(d.Id)).map((d) => ({
          bridge: d.Bridge!, subnet: d.IPAM.Config[0].Subnet, gateway: d.IPAM.Config[0].Gateway, internal: d.Internal, dns: this.isUserNetwork(d),
        }));
        await applyRuleset(renderRuleset(this.table, nets, [...this.fwPorts.values()].flat()));
      } while (this.dirty);
    };
    this.applying = go().finally(() => { this.applying = undefined; });
    return this.applying;
  }

  // ---------------------------------------------------------------- lookup / API

  get(ref: string): NetworkDoc {
    const all = this.store.networks.list();
    const hit = all.find((d) => d.Id === ref) ?? all.find((d) => d.Name === ref);
    if (hit) return hit;
    const pre = ref && /^[0-9a-f]+$/.test(ref) ? all.filter((d) => d.Id.startsWith(ref)) : [];
    if (pre.length > 1) throw new BadParameterError(`network ${ref} is ambiguous (${pre.length} matches found based on ID prefix)`);
    if (pre.length === 1) return pre[0];
    throw new NotFoundError(`network ${ref} not found`);
  }

  find(ref: string): NetworkDoc | undefined { try { return this.get(ref); } catch { return undefined; } }

  list(filters: Filters = {}): (NetworkDoc & { Containers: Record<string, unknown> })[] {
    const checked = checkFilters(filters, ["driver", "type", "name", "id", "label", "scope", "dangling"]);
    for (const t of checked.type ?? []) if (t !== "custom" && t !== "builtin") throw new BadParameterError(`invalid filter: 'type'='${t}'`);
    const dangling = boolFilter(checked, "dangling");
    const { dangling: _d, label: labels, ...rest } = checked;
    const out = this.store.networks.list().filter((d) => (dangling === undefined || dangling === (this.isUserNetwork(d) && this.attached(d.Id).length === 0))
      && labelsMatch(d.Labels, { label: labels ?? [] }) && Object.entries(rest).every(([k, vals]) => !vals.length || vals.some((f) => {
      switch (k) {
        case "name": return d.Name.includes(f);
        case "id": return d.Id.startsWith(f);
        case "driver": return d.Driver === f;
        case "scope": return f === "local";
        case "type": return (f === "custom") === this.isUserNetwork(d);
        default: throw invalidFilter(k);
      }
    })));
    return out.sort((a, b) => a.Created.localeCompare(b.Created)).map((d) => this.view(d, false));
  }

  inspect(ref: string): NetworkDoc & { Containers: Record<string, unknown> } { return this.view(this.get(ref), true); }

  private view(d: NetworkDoc, withContainers: boolean): NetworkDoc & { Containers: Record<string, unknown> } {
    const { Bridge: _b, ...rest } = d;
    const containers: Record<string, unknown> = {};
    if (withContainers) for (const c of this.attached(d.Id)) {
      const ep = Object.values(this.endpoints(c)).find((e) => e.NetworkID === d.Id)!;
      containers[c.Id] = { Name: c.Name.slice(1), EndpointID: ep.EndpointID, MacAddress: ep.MacAddress, IPv4Address: ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : "", IPv6Address: "" };
    }
    return { ...rest, Containers: containers } as NetworkDoc & { Containers: Record<string, unknown> };
  }

  /** Running containers with an endpoint on the network. */
  private attached(netId: string): ContainerRecord[] {
    return this.containers().filter((c) => c.State.Running && Object.values(this.endpoints(c)).some((e) => e.NetworkID === netId));
  }

  async create(body: CreateNetworkBody): Promise<{ Id: string; Warning: string }> {
    const name = body.Name ?? "";
    if (!name) throw new BadParameterError("network name must not be empty");
    if (!NAME_RE.test(name)) throw new BadParameterError(`invalid network name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const driver = body.Driver || "bridge";
    if (driver !== "bridge") throw new NotFoundError(`plugin "${driver}" not found`);
    if (this.store.networks.list().some((d) => d.Name === name)) throw new ConflictError(`network with name ${name} already exists`);
    if (body.EnableIPv6) throw new BadParameterError("IPv6 networks are not supported by berth yet");
    const doc = this.newDoc(name, "bridge", body);
    const cfgs = body.IPAM?.Config ?? [];
    if (cfgs.length > 1) throw new BadParameterError("berth supports one IPv4 subnet per network");
    const want = cfgs[0] ?? {};
    let subnet: Cidr;
    const others = this.subnetsInUse();
    if (want.Subnet) {
      subnet = parseCidr(want.Subnet);
      if (subnet.prefix > 30) throw new BadParameterError(`invalid subnet ${want.Subnet}: too small`);
      const clash = others.find((o) => overlaps(o, subnet));
      if (clash) throw new ConflictError(`invalid pool request: Pool overlaps with other one on this address space`);
    } else {
      if (want.Gateway || want.IPRange) throw new BadParameterError("a gateway or ip-range needs a subnet (--subnet)");
      const s = chooseSubnet(userNetworkCandidates(), [...hostRoutes(), ...others]);
      if (!s) throw new ConflictError("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
      subnet = s;
    }
    let gateway = intToIp(subnet.base + 1);
    if (want.Gateway) {
      if (!contains(subnet, ipToInt(want.Gateway))) throw new BadParameterError(`invalid gateway ${want.Gateway}: not in subnet ${cidrString(subnet)}`);
      gateway = want.Gateway;
    }
    if (want.IPRange) {
      const r = parseCidr(want.IPRange);
      if (!contains(subnet, r.base) || r.prefix < subnet.prefix) throw new BadParameterError(`invalid ip-range ${want.IPRange}: not in subnet ${cidrString(subnet)}`);
    }
    doc.IPAM.Config = [{ Subnet: cidrString(subnet), Gateway: gateway, ...(want.IPRange ? { IPRange: want.IPRange } : {}) }];
    const brName = doc.Options["com.docker.network.bridge.name"] || `br-${doc.Id.slice(0, 12)}`;
    if (brName.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(brName)) throw new BadParameterError(`invalid bridge name ${brName}`);
    if (this.bridgeDocs().some((d) => d.Bridge === brName)) throw new ConflictError(`bridge name ${brName} is used by another network`);
    doc.Bridge = brName;
    doc.Options = { ...doc.Options, "com.docker.network.bridge.name": brName };
    await this.store.networks.put(doc);
    try {
      await this.bringUp(doc);
      await ensureForwardAccept([brName]);
      await this.applyFirewall();
    } catch (e) {
      await this.teardown(doc).catch(() => {});
      await this.store.networks.remove(doc.Id);
      throw e;
    }
    this.events.publish("network", "create", doc.Id, { name, type: "bridge" });
    return { Id: doc.Id, Warning: "" };
  }

  private async teardown(d: NetworkDoc): Promise<void> {
    const l = this.live.get(d.Id);
    this.live.delete(d.Id);
    await l?.dns?.close();
    await this.applyFirewall().catch(() => {});
    if (d.Bridge) {
      await removeForwardAccept(d.Bridge).catch(() => {});
      await deleteBridge(d.Bridge);
    }
  }

  async remove(ref: string): Promise<void> {
    const d = this.get(ref);
    if (!this.isUserNetwork(d)) throw new BerthError(`${d.Name} is a pre-defined network and cannot be removed`, 403);
    if (this.attached(d.Id).length) throw new BerthError(`error while removing network: network ${d.Name} id ${d.Id} has active endpoints`, 403);
    await this.store.networks.remove(d.Id);
    await this.teardown(d);
    this.events.publish("network", "destroy", d.Id, { name: d.Name, type: d.Driver });
  }

  /** `POST /networks/prune`: unused user networks, by until, label and label! (Docker's keys). */
  async prune(filters: Filters = {}): Promise<{ NetworksDeleted: string[] }> {
    const f = checkFilters(filters, ["until", "label", "label!"]);
    const until = untilLimit(f);
    const deleted: string[] = [];
    for (const d of this.store.networks.list()) {
      if (!this.isUserNetwork(d) || this.attached(d.Id).length) continue;
      if (!pruneLabelsMatch(d.Labels, f)) continue;
      if (until !== undefined && !(Date.parse(d.Created) < until)) continue;
      await this.remove(d.Id);
      deleted.push(d.Name);
    }
    return { NetworksDeleted: deleted };
  }

  // ---------------------------------------------------------------- containers

  /** Endpoints by network name, from the record. */
  endpoints(c: ContainerRecord): Record<string, EndpointSettings> {
    return (c.NetworkSettings.Networks ?? {}) as Record<string, EndpointSettings>;
  }

  /**
   * At create: validates the network mode and endpoint configs (aliases,
   * --ip) and returns the record's initial NetworkSettings.
   */
  initialSettings(mode: string, endpointsConfig: Record<string, Partial<EndpointSettings>> | undefined, exposed: string[]): Record<string, unknown> {
    const networks: Record<string, EndpointSettings> = {};
    const cfg = endpointsConfig ?? {};
    if (mode.startsWith("container:")) {
      // Shares another container's stack: no endpoints of its own.
    } else {
      const primary = mode === "default" ? "bridge" : mode;
      const doc = this.get(primary);
      const names = [doc.Name, ...Object.keys(cfg).filter((k) => { const x = this.find(k); return x && x.Id !== doc.Id; })];
      for (const n of names) {
        const d = this.get(n);
        const given = cfg[n] ?? cfg[d.Id] ?? (n === doc.Name ? cfg[primary] : undefined);
        if (MODE_SHARED.test(mode) && names.length > 1) throw new BadParameterError("conflicting options: container cannot be connected to more than one network when in host or none mode");
        if (!this.isUserNetwork(d) && given?.Aliases?.length) throw new BadParameterError("network-scoped alias is supported only for containers in user defined networks");
        if (!this.isUserNetwork(d) && given?.IPAMConfig?.IPv4Address) throw new BadParameterError("user specified IP address is supported on user defined networks only");
        if (given?.IPAMConfig?.IPv4Address) {
          const sub = parseCidr(d.IPAM.Config[0].Subnet, false);
          if (!contains(sub, ipToInt(given.IPAMConfig.IPv4Address))) throw new BadParameterError(`invalid IP address ${given.IPAMConfig.IPv4Address}: not in the network's subnet ${cidrString(sub)}`);
        }
        networks[d.Name] = emptyEndpoint(d.Id, given);
      }
    }
    const ports: Record<string, null> = {};
    for (const k of exposed) ports[k] = null;
    return { Bridge: "", SandboxID: "", HairpinMode: false, LinkLocalIPv6Address: "", LinkLocalIPv6PrefixLen: 0, Ports: {}, SandboxKey: "", SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: "", Gateway: "", GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPAddress: "", IPPrefixLen: 0, IPv6Gateway: "", MacAddress: "", Networks: networks };
  }

  /** Whether the container has endpoints on bridge networks (it needs plugging in at start). */
  needsPlug(c: ContainerRecord): boolean {
    return Object.values(this.endpoints(c)).some((e) => this.live.has(e.NetworkID));
  }

  /** The resolv.conf nameserver for a container: its first user network's DNS server, if any. */
  dnsServerFor(c: ContainerRecord): string | undefined {
    for (const ep of Object.values(this.endpoints(c))) {
      const d = this.store.networks.get(ep.NetworkID);
      const l = this.live.get(ep.NetworkID);
      if (d && l?.dns && this.isUserNetwork(d)) return l.gateway;
    }
    return undefined;
  }

  /**
   * At start, before the runtime: addresses on every network and published
   * host ports. Throws (having released everything) on any conflict.
   */
  async prepare(c: ContainerRecord): Promise<string[]> {
    const ips: string[] = [];
    try {
      for (const [name, ep] of Object.entries(this.endpoints(c))) {
        const d = this.store.networks.get(ep.NetworkID);
        if (!d) throw new NotFoundError(`network ${name} not found`);
        const l = this.live.get(d.Id);
        if (!l) continue;
        const ip = l.pool.allocate(ep.IPAMConfig?.IPv4Address || undefined);
        Object.assign(ep, {
          IPAddress: ip, IPPrefixLen: l.subnet.prefix, Gateway: l.gateway, MacAddress: macFor(ip),
          EndpointID: createHash("sha256").update(c.Id + d.Id + Date.now()).digest("hex"),
          DNSNames: this.isUserNetwork(d) ? [c.Name.slice(1), ...(ep.Aliases ?? []), c.Id.slice(0, 12)] : null,
        });
        ips.push(ip);
      }
      this.syncLegacy(c);
      await this.bindPorts(c);
      return ips;
    } catch (e) {
      await this.release(c);
      throw e;
    }
  }

  /** Docker's top-level fields mirror the default bridge endpoint. */
  private syncLegacy(c: ContainerRecord): void {
    const ns = c.NetworkSettings as Record<string, unknown>;
    const ep = this.endpoints(c).bridge;
    ns.IPAddress = ep?.IPAddress ?? ""; ns.IPPrefixLen = ep?.IPPrefixLen ?? 0; ns.Gateway = ep?.Gateway ?? "";
    ns.MacAddress = ep?.MacAddress ?? ""; ns.EndpointID = ep?.EndpointID ?? "";
  }

  /** The first address a published port reaches: the container's address on its first bridge network. */
  private primaryIp(c: ContainerRecord): string | undefined {
    return Object.values(this.endpoints(c)).find((e) => e.IPAddress)?.IPAddress;
  }

  private async bindPorts(c: ContainerRecord, recorded?: Record<string, { HostIp: string; HostPort: string }[] | null>): Promise<void> {
    const hc = c.HostConfig;
    const ip = this.primaryIp(c);
    const ports: Record<string, { HostIp: string; HostPort: string }[] | null> = {};
    for (const k of Object.keys(c.Config.ExposedPorts ?? {})) ports[k.includes("/") ? k : `${k}/tcp`] = null;
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    if (recorded) {
      for (const [k, v] of Object.entries(recorded)) if (v?.length) bindings[k] = v.map((b) => ({ HostIp: b.HostIp === "0.0.0.0" ? "" : b.HostIp, HostPort: b.HostPort }));
    } else {
      for (const [k, v] of Object.entries(hc.PortBindings ?? {})) if (v?.length) bindings[k.includes("/") ? k : `${k}/tcp`] = v;
      if (hc.PublishAllPorts) for (const k of Object.keys(ports)) if (!bindings[k]) bindings[k] = [{ HostIp: "", HostPort: "" }];
    }
    const fw: FwPort[] = [];
    if (Object.keys(bindings).length && ip) {
      for (const [key, list] of Object.entries(bindings)) {
        const { port, proto } = parsePortKey(key);
        const got: { HostIp: string; HostPort: string }[] = [];
        for (const b of list) {
          const hostIp = b.HostIp || "";
          if (hostIp && hostIp !== "0.0.0.0") ipToInt(hostIp);
          const hp = await this.portsHeld.reserve(c.Id, proto, hostIp, parseHostPorts(b.HostPort ?? ""), { ip, port });
          got.push({ HostIp: hostIp || "0.0.0.0", HostPort: String(hp) });
          fw.push({ proto, hostIp, hostPort: hp, containerIp: ip, containerPort: port });
        }
        ports[key] = got;
      }
    }
    (c.NetworkSettings as Record<string, unknown>).Ports = ports;
    if (fw.length) this.fwPorts.set(c.Id, fw);
  }

  /** Between `runc create` and `runc start`: one veth per network into the container's namespace, then the port rules. */
  async plug(c: ContainerRecord, pid: number): Promise<void> {
    const ifaces: Record<string, string> = {}, veths: Record<string, string> = {};
    let i = 0, gatewaySet = false;
    const ns = c.NetworkSettings as Record<string, unknown>;
    ns.SandboxKey = `/proc/${pid}/ns/net`;
    ns.SandboxID = createHash("sha256").update(c.Id + pid).digest("hex");
    for (const ep of Object.values(this.endpoints(c))) {
      const d = this.store.networks.get(ep.NetworkID);
      if (!d?.Bridge || !ep.IPAddress) continue;
      const ifName = `eth${i++}`;
      const gw = !d.Internal && !gatewaySet ? ep.Gateway : undefined;
      if (gw) gatewaySet = true;
      const hostIf = hostVethName();
      await plug(pid, { bridge: d.Bridge, ifName, mac: ep.MacAddress, cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`, gateway: gw }, hostIf, i === 1);
      ifaces[d.Id] = ifName;
      veths[d.Id] = hostIf;
    }
    c.Berth.NetIfaces = ifaces;
    c.Berth.NetVeths = veths;
    if (this.fwPorts.has(c.Id)) await this.applyFirewall();
  }

  /** When the container stops (or fails to start): addresses, host ports and rules go; its veths went with its namespace. */
  async release(c: ContainerRecord): Promise<void> {
    for (const ep of Object.values(this.endpoints(c))) {
      const l = this.live.get(ep.NetworkID);
      if (l && ep.IPAddress) l.pool.release(ep.IPAddress);
      Object.assign(ep, { IPAddress: "", IPPrefixLen: 0, Gateway: "", MacAddress: "", EndpointID: "", DNSNames: null });
    }
    this.syncLegacy(c);
    const ns = c.NetworkSettings as Record<string, unknown>;
    ns.Ports = {}; ns.SandboxKey = ""; ns.SandboxID = "";
    this.portsHeld.release(c.Id);
    if (this.fwPorts.delete(c.Id)) await this.applyFirewall().catch(() => {});
  }

  /** `network connect`: to a stopped container, a config change; to a running one, also a new interface now. */
  async connect(netRef: string, c: ContainerRecord, cfg: Partial<EndpointSettings> = {}): Promise<void> {
    const d = this.get(netRef);
    const mode = String(c.HostConfig.NetworkMode);
    if (MODE_SHARED.test(mode) || d.Driver !== "bridge") {
      throw new BerthError("container sharing network namespace with another container or host cannot be connected to any other network", 403);
    }
    const eps = this.endpoints(c);
    if (Object.values(eps).some((e) => e.NetworkID === d.Id)) throw new BerthError(`endpoint with name ${c.Name.slice(1)} already exists in network ${d.Name}`, 403);
    if (!this.isUserNetwork(d) && cfg.Aliases?.length) throw new BadParameterError("network-scoped alias is supported only for containers in user defined networks");
    if (!this.isUserNetwork(d) && cfg.IPAMConfig?.IPv4Address) throw new BadParameterError("user specified IP address is supported on user defined networks only");
    const ep = emptyEndpoint(d.Id, cfg);
    if (c.State.Running && c.State.Pid) {
      const l = this.live.get(d.Id)!;
      const ip = l.pool.allocate(cfg.IPAMConfig?.IPv4Address || undefined);
      Object.assign(ep, { IPAddress: ip, IPPrefixLen: l.subnet.prefix, Gateway: l.gateway, MacAddress: macFor(ip),
        EndpointID: createHash("sha256").update(c.Id + d.Id + Date.now()).digest("hex"),
        DNSNames: this.isUserNetwork(d) ? [c.Name.slice(1), ...(ep.Aliases ?? []), c.Id.slice(0, 12)] : null });
      const used = new Set(Object.values(c.Berth.NetIfaces ?? {}));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      const hostIf = hostVethName();
      try {
        await plug(c.State.Pid, { bridge: d.Bridge!, ifName: `eth${n}`, mac: ep.MacAddress, cidr: `${ip}/${l.subnet.prefix}` }, hostIf, false);
      } catch (e) {
        l.pool.release(ip);
        throw e;
      }
      c.Berth.NetIfaces = { ...(c.Berth.NetIfaces ?? {}), [d.Id]: `eth${n}` };
      c.Berth.NetVeths = { ...(c.Berth.NetVeths ?? {}), [d.Id]: hostIf };
    }
    eps[d.Name] = ep;
    c.NetworkSettings.Networks = eps;
    this.syncLegacy(c);
    this.events.publish("network", "connect", d.Id, { container: c.Id, name: d.Name, type: "bridge" });
  }

  async disconnect(netRef: string, c: ContainerRecord): Promise<void> {
    const d = this.get(netRef);
    const eps = this.endpoints(c);
    const name = Object.keys(eps).find((k) => eps[k].NetworkID === d.Id);
    if (!name) throw new BerthError(`container ${c.Id} is not connected to network ${d.Name}`, 403);
    const ep = eps[name];
    if (c.State.Running && c.State.Pid) {
      const ifName = c.Berth.NetIfaces?.[d.Id];
      if (ifName) await unplug(c.State.Pid, ifName).catch(() => {});
      if (ep.IPAddress) this.live.get(d.Id)?.pool.release(ep.IPAddress);
      if (c.Berth.NetIfaces) delete c.Berth.NetIfaces[d.Id];
      if (c.Berth.NetVeths) delete c.Berth.NetVeths[d.Id];
    }
    delete eps[name];
    this.syncLegacy(c);
    this.events.publish("network", "disconnect", d.Id, { container: c.Id, name: d.Name, type: "bridge" });
  }

  /** For `ps --filter network=`: the names and IDs of a container's networks. */
  networksOf(c: ContainerRecord): string[] {
    return Object.entries(this.endpoints(c)).flatMap(([n, e]) => [n, e.NetworkID]);
  }
}
