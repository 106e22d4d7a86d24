/** Docker's human formats: sizes (go-units, SI, 3 significant digits), times, truncation. */
export { humanDuration } from "../lib/human.js";

/** go-units HumanSizeWithPrecision(bytes, precision): decimal units, `precision` significant digits. */
export function humanSize(bytes: number, precision = 3): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let v = bytes, i = 0;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${Number(v.toPrecision(precision))}${units[i]}`;
}

/** Go's "2006-01-02 15:04:05 -0700 MST" in UTC. */
export function goTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

/** Ellipsis as the docker CLI truncates: n-1 characters and "…". */
export function ellipsis(s: string, n: number): string {
  const chars = [...s];
  return chars.length <= n ? s : chars.slice(0, n - 1).join("") + "…";
}

/** Docker's duration flags ("10s", "1m30s", "2h") or timestamps, to unix seconds relative to now. */
export function parseSince(v: string, now = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(v)) return v;
  const m = /^((?:\d+(?:\.\d+)?(?:h|m|s|ms))+)$/.exec(v);
  if (m) {
    let ms = 0;
    for (const [, n, u] of v.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) ms += Number(n) * ({ h: 3600e3, m: 60e3, s: 1e3, ms: 1 } as Record<string, number>)[u];
    return ((now - ms) / 1000).toFixed(9);
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`invalid value for "since": ${v}`);
  return (t / 1000).toFixed(9);
}
