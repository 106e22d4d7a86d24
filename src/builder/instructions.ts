/**
 * The typed instructions (pass 2 of the parser: node → instruction, as BuildKit's
 * instructions.ParseInstruction): one interface per keyword, with its flags checked and its arguments
 * kept as written (expansion is the executor's, with the variables in scope at that step).
 */
import type { EscapeToken } from "./expand.js";
import { parseGoDuration } from "../lib/duration.js";
import { NodeError, DockerfileParseError } from "./errors.js";
import { isHeredocWord, type Node } from "./parser.js";
import { parseFlags, str, bool, strs, checkMountAtParse, type FlagValues } from "./flags.js";
export { DockerfileParseError };

/** Every instruction keyword Docker knows, upper case. */
export const KEYWORDS = [
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
  "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
] as const;
export type Keyword = (typeof KEYWORDS)[number];

/** A heredoc attached to a RUN/COPY/ADD line. */
export interface Heredoc {
  /** The delimiter word, quotes removed (`<<"EOF"` → `EOF`). */
  name: string;
  /** File descriptor written before `<<` (`3<<EOF`), 0 when none. */
  fd: number;
  /** False when any part of the delimiter was quoted: no variable expansion. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the body (see {@link heredocData}). */
  chomp: boolean;
  /** The body exactly as in the file, line endings included, tabs not yet stripped. */
  content: string;
}

/** Fields every instruction has. */
export interface InstructionBase extends Pick<Node, "flags" | "args" | "json" | "original" | "line" | "endLine" | "heredocs"> {
  keyword: Keyword;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface FromInstruction extends InstructionBase {
  keyword: "FROM";
  /** Base image (or stage name), unexpanded. */
  image: string;
  /** Stage name after AS, lower-cased. */
  name?: string;
  /** --platform value, unexpanded. */
  platform?: string;
}

export interface ArgInstruction extends InstructionBase {
  keyword: "ARG";
  /** Declared names and their defaults (undefined when none), unexpanded. */
  vars: { key: string; value: string | undefined }[];
}

export interface EnvInstruction extends InstructionBase {
  keyword: "ENV";
  /** Unexpanded; quotes and escapes are removed by expansion. */
  pairs: KeyValue[];
}

export interface LabelInstruction extends InstructionBase {
  keyword: "LABEL";
  pairs: KeyValue[];
}

export interface MaintainerInstruction extends InstructionBase {
  keyword: "MAINTAINER";
  maintainer: string;
}

interface CommandLine {
  /** Exec form: the argv. Shell form: one string, to run with the SHELL. */
  command: string[];
  /** True for the shell form (prepend the SHELL, e.g. `/bin/sh -c`). */
  shellForm: boolean;
}

export interface RunInstruction extends InstructionBase, CommandLine {
  keyword: "RUN";
  /** Raw --mount values (expand each field, then {@link parseRunMount}). */
  mounts: string[];
  network: "default" | "none" | "host";
  security: "sandbox" | "insecure";
}

export interface CmdInstruction extends InstructionBase, CommandLine {
  keyword: "CMD";
}

export interface EntrypointInstruction extends InstructionBase, CommandLine {
  keyword: "ENTRYPOINT";
}

export interface ShellInstruction extends InstructionBase {
  keyword: "SHELL";
  shell: string[];
}

export interface WorkdirInstruction extends InstructionBase {
  keyword: "WORKDIR";
  path: string;
}

export interface UserInstruction extends InstructionBase {
  keyword: "USER";
  user: string;
}

export interface StopsignalInstruction extends InstructionBase {
  keyword: "STOPSIGNAL";
  signal: string;
}

export interface ExposeInstruction extends InstructionBase {
  keyword: "EXPOSE";
  /** Unexpanded; Docker expands each with processWords (one may give several). */
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase {
  keyword: "VOLUME";
  volumes: string[];
}

/** A COPY/ADD source given inline as a heredoc: a file named `path` holding `data`. */
export interface InlineSource {
  path: string;
  /** Body with `<<-` tabs already stripped. */
  data: string;
  /** Expand variables in `data` (expand.ts expandHeredoc). */
  expand: boolean;
}

interface SourcesAndDest {
  /** Source paths/URLs, unexpanded; heredoc sources are in `contents`. */
  sources: string[];
  contents: InlineSource[];
  dest: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** --exclude patterns. */
  excludes: string[];
}

export interface CopyInstruction extends InstructionBase, SourcesAndDest {
  keyword: "COPY";
  from?: string;
  parents: boolean;
}

export interface AddInstruction extends InstructionBase, SourcesAndDest {
  keyword: "ADD";
  checksum?: string;
  keepGitDir: boolean;
  /** --unpack, undefined when not given (Docker's default: unpack local archives). */
  unpack?: boolean;
}

/** Docker's HealthConfig: durations in nanoseconds, absent = inherit/default. */
export interface HealthConfig {
  /** ["NONE"], ["CMD", ...argv] or ["CMD-SHELL", command]. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface HealthcheckInstruction extends InstructionBase {
  keyword: "HEALTHCHECK";
  health: HealthConfig;
}

export interface OnbuildInstruction extends InstructionBase {
  keyword: "ONBUILD";
  /** Keyword of the trigger, upper case (not validated, as in Docker). */
  trigger: string;
  /** The trigger text stored in the image config (heredocs appended). */
  expression: string;
}

/** An instruction inside a stage (FROM starts a stage and is not one of these). */
export type Instruction =
  | AddInstruction | ArgInstruction | CmdInstruction | CopyInstruction | EntrypointInstruction
  | EnvInstruction | ExposeInstruction | HealthcheckInstruction | LabelInstruction
  | MaintainerInstruction | OnbuildInstruction | RunInstruction | ShellInstruction
  | StopsignalInstruction | UserInstruction | VolumeInstruction | WorkdirInstruction;

export interface Stage {
  /** 0-based position; `--target` and `COPY --from=<n>` use it. */
  index: number;
  /** AS name, lower-cased; undefined for unnamed stages. */
  name?: string;
  /** Base image or earlier stage name, unexpanded (expand with the global ARGs). */
  image: string;
  platform?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export interface ParseWarning {
  line: number;
  message: string;
}

export interface Dockerfile {
  escapeToken: EscapeToken;
  /** Parser directives found at the top, lower-case names: syntax, escape, check. */
  directives: Record<string, string>;
  /** ARG instructions before the first FROM (usable in FROM lines). */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  warnings: ParseWarning[];
}

/** Heredoc body as a file gets it: with `<<-`, leading tabs of every line removed. */
export function heredocData(h: Heredoc): string {
  return h.chomp ? h.content.replace(/^\t+/gm, "") : h.content;
}



const atLeastOne = (k: string): NodeError => new NodeError(`${k} requires at least one argument`);
const exactlyOne = (k: string): NodeError => new NodeError(`${k} requires exactly one argument`);

export function parseInstruction(node: Node): FromInstruction | Instruction {
  try {
    return parseNode(node);
  } catch (e) {
    if (e instanceof NodeError) throw new DockerfileParseError(e.message, node.line, node.endLine);
    throw e;
  }
}

function parseNode(node: Node): FromInstruction | Instruction {
  const keyword = node.lower.toUpperCase();
  if (!(KEYWORDS as readonly string[]).includes(keyword)) {
    const hint = suggest(keyword);
    throw new NodeError(`unknown instruction: ${keyword}${hint ? ` (did you mean ${hint}?)` : ""}`);
  }
  const base = {
    flags: node.flags,
    args: node.args,
    json: node.json,
    original: node.original,
    line: node.line,
    endLine: node.endLine,
    heredocs: node.heredocs,
  };
  const args = node.args;
  const noFlags = (): void => void parseFlags(node.flags, {});

  switch (keyword as Keyword) {
    case "FROM": {
      const f = parseFlags(node.flags, { platform: "string" });
      let name: string | undefined;
      if (args.length === 3 && args[1].toLowerCase() === "as") {
        name = args[2].toLowerCase();
        if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
          throw new NodeError(`invalid name for build stage: ${JSON.stringify(args[2])}, name can't start with a number or contain symbols`);
        }
      } else if (args.length !== 1) {
        throw new NodeError("FROM requires either one or three arguments");
      }
      return { ...base, keyword: "FROM", image: args[0], name, platform: str(f, "platform") };
    }
    case "ARG": {
      if (args.length === 0) throw atLeastOne("ARG");
      noFlags();
      const vars = args.map((a) => {
        const i = a.indexOf("=");
        if (i < 0) return { key: a, value: undefined };
        if (i === 0) throw new NodeError("ARG names can not be blank");
        return { key: a.slice(0, i), value: a.slice(i + 1) };
      });
      return { ...base, keyword: "ARG", vars };
    }
    case "ENV":
    case "LABEL": {
      noFlags();
      if (args.length === 0) throw atLeastOne(keyword);
      const pairs: KeyValue[] = [];
      for (let i = 0; i + 1 < args.length; i += 2) {
        if (args[i] === "") throw new NodeError(`${keyword} names can not be blank`);
        pairs.push({ key: args[i], value: args[i + 1] });
      }
      return keyword === "ENV" ? { ...base, keyword: "ENV", pairs } : { ...base, keyword: "LABEL", pairs };
    }
    case "MAINTAINER":
      if (args.length !== 1) throw exactlyOne("MAINTAINER");
      noFlags();
      return { ...base, keyword: "MAINTAINER", maintainer: args[0] };
    case "WORKDIR":
      if (args.length !== 1) throw exactlyOne("WORKDIR");
      noFlags();
      return { ...base, keyword: "WORKDIR", path: args[0] };
    case "USER":
      if (args.length !== 1) throw exactlyOne("USER");
      noFlags();
      return { ...base, keyword: "USER", user: args[0] };
    case "STOPSIGNAL":
      if (args.length !== 1) throw exactlyOne("STOPSIGNAL");
      noFlags();
      return { ...base, keyword: "STOPSIGNAL", signal: args[0] };
    case "EXPOSE":
      if (args.length === 0) throw atLeastOne("EXPOSE");
      noFlags();
      return { ...base, keyword: "EXPOSE", ports: [...args] };
    case "VOLUME": {
      if (args.length === 0) throw atLeastOne("VOLUME");
      noFlags();
      const volumes = args.map((v) => {
        const t = v.trim();
        if (t === "") throw new NodeError("VOLUME specified can not be an empty string");
        return t;
      });
      return { ...base, keyword: "VOLUME", volumes };
    }
    case "RUN": {
      const f = parseFlags(node.flags, { mount: "strings", network: "string", security: "string" });
      if (args.length === 0) throw atLeastOne("RUN");
      const network = str(f, "network") ?? "default";
      if (network !== "default" && network !== "none" && network !== "host") {
        throw new NodeError(`invalid network mode ${JSON.stringify(network)}`);
      }
      const security = str(f, "security") ?? "sandbox";
      if (security !== "sandbox" && security !== "insecure") {
        throw new NodeError(`security ${JSON.stringify(security)} is not valid`);
      }
      const mounts = strs(f, "mount");
      for (const m of mounts) checkMountAtParse(m);
      return { ...base, keyword: "RUN", ...commandLine(node), mounts, network, security };
    }
    case "CMD":
      noFlags();
      return { ...base, keyword: "CMD", ...commandLine(node) };
    case "ENTRYPOINT":
      noFlags();
      return { ...base, keyword: "ENTRYPOINT", ...commandLine(node) };
    case "SHELL": {
      noFlags();
      const { command } = commandLine(node);
      if (command.length === 0) throw atLeastOne("SHELL");
      if (!node.json) throw new NodeError("SHELL requires the arguments to be in JSON form");
      return { ...base, keyword: "SHELL", shell: command };
    }
    case "COPY": {
      if (args.length < 2) throw noDestination("COPY");
      const f = parseFlags(node.flags, {
        chown: "string", from: "string", chmod: "string", link: "bool", parents: "bool", exclude: "strings",
      });
      return {
        ...base, keyword: "COPY", ...sourcesAndDest(node, "COPY", f),
        from: str(f, "from"), parents: bool(f, "parents"),
      };
    }
    case "ADD": {
      if (args.length < 2) throw noDestination("ADD");
      const f = parseFlags(node.flags, {
        chown: "string", chmod: "string", link: "bool", "keep-git-dir": "bool",
        checksum: "string", unpack: "bool", exclude: "strings",
      });
      return {
        ...base, keyword: "ADD", ...sourcesAndDest(node, "ADD", f),
        checksum: str(f, "checksum"), keepGitDir: bool(f, "keep-git-dir"),
        unpack: f.has("unpack") ? bool(f, "unpack") : undefined,
      };
    }
    case "HEALTHCHECK":
      return { ...base, keyword: "HEALTHCHECK", health: parseHealthcheck(node) };
    case "ONBUILD": {
      if (args.length === 0) throw atLeastOne("ONBUILD");
      noFlags();
      const trigger = args[0].trim().toUpperCase();
      if (trigger === "ONBUILD") throw new NodeError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (trigger === "MAINTAINER" || trigger === "FROM") throw new NodeError(`${trigger} isn't allowed as an ONBUILD trigger`);
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, "");
      for (const h of node.heredocs) expression += "\n" + h.content + h.name;
      return { ...base, keyword: "ONBUILD", trigger, expression };
    }
  }
}

function noDestination(k: string): NodeError {
  return new NodeError(`${k} requires at least two arguments, but only one was provided. Destination could not be determined`);
}

function commandLine(node: Node): CommandLine {
  const argv = node.args;
  if (node.json) return { command: [...argv], shellForm: false };
  return { command: argv.length === 0 ? [] : [argv.join(" ")], shellForm: true };
}

function sourcesAndDest(node: Node, k: string, f: FlagValues): SourcesAndDest {
  const args = node.args;
  const dest = args[args.length - 1];
  if (isHeredocWord(dest)) throw new NodeError(`${k} cannot accept a heredoc as a destination`);
  const byName = new Map(node.heredocs.map((h) => [h.name, h] as const));
  const sources: string[] = [];
  const contents: InlineSource[] = [];
  for (const src of args.slice(0, -1)) {
    const h = isHeredocWord(src);
    if (h) {
      const doc = byName.get(h.name);
      const data = doc ? heredocData({ ...doc, chomp: h.chomp }) : "";
      contents.push({ path: h.name, data, expand: h.expand });
    } else {
      sources.push(src);
    }
  }
  return {
    sources, contents, dest,
    chown: str(f, "chown"), chmod: str(f, "chmod"), link: bool(f, "link"), excludes: strs(f, "exclude"),
  };
}

function parseHealthcheck(node: Node): HealthConfig {
  if (node.args.length === 0) throw atLeastOne("HEALTHCHECK");
  const typ = node.args[0].toUpperCase();
  const rest = node.args.slice(1);
  if (typ === "NONE") {
    if (rest.length !== 0) throw new NodeError("HEALTHCHECK NONE takes no arguments");
    return { test: ["NONE"] };
  }
  const f = parseFlags(node.flags, {
    interval: "string", timeout: "string", "start-period": "string", "start-interval": "string", retries: "string",
  });
  if (typ !== "CMD") throw new NodeError(`Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = node.json ? rest : rest.length === 0 ? [] : [rest.join(" ")];
  if (cmd.length === 0) throw new NodeError("Missing command after HEALTHCHECK CMD");
  const health: HealthConfig = { test: [node.json ? "CMD" : "CMD-SHELL", ...cmd] };
  const interval = (name: string): number | undefined => {
    const s = str(f, name);
    if (s === undefined || s === "") return undefined;
    let d: number;
    try { d = parseGoDuration(s); } catch (e) { throw new NodeError((e as Error).message); }
    if (d === 0) return 0;
    if (d < 1e6) throw new NodeError(`Interval ${JSON.stringify(name)} cannot be less than 1ms`);
    return d;
  };
  const set = (key: "interval" | "timeout" | "startPeriod" | "startInterval", flag: string): void => {
    const v = interval(flag);
    if (v !== undefined) health[key] = v;
  };
  set("interval", "interval");
  set("timeout", "timeout");
  set("startPeriod", "start-period");
  set("startInterval", "start-interval");
  const retries = str(f, "retries");
  if (retries !== undefined && retries !== "") {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw new NodeError(`strconv.ParseInt: parsing ${JSON.stringify(retries)}: invalid syntax`);
    }
    const n = Number(retries);
    if (n < 0) throw new NodeError(`--retries cannot be negative (${n})`);
    health.retries = n;
  }
  return health;
}


/** Go's time.ParseDuration ("1m30s", "1.5h", "500ms"); returns nanoseconds. */

function suggest(word: string): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of KEYWORDS) {
    const d = levenshtein(word, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD > 0 && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

