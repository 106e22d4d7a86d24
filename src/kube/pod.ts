import type { Ctx } from "./cli.js";
export async function podCommand(c: Ctx, _argv: string[]): Promise<number> { c.err("berth pod: not yet\n"); return 1; }
