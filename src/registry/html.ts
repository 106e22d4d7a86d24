/**
 * The registry's read-only page at `/`: every repository the visitor may pull, with its tags and the
 * digest each points at. Plain server-side HTML (no script, no framework); every name is escaped.
 */

export interface PageRepo { name: string; tags: { tag: string; digest: string }[] }

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderPage(repos: PageRepo[], opts: { user?: string; proxies?: string[] } = {}): string {
  const rows = repos.map((r) => {
    const tags = r.tags.length
      ? `<ul class="tags">${r.tags.map((t) => `<li><code class="tag">${esc(t.tag)}</code> <code class="digest" title="${esc(t.digest)}">${esc(t.digest.slice(0, 19))}</code></li>`).join("")}</ul>`
      : `<span class="none">no tags</span>`;
    return `<tr id="repo-${esc(r.name)}"><td class="repo">${esc(r.name)}</td><td>${r.tags.length}</td><td>${tags}</td></tr>`;
  }).join("\n");
  const who = opts.user ? `<p class="user">Signed in as <b>${esc(opts.user)}</b></p>` : "";
  const proxies = opts.proxies?.length ? `<p class="proxies">Pull-through caches: ${opts.proxies.map((p) => `<code>${esc(p)}/…</code>`).join(", ")}</p>` : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>berth registry</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
ul.tags{list-style:none;margin:0;padding:0}code.digest{color:#777}.none{color:#999}
</style></head>
<body>
<h1>berth registry</h1>
${who}${proxies}
<p class="count">${repos.length} ${repos.length === 1 ? "repository" : "repositories"}</p>
<table id="repositories"><thead><tr><th>Repository</th><th>Tags</th><th></th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
