/**
 * Platforms of a build (`build --platform linux/amd64,linux/arm64`): parsing and normalising the list as
 * BuildKit does (containerd's platforms.Normalize: x86_64 → amd64, aarch64 → arm64, arm64/v8 → arm64,
 * arm → arm/v7), and the automatic platform ARGs every stage can declare (TARGETPLATFORM, TARGETOS,
 * TARGETARCH, TARGETVARIANT for the platform being built; BUILDPLATFORM, BUILDOS, BUILDARCH,
 * BUILDVARIANT for the machine building it). They live in the global scope: FROM lines see them without
 * an ARG, a stage sees one once it declares `ARG TARGETARCH` (no value).
 */
import { hostPlatform, type Platform } from "../oci/image.js";
import { BadParameterError } from "../lib/errors.js";
import type { BuildProgress } from "./progress.js";

const ARCH: Record<string, string> = { x86_64: "amd64", "x86-64": "amd64", aarch64: "arm64", armhf: "arm", armel: "arm", i386: "386", i686: "386" };

/** One platform, normalised (`linux/arm64/v8` → linux/arm64; `linux/arm` → linux/arm/v7). */
export function normalizePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split("/");
  // containerd's wording: the first bad component, then the whole specifier.
  const bad = parts.find((p) => !/^[a-z0-9_.-]+$/.test(p));
  if (bad !== undefined) throw new BadParameterError(`failed to parse platform ${s}: "${bad}" is an invalid component of "${s}": platform specifier component must match "^[A-Za-z0-9_-]+$": invalid argument`);
  if (parts.length > 3) throw new BadParameterError(`failed to parse platform ${s}: "${s}": unknown operating system or architecture: invalid argument`);
  let [os, architecture, variant] = parts.length === 1 ? ["linux", parts[0], undefined] : parts;
  if (ARCH[architecture]) {
    if (architecture === "armel") variant = "v6";
    if (architecture === "armhf") variant = "v7";
    architecture = ARCH[architecture];
  }
  if (architecture === "arm64" && (variant === "v8" || variant === "8")) variant = undefined;
  if (architecture === "arm" && !variant) variant = "v7";
  if (architecture === "arm" && variant && /^\d$/.test(variant)) variant = `v${variant}`;
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/** A `--platform` list (comma-separated), each normalised, duplicates dropped. */
export function parsePlatforms(s: string | undefined): Platform[] {
  if (!s?.trim()) return [];
  const out: Platform[] = [];
  for (const p of s.split(",").map((x) => x.trim()).filter(Boolean).map(normalizePlatform)) {
    if (!out.some((o) => formatPlatform(o) === formatPlatform(p))) out.push(p);
  }
  return out;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? "") === (b.variant ?? "");
}

/** The automatic platform ARGs of one build (BuildKit's names and values). */
export function platformArgs(target: Platform, build: Platform = hostPlatform()): Record<string, string> {
  return {
    TARGETPLATFORM: formatPlatform(target), TARGETOS: target.os, TARGETARCH: target.architecture, TARGETVARIANT: target.variant ?? "",
    BUILDPLATFORM: formatPlatform(build), BUILDOS: build.os, BUILDARCH: build.architecture, BUILDVARIANT: build.variant ?? "",
  };
}

export const PLATFORM_ARGS = Object.keys(platformArgs({ os: "linux", architecture: "amd64" }));

/**
 * The progress of one platform's build in a multi-platform build: its steps are named as BuildKit names
 * them (`[linux/arm64 2/3] RUN ...`, `[linux/arm64 build 2/3] ...`); the internal steps keep their names.
 */
export function platformProgress(p: BuildProgress, platform: Platform): BuildProgress {
  const tag = formatPlatform(platform);
  const name = (n: string) => (n.startsWith("[") && !n.startsWith("[internal]") ? `[${tag} ${n.slice(1)}` : n);
  return Object.assign(Object.create(p) as BuildProgress, {
    start: (n: string) => p.start(name(n)),
    instant: (n: string, statuses?: string[]) => p.instant(name(n), statuses),
  });
}
