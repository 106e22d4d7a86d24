/** The shape of a `berth` command. */
import type { ApiClient } from "../api/client.js";
import type { FlagSpec, Flags } from "../lib/args.js";

export interface Ctx {
  api: ApiClient;
  out(s: string): void;
  err(s: string): void;
}

export interface Command {
  /** "run", or "image ls" for sub-commands. */
  name: string;
  usage: string;
  desc: string;
  flags: FlagSpec[];
  /** Stop parsing flags at the first positional argument (run, exec). */
  stop?: boolean;
  /** Commands that need no daemon (version --client, help). */
  local?: boolean;
  run(c: Ctx, flags: Flags, args: string[]): Promise<number>;
}

/** An error whose exit status is not the default 1 (docker exits 125 when it cannot learn a container's status). */
export class ExitError extends Error {
  constructor(message: string, readonly code: number) { super(message); this.name = "ExitError"; }
}
