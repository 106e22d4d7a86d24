/**
 * WORKDIR, as the classic builder: the directory is made when missing (with its missing parents, root's
 * and 0755 whatever the USER, as dockerd 20.10 makes them), in a layer of its own; an existing one is
 * left as it is and the step only changes the config.
 */
import { BadParameterError } from "../../lib/errors.js";
import type { TarEntry } from "../../lib/tar-writer.js";
import type { Instruction } from "../dockerfile.js";
import { destPlan } from "../sources.js";
import { nopConfig, type StepMeta } from "../types.js";
import type { State, StepContext } from "./context.js";

export async function workdirStep(ctx: StepContext, st: State, ins: Instruction, dir: string): Promise<void> {
  const key = ctx.keyOf(st, ins, dir);
  return ctx.once(st, key, async () => {
    const next = { ...st.config, WorkingDir: dir };
    const plan = await ctx.backend.withRootfs(st.image, async (rootfs) => destPlan(rootfs, dir));
    if (plan.blocked) throw new BadParameterError(`mkdir ${dir}: not a directory`);
    const step = `WORKDIR ${dir}`;
    const created_by = `/bin/sh -c #(nop) ${step}`;
    const meta: StepMeta = { containerConfig: nopConfig(next, step, st.image, true) };
    if (!plan.missing.length) {
      st.image = await ctx.backend.commit(st.image, null, next, { created_by, empty_layer: true }, meta);
    } else {
      const now = new Date();
      const entries: TarEntry[] = [
        ...plan.existing.map((e) => ({ ...e })),
        ...plan.missing.map((p): TarEntry => ({ name: p, type: "directory", mode: 0o755, uid: 0, gid: 0, mtime: now })),
      ];
      st.image = await ctx.backend.commit(st.image, entries, next, { created_by }, meta);
    }
    st.config = next;
  });
}
