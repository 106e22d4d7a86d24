/**
 * The distribution spec's error codes. Every error the registry answers is
 * one of these, with the spec's HTTP status and JSON body:
 *   {"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":...}]}
 */
import { BerthError } from "../lib/errors.js";

export const ErrorCodes = {
  BLOB_UNKNOWN: [404, "blob unknown to registry"],
  BLOB_UPLOAD_INVALID: [400, "blob upload invalid"],
  BLOB_UPLOAD_UNKNOWN: [404, "blob upload unknown to registry"],
  DIGEST_INVALID: [400, "provided digest did not match uploaded content"],
  MANIFEST_BLOB_UNKNOWN: [400, "manifest references a manifest or blob unknown to registry"],
  MANIFEST_INVALID: [400, "manifest invalid"],
  MANIFEST_UNKNOWN: [404, "manifest unknown to registry"],
  NAME_INVALID: [400, "invalid repository name"],
  NAME_UNKNOWN: [404, "repository name not known to registry"],
  SIZE_INVALID: [400, "provided length did not match content length"],
  UNAUTHORIZED: [401, "authentication required"],
  DENIED: [403, "requested access to the resource is denied"],
  UNSUPPORTED: [405, "the operation is unsupported"],
  TOOMANYREQUESTS: [429, "too many requests"],
  TAG_INVALID: [400, "manifest tag did not match URI"],
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

export class RegistryError extends BerthError {
  constructor(readonly code: ErrorCode, message?: string, readonly detail?: unknown, status?: number) {
    super(message ?? ErrorCodes[code][1], status ?? ErrorCodes[code][0]);
  }
  body(): string {
    return JSON.stringify({ errors: [{ code: this.code, message: this.message, detail: this.detail ?? null }] });
  }
}

/** Digest algorithms the registry verifies, and the length of their hex encoding. */
const ALGORITHMS: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };

export interface ParsedDigest { alg: "sha256" | "sha512"; hex: string; digest: string }

/** A digest from a URL or a body: `sha256:<64 hex>` or `sha512:<128 hex>`; anything else is DIGEST_INVALID (400). */
export function parseDigest(s: string | null | undefined): ParsedDigest {
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(s ?? "");
  if (!m) throw new RegistryError("DIGEST_INVALID", `invalid digest: ${JSON.stringify(s ?? "")}`, { digest: s ?? "" });
  const len = ALGORITHMS[m[1]];
  if (len === undefined) throw new RegistryError("DIGEST_INVALID", `unsupported digest algorithm: ${m[1]}`, { digest: s });
  if (m[2].length !== len || !/^[a-f0-9]+$/.test(m[2])) throw new RegistryError("DIGEST_INVALID", `invalid digest: ${s}`, { digest: s });
  return { alg: m[1] as "sha256" | "sha512", hex: m[2], digest: s as string };
}

export function isDigest(s: string): boolean { return s.includes(":"); }

/** The spec's repository name grammar (path components joined by "/"). */
const NAME_RE = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function checkName(name: string): void {
  if (name.length > 255 || !NAME_RE.test(name)) throw new RegistryError("NAME_INVALID", `invalid repository name: ${JSON.stringify(name)}`, { name });
}

export function isTag(s: string): boolean { return TAG_RE.test(s); }

export function checkTag(tag: string): void {
  if (!TAG_RE.test(tag)) throw new RegistryError("TAG_INVALID", `invalid tag: ${JSON.stringify(tag)}`, { tag });
}
