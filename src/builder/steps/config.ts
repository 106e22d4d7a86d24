/**
 * Steps that change only the image config (ENV, LABEL, USER, CMD, ...): an image with an empty layer,
 * recorded as the classic builder records it ("#(nop)" history).
 */
import type { ContainerConfigSpec } from "../../oci/image.js";
import type { Instruction } from "../dockerfile.js";
import { processWords } from "../expand.js";
import { nopConfig } from "../types.js";
import { setEnv, vars, type State, type StepContext } from "./context.js";

export async function configStep(ctx: StepContext, st: State, ins: Instruction, change: (c: ContainerConfigSpec) => void): Promise<void> {
  const key = ctx.keyOf(st, ins);
  return ctx.once(st, key, async () => {
    const next = { ...st.config };
    change(next);
    st.image = await ctx.backend.commit(st.image, null, next, { created_by: `/bin/sh -c #(nop)  ${ins.original}`, empty_layer: true }, { containerConfig: nopConfig(next, ins.original, st.image) });
    st.config = next;
  });
}

/** How a config instruction changes the config (undefined: the instruction is not one). */
export function configChange(ctx: StepContext, st: State, ins: Instruction, ex: (s: string) => string): ((c: ContainerConfigSpec) => void) | undefined {
  const words = (xs: string[]) => xs.flatMap((x) => processWords(x, vars(st), { escapeToken: ctx.escapeToken }));
  switch (ins.keyword) {
    case "ENV": return (c) => { for (const p of ins.pairs) c.Env = setEnv(c.Env, p.key, ex(p.value)); };
    case "LABEL": return (c) => { c.Labels = { ...(c.Labels ?? {}) }; for (const p of ins.pairs) c.Labels[ex(p.key)] = ex(p.value); };
    case "MAINTAINER": return () => {};
    case "USER": return (c) => { c.User = ex(ins.user); };
    case "STOPSIGNAL": return (c) => { c.StopSignal = ex(ins.signal); };
    case "EXPOSE":
      return (c) => {
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of words(ins.ports)) c.ExposedPorts[p.includes("/") ? p : `${p}/tcp`] = {};
      };
    case "VOLUME":
      return (c) => {
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const p of words(ins.volumes)) c.Volumes[p] = {};
      };
    case "CMD":
      st.cmdSet = true;
      return (c) => { c.Cmd = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command; };
    case "ENTRYPOINT":
      // As Docker: a CMD inherited from the base image does not outlive a new ENTRYPOINT.
      return (c) => { c.Entrypoint = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command; if (!st.cmdSet) c.Cmd = null; };
    case "SHELL":
      st.shell = ins.shell;
      return (c) => { c.Shell = ins.shell; };
    case "HEALTHCHECK":
      return (c) => {
        const h = ins.health;
        c.Healthcheck = h.test[0] === "NONE" ? { Test: ["NONE"] } : { Test: h.test, Interval: h.interval, Timeout: h.timeout, StartPeriod: h.startPeriod, Retries: h.retries };
      };
    case "ONBUILD":
      return (c) => { (c as ContainerConfigSpec & { OnBuild?: string[] }).OnBuild = [...((c as { OnBuild?: string[] }).OnBuild ?? []), ins.expression]; };
    default: return undefined;
  }
}
