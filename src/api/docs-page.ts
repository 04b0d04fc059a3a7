/**
 * /api/docs: a readable reference of the API, rendered in the browser from /api/v1/openapi.json by
 * the small script below. Everything is in this page: the cluster network has no internet, so no
 * CDN, no fonts, no framework.
 */
export const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>provisiond admin API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fafbfc}
header{background:#1f2d3d;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
main{max-width:1100px;margin:0 auto;padding:12px 28px 60px}
nav a{margin-right:12px}h2{margin-top:34px;border-bottom:1px solid #d0d7de;padding-bottom:4px;text-transform:capitalize}
.op{background:#fff;border:1px solid #d0d7de;border-radius:6px;margin:12px 0;padding:10px 14px}
.m{display:inline-block;min-width:62px;font:bold 12px monospace;color:#fff;border-radius:4px;padding:2px 6px;text-align:center;text-transform:uppercase}
.get{background:#1f6feb}.post{background:#2da44e}.patch{background:#bf8700}.put{background:#8250df}.delete{background:#cf222e}
.path{font:600 14px monospace;margin-left:8px}.role{float:right;font-size:12px;color:#57606a}
details{margin-top:6px}summary{cursor:pointer;color:#57606a}pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:3px 8px;font-size:13px;text-align:left}
</style></head><body>
<header><h1>provisiond admin API</h1><div id="sub"></div></header>
<main><p>Base path <code>/api/v1</code>. Send <code>Authorization: Bearer TOKEN</code> (make one on the master:
<code>provisiond token create NAME --role viewer|operator|admin</code>). Errors are always
<code>{"error":{"code","message","field"}}</code>. The machine-readable document:
<a href="/api/v1/openapi.json">/api/v1/openapi.json</a> (OpenAPI 3.1).</p><nav id="toc"></nav><div id="ops">loading...</div></main>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function resolve(doc, s) { return s && s.$ref ? { name: s.$ref.split('/').pop(), schema: doc.components.schemas[s.$ref.split('/').pop()] } : { name: null, schema: s }; }
function schemaBlock(doc, title, s) {
  if (!s) return '';
  const r = resolve(doc, s);
  return '<details><summary>' + esc(title) + (r.name ? ' (' + esc(r.name) + ')' : '') + '</summary><pre>' + esc(JSON.stringify(r.schema, null, 2)) + '</pre></details>';
}
fetch('/api/v1/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('sub').textContent = 'version ' + doc.info.version;
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(item)) (byTag[op.tags[0]] ??= []).push({ path, method, op });
  document.getElementById('toc').innerHTML = Object.keys(byTag).map((t) => '<a href="#' + esc(t) + '">' + esc(t) + '</a>').join('');
  let html = '';
  for (const [tag, ops] of Object.entries(byTag)) {
    html += '<h2 id="' + esc(tag) + '">' + esc(tag) + '</h2>';
    for (const { path, method, op } of ops) {
      html += '<div class="op"><span class="m ' + method + '">' + method + '</span><span class="path">' + esc(path) + '</span><span class="role">' + esc(op['x-access']) + '</span><div>' + esc(op.summary) + '</div>';
      if (op.description) html += '<p>' + esc(op.description) + '</p>';
      if (op.parameters.length) html += '<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>' + op.parameters.map((p) => '<tr><td><code>' + esc(p.name) + '</code>' + (p.required ? ' *' : '') + '</td><td>' + p.in + '</td><td>' + esc(p.schema.type ?? (p.schema.enum ? p.schema.enum.join('|') : '')) + '</td><td>' + esc(p.description ?? '') + '</td></tr>').join('') + '</table>';
      if (op.requestBody) html += schemaBlock(doc, 'request body', op.requestBody.content['application/json'].schema);
      for (const [code, r] of Object.entries(op.responses)) if (code < '400') html += schemaBlock(doc, code + ': ' + r.description, r.content && (r.content['application/json'] ?? {}).schema);
      html += '</div>';
    }
  }
  document.getElementById('ops').innerHTML = html;
}).catch((e) => { document.getElementById('ops').textContent = 'could not load the API document: ' + e; });
</script></body></html>
`;
