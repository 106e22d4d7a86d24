/**
 * Git sources for the builder (lib/git.ts does the work): a cancelled clone or look-up is the build's
 * BuildCancelledError.
 */
import { cloneGit as clone, resolveGitCommit as resolve, GitCancelledError, type GitRef } from "../lib/git.js";
import { BuildCancelledError } from "./errors.js";

export { parseGitRef, type GitRef } from "../lib/git.js";

const cancelled = (e: unknown): never => { throw e instanceof GitCancelledError ? new BuildCancelledError() : e; };

export const cloneGit = (g: GitRef, dir: string, opts: { keepGitDir?: boolean; signal?: AbortSignal } = {}): Promise<string> => clone(g, dir, opts).catch(cancelled);

export const resolveGitCommit = (g: GitRef, signal?: AbortSignal): Promise<string | undefined> => resolve(g, signal).catch(cancelled);
