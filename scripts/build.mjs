// Bundles the CLI and the daemon into single files so `berth` starts at Node's floor.
import { build } from "esbuild";
import { chmodSync, mkdirSync, rmSync, symlinkSync } from "node:fs";
import { execFileSync } from "node:child_process";

mkdirSync("bin", { recursive: true });
const common = {
  bundle: true, platform: "node", target: "node20", format: "esm",
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: "none", logLevel: "warning",
};
// berthd's node flags (its shebang, and the CLI's auto-start): a young generation of 2 MB semi-spaces
// instead of 16 MB keeps the daemon's RSS ~20 MB lower after bursts of requests (bench/scale), for a
// little more scavenging. The source map is a file beside it: inline, it was 1.6 MB of the bundle that
// every daemon kept in memory; `NODE_OPTIONS=--enable-source-maps berthd` reads it.
const DAEMON_NODE_FLAGS = ["--max-semi-space-size=2"];
// ...and its malloc settings (its shebang's env, and the auto-start's): a fixed mmap threshold, so a large
// buffer freed goes back to the system instead of raising glibc's threshold for good, and two arenas instead
// of one per thread (the libuv pool, the layer worker). 3 MB less RSS after an image is made (bench/density).
const DAEMON_ENV = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" };
// The Compose Specification's JSON Schema goes into the compose bundle as an object literal without its
// annotations (descriptions are half of its 75 kB), so validating a project reads and compiles nothing at start.
const composeSchema = {
  name: "compose-schema",
  setup(b) {
    b.onLoad({ filter: /compose-spec\.json$/ }, async (args) => {
      const { readFileSync } = await import("node:fs");
      const strip = (v, inMap) => {
        if (Array.isArray(v)) return v.map((x) => strip(x, false));
        if (!v || typeof v !== "object") return v;
        const out = {};
        for (const [k, x] of Object.entries(v)) {
          if (!inMap && ["description", "title", "deprecated", "$schema", "$id", "examples", "$comment"].includes(k)) continue;
          out[k] = inMap ? strip(x, false) : ["enum", "const", "required", "default"].includes(k) ? x : strip(x, ["properties", "patternProperties", "definitions"].includes(k));
        }
        return out;
      };
      return { contents: JSON.stringify(strip(JSON.parse(readFileSync(args.path, "utf8")), false)), loader: "json" };
    });
  },
};
await Promise.all([
  // The CLI is CommonJS: Node 20 loads a CJS file ~6 ms faster than an ES module, and `berth` runs thousands of times a day.
  build({
    ...common, format: "cjs", entryPoints: ["src/cli/main.ts"], outfile: "bin/berth.cjs", minify: true,
    define: { "import.meta.url": "__importMetaUrl", "BERTHD_NODE_FLAGS": JSON.stringify(DAEMON_NODE_FLAGS), "BERTHD_ENV": JSON.stringify(DAEMON_ENV) },
    // NODE_EXTRA_CA_CERTS makes every node start read and parse the CA file (~35 ms here, on a ~40 ms floor);
    // the CLI only talks to a unix socket. GNU env -S drops it for this process and keeps the user's value in
    // BERTH_NODE_EXTRA_CA_CERTS, which main.ts puts back into process.env for what the CLI spawns (berthd).
    banner: { js: "#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS BERTH_NODE_EXTRA_CA_CERTS=${NODE_EXTRA_CA_CERTS} node\nconst __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  }),
  build({
    ...common, entryPoints: ["src/api/daemon-main.ts"], outfile: "bin/berthd", sourcemap: "linked",
    banner: { js: common.banner.js.replace("#!/usr/bin/env node", `#!/usr/bin/env -S ${Object.entries(DAEMON_ENV).map(([k, v]) => `${k}=${v}`).join(" ")} node ${DAEMON_NODE_FLAGS.join(" ")}`) },
  }),
  // The compose plugin, loaded by bin/berth.cjs on `berth compose` only (like docker's compose plugin).
  build({
    ...common, format: "cjs", entryPoints: ["src/compose/cli.ts"], outfile: "bin/berth-compose.cjs", minify: true, plugins: [composeSchema],
    define: { "import.meta.url": "__importMetaUrl" }, banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  }),
  // The registry server (`berth registry ...`), loaded by bin/berth.cjs on that command only; also runnable as `node bin/berth-registry.cjs serve`.
  build({
    ...common, format: "cjs", entryPoints: ["src/registry/cli.ts"], outfile: "bin/berth-registry.cjs", minify: true,
    define: { "import.meta.url": "__importMetaUrl" }, banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  }),
  // Kubernetes (`berth kube ...`, `berth pod ...`, `berth compose kube`), loaded by bin/berth.cjs on those commands only.
  build({
    ...common, format: "cjs", entryPoints: ["src/kube/cli.ts"], outfile: "bin/berth-kube.cjs", minify: true, plugins: [composeSchema],
    define: { "import.meta.url": "__importMetaUrl" }, banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  }),
  // The layer worker (worker_threads): the daemon and dist/index.js find it beside themselves or in ../bin/.
  build({ ...common, banner: { js: common.banner.js.replace("#!/usr/bin/env node\n", "") }, entryPoints: ["src/store/layer-worker.ts"], outfile: "bin/berth-layer-worker.mjs" }),
  build({ ...common, banner: {}, entryPoints: ["src/index.ts"], outfile: "dist/index.js", packages: "external" }),
]);
chmodSync("bin/berth.cjs", 0o755);
rmSync("bin/berth", { force: true });
symlinkSync("berth.cjs", "bin/berth");
chmodSync("bin/berthd", 0o755);
// The attach helper: node cannot speak SOCK_SEQPACKET (conmon's attach socket), a tiny C program can.
execFileSync("cc", ["-O2", "-Wall", "-o", "bin/berth-attach", "native/attach.c"], { stdio: "inherit" });
// The mount helper: mount(2)/umount2(2) for berthd without forking the daemon per call (src/lib/mounter.ts).
execFileSync("cc", ["-O2", "-Wall", "-o", "bin/berth-mounter", "native/mounter.c"], { stdio: "inherit" });
