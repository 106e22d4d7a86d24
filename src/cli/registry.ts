/**
 * Registry credentials kept exactly as Docker keeps them: ~/.docker/config.json
 * (or $DOCKER_CONFIG), mode 0600, `auths` → base64("user:password"), so berth
 * and Docker share logins. `push`/`pull` send them as X-Registry-Auth.
 */
import { readFileSync, writeFileSync, mkdirSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Command } from "./command.js";
import { UsageError } from "../lib/args.js";
import { ApiError, jsonLines } from "../api/client.js";

const INDEX = "https://index.docker.io/v1/";

function configPath(): string { return join(process.env.DOCKER_CONFIG ?? join(homedir(), ".docker"), "config.json"); }

interface DockerConfig { auths?: Record<string, { auth?: string }>; credsStore?: string; credHelpers?: Record<string, string>; [k: string]: unknown }

function readConfig(): DockerConfig {
  try { return JSON.parse(readFileSync(configPath(), "utf8")) as DockerConfig; } catch { return {}; }
}

function writeConfig(cfg: DockerConfig): void {
  const p = configPath();
  mkdirSync(join(p, ".."), { recursive: true, mode: 0o700 });
  const tmp = `${p}.tmp${process.pid}`;
  writeFileSync(tmp, JSON.stringify(cfg, null, "\t") + "\n", { mode: 0o600 });
  renameSync(tmp, p);
}

/** The config key of the registry an image reference lives on. */
export function registryKey(imageOrServer: string): string {
  const s = imageOrServer.replace(/^https?:\/\//, "").replace(/\/v1\/?$/, "");
  const first = s.split("/")[0];
  if (!s.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first === "index.docker.io" || first === "docker.io" ? INDEX : first;
  if (s.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")) return first === "index.docker.io" || first === "docker.io" ? INDEX : first;
  return INDEX;
}

/** The credential helper configured for a registry (credHelpers wins over credsStore), as Docker chooses. */
function helperFor(cfg: DockerConfig, key: string): string | undefined {
  return cfg.credHelpers?.[key] ?? cfg.credsStore;
}

/** Runs docker-credential-<helper> ACTION with input on stdin (the protocol Docker's helpers speak). */
function callHelper(helper: string, action: "get" | "store" | "erase", input: string): string {
  // child_process only here (a credential helper is rare): loading it costs every other command.
  const { spawnSync } = createRequire(import.meta.url)("node:child_process") as typeof import("node:child_process");
  const r = spawnSync(`docker-credential-${helper}`, [action], { input, encoding: "utf8" });
  if (r.error) throw new Error(`error getting credentials - err: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`error ${action === "get" ? "getting" : action === "store" ? "storing" : "erasing"} credentials - err: exit status ${r.status}, out: \`${(r.stdout || r.stderr).trim()}\``);
  return r.stdout;
}

/** Saved credentials for a registry: from its credential helper, else from `auths`. */
export function credentialsFor(key: string): { username: string; password: string } | undefined {
  const cfg = readConfig();
  const helper = helperFor(cfg, key);
  if (helper) {
    try {
      const v = JSON.parse(callHelper(helper, "get", key)) as { Username?: string; Secret?: string };
      return v.Username ? { username: v.Username, password: v.Secret ?? "" } : undefined;
    } catch { return undefined; }
  }
  const a = cfg.auths?.[key]?.auth;
  if (!a) return undefined;
  const s = Buffer.from(a, "base64").toString();
  const i = s.indexOf(":");
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

/** X-Registry-Auth for an image reference, from the saved logins. */
export function authHeader(image: string): Record<string, string> {
  const key = registryKey(image);
  const creds = credentialsFor(key);
  if (!creds) return {};
  const json = JSON.stringify({ ...creds, serveraddress: key });
  return { "X-Registry-Auth": Buffer.from(json).toString("base64url") };
}

async function readStdin(): Promise<string> {
  let s = "";
  for await (const c of process.stdin) s += c;
  return s.replace(/\r?\n$/, "");
}

export const registryCommands: Command[] = [
  {
    name: "login", usage: "login [OPTIONS] [SERVER]", desc: "Log in to a registry",
    flags: [{ long: "username", short: "u", type: "string", desc: "Username" }, { long: "password", short: "p", type: "string", desc: "Password" }, { long: "password-stdin", type: "bool", desc: "Take the password from stdin" }],
    run: async (c, f, a) => {
      if (a.length > 1) throw new UsageError(`"login" requires at most 1 argument.`);
      const key = registryKey(a[0] ?? INDEX);
      let password = f.password as string | undefined;
      if (f["password-stdin"]) {
        if (password) throw new UsageError("--password and --password-stdin are mutually exclusive");
        if (!f.username) throw new UsageError("Must provide --username with --password-stdin");
        password = await readStdin();
      }
      const username = f.username as string | undefined;
      if (!username || password === undefined) throw new UsageError("Cannot perform an interactive login from a non TTY device; use --username and --password-stdin");
      if (f.password) c.err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
      try {
        await c.api.json("POST", "/auth", { body: { username, password, serveraddress: key } });
      } catch (e) {
        if (e instanceof ApiError) { c.err(`Error response from daemon: ${e.message}\n`); return 1; }
        throw e;
      }
      const cfg = readConfig();
      const helper = helperFor(cfg, key);
      if (helper) {
        callHelper(helper, "store", JSON.stringify({ ServerURL: key, Username: username, Secret: password }));
        // Docker keeps an empty entry in auths so `docker info`/logout know of the login.
        cfg.auths = { ...cfg.auths, [key]: {} };
      } else {
        cfg.auths = { ...cfg.auths, [key]: { auth: Buffer.from(`${username}:${password}`).toString("base64") } };
      }
      writeConfig(cfg);
      c.out("Login Succeeded\n");
      return 0;
    },
  },
  {
    name: "logout", usage: "logout [SERVER]", desc: "Log out from a registry", flags: [],
    run: async (c, _f, a) => {
      const key = registryKey(a[0] ?? INDEX);
      const cfg = readConfig();
      const helper = helperFor(cfg, key);
      if (!cfg.auths?.[key] && !helper) { c.out(`Not logged in to ${key}\n`); return 0; }
      c.out(`Removing login credentials for ${key}\n`);
      if (helper) { try { callHelper(helper, "erase", key); } catch (e) { c.err(`WARNING: could not erase credentials: ${(e as Error).message}\n`); } }
      if (cfg.auths) delete cfg.auths[key];
      writeConfig(cfg);
      return 0;
    },
  },
  {
    name: "push", usage: "push [OPTIONS] NAME[:TAG]", desc: "Upload an image to a registry",
    flags: [{ long: "quiet", short: "q", type: "bool", desc: "Suppress verbose output" }, { long: "all-tags", short: "a", type: "bool", desc: "Push all tags of an image to the repository" }],
    run: async (c, f, a) => {
      if (a.length !== 1) throw new UsageError(`"push" requires exactly 1 argument.`);
      const img = a[0];
      const slash = img.lastIndexOf("/"), colon = img.lastIndexOf(":");
      const [name, tag] = colon > slash ? [img.slice(0, colon), img.slice(colon + 1)] : [img, "latest"];
      const res = await c.api.stream("POST", `/images/${name}/push`, { query: { tag }, headers: authHeader(img) });
      for await (const m of jsonLines<{ status?: string; id?: string; error?: string }>(res)) {
        if (m.error) { c.err(`${m.error}\n`); return 1; }
        if (!f.quiet && m.status) c.out(`${m.id ? `${m.id}: ` : ""}${m.status}\n`);
      }
      if (f.quiet) c.out(`${name}:${tag}\n`);
      return 0;
    },
  },
];
