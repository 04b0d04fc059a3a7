// Tasks: the list (newest first, live from the event stream) and one task's page with each node's
// status, result, phase and messages; an operator may cancel a task that has not finished.
import { ago, api, can, h, nodeHref, subscribe } from './api.js';

const FINISHED = new Set(['complete', 'terminated']);
export const taskHref = (id) => `#/task/${encodeURIComponent(id)}`;

function badge(t) {
  return h('span', { class: `badge ${t.result === 'failure' ? 'bad' : t.result === 'success' ? 'good' : t.result === 'partial_success' ? 'warn' : ''}` }, FINISHED.has(t.status) ? t.result : t.status);
}

function what(t) {
  const p = t.params ?? {};
  const parts = [p.action, p.vnfs, Array.isArray(p.nodes) ? p.nodes.join(',') : p.nodes, p.name].filter((x) => typeof x === 'string' && x !== '');
  return parts.join(' ');
}

export function mount(root, param) {
  return param ? mountTask(root, decodeURIComponent(param)) : mountList(root);
}

function mountList(root) {
  const abort = new AbortController();
  const tasks = new Map();
  const body = h('tbody', {});
  root.append(
    h('h1', {}, 'Tasks'),
    h('table', { class: 'grid', id: 'tasks' }, h('thead', {}, h('tr', {}, ...['Task', 'Action', 'What', 'Nodes', 'Status', 'By', 'Created'].map((c) => h('th', {}, c)))), body),
  );
  function render() {
    const rows = [...tasks.values()].sort((a, b) => b.created - a.created).slice(0, 500);
    body.replaceChildren(
      ...rows.map((t) =>
        h('tr', { 'data-task': t.id }, h('td', {}, h('a', { href: taskHref(t.id) }, t.id)), h('td', {}, t.action), h('td', {}, what(t)), h('td', {}, String(t.nodes.length)), h('td', {}, badge(t)), h('td', {}, t.createdBy), h('td', { title: new Date(t.created).toLocaleString() }, ago(t.created))),
      ),
    );
    if (rows.length === 0) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No tasks yet.')));
  }
  async function load() {
    const page = await api('GET', '/tasks?limit=500', undefined, abort);
    tasks.clear();
    for (const t of page.items) tasks.set(t.id, t);
    render();
  }
  const off = subscribe((e) => {
    if (e.kind === 'gap') return void load().catch(() => {});
    if (e.kind !== 'task') return;
    const t = tasks.get(e.id);
    if (t) {
      Object.assign(t, { status: e.status, result: e.result, progressAt: e.progressAt });
      render();
    } else void load().catch(() => {});
  });
  void load().catch((err) => body.replaceChildren(h('tr', {}, h('td', { colspan: 7, class: 'error' }, err.message))));
  return () => {
    off();
    abort.abort();
  };
}

function mountTask(root, id) {
  const abort = new AbortController();
  const head = h('div', { class: 'card', id: 'task-head' }, h('p', { class: 'muted' }, 'Loading...'));
  const nodes = h('tbody', {});
  const log = h('ul', { class: 'messages', id: 'task-messages' });
  root.append(
    h('h1', {}, 'Task ', h('code', {}, id)),
    head,
    h('h2', {}, 'Nodes'),
    h('table', { class: 'grid', id: 'task-nodes' }, h('thead', {}, h('tr', {}, ...['Node', 'Status', 'Result', 'Phase', 'Last message'].map((c) => h('th', {}, c)))), nodes),
    h('h2', {}, 'Messages'),
    log,
  );
  let task = null;
  function render() {
    const t = task;
    const cancel =
      can('operator') && !FINISHED.has(t.status)
        ? h('button', { type: 'button', id: 'cancel', onclick: () => void api('POST', `/tasks/${encodeURIComponent(t.id)}/cancel`).then((x) => ((task = x), render()), (err) => head.append(h('p', { class: 'error', role: 'alert' }, err.message))) }, 'Cancel')
        : null;
    head.replaceChildren(
      h('p', {}, h('strong', {}, t.action), ' ', what(t), ' ', badge(t)),
      h('p', { class: 'muted' }, `by ${t.createdBy}, created ${new Date(t.created).toLocaleString()}`, t.finished ? `, finished ${new Date(t.finished).toLocaleString()}` : '', t.progressAt ? `, last progress ${ago(t.progressAt)}` : ''),
      ...(cancel ? [cancel] : []),
    );
    nodes.replaceChildren(
      ...t.nodes.map((n) => {
        const last = n.messages.at(-1);
        return h('tr', { 'data-node': n.node, class: n.result === 'failure' ? 'failed' : undefined }, h('td', {}, h('a', { href: nodeHref(n.node) }, n.node)), h('td', {}, n.status), h('td', {}, n.result), h('td', {}, n.phase ?? ''), h('td', { class: last?.error ? 'error' : undefined }, last?.message ?? ''));
      }),
    );
    if (t.nodes.length === 0) nodes.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'This task acts on no node (a VNFS, the site).')));
    const all = [...(t.messages ?? []), ...t.nodes.flatMap((n) => n.messages)].sort((a, b) => a.ts - b.ts);
    log.replaceChildren(...all.map((m) => h('li', { class: m.error ? 'error' : undefined }, h('span', { class: 'muted' }, new Date(m.ts).toLocaleTimeString()), ' ', m.node ? `${m.node}: ` : '', m.message)));
    if (all.length === 0) log.append(h('li', { class: 'muted' }, 'No messages.'));
  }
  async function load() {
    task = await api('GET', `/tasks/${encodeURIComponent(id)}`, undefined, abort);
    render();
  }
  const off = subscribe((e) => {
    if ((e.kind === 'task' && e.id === id) || e.kind === 'gap') void load().catch(() => {});
  });
  void load().catch((err) => head.replaceChildren(h('p', { class: 'error' }, err.message)));
  return () => {
    off();
    abort.abort();
  };
}
