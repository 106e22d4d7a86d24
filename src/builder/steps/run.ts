/** RUN: the command in a container of the stage's image, with its mounts, committed as the step's image. */
import { BuildCancelledError } from "../errors.js";
import { SystemError } from "../../lib/errors.js";
import type { HistoryEntry } from "../../oci/image.js";
import { parseRunMount, type Instruction } from "../dockerfile.js";
import { sshMount, checkEntitlements } from "../ssh.js";
import type { RunMountSpec, StepConfig } from "../types.js";
import { argEnv, envMap, short, type State, type StepContext } from "./context.js";
import { runMount, stubDirs } from "./mounts.js";

type RunInstruction = Extract<Instruction, { keyword: "RUN" }>;

export async function runStep(ctx: StepContext, st: State, ins: RunInstruction, ex: (s: string) => string): Promise<void> {
  const { backend, opts } = ctx;
  const secretEnv: string[] = [];
  // As BuildKit: --network=host and --security=insecure need the build's entitlement.
  checkEntitlements(ins, opts.allow ?? []);
  const parsed = ins.mounts.map((m) => parseRunMount(m, ex));
  const mounts = parsed.map((m) => runMount(opts, m, st, secretEnv));
  const key = ctx.keyOf(st, ins);
  return ctx.once(st, key, async () => {
    // ssh agents: a socket of this step's own per mount, SSH_AUTH_SOCK the first one's (unless the image sets it).
    const ssh = await sshMount(parsed, opts.ssh, st.config.WorkingDir || "/", envMap(st.config.Env).has("SSH_AUTH_SOCK"));
    mounts.push(...ssh.mounts);
    secretEnv.push(...ssh.env);
    await stubDirs(backend, st, mounts);
    let cmd = ins.shellForm ? [...st.shell, ins.command[0]] : ins.command;
    if (ins.heredocs.length && ins.shellForm) cmd = [...st.shell, ins.command[0] + "\n" + ins.heredocs.map((h) => h.content).join("")];
    const history: HistoryEntry = { created_by: ins.shellForm ? `/bin/sh -c ${ins.command[0]}` : `/bin/sh -c #(nop) RUN ${JSON.stringify(ins.command)}` };
    // As the classic builder records it: the build args the command saw come first, as "|<n> K=V ...".
    const args = argEnv(st);
    const cc: StepConfig = { ...st.config, Cmd: args.length ? [`|${args.length}`, ...args, ...cmd] : cmd, Image: st.image ?? "" };
    // Secrets given as environment variables are the command's only: not in the recorded config or history.
    const r = await backend.run(st.image, cmd, [...args, ...secretEnv], st.config, history, st.output, (cid) => st.say(` ---> Running in ${short(cid)}\n`),
      mounts.filter((m): m is RunMountSpec => !!m), cc, ctx.signal, { network: ins.network === "default" ? opts.network || "default" : ins.network, privileged: ins.security === "insecure" });
    if (ctx.signal.aborted && !r.image) throw new BuildCancelledError();
    if (r.exitCode !== 0 || !r.image) {
      throw new SystemError(`The command '${cmd.join(" ")}' returned a non-zero code: ${r.exitCode}`);
    }
    st.image = r.image;
  });
}
