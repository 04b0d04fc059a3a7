// Groups and VNFS: the groups with their node counts and settings (an admin edits them: the API
// checks each value as `group set` does), and the VNFS capsules with image size, build time and
// the nodes using them (an admin builds an image: a task, followed on its page).
import { ago, api, can, h } from './api.js';
import { taskHref } from './tasks.js';

const SETTINGS = ['vnfs', 'enabled', 'debug', 'boot', 'desc'];
const shown = (v) => (v === null || v === undefined ? '' : String(v));

export function bytes(n) {
  if (n === null || n === undefined) return 'not built';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function mount(root, param) {
  return param === 'vnfs' ? mountVnfs(root) : mountGroups(root);
}

function mountGroups(root) {
  const abort = new AbortController();
  const body = h('tbody', {});
  const status = h('p', { class: 'muted', id: 'groups-status', role: 'status' });
  root.append(
    h('h1', {}, 'Groups'),
    status,
    h('table', { class: 'grid', id: 'groups' }, h('thead', {}, h('tr', {}, ...['Group', 'Nodes', ...SETTINGS.map((s) => s.toUpperCase()), 'Attributes', ''].map((c) => h('th', {}, c)))), body),
  );
  async function load() {
    const { items } = await api('GET', '/groups', undefined, abort);
    body.replaceChildren(...items.map(row));
    if (items.length === 0) body.append(h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No groups.')));
  }
  function row(g) {
    const tr = h(
      'tr',
      { 'data-group': g.name },
      h('td', {}, g.name),
      h('td', {}, String(g.nodes)),
      ...SETTINGS.map((s) => h('td', { 'data-setting': s, class: g[s] === null ? 'muted' : undefined }, g[s] === null ? 'default' : shown(g[s]))),
      h('td', {}, Object.entries(g.attrs ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')),
      h('td', {}, can('admin') ? h('button', { type: 'button', 'data-action': 'edit', onclick: () => edit(tr, g) }, 'Edit') : ''),
    );
    return tr;
  }
  function edit(tr, g) {
    const inputs = Object.fromEntries(SETTINGS.map((s) => [s, h('input', { name: s, value: shown(g[s]), placeholder: 'default', 'aria-label': s, size: s === 'desc' ? 24 : 8 })]));
    const save = async () => {
      const patch = {};
      for (const s of SETTINGS) {
        const v = inputs[s].value.trim();
        if (v !== shown(g[s])) patch[s] = v === '' ? null : v;
      }
      try {
        await api('PATCH', `/groups/${encodeURIComponent(g.name)}`, patch);
        status.textContent = `Group ${g.name} saved.`;
        status.className = 'muted';
        await load();
      } catch (err) {
        status.textContent = `Group ${g.name}: ${err.message}`;
        status.className = 'error';
      }
    };
    tr.replaceChildren(
      h('td', {}, g.name),
      h('td', {}, String(g.nodes)),
      ...SETTINGS.map((s) => h('td', {}, inputs[s])),
      h('td', {}, Object.entries(g.attrs ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')),
      h('td', {}, h('button', { type: 'button', 'data-action': 'save', onclick: () => void save() }, 'Save'), ' ', h('button', { type: 'button', onclick: () => void load() }, 'Cancel')),
    );
    inputs.vnfs.focus();
  }
  void load().catch((err) => body.replaceChildren(h('tr', {}, h('td', { colspan: 9, class: 'error' }, err.message))));
  return () => abort.abort();
}

function mountVnfs(root) {
  const abort = new AbortController();
  const body = h('tbody', {});
  const status = h('p', { class: 'muted', id: 'vnfs-status', role: 'status' });
  root.append(
    h('h1', {}, 'VNFS'),
    status,
    h('table', { class: 'grid', id: 'vnfs' }, h('thead', {}, h('tr', {}, ...['VNFS', 'Description', 'Image', 'Built', 'Nodes', ''].map((c) => h('th', {}, c)))), body),
  );
  async function load() {
    const { items } = await api('GET', '/vnfs', undefined, abort);
    body.replaceChildren(
      ...items.map((v) =>
        h(
          'tr',
          { 'data-vnfs': v.name },
          h('td', {}, v.name),
          h('td', {}, v.description ?? ''),
          h('td', { 'data-field': 'image' }, bytes(v.imageBytes)),
          h('td', { title: v.imageBuilt ? new Date(v.imageBuilt).toLocaleString() : '' }, v.imageBuilt ? ago(v.imageBuilt) : '-'),
          h('td', {}, String(v.nodes)),
          h('td', {}, can('admin') ? h('button', { type: 'button', 'data-action': 'build', onclick: () => void build(v.name) }, 'Build image') : ''),
        ),
      ),
    );
    if (items.length === 0) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No VNFS.')));
  }
  async function build(name) {
    try {
      const t = await api('POST', `/vnfs/${encodeURIComponent(name)}/image`, {});
      status.replaceChildren(`Building the image of ${name}: `, h('a', { href: taskHref(t.id) }, `task ${t.id}`));
    } catch (err) {
      status.textContent = `${name}: ${err.message}`;
      status.className = 'error';
    }
  }
  void load().catch((err) => body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'error' }, err.message))));
  return () => abort.abort();
}
