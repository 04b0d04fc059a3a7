// The nodes table: every node matching the filters (pattern as in the CLI, group, state, verdict:
// the API filters, a page of 5,000 at a time by cursor), sorted here by any column, drawn as a
// virtual list (only the rows in view exist in the DOM, so 10,000 nodes scroll smoothly), kept
// live from the event stream; operators select nodes for power and reload. Live changes are
// batched per animation frame and patch the live cells of the rows in view in place: at 200 node
// events a second, rebuilding the rows each frame cost frames of 100-400 ms on a busy machine
// (bench/ui), patching costs a few text nodes.
import { ago, allNodes, api, can, h, nodeHref, subscribe } from './api.js';

const ROW = 28;
const COLUMNS = [
  ['name', 'node'],
  ['group', 'group'],
  ['vnfs', 'VNFS'],
  ['state', 'state'],
  ['lastcontact', 'last contact'],
  ['lastaddr', 'address'],
  ['nodeid', 'hardware address'],
];

function compare(key) {
  if (key === 'name') return (a, b) => a.name.localeCompare(b.name, undefined, { numeric: true });
  return (a, b) => {
    const x = a[key] ?? '';
    const y = b[key] ?? '';
    return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
  };
}

export function mount(root, queryText = '') {
  const filters = new URLSearchParams(queryText);
  let rows = [];
  const byName = new Map();
  const selected = new Set();
  let sortKey = 'name';
  let sortDir = 1;
  let abort = null;
  let drawQueued = false;
  const flashed = new Map(); // name -> until (ms)
  const drawn = new Map(); // name -> its <tr>, for the rows in the DOM
  const changed = new Set(); // names changed since the last frame
  let patchQueued = false;

  const input = (name, placeholder) => h('input', { name, placeholder, value: filters.get(name) ?? '', 'aria-label': placeholder, oninput: refilter });
  const stateSel = input('state', 'state (init,ready)');
  const verdictSel = h('select', { name: 'verdict', 'aria-label': 'verdict', onchange: refilter }, h('option', { value: '' }, 'any verdict'), h('option', { value: 'READY' }, 'READY'), h('option', { value: 'RELOAD' }, 'RELOAD'));
  verdictSel.value = filters.get('verdict') ?? '';
  const pattern = input('pattern', 'pattern: n00[01-16],login*');
  const group = input('group', 'group');
  const status = h('span', { id: 'table-status', class: 'muted' }, 'loading...');
  const actions = h('span', { id: 'actions' });
  const taskLine = h('span', { id: 'task-line', class: 'muted' });
  if (can('operator')) {
    const act = (label, body, path) => h('button', { type: 'button', 'data-action': label, onclick: () => run(path, body) }, label);
    actions.append(
      act('power on', { action: 'on' }, '/power'),
      act('power off', { action: 'off' }, '/power'),
      act('reset', { action: 'reset' }, '/power'),
      act('power cycle', { action: 'cycle' }, '/power'),
      act('reload', {}, '/reload'),
    );
    // Deploy a VNFS on the selected nodes.
    const pick = h('select', { id: 'deploy-vnfs', 'aria-label': 'VNFS to deploy' });
    const go = h('button', { type: 'button', 'data-action': 'deploy', onclick: () => run('/deploy', { vnfs: pick.value }) }, 'deploy');
    actions.append(pick, go);
    api('GET', '/vnfs')
      .then(({ items }) => pick.replaceChildren(...items.map((v) => h('option', { value: v.name }, v.name))))
      .catch(() => {});
  }
  const all = h('input', { type: 'checkbox', 'aria-label': 'select every node shown', onchange: () => { if (all.checked) for (const n of rows) selected.add(n.name); else selected.clear(); draw(); } });
  const head = h('tr', {}, h('th', {}, all), COLUMNS.map(([k, label]) => h('th', { 'data-sort': k, onclick: () => sortBy(k) }, label)));
  const body = h('tbody');
  const table = h('table', { id: 'nodes' }, h('thead', {}, head), body);
  const spacer = h('div', { class: 'spacer' });
  const scroller = h('div', { class: 'scroller', onscroll: () => queueDraw() }, spacer, table);

  root.append(
    h('div', { class: 'toolbar' }, pattern, group, stateSel, verdictSel, status),
    h('div', { class: 'toolbar' }, h('span', { id: 'selcount' }, '0 selected'), actions, taskLine),
    scroller,
  );

  let timer = null;
  function refilter() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      for (const el of [pattern, group, stateSel, verdictSel]) {
        if (el.value.trim()) filters.set(el.name, el.value.trim());
        else filters.delete(el.name);
      }
      history.replaceState(null, '', `#/nodes${filters.size ? `?${filters}` : ''}`);
      void load();
    }, 250);
  }

  async function load() {
    abort?.abort();
    abort = new AbortController();
    const started = performance.now();
    status.textContent = 'loading...';
    try {
      const show = (list, done) => {
        rows = list.slice();
        byName.clear();
        for (const n of rows) byName.set(n.name, n);
        if (done) for (const s of [...selected]) if (!byName.has(s)) selected.delete(s);
        sort();
        status.textContent = done ? `${rows.length} nodes (${Math.round(performance.now() - started)} ms)` : `${rows.length} nodes so far...`;
        if (done) status.dataset.count = String(rows.length);
        else delete status.dataset.count;
        draw();
      };
      // The first page is drawn as soon as it arrives; the rest follow.
      show(await allNodes(filters.toString(), abort, (sofar) => show(sofar, false)), true);
    } catch (err) {
      if (err.name !== 'AbortError') status.textContent = err.message;
    }
  }

  function sortBy(key) {
    sortDir = key === sortKey ? -sortDir : 1;
    sortKey = key;
    sort();
    draw();
  }

  function sort() {
    const c = compare(sortKey);
    rows.sort((a, b) => sortDir * c(a, b));
    for (const th of head.querySelectorAll('th[data-sort]')) th.setAttribute('aria-sort', th.dataset.sort === sortKey ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
  }

  function queueDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      draw();
    });
  }

  // Only the rows in view (and a few around) are in the DOM.
  function draw() {
    spacer.style.height = `${(rows.length + 1) * ROW}px`;
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW) - 5);
    const count = Math.ceil(scroller.clientHeight / ROW) + 10;
    table.style.top = `${first * ROW}px`;
    const now = Date.now();
    drawn.clear();
    body.replaceChildren(
      ...rows.slice(first, first + count).map((n) => {
        const box = h('input', { type: 'checkbox', 'aria-label': `select ${n.name}`, onchange: () => { if (box.checked) selected.add(n.name); else selected.delete(n.name); updateSelection(); } });
        box.checked = selected.has(n.name);
        const cls = [selected.has(n.name) ? 'sel' : '', (flashed.get(n.name) ?? 0) > now ? 'flash' : ''].join(' ').trim();
        const tr = h('tr', { 'data-node': n.name, class: cls || undefined }, h('td', {}, box), h('td', {}, h('a', { href: nodeHref(n.name) }, n.name)), h('td', {}, n.group), h('td', {}, n.vnfs || '-'), h('td'), h('td'), h('td'), h('td', {}, n.nodeid));
        fill(tr, n);
        drawn.set(n.name, tr);
        return tr;
      }),
    );
    updateSelection();
  }

  // The cells that change live (state, last contact, address), written only when they differ.
  function fill(tr, n) {
    const [, , , , state, contact, addr] = tr.children;
    const set = (el, text) => el.textContent !== text && (el.textContent = text);
    set(state, n.state ?? 'never seen');
    state.className = n.timedOut ? 'warn' : '';
    set(contact, ago(n.lastcontact));
    contact.title = n.lastcontact ? new Date(n.lastcontact).toISOString() : '';
    set(addr, n.lastaddr ?? '');
  }

  // Live changes, once per frame: only the rows in view are touched.
  function queuePatch() {
    if (patchQueued) return;
    patchQueued = true;
    requestAnimationFrame(() => {
      patchQueued = false;
      for (const name of changed) {
        const tr = drawn.get(name);
        const n = byName.get(name);
        if (!tr || !n) continue;
        fill(tr, n);
        tr.classList.add('flash');
      }
      changed.clear();
    });
  }

  function updateSelection() {
    document.getElementById('selcount').textContent = `${selected.size} selected`;
    for (const b of actions.querySelectorAll('button')) b.disabled = selected.size === 0;
    all.checked = rows.length > 0 && selected.size === rows.length;
  }

  async function run(path, body) {
    const nodes = [...selected];
    taskLine.textContent = `${path.slice(1)} ${body.action ?? body.vnfs ?? ''} on ${nodes.length} nodes...`;
    try {
      const task = await api('POST', path, { ...body, nodes });
      taskLine.replaceChildren('task ', h('code', { 'data-task': task.id }, task.id), ` ${task.action}: ${task.status}`);
      watchTask(task.id);
    } catch (err) {
      taskLine.textContent = err.message;
    }
  }

  let watched = null;
  function watchTask(id) {
    watched = id;
  }

  const off = subscribe((e) => {
    if (e.kind === 'gap') return void load();
    if (e.kind === 'task' && e.id === watched) {
      taskLine.replaceChildren('task ', h('code', { 'data-task': e.id }, e.id), ` ${e.action}: ${e.status}${e.result && e.result !== 'incomplete' ? ` (${e.result})` : ''}`);
      return;
    }
    if (e.kind !== 'node') return;
    const n = byName.get(e.node);
    if (!n) return;
    n.state = e.state;
    n.lastcontact = e.lastcontact ?? e.time;
    n.lastaddr = e.addr ?? n.lastaddr;
    n.timedOut = false;
    flashed.set(e.node, Date.now() + 1500);
    changed.add(e.node);
    queuePatch();
  });
  // "12s ago" keeps counting.
  const tick = setInterval(() => {
    for (const [name, tr] of drawn) if (byName.has(name)) fill(tr, byName.get(name));
  }, 5_000);
  // A changed row stays marked for 1.5 s. A still mark, not an animation: with 200 events a second
  // every row in view would be repainted at every frame while its background faded.
  const unflash = setInterval(() => {
    const now = Date.now();
    for (const [name, until] of flashed) {
      if (until > now) continue;
      flashed.delete(name);
      drawn.get(name)?.classList.remove('flash');
    }
  }, 250);

  void load();
  return () => {
    abort?.abort();
    off();
    clearInterval(tick);
    clearInterval(unflash);
    clearTimeout(timer);
  };
}
