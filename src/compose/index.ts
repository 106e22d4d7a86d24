/** The compose package's surface: the loader (pure) and the orchestrator (through the API client). */
export { loadProject, projectModel, yamlLib, ComposeError, type Project, type Service } from "./loader.js";
export { Orchestrator, L, type ContainerSummary } from "./orchestrator.js";
export { streamLogs } from "./logs.js";
