/** The shape of a `berth compose` subcommand (cli.ts dispatches; run.ts, commands.ts and watch.ts define some). */
import type { ApiClient } from "../api/client.js";
import type { FlagSpec, Flags } from "../lib/args.js";
import type { Orchestrator } from "./orchestrator.js";

/** What the berth CLI hands the plugin: the API client and its output. */
export interface Ctx { api: ApiClient; out(s: string): void; err(s: string): void }

export interface Sub {
  name: string; usage: string; desc: string; flags: FlagSpec[]; stop?: boolean;
  /** Commands that can run from -p alone when there is no compose file (down, ps, logs...). */
  noFile?: boolean;
  /** Commands that need no project at all (ls). */
  noProject?: boolean;
  run(c: Ctx, o: Orchestrator, f: Flags, a: string[]): Promise<number>;
}

export const timeoutFlag: FlagSpec = { long: "timeout", short: "t", type: "int", desc: "Specify a shutdown timeout in seconds" };

/** The flags that name a project (files, name, directory, profiles, env files): `berth compose`'s and `berth kube generate`'s. */
export const PROJECT_FLAGS: FlagSpec[] = [
  { long: "file", short: "f", type: "list", desc: "Compose configuration files" },
  { long: "project-name", short: "p", type: "string", desc: "Project name" },
  { long: "project-directory", type: "string", desc: "Specify an alternate working directory" },
  { long: "profile", type: "list", desc: "Specify a profile to enable" },
  { long: "env-file", type: "list", desc: "Specify an alternate environment file" },
];

/** Reads a POST /containers/{id}/wait answer. */
export async function readWait(res: NodeJS.ReadableStream): Promise<number> {
  let text = "";
  for await (const c of res) text += c;
  const r = JSON.parse(text || "{}") as { StatusCode?: number; Error?: { Message?: string } | null };
  if (r.Error?.Message) throw new Error(`Error waiting for container: ${r.Error.Message}`);
  return r.StatusCode ?? 0;
}
