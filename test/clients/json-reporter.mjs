/**
 * A node:test reporter that writes one JSON line per finished top-level test:
 * {file, name, ok, skipped, ms, error}. scripts/client-table.mjs reads it.
 */
export default async function* jsonReporter(source) {
  for await (const ev of source) {
    if (ev.type !== "test:pass" && ev.type !== "test:fail") continue;
    const { name, nesting, file, details, skip, todo } = ev.data;
    if (nesting !== 0 || !file) continue;
    const error = details?.error ? String(details.error.cause?.message ?? details.error.message ?? details.error).split("\n").filter(Boolean).slice(0, 3).join(" ").slice(0, 300) : undefined;
    yield JSON.stringify({ file, name, ok: ev.type === "test:pass", skipped: Boolean(skip || todo), ms: Math.round(details?.duration_ms ?? 0), error }) + "\n";
  }
}
