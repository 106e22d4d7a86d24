/**
 * The step implementations the solver (executor.ts) runs, one instruction at a time: ARG here, config
 * changes (config.ts), WORKDIR (workdir.ts), RUN (run.ts) and COPY/ADD (copy.ts).
 */
import { posix } from "node:path";
import type { Instruction } from "../dockerfile.js";
import { expandString } from "../expand.js";
import { configChange, configStep } from "./config.js";
import { vars, type State, type StepContext } from "./context.js";
import { copyStep } from "./copy.js";
import { runStep } from "./run.js";
import { workdirStep } from "./workdir.js";

export type { State, StepContext, StageResult } from "./context.js";
export { short, argEnv } from "./context.js";

export async function runInstruction(ctx: StepContext, st: State, ins: Instruction): Promise<void> {
  const v = vars(st);
  const ex = (s: string) => expandString(s, v, { escapeToken: ctx.escapeToken });
  switch (ins.keyword) {
    case "ARG":
      for (const a of ins.vars) {
        const dflt = a.value !== undefined ? ex(a.value) : ctx.globals.get(a.key);
        st.args.set(a.key, a.key in ctx.buildArgs ? ctx.buildArgs[a.key] : dflt);
        if (a.key in ctx.buildArgs) ctx.used.add(a.key);
      }
      return;
    case "WORKDIR":
      return workdirStep(ctx, st, ins, posix.resolve(st.config.WorkingDir || "/", ex(ins.path)));
    case "RUN":
      return runStep(ctx, st, ins, ex);
    case "COPY": case "ADD":
      return copyStep(ctx, st, ins, ex);
    default: {
      const change = configChange(ctx, st, ins, ex);
      if (change) return configStep(ctx, st, ins, change);
    }
  }
}
