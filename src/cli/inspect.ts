/** `volume inspect`, `network inspect`: each object by name, printed as a JSON array or through --format. */
import type { Ctx } from "./command.js";
import type { Flags } from "../lib/args.js";
import { ApiError } from "../api/client.js";
import { compile } from "../lib/template.js";

export async function inspectEach(c: Ctx, f: Flags, names: string[], path: (name: string) => string): Promise<number> {
  const out: unknown[] = [];
  let failed = 0;
  for (const n of names) {
    try { out.push(await c.api.json("GET", path(encodeURIComponent(n)))); }
    catch (e) { failed++; c.err(e instanceof ApiError ? `Error response from daemon: ${e.message}\n` : `${(e as Error).message}\n`); }
  }
  if (f.format) { const tpl = compile(String(f.format)); for (const o of out) c.out(tpl(o) + "\n"); }
  else c.out(JSON.stringify(out, null, 4) + "\n");
  return failed ? 1 : 0;
}
