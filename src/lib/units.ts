/**
 * Sizes as Docker writes them (docker/go-units RAMInBytes): "512", "64m",
 * "1g", "1.5GiB", "10 KB" — powers of 1024, case-insensitive, an optional
 * "i" and "b". Undefined for anything else; callers word the error.
 */
export function ramInBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v.trim());
  if (!m) return undefined;
  const exp = m[2] ? "kmgtp".indexOf(m[2].toLowerCase()) + 1 : 0;
  return Math.trunc(parseFloat(m[1]) * 1024 ** exp);
}
