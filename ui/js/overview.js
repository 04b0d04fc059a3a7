// The cluster overview: nodes by state, verdict, group and VNFS; nodes booting now with their
// phase; recent failures linking to the node's page. Read once, then kept live from the event
// stream (a gap re-reads it).
import { ago, allNodes, api, h, nodeHref, subscribe } from './api.js';

const BOOTING_WINDOW_MS = 15 * 60_000;

export function mount(root) {
  const nodes = new Map();
  const booting = new Map(); // node -> {stage, time, ok}
  let failures = [];
  let verdicts = null;
  let renderQueued = false;
  let verdictTimer = null;
  let reloadTimer = null;
  const abort = new AbortController();

  root.append(h('h1', {}, 'Cluster'), h('div', { class: 'cards', id: 'overview' }, h('p', { class: 'muted' }, 'Loading...')));

  async function load() {
    const [list, recent] = await Promise.all([allNodes('', abort), api('GET', '/events/recent?kind=timeline&failed=true&limit=20', undefined, abort)]);
    nodes.clear();
    for (const n of list) nodes.set(n.name, n);
    const now = Date.now();
    for (const n of list) {
      if (n.state && n.state !== 'ready' && !n.timedOut && n.lastcontact && now - n.lastcontact < BOOTING_WINDOW_MS && !booting.has(n.name)) booting.set(n.name, { stage: n.state, time: n.lastcontact });
    }
    failures = recent.items.map((e) => ({ node: e.node, time: e.time, ...e.data }));
    render();
    loadVerdicts();
  }

  async function loadVerdicts() {
    try {
      const reload = await allNodes('verdict=RELOAD', abort);
      verdicts = { RELOAD: reload.length, READY: nodes.size - reload.length };
      render();
    } catch {
      // shown as unknown
    }
  }

  function later(fn, ms, timer) {
    clearTimeout(timer);
    return setTimeout(fn, ms);
  }

  const off = subscribe((e) => {
    if (e.kind === 'gap') {
      reloadTimer = later(() => void load().catch(() => {}), 500, reloadTimer);
      return;
    }
    if (e.kind === 'node') {
      const n = nodes.get(e.node);
      if (n) Object.assign(n, { state: e.state, lastaddr: e.addr ?? n.lastaddr, lastcontact: e.lastcontact ?? e.time, timedOut: false });
      else reloadTimer = later(() => void load().catch(() => {}), 1000, reloadTimer);
      if (e.state === 'ready') booting.delete(e.node);
      else booting.set(e.node, { stage: e.state, time: e.time });
      verdictTimer = later(loadVerdicts, 3000, verdictTimer);
    } else if (e.kind === 'timeline' && e.node) {
      if (e.ok === false) failures = [{ ...e }, ...failures].slice(0, 20);
      const done = e.stage === 'ready' || (nodes.get(e.node)?.state === 'ready' && e.source === 'node');
      if (!done) booting.set(e.node, { stage: `${e.source} ${e.stage}`, time: e.time, ok: e.ok });
    }
    queue();
  });

  function queue() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 200);
  }

  function counts(key) {
    const m = new Map();
    for (const n of nodes.values()) {
      const k = key(n);
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return [...m].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0])));
  }

  function countList(name, entries, link) {
    return h('ul', { class: 'counts' }, entries.map(([k, v]) => h('li', { 'data-count': `${name}:${k}` }, link ? h('a', { href: link(k) }, k) : k, h('b', {}, v))));
  }

  function render() {
    const now = Date.now();
    for (const [k, b] of booting) if (now - b.time > BOOTING_WINDOW_MS) booting.delete(k);
    const el = root.querySelector('#overview');
    if (!el) return;
    const q = (k, v) => `#/nodes?${new URLSearchParams({ [k]: v })}`;
    el.replaceChildren(
      h('section', { class: 'card' }, h('h2', {}, 'Nodes'), h('div', { class: 'big', 'data-count': 'total' }, nodes.size)),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Verdict'),
        verdicts
          ? countList('verdict', [['READY', verdicts.READY], ['RELOAD', verdicts.RELOAD]], (k) => q('verdict', k))
          : h('p', { class: 'muted' }, 'judging...'),
      ),
      h('section', { class: 'card' }, h('h2', {}, 'By state'), countList('state', counts((n) => (n.timedOut ? `${n.state ?? 'never seen'} (timed out)` : (n.state ?? 'never seen'))))),
      h('section', { class: 'card' }, h('h2', {}, 'By group'), countList('group', counts((n) => n.group), (k) => q('group', k))),
      h('section', { class: 'card' }, h('h2', {}, 'By VNFS'), countList('vnfs', counts((n) => n.vnfs || '(none)'))),
      h(
        'section',
        { class: 'card wide', id: 'booting' },
        h('h2', {}, `Booting now (${booting.size})`),
        booting.size === 0
          ? h('p', { class: 'muted' }, 'No node is booting.')
          : h(
              'table',
              {},
              h('tr', {}, h('th', {}, 'node'), h('th', {}, 'phase'), h('th', {}, 'since')),
              [...booting].sort((a, b) => b[1].time - a[1].time).slice(0, 50).map(([name, b]) =>
                h('tr', { 'data-node': name }, h('td', {}, h('a', { href: nodeHref(name) }, name)), h('td', {}, h('span', { class: b.ok === false ? 'phase bad' : 'phase' }, b.stage)), h('td', {}, ago(b.time))),
              ),
            ),
      ),
      h(
        'section',
        { class: 'card wide', id: 'failures' },
        h('h2', {}, 'Recent failures'),
        failures.length === 0
          ? h('p', { class: 'muted' }, 'None since the daemon started.')
          : h(
              'table',
              {},
              h('tr', {}, h('th', {}, 'node'), h('th', {}, 'when'), h('th', {}, 'step'), h('th', {}, 'message')),
              failures.map((f) => h('tr', { class: 'failed' }, h('td', {}, h('a', { href: nodeHref(f.node) }, f.node)), h('td', {}, ago(f.time)), h('td', {}, `${f.source} ${f.stage}`), h('td', {}, f.msg ?? ''))),
            ),
      ),
    );
  }

  load().catch((err) => root.querySelector('#overview')?.replaceChildren(h('p', { class: 'error' }, err.message)));
  const tick = setInterval(queue, 10_000);
  return () => {
    abort.abort();
    off();
    clearInterval(tick);
    clearTimeout(verdictTimer);
    clearTimeout(reloadTimer);
  };
}
