// Bundles the CLI and the daemon into single files so `berth` starts at Node's floor.
import { build } from "esbuild";
import { chmodSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

mkdirSync("bin", { recursive: true });
const common = {
  bundle: true, platform: "node", target: "node20", format: "esm",
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: "none", logLevel: "warning",
};
await Promise.all([
  build({ ...common, entryPoints: ["src/cli/main.ts"], outfile: "bin/berth", minify: true }),
  build({ ...common, entryPoints: ["src/api/daemon-main.ts"], outfile: "bin/berthd", sourcemap: "inline" }),
  build({ ...common, banner: {}, entryPoints: ["src/index.ts"], outfile: "dist/index.js", packages: "external" }),
]);
chmodSync("bin/berth", 0o755);
chmodSync("bin/berthd", 0o755);
// The attach helper: node cannot speak SOCK_SEQPACKET (conmon's attach socket), a tiny C program can.
execFileSync("cc", ["-O2", "-Wall", "-o", "bin/berth-attach", "native/attach.c"], { stdio: "inherit" });
