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
import { readFileSync, promises as fsp } from "node:fs";
import { BadParameterError, ConflictError, NotFoundError, BerthError, SystemError, errorMessage } from "../lib/errors.js";
import { newId } from "../lib/ids.js";
import type { Store } from "../store/index.js";
import type { NetworkDoc, IpamConfig } from "../store/networks.js";
import { containerResolv } from "./etc-files.js";
import {
  IpPool, parseCidr, cidrString, ipToInt, intToIp, contains, overlaps, hostRoutes, chooseSubnet, routeConflict,
  defaultBridgeCandidates, userNetworkCandidates, macFor, type Cidr,
  IpPool6, parseCidr6, cidr6String, ip6ToBig, bigToIp6, contains6, overlaps6, hostRoutes6, ipv6Candidates, isIpv6, type Cidr6,
} from "../network/ipam.js";
import { ensureBridge, deleteBridge, flushAddresses, plug, unplug, hostVethName, linkExists, masterOf, attachToBridge } from "../network/links.js";
import { renderRuleset, applyRuleset, deleteTable, ensureForwardAccept, removeForwardAccept, type FwPort } from "../network/firewall.js";
import { PortHolder, parsePortKey, parseHostPorts } from "../network/ports.js";
import { EmbeddedDns, nameserversFromResolvConf } from "../network/dns.js";
import type { EventBus } from "./events.js";
import type { ContainerRecord } from "./types.js";

export interface NetworkOptions { dataRoot: string; dns?: string[]; teardown?: boolean }

export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  /** Legacy links on this network ("container:alias"): the alias resolves, for this container only. */
  Links: string[] | null;
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
  Scope?: string; Ingress?: boolean; ConfigOnly?: boolean; ConfigFrom?: { Network?: string };
  IPAM?: { Driver?: string; Config?: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }[]; Options?: Record<string, string> };
  Options?: Record<string, string>; Labels?: Record<string, string>;
}

const PREDEFINED = ["bridge", "host", "none"];
/** Whether the host has IPv6 (dockerd lists a published port's "::" binding only then). */
const HOST_HAS_IPV6 = (() => { try { return readFileSync("/proc/net/if_inet6", "utf8").trim() !== ""; } catch { return false; } })();

/** Names Docker keeps for itself (runconfig.IsPreDefinedNetwork): creating one is a 403. */
const RESERVED_NAMES = ["bridge", "host", "none", "default"];
const MODE_SHARED = /^(host|none|container:.+)$/;
const OPT_MASQ = "com.docker.network.bridge.enable_ip_masquerade";
const OPT_ICC = "com.docker.network.bridge.enable_icc";
const OPT_MTU = "com.docker.network.driver.mtu";
const OPT_NAME = "com.docker.network.bridge.name";

/** Docker's boolean option values ("true", "1", "false", "0"...); undefined when unset. */
function optBool(v: string | undefined, key: string): boolean | undefined {
  if (v === undefined || v === "") return undefined;
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw new BadParameterError(`failed to parse ${key} value: invalid syntax: "${v}"`);
}

/** Empty lists and strings are "not set", as Docker treats them. */
function cleanIpam(c: EndpointSettings["IPAMConfig"] | undefined): EndpointSettings["IPAMConfig"] {
  if (!c) return null;
  const out: NonNullable<EndpointSettings["IPAMConfig"]> = {};
  if (c.IPv4Address) out.IPv4Address = c.IPv4Address;
  if (c.IPv6Address) out.IPv6Address = c.IPv6Address;
  if (c.LinkLocalIPs?.length) out.LinkLocalIPs = c.LinkLocalIPs;
  return Object.keys(out).length ? out : null;
}

function emptyEndpoint(netId: string, cfg?: Partial<EndpointSettings>): EndpointSettings {
  return {
    IPAMConfig: cleanIpam(cfg?.IPAMConfig), Links: cfg?.Links?.length ? cfg.Links : null, Aliases: cfg?.Aliases?.length ? cfg.Aliases : null, MacAddress: "", NetworkID: netId,
    EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, IPv6Gateway: "", GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, DriverOpts: null, DNSNames: null,
  };
}

/** The IPv4 and IPv6 entries of a network's IPAM config. */
function v4cfg(d: NetworkDoc): IpamConfig | undefined { return d.IPAM.Config.find((c) => !isIpv6(c.Subnet)); }
function v6cfg(d: NetworkDoc): IpamConfig | undefined { return d.EnableIPv6 ? d.IPAM.Config.find((c) => isIpv6(c.Subnet)) : undefined; }

/** Running state of one bridge network. */
interface Live { pool: IpPool; subnet: Cidr; gateway: string; pool6?: IpPool6; subnet6?: Cidr6; gateway6?: string; mtu?: number; dns?: EmbeddedDns }

export class NetworkService {
  private live = new Map<string, Live>();
  /** User networks whose subnet another interface now routes: not brought up; starting a container on one fails with this. */
  private blocked = new Map<string, string>();
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
    for (const d of docs.list()) {
      if (d.Driver !== "bridge") continue;
      const clash = this.routeClash(d);
      if (clash && d.Name === "bridge") {
        await this.moveDefaultBridge(d, clash);
      } else if (clash) {
        this.blocked.set(d.Id, `network ${d.Name} is not available: its subnet ${clash}: remove that interface (or the network) and restart berthd`);
        process.stderr.write(`berthd: ${this.blocked.get(d.Id)}\n`);
        continue;
      }
      await this.bringUp(d);
    }
    await ensureForwardAccept(this.bridgeDocs().filter((d) => this.live.has(d.Id)).map((d) => d.Bridge!));
    await this.applyFirewall();
  }

  /**
   * When the network's IPv4 subnet overlaps a route of another interface (a
   * bridge another daemon left, a VPN...), what it overlaps, as text.
   */
  private routeClash(d: NetworkDoc): string | undefined {
    const cfg = v4cfg(d);
    if (!cfg) return undefined;
    const sub = parseCidr(cfg.Subnet, false);
    const r = routeConflict(sub, d.Bridge);
    return r && `${cidrString(sub)} overlaps ${cidrString(r)}, routed on interface ${r.dev} that berth does not manage`;
  }

  /** The default bridge moves to a free subnet rather than share one with another interface (replies would go there). */
  private async moveDefaultBridge(d: NetworkDoc, clash: string): Promise<void> {
    const taken = [...hostRoutes().filter((r) => r.dev !== d.Bridge), ...this.subnetsInUse(d.Id)];
    const sub = chooseSubnet(defaultBridgeCandidates(), taken);
    if (!sub) throw new SystemError(`the default bridge's subnet ${clash}, and no free private subnet is left to move it to`);
    d.IPAM.Config = [{ Subnet: cidrString(sub), Gateway: intToIp(sub.base + 1) }, ...d.IPAM.Config.filter((c) => isIpv6(c.Subnet))];
    await this.store.networks.put(d);
    if (d.Bridge) await flushAddresses(d.Bridge);
    process.stderr.write(`berthd: default bridge network: subnet ${clash}; moved to ${cidrString(sub)}\n`);
  }

  /** Re-adopts a running container after a daemon restart: its addresses, host ports and DNS names. */
  async adopt(c: ContainerRecord): Promise<void> {
    for (const ep of Object.values(this.endpoints(c))) {
      const l = this.live.get(ep.NetworkID);
      if (l && ep.IPAddress) l.pool.reserve(ep.IPAddress);
      if (l?.pool6 && ep.GlobalIPv6Address) l.pool6.reserve(ep.GlobalIPv6Address);
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

  private subnetsInUse(except?: string): Cidr[] {
    return this.store.networks.list().filter((d) => d.Id !== except).flatMap((d) => d.IPAM.Config.filter((c) => !isIpv6(c.Subnet)).map((c) => parseCidr(c.Subnet, false)));
  }

  private subnets6InUse(): Cidr6[] {
    return this.store.networks.list().flatMap((d) => d.IPAM.Config.filter((c) => isIpv6(c.Subnet)).map((c) => parseCidr6(c.Subnet, false)));
  }

  private isUserNetwork(d: NetworkDoc): boolean { return !PREDEFINED.includes(d.Name); }

  private async bringUp(d: NetworkDoc): Promise<void> {
    const cfg = v4cfg(d)!;
    const subnet = parseCidr(cfg.Subnet, false);
    const mtuOpt = Number(d.Options[OPT_MTU]) || undefined;
    const mtu = mtuOpt && mtuOpt !== 1500 ? mtuOpt : undefined;
    const aux = Object.values(cfg.AuxiliaryAddresses ?? {}).filter((a) => !isIpv6(a)).map(ipToInt);
    const pool = new IpPool(subnet, ipToInt(cfg.Gateway), cfg.IPRange ? parseCidr(cfg.IPRange, false) : undefined, aux);
    const l: Live = { pool, subnet, gateway: cfg.Gateway, mtu };
    const addrs = [`${cfg.Gateway}/${subnet.prefix}`];
    const c6 = v6cfg(d);
    if (c6) {
      l.subnet6 = parseCidr6(c6.Subnet, false);
      l.gateway6 = c6.Gateway || bigToIp6(l.subnet6.base + 1n);
      const aux6 = Object.values(c6.AuxiliaryAddresses ?? {}).filter(isIpv6).map(ip6ToBig);
      l.pool6 = new IpPool6(l.subnet6, ip6ToBig(l.gateway6), aux6);
      addrs.push(`${l.gateway6}/${l.subnet6.prefix}`);
    }
    await ensureBridge(d.Bridge!, addrs, { forward: !d.Internal, mtu, ipv6: !!c6 });
    this.live.set(d.Id, l);
    if (this.isUserNetwork(d)) {
      const dns = new EmbeddedDns({
        address: cfg.Gateway,
        lookup: (name, client) => this.lookupName(d.Id, name, client),
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
        // A container that is starting counts: its first query may come before the daemon marks it running.
        if (!dns?.length || !(c.State.Running || c.State.Status === "created" || c.State.Status === "restarting")) continue;
        if (Object.values(this.endpoints(c)).some((e) => e.NetworkID === netId && e.IPAddress === client)) return dns;
      }
    }
    if (this.opts.dns?.length) return this.opts.dns;
    try { return nameserversFromResolvConf(readFileSync("/etc/resolv.conf", "utf8")); } catch { return []; }
  }

  /**
   * A name as the asking container sees it, as Docker's embedded DNS answers:
   * first on the network asked, then on every other user network the asker
   * is on (one it was connected to while running, say). On each: its legacy
   * links' aliases, then container names, network aliases and short IDs of
   * running containers. IPv4 and IPv6 addresses both (A and AAAA).
   */
  private lookupName(netId: string, name: string, client?: string): string[] | undefined {
    const asker = client ? this.containers().find((c) => c.State.Running && Object.values(this.endpoints(c)).some((e) => e.NetworkID === netId && (e.IPAddress === client || e.GlobalIPv6Address === client))) : undefined;
    const nets = [netId];
    if (asker) for (const e of Object.values(this.endpoints(asker))) {
      const d = this.store.networks.get(e.NetworkID);
      if (d && this.isUserNetwork(d) && !nets.includes(d.Id) && e.IPAddress) nets.push(d.Id);
    }
    for (const n of nets) {
      const hit = this.namesOn(n, name, asker);
      if (hit) return hit;
    }
    return undefined;
  }

  private namesOn(netId: string, name: string, asker?: ContainerRecord): string[] | undefined {
    const addrs = (ep: EndpointSettings): string[] => [ep.IPAddress, ep.GlobalIPv6Address].filter(Boolean);
    const epOn = (c: ContainerRecord) => Object.values(this.endpoints(c)).find((e) => e.NetworkID === netId);
    const mine = asker && epOn(asker);
    // Links of this endpoint (network connect --link) and, on a user network, the container's --link ("/db:/web/alias"), as Docker's DNS serves them.
    const hostLinks = mine && this.isUserNetwork(this.store.networks.get(netId)!) ? ((asker.HostConfig.Links as string[] | null | undefined) ?? []) : [];
    for (const link of [...(mine?.Links ?? []), ...hostLinks]) {
      const [target, alias] = splitLink(link);
      if (alias.toLowerCase() !== name) continue;
      const t = this.containers().find((c) => c.State.Running && (c.Name.slice(1) === target || c.Id.startsWith(target)));
      const ep = t && epOn(t);
      if (ep?.IPAddress) return addrs(ep);
    }
    const out: string[] = [];
    for (const c of this.containers()) {
      if (!c.State.Running) continue;
      const ep = epOn(c);
      if (!ep || !ep.IPAddress) continue;
      const names = [c.Name.slice(1), c.Id.slice(0, 12), ...(ep.Aliases ?? [])].map((n) => n.toLowerCase());
      if (names.includes(name)) out.push(...addrs(ep));
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
          bridge: d.Bridge!, subnet: v4cfg(d)!.Subnet, gateway: v4cfg(d)!.Gateway, internal: d.Internal, dns: this.isUserNetwork(d),
          masquerade: optBool(d.Options[OPT_MASQ], OPT_MASQ) !== false, icc: optBool(d.Options[OPT_ICC], OPT_ICC) !== false,
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
      containers[c.Id] = {
        Name: c.Name.slice(1), EndpointID: ep.EndpointID, MacAddress: ep.MacAddress, IPv4Address: ep.IPAddress ? `${ep.IPAddress}/${ep.IPPrefixLen}` : "",
        IPv6Address: ep.GlobalIPv6Address ? `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` : "",
      };
    }
    return { ...rest, Containers: containers } as NetworkDoc & { Containers: Record<string, unknown> };
  }

  /** Running containers with an endpoint on the network. */
  private attached(netId: string): ContainerRecord[] {
    return this.containers().filter((c) => c.State.Running && Object.values(this.endpoints(c)).some((e) => e.NetworkID === netId));
  }

  async create(body: CreateNetworkBody): Promise<{ Id: string; Warning: string }> {
    // Docker accepts any name that is not blank (spaces, dots, slashes...), and keeps the predefined ones.
    const name = body.Name ?? "";
    if (!name.trim()) throw new BadParameterError(`invalid name: ${name}`);
    if (RESERVED_NAMES.includes(name)) throw new BerthError(`operation is not permitted on predefined ${name} network `, 403);
    const driver = body.Driver || "bridge";
    if (driver === "host" || driver === "null") throw new BerthError(`only one instance of "${driver}" network is allowed`, 403);
    if (driver !== "bridge") throw new NotFoundError(`plugin "${driver}" not found`);
    if (body.IPAM?.Driver && body.IPAM.Driver !== "default") throw new NotFoundError(`plugin "${body.IPAM.Driver}" not found`);
    // What only a swarm or config-only networks would give: refused, never silently dropped.
    if (body.Scope && body.Scope !== "local") throw new BerthError(`cannot create a ${body.Scope} scoped network when swarm is not active`, 403);
    if (body.Ingress) throw new BerthError("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.", 503);
    if (body.ConfigOnly || body.ConfigFrom?.Network) throw new BadParameterError("berth does not support config-only networks (--config-only, --config-from)");
    // CheckDuplicate is always on since API 1.44 (and berth keeps names unique at every version).
    if (this.store.networks.list().some((d) => d.Name === name)) throw new ConflictError(`network with name ${name} already exists`);
    const doc = this.newDoc(name, "bridge", body);
    for (const k of [OPT_MASQ, OPT_ICC]) optBool(doc.Options[k], k);
    if (doc.Options[OPT_MTU] !== undefined && doc.Options[OPT_MTU] !== "") {
      const mtu = Number(doc.Options[OPT_MTU]);
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new BadParameterError(`invalid MTU value: ${doc.Options[OPT_MTU]}`);
    }
    const cfgs = body.IPAM?.Config ?? [];
    const want4 = cfgs.filter((c) => !isIpv6(c.Subnet ?? "") && !isIpv6(c.Gateway ?? ""));
    const want6 = cfgs.filter((c) => isIpv6(c.Subnet ?? "") || isIpv6(c.Gateway ?? ""));
    if (want4.length > 1 || want6.length > 1) throw new BadParameterError("berth supports one IPv4 and one IPv6 subnet per network");
    const config: IpamConfig[] = [this.ipv4Config(want4[0] ?? {})];
    const c6 = want6[0];
    if (c6 || body.EnableIPv6) config.push(this.ipv6Config(c6 ?? {}));
    doc.IPAM.Config = config;
    doc.EnableIPv6 = !!body.EnableIPv6;
    const brName = doc.Options[OPT_NAME] || `br-${doc.Id.slice(0, 12)}`;
    if (brName.length > 15 || !/^[a-zA-Z0-9_.-]+$/.test(brName)) throw new BadParameterError(`invalid bridge name ${brName}`);
    if (this.bridgeDocs().some((d) => d.Bridge === brName)) throw new ConflictError(`bridge name ${brName} is used by another network`);
    // Docker would take over an existing device of that name; berth would then delete it with the network: refuse.
    if (linkExists(brName)) throw new ConflictError(`bridge name ${brName} is already used by an interface on the host that berth does not manage`);
    // Options stay what the user gave, as dockerd keeps them (compose compares them with its file).
    doc.Bridge = brName;
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

  /** The IPv4 entry of a new network: the subnet asked for (checked against other networks and the host's routes) or a free one. */
  private ipv4Config(want: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }): IpamConfig {
    let subnet: Cidr;
    const others = this.subnetsInUse();
    if (want.Subnet) {
      subnet = parseCidr(want.Subnet);
      if (subnet.prefix > 30) throw new BadParameterError(`invalid subnet ${want.Subnet}: too small`);
      if (others.some((o) => overlaps(o, subnet))) throw new BerthError("Pool overlaps with other one on this address space", 403);
      // Docker would share it silently; replies to the containers would then leave by the other interface.
      const r = routeConflict(subnet, undefined);
      if (r) throw new BerthError(`Pool overlaps with other one on this address space: ${cidrString(subnet)} overlaps ${cidrString(r)}, routed on interface ${r.dev} that berth does not manage; choose another --subnet`, 403);
    } else {
      if (want.Gateway || want.IPRange) throw new BadParameterError("a gateway or ip-range needs a subnet (--subnet)");
      const s = chooseSubnet(userNetworkCandidates(), [...hostRoutes(), ...others]);
      if (!s) throw new NotFoundError("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network");
      subnet = s;
    }
    let gateway = intToIp(subnet.base + 1);
    if (want.Gateway) {
      if (!contains(subnet, ipToInt(want.Gateway))) throw new BerthError(`no matching subnet for gateway ${want.Gateway}`, 403);
      gateway = want.Gateway;
    }
    if (want.IPRange) {
      const r = parseCidr(want.IPRange);
      if (!contains(subnet, r.base) || r.prefix < subnet.prefix) throw new BadParameterError(`invalid ip-range ${want.IPRange}: not in subnet ${cidrString(subnet)}`);
    }
    const aux = this.auxAddresses(want.AuxiliaryAddresses, cidrString(subnet), (ip) => contains(subnet, ipToInt(ip)), gateway);
    return { Subnet: cidrString(subnet), Gateway: gateway, ...(want.IPRange ? { IPRange: want.IPRange } : {}), ...(aux ? { AuxiliaryAddresses: aux } : {}) };
  }

  /** The IPv6 entry of a new network: the subnet asked for or a free unique-local /64. */
  private ipv6Config(want: { Subnet?: string; Gateway?: string; IPRange?: string; AuxiliaryAddresses?: Record<string, string> }): IpamConfig {
    let subnet: Cidr6;
    const others = this.subnets6InUse();
    if (want.Subnet) {
      subnet = parseCidr6(want.Subnet);
      if (subnet.prefix > 126) throw new BadParameterError(`invalid subnet ${want.Subnet}: too small`);
      if (others.some((o) => overlaps6(o, subnet))) throw new BerthError("Pool overlaps with other one on this address space", 403);
      const r = hostRoutes6().find((x) => overlaps6(x, subnet));
      if (r) throw new BerthError(`Pool overlaps with other one on this address space: ${cidr6String(subnet)} overlaps ${cidr6String(r)}, routed on interface ${r.dev} that berth does not manage; choose another --subnet`, 403);
    } else {
      if (want.Gateway) throw new BadParameterError("a gateway needs a subnet (--subnet)");
      const taken = [...others, ...hostRoutes6()];
      let found: Cidr6 | undefined;
      for (const c of ipv6Candidates()) if (!taken.some((t) => overlaps6(t, c))) { found = c; break; }
      if (!found) throw new NotFoundError("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network");
      subnet = found;
    }
    if (want.IPRange) throw new BadParameterError("berth does not support --ip-range for IPv6 subnets");
    let gateway = bigToIp6(subnet.base + 1n);
    if (want.Gateway) {
      if (!contains6(subnet, ip6ToBig(want.Gateway))) throw new BerthError(`no matching subnet for gateway ${want.Gateway}`, 403);
      gateway = bigToIp6(ip6ToBig(want.Gateway));
    }
    const aux = this.auxAddresses(want.AuxiliaryAddresses, cidr6String(subnet), (ip) => isIpv6(ip) && contains6(subnet, ip6ToBig(ip)), gateway);
    return { Subnet: cidr6String(subnet), Gateway: gateway, ...(aux ? { AuxiliaryAddresses: aux } : {}) };
  }

  /** --aux-address name=ip: reserved in the pool (never given to a container); each must be in the subnet, as Docker checks. */
  private auxAddresses(aux: Record<string, string> | undefined, subnet: string, inSubnet: (ip: string) => boolean, gateway: string): Record<string, string> | undefined {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(aux ?? {})) {
      let ok = false;
      try { ok = inSubnet(v); } catch { /* not an address of this family */ }
      if (!ok) throw new BerthError(`auxiliary address: (${k}:${v}) must belong to the master pool: ${subnet}`, 403);
      if (v === gateway) throw new BerthError(`auxiliary address: (${k}:${v}) is the gateway of ${subnet}`, 403);
      out[k] = v;
    }
    return Object.keys(out).length ? out : undefined;
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
    this.blocked.delete(d.Id);
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
        this.checkEndpointConfig(d, given ?? {});
        networks[d.Name] = emptyEndpoint(d.Id, given);
      }
    }
    const ports: Record<string, null> = {};
    for (const k of exposed) ports[k] = null;
    return { Bridge: "", SandboxID: "", HairpinMode: false, LinkLocalIPv6Address: "", LinkLocalIPv6PrefixLen: 0, Ports: {}, SandboxKey: "", SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, EndpointID: "", Gateway: "", GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPAddress: "", IPPrefixLen: 0, IPv6Gateway: "", MacAddress: "", Networks: networks };
  }

  /** --ip, --ip6, --alias, --link-local-ip of one endpoint, as Docker checks them. */
  private checkEndpointConfig(d: NetworkDoc, given: Partial<EndpointSettings>): void {
    const ipam = given.IPAMConfig ?? {};
    if (!this.isUserNetwork(d) && given.Aliases?.length) throw new BadParameterError("network-scoped alias is supported only for containers in user defined networks");
    if (!this.isUserNetwork(d) && (ipam.IPv4Address || ipam.IPv6Address)) throw new BadParameterError("user specified IP address is supported on user defined networks only");
    if (ipam.IPv4Address) {
      const sub = parseCidr(v4cfg(d)!.Subnet, false);
      if (!contains(sub, ipToInt(ipam.IPv4Address))) throw new BadParameterError(`invalid IP address ${ipam.IPv4Address}: not in the network's subnet ${cidrString(sub)}`);
    }
    if (ipam.IPv6Address) {
      const c6 = v6cfg(d);
      if (!c6) throw new BadParameterError(`invalid IPv6 address ${ipam.IPv6Address}: network ${d.Name} has no IPv6 (create it with --ipv6)`);
      const sub = parseCidr6(c6.Subnet, false);
      if (!contains6(sub, ip6ToBig(ipam.IPv6Address))) throw new BadParameterError(`invalid IPv6 address ${ipam.IPv6Address}: not in the network's subnet ${cidr6String(sub)}`);
    }
    for (const ll of ipam.LinkLocalIPs ?? []) {
      const ok = isIpv6(ll) ? (ip6ToBig(ll) >> 118n) === 0x3fan : contains(parseCidr("169.254.0.0/16"), ipToInt(ll));
      if (!ok) throw new BadParameterError(`invalid link-local IP address: ${ll}`);
    }
    for (const l of given.Links ?? []) if (!splitLink(l)[0]) throw new BadParameterError(`invalid link: ${l}`);
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
        const blocked = this.blocked.get(d.Id);
        if (blocked) throw new BerthError(blocked, 403);
        const l = this.live.get(d.Id);
        if (!l) continue;
        this.allocate(c, d, l, ep);
        ips.push(ep.IPAddress);
        if (ep.GlobalIPv6Address) ips.push(ep.GlobalIPv6Address);
      }
      this.syncLegacy(c);
      await this.bindPorts(c);
      return ips;
    } catch (e) {
      await this.release(c);
      throw e;
    }
  }

  /** Addresses of one endpoint: IPv4 (and IPv6 on a dual-stack network), as --ip/--ip6 ask or the next free. */
  private allocate(c: ContainerRecord, d: NetworkDoc, l: Live, ep: EndpointSettings): void {
    const ip = l.pool.allocate(ep.IPAMConfig?.IPv4Address || undefined);
    let ip6 = "";
    if (l.pool6) {
      try { ip6 = l.pool6.allocate(ep.IPAMConfig?.IPv6Address || undefined); } catch (e) { l.pool.release(ip); throw e; }
    }
    Object.assign(ep, {
      IPAddress: ip, IPPrefixLen: l.subnet.prefix, Gateway: l.gateway, MacAddress: macFor(ip),
      GlobalIPv6Address: ip6, GlobalIPv6PrefixLen: ip6 ? l.subnet6!.prefix : 0, IPv6Gateway: ip6 ? l.gateway6! : "",
      EndpointID: createHash("sha256").update(c.Id + d.Id + Date.now()).digest("hex"),
      DNSNames: this.isUserNetwork(d) ? [c.Name.slice(1), ...(ep.Aliases ?? []), c.Id.slice(0, 12)] : null,
    });
  }

  /** What plug() needs for one endpoint. */
  private vethPlan(d: NetworkDoc, l: Live, ep: EndpointSettings, ifName: string, gateways: boolean): Parameters<typeof plug>[1] {
    return {
      bridge: d.Bridge!, ifName, mac: ep.MacAddress, cidr: `${ep.IPAddress}/${ep.IPPrefixLen}`, mtu: l.mtu,
      gateway: gateways && !d.Internal ? ep.Gateway : undefined,
      cidr6: ep.GlobalIPv6Address ? `${ep.GlobalIPv6Address}/${ep.GlobalIPv6PrefixLen}` : undefined,
      gateway6: gateways && !d.Internal && ep.GlobalIPv6Address ? ep.IPv6Gateway : undefined,
      extra: (ep.IPAMConfig?.LinkLocalIPs ?? []).map((a) => (isIpv6(a) ? `${a}/64` : `${a}/16`)),
    };
  }

  /** Docker's top-level fields mirror the default bridge endpoint. */
  private syncLegacy(c: ContainerRecord): void {
    const ns = c.NetworkSettings as Record<string, unknown>;
    const ep = this.endpoints(c).bridge;
    ns.IPAddress = ep?.IPAddress ?? ""; ns.IPPrefixLen = ep?.IPPrefixLen ?? 0; ns.Gateway = ep?.Gateway ?? "";
    ns.MacAddress = ep?.MacAddress ?? ""; ns.EndpointID = ep?.EndpointID ?? "";
    ns.GlobalIPv6Address = ep?.GlobalIPv6Address ?? ""; ns.GlobalIPv6PrefixLen = ep?.GlobalIPv6PrefixLen ?? 0; ns.IPv6Gateway = ep?.IPv6Gateway ?? "";
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
      for (const [k, v] of Object.entries(recorded)) {
        // A "::" entry beside "0.0.0.0" on the same port is the same binding's IPv6 side (listed as dockerd lists it).
        const list = (v ?? []).filter((b) => !(b.HostIp === "::" && v!.some((o) => o.HostIp === "0.0.0.0" && o.HostPort === b.HostPort)));
        if (list.length) bindings[k] = list.map((b) => ({ HostIp: b.HostIp === "0.0.0.0" ? "" : b.HostIp, HostPort: b.HostPort }));
      }
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
          if (hostIp && hostIp !== "0.0.0.0") { if (isIpv6(hostIp)) ip6ToBig(hostIp); else ipToInt(hostIp); }
          const hp = await this.portsHeld.reserve(c.Id, proto, hostIp, parseHostPorts(b.HostPort ?? ""), { ip, port });
          got.push({ HostIp: hostIp || "0.0.0.0", HostPort: String(hp) });
          // An unspecified TCP address is served on IPv6 too (the proxy's [::] side): dockerd lists it as a second binding.
          if (!hostIp && proto === "tcp" && HOST_HAS_IPV6) got.push({ HostIp: "::", HostPort: String(hp) });
          // "::" takes IPv4 too (DNAT for every address); another IPv6 address only the proxy serves.
          if (!isIpv6(hostIp)) fw.push({ proto, hostIp, hostPort: hp, containerIp: ip, containerPort: port });
          else if (hostIp === "::") fw.push({ proto, hostIp: "", hostPort: hp, containerIp: ip, containerPort: port });
        }
        ports[key] = got;
      }
    }
    (c.NetworkSettings as Record<string, unknown>).Ports = ports;
    if (fw.length) this.fwPorts.set(c.Id, fw);
  }

  /**
   * Before `runc start`: one veth per network into the container's namespace (the file that keeps it,
   * made before `runc create` so this runs beside it; or a process's, by pid), then the port rules.
   */
  async plug(c: ContainerRecord, netns: string | number): Promise<void> {
    const ifaces: Record<string, string> = {}, veths: Record<string, string> = {};
    let i = 0, gatewaySet = false;
    const ns = c.NetworkSettings as Record<string, unknown>;
    ns.SandboxKey = typeof netns === "number" ? `/proc/${netns}/ns/net` : netns;
    ns.SandboxID = createHash("sha256").update(c.Id + String(netns)).digest("hex");
    for (const ep of Object.values(this.endpoints(c))) {
      const d = this.store.networks.get(ep.NetworkID);
      const l = this.live.get(ep.NetworkID);
      if (!d?.Bridge || !l || !ep.IPAddress) continue;
      const ifName = `eth${i++}`;
      const plan = this.vethPlan(d, l, ep, ifName, !gatewaySet);
      if (plan.gateway) gatewaySet = true;
      const hostIf = hostVethName();
      await plug(netns, plan, hostIf, i === 1);
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
      if (l?.pool6 && ep.GlobalIPv6Address) l.pool6.release(ep.GlobalIPv6Address);
      Object.assign(ep, { IPAddress: "", IPPrefixLen: 0, Gateway: "", MacAddress: "", EndpointID: "", DNSNames: null, GlobalIPv6Address: "", GlobalIPv6PrefixLen: 0, IPv6Gateway: "" });
    }
    this.syncLegacy(c);
    const ns = c.NetworkSettings as Record<string, unknown>;
    ns.Ports = {}; ns.SandboxKey = ""; ns.SandboxID = "";
    this.portsHeld.release(c.Id);
    if (this.fwPorts.delete(c.Id)) await this.applyFirewall().catch(() => {});
  }

  /**
   * `network connect`: to a stopped container, a config change; to a running
   * one, also a new interface now, and (as Docker does) name resolution on
   * the new network at once: the embedded DNS answers the asker's names on
   * all its networks, and a container that had no embedded DNS (default
   * bridge only) gets its resolv.conf pointed at the new network's.
   */
  async connect(netRef: string, c: ContainerRecord, cfg: Partial<EndpointSettings> = {}): Promise<void> {
    const d = this.get(netRef);
    const mode = String(c.HostConfig.NetworkMode);
    if (MODE_SHARED.test(mode) || d.Driver !== "bridge") {
      throw new BerthError("container sharing network namespace with another container or host cannot be connected to any other network", 403);
    }
    const eps = this.endpoints(c);
    if (Object.values(eps).some((e) => e.NetworkID === d.Id)) throw new BerthError(`endpoint with name ${c.Name.slice(1)} already exists in network ${d.Name}`, 403);
    this.checkEndpointConfig(d, cfg);
    for (const l of cfg.Links ?? []) {
      const target = splitLink(l)[0];
      const t = this.containers().find((x) => x.Name.slice(1) === target || x.Id === target || (target.length >= 12 && x.Id.startsWith(target)));
      if (!t) throw new NotFoundError(`No such container: ${target}`);
      if (c.State.Running && !t.State.Running) throw new BadParameterError(`Cannot link to a non running container: /${target} AS /${c.Name.slice(1)}/${splitLink(l)[1]}`);
    }
    const blocked = this.blocked.get(d.Id);
    if (blocked && c.State.Running) throw new BerthError(blocked, 403);
    const ep = emptyEndpoint(d.Id, cfg);
    if (c.State.Running && c.State.Pid) {
      const l = this.live.get(d.Id)!;
      const hadDns = this.dnsServerFor(c);
      this.allocate(c, d, l, ep);
      const used = new Set(Object.values(c.Berth.NetIfaces ?? {}));
      let n = 0;
      while (used.has(`eth${n}`)) n++;
      const hostIf = hostVethName();
      try {
        // The default route stays where it is; the new network's gateway is not the container's way out.
        await plug(c.State.Pid, this.vethPlan(d, l, ep, `eth${n}`, false), hostIf, false);
      } catch (e) {
        l.pool.release(ep.IPAddress);
        if (ep.GlobalIPv6Address) l.pool6?.release(ep.GlobalIPv6Address);
        throw e;
      }
      c.Berth.NetIfaces = { ...(c.Berth.NetIfaces ?? {}), [d.Id]: `eth${n}` };
      c.Berth.NetVeths = { ...(c.Berth.NetVeths ?? {}), [d.Id]: hostIf };
      eps[d.Name] = ep;
      c.NetworkSettings.Networks = eps;
      const nowDns = this.dnsServerFor(c);
      if (!hadDns && nowDns) await this.rewriteResolv(c, nowDns).catch((e) => process.stderr.write(`berthd: resolv.conf of ${c.Id.slice(0, 12)}: ${errorMessage(e)}\n`));
    }
    eps[d.Name] = ep;
    c.NetworkSettings.Networks = eps;
    this.syncLegacy(c);
    this.events.publish("network", "connect", d.Id, { container: c.Id, name: d.Name, type: "bridge" });
  }

  /** resolv.conf pointed at the embedded DNS, written in place (the container bind-mounts that very file). */
  private async rewriteResolv(c: ContainerRecord, embedded: string): Promise<void> {
    if (!c.ResolvConfPath) return;
    const text = await containerResolv({
      embedded, search: c.HostConfig.DnsSearch as string[] | undefined, options: c.HostConfig.DnsOptions as string[] | undefined,
    });
    await fsp.writeFile(c.ResolvConfPath, text);
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
      if (ep.GlobalIPv6Address) this.live.get(d.Id)?.pool6?.release(ep.GlobalIPv6Address);
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

/** "db:alias" → ["db", "alias"]; "db" → ["db", "db"]; a leading "/" (Docker's form) is dropped. */
function splitLink(l: string): [string, string] {
  const [t, a] = l.split(":");
  const target = (t ?? "").replace(/^\//, "");
  const alias = (a ?? target).replace(/^.*\//, "");
  return [target, alias];
}
