/**
 * A node:test reporter that writes one JSON line per finished top-level test:
 * {file, name, ok, skipped, ms, error}. scripts/client-table.mjs reads it.
 */
export default async function* jsonReporter(source) {
  for await (const ev of source) {
    if (ev.type !== "test:pass" && ev.type !== "test:fail") continue;
    const { name, nesting, file, details, skip, todo } = ev.data;
    if (nesting !== 0 || !file) continue;
    yield JSON.stringify({ file, name, ok: ev.type === "test:pass", skipped: Boolean(skip || todo), ms: Math.round(details?.duration_ms ?? 0), error: why(details?.error) }) + "\n";
  }
}

/** The first line of the failure (and the next one when the first only introduces it), short enough for a table cell. */
function why(err) {
  if (!err) return undefined;
  const lines = String(err.cause?.message ?? err.message ?? err).split("\n").map((l) => l.trim()).filter(Boolean);
  const text = lines[0]?.endsWith(":") && lines[1] ? `${lines[0]} ${lines[1]}` : (lines[0] ?? "");
  return text.length > 140 ? `${text.slice(0, 137)}...` : text;
}

