/**
 * berth as a library: drive containers from a program, in-process (Engine)
 * or through any Docker-compatible daemon (ApiClient).
 */
export { Engine, type EngineOptions } from "./engine/engine.js";
export { createApiServer, API_VERSION } from "./api/server.js";
export { ApiClient } from "./api/client.js";
export * from "./lib/errors.js";
