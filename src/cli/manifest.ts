/**
 * `berth manifest create|annotate|inspect|push|rm`, as `docker manifest` (flags, output), over berth's
 * /berth/manifests routes: the lists live in the daemon as local index images (engine/manifests.ts).
 */
import type { Command } from "./command.js";
import { UsageError } from "../lib/args.js";
import { ApiError, jsonLines } from "../api/client.js";
import { authHeader } from "./registry.js";

const full = (name: string): string => {
  // What docker prints: the fully qualified name (docker.io/library/x:latest).
  let n = name;
  const first = n.split("/")[0];
  if (!n.includes("/") || !(first.includes(".") || first.includes(":") || first === "localhost")) n = `docker.io/${n.includes("/") ? n : `library/${n}`}`;
  const last = n.slice(n.lastIndexOf("/") + 1);
  return last.includes(":") || last.includes("@") ? n : `${n}:latest`;
};

/**
 * As docker manifest inspect prints: a list as its own struct (schemaVersion, mediaType, manifests of
 * mediaType, size, digest, platform) indented by three spaces; a single manifest as the registry's bytes
 * indented by tabs.
 */
export function formatManifest(m: unknown): string {
  const o = m as { schemaVersion?: number; mediaType?: string; manifests?: Record<string, unknown>[] };
  if (!o || !Array.isArray(o.manifests)) return JSON.stringify(m, null, "\t");
  const platform = (p: Record<string, unknown> | undefined) => {
    const out: Record<string, unknown> = { architecture: p?.architecture ?? "", os: p?.os ?? "" };
    for (const k of ["os.version", "os.features", "variant", "features"]) if (p?.[k] !== undefined && p[k] !== "" && !(Array.isArray(p[k]) && !(p[k] as unknown[]).length)) out[k] = p[k];
    return out;
  };
  const list = {
    schemaVersion: o.schemaVersion ?? 2, mediaType: o.mediaType ?? "",
    manifests: o.manifests.map((e) => ({ mediaType: e.mediaType, size: e.size, digest: e.digest, platform: platform(e.platform as Record<string, unknown> | undefined) })),
  };
  return JSON.stringify(list, null, 3);
}

/** docker manifest works in the client: its errors print as they are, with no "Error response from daemon". */
const plainErrors = (cmd: Command): Command => ({
  ...cmd,
  run: async (c, f, a) => {
    try { return await cmd.run(c, f, a); } catch (e) {
      if (e instanceof ApiError) { c.err(`${e.message}\n`); return 1; }
      throw e;
    }
  },
});

const commands: Command[] = [
  {
    name: "manifest create", usage: "manifest create MANIFEST_LIST MANIFEST [MANIFEST...]", desc: "Create a local manifest list for annotating and pushing to a registry",
    flags: [{ long: "amend", short: "a", type: "bool", desc: "Amend an existing manifest list" }, { long: "insecure", type: "bool", desc: "Allow communication with an insecure registry" }],
    run: async (c, f, a) => {
      if (a.length < 2) throw new UsageError(`"manifest create" requires at least 2 arguments.`);
      await c.api.json("POST", "/berth/manifests/create", { query: { name: a[0], image: a.slice(1), amend: f.amend ? "1" : undefined }, headers: authHeader(a[1]) });
      c.out(`Created manifest list ${full(a[0])}\n`);
      return 0;
    },
  },
  {
    name: "manifest annotate", usage: "manifest annotate [OPTIONS] MANIFEST_LIST MANIFEST", desc: "Add additional information to a local image manifest",
    flags: [
      { long: "arch", type: "string", desc: "Set architecture" }, { long: "os", type: "string", desc: "Set operating system" },
      { long: "os-features", type: "list", desc: "Set operating system feature" }, { long: "os-version", type: "string", desc: "Set operating system version" },
      { long: "variant", type: "string", desc: "Set architecture variant" },
    ],
    run: async (c, f, a) => {
      if (a.length !== 2) throw new UsageError(`"manifest annotate" requires exactly 2 arguments.`);
      await c.api.json("POST", "/berth/manifests/annotate", {
        query: { name: a[0], image: a[1], os: (f.os as string) || undefined, arch: (f.arch as string) || undefined, variant: (f.variant as string) || undefined, osfeatures: (f["os-features"] as string[] | undefined)?.flatMap((x) => x.split(",")) },
      });
      return 0;
    },
  },
  {
    name: "manifest inspect", usage: "manifest inspect [OPTIONS] [MANIFEST_LIST] MANIFEST", desc: "Display an image manifest, or manifest list",
    flags: [{ long: "insecure", type: "bool", desc: "Allow communication with an insecure registry" }, { long: "verbose", short: "v", type: "bool", desc: "Output additional info including layers and platform" }],
    run: async (c, _f, a) => {
      if (a.length < 1 || a.length > 2) throw new UsageError(`"manifest inspect" requires at least 1 and at most 2 arguments.`);
      const name = a[a.length - 1];
      const m = await c.api.json<unknown>("GET", "/berth/manifests/inspect", { query: { name }, headers: authHeader(name) });
      c.out(formatManifest(m) + "\n");
      return 0;
    },
  },
  {
    name: "manifest push", usage: "manifest push [OPTIONS] MANIFEST_LIST [DESTINATION]", desc: "Push a manifest list to a repository",
    flags: [{ long: "insecure", type: "bool", desc: "Allow push to an insecure registry" }, { long: "purge", short: "p", type: "bool", desc: "Remove the local manifest list after push" }],
    run: async (c, f, a) => {
      if (a.length < 1 || a.length > 2) throw new UsageError(`"manifest push" requires at least 1 and at most 2 arguments.`);
      const res = await c.api.stream("POST", "/berth/manifests/push", { query: { name: a[0], dest: a[1], purge: f.purge ? "1" : undefined }, headers: authHeader(a[1] ?? a[0]) });
      for await (const m of jsonLines<{ status?: string; id?: string; error?: string }>(res)) {
        if (m.error) { c.err(`${m.error}\n`); return 1; }
        if (m.status === "pushed" && m.id) c.out(`${m.id}\n`);
      }
      return 0;
    },
  },
  {
    name: "manifest rm", usage: "manifest rm MANIFEST_LIST [MANIFEST_LIST...]", desc: "Delete one or more manifest lists from local storage", flags: [],
    run: async (c, _f, a) => {
      if (a.length < 1) throw new UsageError(`"manifest rm" requires at least 1 argument.`);
      await c.api.json("DELETE", "/berth/manifests", { query: { name: a } });
      return 0;
    },
  },
];

export const manifestCommands: Command[] = commands.map(plainErrors);
