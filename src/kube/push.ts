/**
 * `kube generate --push REGISTRY`: each service that builds is built (through the compose
 * orchestrator's build, over the API), tagged REGISTRY/<project>-<service> and pushed; the answer is
 * the pushed reference by digest (REGISTRY/<project>-<service>@sha256:...), which a cluster can pull.
 */
import type { ApiClient } from "../api/client.js";
import { jsonLines } from "../api/client.js";
import { Orchestrator, type Project } from "../compose/index.js";
import { kubeName } from "./generate.js";

export class PushError extends Error {}

/** Pushes NAME:TAG through the daemon; the digest the registry took. */
export async function pushImage(api: ApiClient, name: string, tag: string, progress: (s: string) => void): Promise<string> {
  // An empty auth (as the docker CLI sends with no credentials): `{}` base64.
  const res = await api.stream("POST", `/images/${name}/push`, { query: { tag }, headers: { "X-Registry-Auth": "e30=" } });
  let digest: string | undefined;
  for await (const m of jsonLines<{ status?: string; id?: string; error?: string; aux?: { Digest?: string } }>(res)) {
    if (m.error) throw new PushError(`push ${name}:${tag}: ${m.error}`);
    if (m.aux?.Digest) digest = m.aux.Digest;
    const d = /digest: (sha256:[0-9a-f]{64})/.exec(m.status ?? "");
    if (d) digest = d[1];
    if (m.status) progress(`${m.id ? `${m.id}: ` : ""}${m.status}\n`);
  }
  if (!digest) throw new PushError(`push ${name}:${tag}: the daemon did not say the pushed digest`);
  return digest;
}

/** Builds, tags and pushes every service with build:; service name → REGISTRY/repo@digest. */
export async function buildAndPush(api: ApiClient, p: Project, registry: string, progress: (s: string) => void): Promise<Record<string, string>> {
  const o = new Orchestrator(api, p, { progress, out: progress });
  const out: Record<string, string> = {};
  const reg = registry.replace(/\/+$/, "");
  for (const s of Object.values(p.services).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!s.build) continue;
    await o.build(s);
    const local = o.imageName(s);
    const repo = `${reg}/${kubeName(`${p.name}-${s.name}`)}`;
    const { status } = await api.request("POST", `/images/${encodeURIComponent(local)}/tag`, { query: { repo, tag: "latest" } });
    if (status >= 300) throw new PushError(`tag ${local} as ${repo}: status ${status}`);
    progress(` Service ${s.name}  Pushing ${repo}:latest\n`);
    out[s.name] = `${repo}@${await pushImage(api, repo, "latest", () => {})}`;
    progress(` Service ${s.name}  Pushed ${out[s.name]}\n`);
  }
  return out;
}
