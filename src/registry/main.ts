/** `node --import tsx src/registry/main.ts serve ...`: the registry from sources (tests, development). */
import { registry } from "./cli.js";

void registry(process.argv.slice(2)).then((code) => { process.exitCode = code; });
