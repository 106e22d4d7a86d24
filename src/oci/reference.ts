/**
 * Image references, normalised as Docker does (distribution/reference):
 *   busybox            → docker.io/library/busybox:latest
 *   user/app:1         → docker.io/user/app:1
 *   host:5000/ns/app   → host:5000/ns/app:latest
 *   app@sha256:<hex>   → docker.io/library/app@sha256:<hex>
 */
import { BadParameterError } from "../lib/errors.js";

export interface Reference { domain: string; path: string; tag?: string; digest?: string }

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d+)?$|^\[[0-9a-fA-F:]+\](?::\d+)?$/;

export function parseReference(s: string): Reference {
  const invalid = () => new BadParameterError("invalid reference format");
  if (!s || s.length > 255) throw invalid();
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid();
    if (digest.startsWith("sha256:") && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw invalid();
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid();
  }
  let domain = "docker.io";
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) throw invalid();
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!path) throw invalid();
  if (path !== path.toLowerCase() && path.split("/").every((c) => COMPONENT.test(c.toLowerCase()))) {
    throw new BadParameterError(`invalid reference format: repository name (${domain === "docker.io" && !path.includes("/") ? "library/" : ""}${path}) must be lowercase`);
  }
  if (!path.split("/").every((c) => COMPONENT.test(c))) throw invalid();
  if (domain === "index.docker.io") domain = "docker.io";
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  if (!tag && !digest) tag = "latest";
  return { domain, path, tag, digest };
}

export function formatReference(r: Reference): string {
  return `${r.domain}/${r.path}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

export function familiarName(r: Reference): string {
  if (r.domain !== "docker.io") return `${r.domain}/${r.path}`;
  return r.path.startsWith("library/") ? r.path.slice(8) : r.path;
}

export function familiarString(r: Reference): string {
  return `${familiarName(r)}${r.tag ? `:${r.tag}` : ""}${r.digest ? `@${r.digest}` : ""}`;
}

export function normalizeReference(s: string): string {
  return formatReference(parseReference(s));
}
