/**
 * The Engine API's request and response types, shared by the server (which
 * validates every body against the schemas here, at the door) and the client
 * (which imports the types only: `import type`, so nothing of this file runs
 * on the CLI's start).
 *
 * The schemas follow the Go types of the Docker API (moby's api/types) with
 * Go's names, so a wrong type gets dockerd's own wording:
 *   json: cannot unmarshal number into Go struct field ContainerConfigWrapper.Image of type string
 *   json: cannot unmarshal string into Go struct field HostConfig.HostConfig.Memory of type int64
 * Only the fields berth reads are typed; others pass through unread.
 */
import { arr, bool, int, map, str, strSlice, struct, type Infer } from "./validate.js";

// ------------------------------------------------------------------ containers

const strs = arr(str());
const strMap = map(str());
/** struct {}: any object (its fields are ignored). */
const empty = struct("struct {}", {});

export const HealthConfigSchema = struct("container.HealthConfig", {
  Test: strs, Interval: int("time.Duration"), Timeout: int("time.Duration"), StartPeriod: int("time.Duration"),
  StartInterval: int("time.Duration"), Retries: int("int"),
});

/** container.Config: the portable part of a create request (and the body of POST /commit). */
const configFields = {
  Hostname: str(), Domainname: str(), User: str(),
  AttachStdin: bool(), AttachStdout: bool(), AttachStderr: bool(),
  ExposedPorts: map(empty, "nat.PortSet"),
  Tty: bool(), OpenStdin: bool(), StdinOnce: bool(),
  Env: strs, Cmd: strSlice(), Healthcheck: HealthConfigSchema, ArgsEscaped: bool(),
  Image: str(), Volumes: map(empty, "map[string]struct {}"), WorkingDir: str(), Entrypoint: strSlice(),
  NetworkDisabled: bool(), MacAddress: str(), OnBuild: strs, Labels: strMap,
  StopSignal: str(), StopTimeout: int("int"), Shell: strSlice(),
};

const PortBinding = struct("nat.PortBinding", { HostIp: str(), HostPort: str() });
const Mount = struct("mount.Mount", {
  Type: str("mount.Type"), Source: str(), Target: str(), ReadOnly: bool(), Consistency: str("mount.Consistency"),
  BindOptions: struct("mount.BindOptions", { Propagation: str("mount.Propagation"), NonRecursive: bool() }),
  VolumeOptions: struct("mount.VolumeOptions", {
    NoCopy: bool(), Labels: strMap,
    DriverConfig: struct("mount.Driver", { Name: str(), Options: strMap }),
  }),
  TmpfsOptions: struct("mount.TmpfsOptions", { SizeBytes: int("int64"), Mode: int("os.FileMode") }),
});
const Ulimit = struct("units.Ulimit", { Name: str(), Hard: int("int64"), Soft: int("int64") });
const DeviceMapping = struct("container.DeviceMapping", { PathOnHost: str(), PathInContainer: str(), CgroupPermissions: str() });

export const HostConfigSchema = struct("container.HostConfig", {
  Binds: strs, ContainerIDFile: str(),
  LogConfig: struct("container.LogConfig", { Type: str(), Config: strMap }),
  NetworkMode: str("container.NetworkMode"),
  PortBindings: map(arr(PortBinding), "nat.PortMap"),
  RestartPolicy: struct("container.RestartPolicy", { Name: str(), MaximumRetryCount: int("int") }),
  AutoRemove: bool(), VolumeDriver: str(), VolumesFrom: strs,
  ConsoleSize: arr(int("uint"), "[2]uint"),
  CapAdd: strSlice(), CapDrop: strSlice(), CgroupnsMode: str("container.CgroupnsMode"),
  Dns: strs, DnsOptions: strs, DnsSearch: strs, ExtraHosts: strs, GroupAdd: strs,
  IpcMode: str("container.IpcMode"), Cgroup: str("container.CgroupSpec"), Links: strs, OomScoreAdj: int("int"),
  PidMode: str("container.PidMode"), Privileged: bool(), PublishAllPorts: bool(), ReadonlyRootfs: bool(),
  SecurityOpt: strs, StorageOpt: strMap, Tmpfs: strMap, UTSMode: str("container.UTSMode"), UsernsMode: str("container.UsernsMode"),
  ShmSize: int("int64"), Sysctls: strMap, Runtime: str(), Isolation: str("container.Isolation"),
  // Resources (embedded in Go: its fields sit in HostConfig)
  CpuShares: int("int64"), Memory: int("int64"), NanoCpus: int("int64"), CgroupParent: str(), BlkioWeight: int("uint16"),
  CpuPeriod: int("int64"), CpuQuota: int("int64"), CpuRealtimePeriod: int("int64"), CpuRealtimeRuntime: int("int64"),
  CpusetCpus: str(), CpusetMems: str(), Devices: arr(DeviceMapping), DeviceCgroupRules: strs,
  KernelMemory: int("int64"), KernelMemoryTCP: int("int64"), MemoryReservation: int("int64"), MemorySwap: int("int64"),
  MemorySwappiness: int("int64"), OomKillDisable: bool(), PidsLimit: int("int64"), Ulimits: arr(Ulimit),
  CpuCount: int("int64"), CpuPercent: int("int64"), IOMaximumIOps: int("uint64"), IOMaximumBandwidth: int("uint64"),
  Mounts: arr(Mount), MaskedPaths: strs, ReadonlyPaths: strs, Init: bool(),
});

export const EndpointSettingsSchema = struct("network.EndpointSettings", {
  IPAMConfig: struct("network.EndpointIPAMConfig", { IPv4Address: str(), IPv6Address: str(), LinkLocalIPs: strs }),
  Links: strs, Aliases: strs, NetworkID: str(), EndpointID: str(), Gateway: str(), IPAddress: str(), IPPrefixLen: int("int"),
  IPv6Gateway: str(), GlobalIPv6Address: str(), GlobalIPv6PrefixLen: int("int"), MacAddress: str(), DriverOpts: strMap,
});

export const NetworkingConfigSchema = struct("network.NetworkingConfig", {
  EndpointsConfig: map(EndpointSettingsSchema, "network.EndpointSettings"),
});

/** POST /containers/create (Go: runconfig.ContainerConfigWrapper). */
export const ContainerCreateSchema = struct("runconfig.ContainerConfigWrapper", {
  ...configFields, HostConfig: HostConfigSchema, NetworkingConfig: NetworkingConfigSchema,
});
export type ContainerCreateRequest = Infer<typeof ContainerCreateSchema>;

/** POST /commit's body: a container.Config (decoded, as Docker does, by the create decoder). */
export const CommitConfigSchema = struct("runconfig.ContainerConfigWrapper", configFields);
export type CommitConfig = Infer<typeof CommitConfigSchema>;

/** POST /containers/{id}/update (Go: container.UpdateConfig: the Resources and a RestartPolicy). */
export const ContainerUpdateSchema = struct("container.UpdateConfig", {
  CpuShares: int("int64"), Memory: int("int64"), NanoCpus: int("int64"), BlkioWeight: int("uint16"),
  CpuPeriod: int("int64"), CpuQuota: int("int64"), CpuRealtimePeriod: int("int64"), CpuRealtimeRuntime: int("int64"),
  CpusetCpus: str(), CpusetMems: str(), KernelMemory: int("int64"), KernelMemoryTCP: int("int64"),
  MemoryReservation: int("int64"), MemorySwap: int("int64"), PidsLimit: int("int64"),
  RestartPolicy: struct("container.RestartPolicy", { Name: str(), MaximumRetryCount: int("int") }),
});
export type ContainerUpdateRequest = Infer<typeof ContainerUpdateSchema>;

export interface ContainerCreateResponse { Id: string; Warnings: string[] }
export interface ContainerWaitResponse { StatusCode: number; Error: { Message: string } | null }

// ------------------------------------------------------------------ exec

/** POST /containers/{id}/exec (Go: types.ExecConfig; Cmd is a plain []string there). */
export const ExecCreateSchema = struct("types.ExecConfig", {
  User: str(), Privileged: bool(), Tty: bool(), ConsoleSize: arr(int("uint"), "[2]uint"),
  AttachStdin: bool(), AttachStderr: bool(), AttachStdout: bool(), Detach: bool(), DetachKeys: str(),
  Env: strs, WorkingDir: str(), Cmd: strs,
});
export type ExecCreateRequest = Infer<typeof ExecCreateSchema>;

/** POST /exec/{id}/start (Go: types.ExecStartCheck). */
export const ExecStartSchema = struct("types.ExecStartCheck", { Detach: bool(), Tty: bool(), ConsoleSize: arr(int("uint"), "[2]uint") });
export type ExecStartRequest = Infer<typeof ExecStartSchema>;

export interface IdResponse { Id: string }

// ------------------------------------------------------------------ volumes

/** POST /volumes/create (Go: volume.VolumeCreateBody). */
export const VolumeCreateSchema = struct("volume.VolumeCreateBody", { Driver: str(), DriverOpts: strMap, Labels: strMap, Name: str() });
export type VolumeCreateRequest = Infer<typeof VolumeCreateSchema>;

/** Docker's rule for local volume names, and berth's cap (a name is a directory name: 255 bytes at most). */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
export const VOLUME_NAME_MAX = 255;

// ------------------------------------------------------------------ networks

const IPAMConfig = struct("network.IPAMConfig", { Subnet: str(), IPRange: str(), Gateway: str(), AuxiliaryAddresses: strMap });

/** POST /networks/create (Go: types.NetworkCreateRequest). */
export const NetworkCreateSchema = struct("types.NetworkCreateRequest", {
  Name: str(), CheckDuplicate: bool(), Driver: str(), Scope: str(), EnableIPv6: bool(),
  IPAM: struct("network.IPAM", { Driver: str(), Options: strMap, Config: arr(IPAMConfig) }),
  Internal: bool(), Attachable: bool(), Ingress: bool(), ConfigOnly: bool(),
  ConfigFrom: struct("network.ConfigReference", { Network: str() }),
  Options: strMap, Labels: strMap,
});
export type NetworkCreateRequest = Infer<typeof NetworkCreateSchema>;

/** POST /networks/{id}/connect (Go: types.NetworkConnect). */
export const NetworkConnectSchema = struct("types.NetworkConnect", { Container: str(), EndpointConfig: EndpointSettingsSchema });
export type NetworkConnectRequest = Infer<typeof NetworkConnectSchema>;

/** POST /networks/{id}/disconnect (Go: types.NetworkDisconnect). */
export const NetworkDisconnectSchema = struct("types.NetworkDisconnect", { Container: str(), Force: bool() });
export type NetworkDisconnectRequest = Infer<typeof NetworkDisconnectSchema>;

export interface NetworkCreateResponse { Id: string; Warning: string }

// ------------------------------------------------------------------ auth

/** POST /auth (Go: types.AuthConfig, lower-case JSON names). */
export const AuthSchema = struct("types.AuthConfig", {
  username: str(), password: str(), auth: str(), email: str(), serveraddress: str(), identitytoken: str(), registrytoken: str(),
});
export type AuthRequest = Infer<typeof AuthSchema>;

export interface AuthResponse { Status: string; IdentityToken: string }

// ------------------------------------------------------------------ errors, streams

/** Every error answer's body. */
export interface ErrorResponse { message: string }

/** One line of a JSON progress stream (pull, push, build, load). */
export interface ProgressMessage {
  status?: string; id?: string; progress?: string; stream?: string; aux?: unknown;
  progressDetail?: { current?: number; total?: number };
  error?: string; errorDetail?: { message: string };
}

/** Filters as sent in the `filters` query parameter (the current form). */
export type Filters = Record<string, string[]>;

// ================================================================== responses
//
// What the daemon answers, named as in moby's api/swagger.yaml (API 1.47). Interfaces only: the CLI and
// compose import them with `import type`, so nothing here runs on their start. The fields berth's CLI,
// compose and tests read are typed precisely; a shape Docker leaves open is an index signature or unknown.

/** A string-to-string map (labels, options, driver data). */
export type StringMap = Record<string, string>;

// ------------------------------------------------------------------ containers

export interface Port { IP?: string; PrivatePort: number; PublicPort?: number; Type: "tcp" | "udp" | "sctp" | string }
export interface PortBinding { HostIp: string; HostPort: string }
/** nat.PortMap: "80/tcp" → its host bindings (null: exposed, not published). */
export type PortMap = Record<string, PortBinding[] | null>;

/** MountPoint (inspect's Mounts, and the summary's). */
export interface MountPoint {
  Type: "bind" | "volume" | "tmpfs" | "npipe" | "cluster" | string;
  Name?: string; Source: string; Destination: string; Driver?: string; Mode: string; RW: boolean; Propagation: string;
}

/** EndpointSettings: a container's endpoint on one network. */
export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] | null } | null;
  Links: string[] | null; Aliases: string[] | null; MacAddress?: string; DriverOpts?: StringMap | null;
  NetworkID: string; EndpointID: string; Gateway: string; IPAddress: string; IPPrefixLen: number;
  IPv6Gateway: string; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number; DNSNames?: string[] | null;
}

/** GET /containers/json: one row (ContainerSummary). */
export interface ContainerSummary {
  Id: string; Names: string[]; Image: string; ImageID: string; Command: string; Created: number;
  Ports: Port[]; SizeRw?: number; SizeRootFs?: number; Labels: StringMap; State: string; Status: string;
  HostConfig: { NetworkMode: string; Annotations?: StringMap };
  NetworkSettings: { Networks: Record<string, EndpointSettings> };
  Mounts: MountPoint[];
}

export interface HealthcheckResult { Start: string; End: string; ExitCode: number; Output: string }
export interface Health { Status: "none" | "starting" | "healthy" | "unhealthy" | string; FailingStreak: number; Log: HealthcheckResult[] | null }

/** ContainerState. */
export interface ContainerState {
  Status: "created" | "running" | "paused" | "restarting" | "removing" | "exited" | "dead" | string;
  Running: boolean; Paused: boolean; Restarting: boolean; OOMKilled: boolean; Dead: boolean;
  Pid: number; ExitCode: number; Error: string; StartedAt: string; FinishedAt: string; Health?: Health;
}

/** container.Config (inspect's Config; an image's Config and ContainerConfig). */
export interface ContainerConfig {
  Hostname: string; Domainname: string; User: string;
  AttachStdin: boolean; AttachStdout: boolean; AttachStderr: boolean;
  ExposedPorts?: Record<string, object> | null;
  Tty: boolean; OpenStdin: boolean; StdinOnce: boolean;
  Env: string[] | null; Cmd: string[] | null; Healthcheck?: { Test?: string[] | null; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
  ArgsEscaped?: boolean; Image: string; Volumes: Record<string, object> | null; WorkingDir: string; Entrypoint: string[] | null;
  NetworkDisabled?: boolean; MacAddress?: string; OnBuild: string[] | null; Labels: StringMap | null;
  StopSignal?: string; StopTimeout?: number; Shell?: string[] | null;
}

export interface RestartPolicy { Name: "" | "no" | "always" | "unless-stopped" | "on-failure" | string; MaximumRetryCount: number }

/** HostConfig as inspect answers it (every field of the swagger's HostConfig, with Docker's defaults). */
export interface HostConfig {
  Binds: string[] | null; ContainerIDFile: string; LogConfig: { Type: string; Config: StringMap };
  NetworkMode: string; PortBindings: PortMap; RestartPolicy: RestartPolicy; AutoRemove: boolean;
  VolumeDriver: string; VolumesFrom: string[] | null; ConsoleSize: [number, number];
  CapAdd: string[] | null; CapDrop: string[] | null; CgroupnsMode: string;
  Dns: string[]; DnsOptions: string[]; DnsSearch: string[]; ExtraHosts: string[] | null; GroupAdd: string[] | null;
  IpcMode: string; Cgroup: string; Links: string[] | null; OomScoreAdj: number; PidMode: string;
  Privileged: boolean; PublishAllPorts: boolean; ReadonlyRootfs: boolean; SecurityOpt: string[] | null;
  StorageOpt?: StringMap; Tmpfs?: StringMap; UTSMode: string; UsernsMode: string; ShmSize: number;
  Sysctls?: StringMap; Runtime: string; Isolation: string;
  CpuShares: number; Memory: number; NanoCpus: number; CgroupParent: string; BlkioWeight: number;
  BlkioWeightDevice: unknown[] | null; BlkioDeviceReadBps: unknown[] | null; BlkioDeviceWriteBps: unknown[] | null;
  BlkioDeviceReadIOps: unknown[] | null; BlkioDeviceWriteIOps: unknown[] | null;
  CpuPeriod: number; CpuQuota: number; CpuRealtimePeriod: number; CpuRealtimeRuntime: number;
  CpusetCpus: string; CpusetMems: string;
  Devices: { PathOnHost: string; PathInContainer: string; CgroupPermissions: string }[] | null;
  DeviceCgroupRules: string[] | null; DeviceRequests: unknown[] | null;
  KernelMemory?: number; KernelMemoryTCP?: number; MemoryReservation: number; MemorySwap: number;
  MemorySwappiness: number | null; OomKillDisable: boolean | null; PidsLimit: number | null;
  Ulimits: { Name: string; Soft: number; Hard: number }[] | null;
  CpuCount: number; CpuPercent: number; IOMaximumIOps: number; IOMaximumBandwidth: number;
  MaskedPaths: string[] | null; ReadonlyPaths: string[] | null; Init?: boolean | null;
  Mounts?: { Type: string; Source?: string; Target: string; ReadOnly?: boolean; [option: string]: unknown }[];
}

/** NetworkSettings (inspect's). */
export interface NetworkSettings {
  Bridge: string; SandboxID: string; HairpinMode?: boolean; LinkLocalIPv6Address?: string; LinkLocalIPv6PrefixLen?: number;
  Ports: PortMap; SandboxKey: string; SecondaryIPAddresses?: unknown; SecondaryIPv6Addresses?: unknown;
  EndpointID: string; Gateway: string; GlobalIPv6Address: string; GlobalIPv6PrefixLen: number;
  IPAddress: string; IPPrefixLen: number; IPv6Gateway: string; MacAddress: string;
  Networks: Record<string, EndpointSettings>;
}

export interface GraphDriverData { Name: string; Data: StringMap | null }

/** GET /containers/{id}/json. */
export interface ContainerInspectResponse {
  Id: string; Created: string; Path: string; Args: string[]; State: ContainerState; Image: string;
  ResolvConfPath: string; HostnamePath: string; HostsPath: string; LogPath: string; Name: string; RestartCount: number;
  Driver: string; Platform: string; MountLabel: string; ProcessLabel: string; AppArmorProfile: string;
  ExecIDs: string[] | null; HostConfig: HostConfig; GraphDriver: GraphDriverData;
  SizeRw?: number; SizeRootFs?: number; Mounts: MountPoint[]; Config: ContainerConfig; NetworkSettings: NetworkSettings;
}

/** GET /containers/{id}/top. */
export interface ContainerTopResponse { Titles: string[]; Processes: string[][] }

/** GET /containers/{id}/changes: one entry (Kind 0 modified, 1 added, 2 deleted). */
export interface FilesystemChange { Path: string; Kind: 0 | 1 | 2 }

/** POST /containers/{id}/update. */
export interface ContainerUpdateResponse { Warnings: string[] | null }

/** The CPU figures of a stats sample. */
export interface CPUStats {
  cpu_usage: { total_usage: number; percpu_usage?: number[] | null; usage_in_kernelmode?: number; usage_in_usermode?: number };
  system_cpu_usage?: number; online_cpus?: number;
  throttling_data?: { periods: number; throttled_periods: number; throttled_time: number };
}

/** GET /containers/{id}/stats: the fields `docker stats` reads (ContainerStatsResponse). */
export interface ContainerStatsResponse {
  id: string; name: string; read: string; preread: string;
  cpu_stats: CPUStats; precpu_stats: CPUStats;
  memory_stats: { usage?: number; max_usage?: number; limit?: number; failcnt?: number; stats?: Record<string, number> };
  pids_stats: { current?: number; limit?: number };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number; rx_packets?: number; tx_packets?: number; rx_errors?: number; tx_errors?: number; rx_dropped?: number; tx_dropped?: number }> | null;
  blkio_stats?: { io_service_bytes_recursive?: { major?: number; minor?: number; op: string; value: number }[] | null; [field: string]: unknown };
  [field: string]: unknown;
}

/** POST /containers/prune. */
export interface ContainerPruneResponse { ContainersDeleted: string[] | null; SpaceReclaimed: number }

// ------------------------------------------------------------------ exec

/** GET /exec/{id}/json. */
export interface ExecInspectResponse {
  CanRemove: boolean; DetachKeys: string; ID: string; Running: boolean; ExitCode: number | null;
  ProcessConfig: { privileged: boolean; user?: string; tty: boolean; entrypoint: string; arguments: string[] };
  OpenStdin: boolean; OpenStderr: boolean; OpenStdout: boolean; ContainerID: string; Pid: number;
}

// ------------------------------------------------------------------ images

/** GET /images/json: one row (ImageSummary). Containers and SharedSize are -1 when not computed. */
export interface ImageSummary {
  Id: string; ParentId: string; RepoTags: string[] | null; RepoDigests: string[] | null; Created: number;
  Size: number; SharedSize: number; VirtualSize?: number; Labels: StringMap | null; Containers: number;
}

/** GET /images/{name}/json. */
export interface ImageInspectResponse {
  Id: string; RepoTags: string[]; RepoDigests: string[]; Parent: string; Comment: string; Created: string;
  Container?: string; ContainerConfig?: ContainerConfig; DockerVersion: string; Author: string; Config: ContainerConfig;
  Architecture: string; Variant?: string; Os: string; OsVersion?: string; Size: number; VirtualSize?: number;
  GraphDriver: GraphDriverData; RootFS: { Type: string; Layers?: string[] }; Metadata: { LastTagTime?: string };
}

/** GET /images/{name}/history: one entry (HistoryResponseItem). */
export interface HistoryResponseItem { Id: string; Created: number; CreatedBy: string; Tags: string[] | null; Size: number; Comment: string }

/** DELETE /images/{name}: one entry (ImageDeleteResponseItem). */
export interface ImageDeleteResponseItem { Untagged?: string; Deleted?: string }

/** POST /images/prune. */
export interface ImagePruneResponse { ImagesDeleted: ImageDeleteResponseItem[] | null; SpaceReclaimed: number }

/** POST /build/prune. */
export interface BuildCachePruneResponse { CachesDeleted: string[] | null; SpaceReclaimed: number }

// ------------------------------------------------------------------ networks

export interface IPAMConfigResponse { Subnet?: string; IPRange?: string; Gateway?: string; AuxiliaryAddresses?: StringMap }

/** GET /networks, GET /networks/{id} (NetworkResource / Network). */
export interface Network {
  Name: string; Id: string; Created: string; Scope: string; Driver: string; EnableIPv4?: boolean; EnableIPv6: boolean;
  IPAM: { Driver: string; Options: StringMap | null; Config: IPAMConfigResponse[] | null };
  Internal: boolean; Attachable: boolean; Ingress: boolean; ConfigFrom: { Network: string }; ConfigOnly: boolean;
  Containers: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: StringMap; Labels: StringMap;
}
export type NetworkResource = Network;

/** POST /networks/prune. */
export interface NetworkPruneResponse { NetworksDeleted: string[] | null }

// ------------------------------------------------------------------ volumes

/** GET /volumes/{name}. */
export interface Volume {
  Name: string; Driver: string; Mountpoint: string; CreatedAt?: string; Status?: Record<string, unknown>;
  Labels: StringMap | null; Scope: "local" | "global" | string; Options: StringMap | null;
  UsageData?: { Size: number; RefCount: number } | null;
}

/** GET /volumes. */
export interface VolumeListResponse { Volumes: Volume[] | null; Warnings: string[] | null }

/** POST /volumes/prune. */
export interface VolumePruneResponse { VolumesDeleted: string[] | null; SpaceReclaimed: number }

// ------------------------------------------------------------------ system

/** GET /info: the fields clients read (SystemInfo); the rest pass through. */
export interface SystemInfo {
  ID: string; Containers: number; ContainersRunning: number; ContainersPaused: number; ContainersStopped: number;
  Images: number; Driver: string; DriverStatus: [string, string][] | null; DockerRootDir: string;
  MemoryLimit: boolean; SwapLimit: boolean; CpuCfsPeriod: boolean; CpuCfsQuota: boolean; IPv4Forwarding: boolean;
  LoggingDriver: string; /** berth: the default log driver's options (the log cap) */ LogOpts?: Record<string, string>; CgroupDriver: string; CgroupVersion: string; KernelVersion: string; OperatingSystem: string;
  OSVersion: string; OSType: string; Architecture: string; NCPU: number; MemTotal: number; Name: string;
  Labels: string[]; ServerVersion: string; DefaultRuntime: string; Runtimes: Record<string, { path: string; runtimeArgs?: string[] }>;
  LiveRestoreEnabled: boolean; Isolation: string; SecurityOptions: string[];
  Swarm: { NodeID: string; NodeAddr: string; LocalNodeState: "" | "inactive" | "pending" | "active" | "error" | "locked" | string; ControlAvailable: boolean; Error: string; RemoteManagers: unknown };
  [field: string]: unknown;
}

/** One component of GET /version. */
export interface ComponentVersion { Name: string; Version: string; Details?: StringMap | null }

/** GET /version. */
export interface SystemVersion {
  Platform: { Name: string }; Components: ComponentVersion[];
  Version: string; ApiVersion: string; MinAPIVersion: string; GitCommit: string; GoVersion: string;
  Os: string; Arch: string; KernelVersion: string; Experimental?: boolean; BuildTime: string;
}

/** GET /system/df. */
export interface SystemDfResponse {
  LayersSize: number; Images: ImageSummary[]; Containers: ContainerSummary[]; Volumes: Volume[];
  BuildCache: { ID: string; Type: string; Size: number; InUse: boolean; Shared: boolean; [field: string]: unknown }[] | null;
}

/** GET /events: one message (EventMessage; time in seconds, timeNano in nanoseconds). */
export interface EventMessage {
  Type: "builder" | "config" | "container" | "daemon" | "image" | "network" | "node" | "plugin" | "secret" | "service" | "volume" | string;
  Action: string; Actor: { ID: string; Attributes: StringMap }; scope: "local" | "swarm" | string;
  time: number; timeNano: number;
  /** Deprecated fields dockerd still sends for container events. */
  status?: string; id?: string; from?: string;
}
