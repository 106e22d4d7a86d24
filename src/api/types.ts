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
