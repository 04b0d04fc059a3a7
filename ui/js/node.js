// A node's page: every setting with where it comes from, attributes, the verdict, the image it
// runs against the current one, the boot timeline as a picture (a horizontal time line, one lane per
// source, failures in red with their message) and as a table, the power state with buttons, and
// reload or deploy (another VNFS) with its live phases; the serial console below. Kept live from the event stream.
import { ago, api, can, h, subscribe } from './api.js';

const SVG = 'http://www.w3.org/2000/svg';
const FIELDS = ['group', 'vnfs', 'enabled', 'debug', 'boot', 'ipaddr', 'desc'];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** The steps of the latest boot: from its last DHCP discover (or power action), else all. */
export function lastBoot(events) {
  let from = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if ((e.source === 'dhcp' && e.stage === 'discover') || e.source === 'power') {
      from = i;
      // Several discovers in a row belong to the same boot.
      while (from > 0 && events[from - 1].source === 'dhcp' && events[from - 1].stage === 'discover') from--;
      break;
    }
  }
  return events.slice(from);
}

/** The timeline picture: time left to right, a lane per source, a mark per step (red: failed). */
export function timelineSvg(events, width = 1200) {
  const lanes = [...new Set(events.map((e) => e.source))];
  const laneH = 34;
  const left = 90;
  const right = 20;
  const height = 30 + lanes.length * laneH + 20;
  const svg = s('svg', { class: 'timeline-svg', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'boot timeline' });
  if (events.length === 0) {
    svg.append(s('text', { x: 10, y: 20 }, 'No boot step recorded.'));
    return svg;
  }
  const t0 = events[0].time;
  const t1 = Math.max(events.at(-1).time, t0 + 1);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  svg.append(s('line', { x1: left, x2: width - right, y1: height - 18, y2: height - 18, stroke: '#99a' }));
  svg.append(s('text', { x: left, y: height - 4 }, new Date(t0).toLocaleTimeString()));
  svg.append(s('text', { x: width - right, y: height - 4, 'text-anchor': 'end' }, `+${((t1 - t0) / 1000).toFixed(1)} s`));
  lanes.forEach((lane, i) => {
    const y = 30 + i * laneH;
    svg.append(s('text', { x: 4, y: y + 4 }, lane), s('line', { x1: left, x2: width - right, y1: y, y2: y, stroke: '#e3e6ec' }));
  });
  // Consecutive steps of one source are joined by a bar: the time that part of the boot took.
  for (const lane of lanes) {
    const steps = events.filter((e) => e.source === lane);
    const y = 30 + lanes.indexOf(lane) * laneH;
    if (steps.length > 1) svg.append(s('rect', { x: x(steps[0].time), y: y - 3, width: Math.max(1, x(steps.at(-1).time) - x(steps[0].time)), height: 6, class: 'step', opacity: 0.25 }));
  }
  let lastLabelX = -Infinity;
  events.forEach((e, i) => {
    const y = 30 + lanes.indexOf(e.source) * laneH;
    const cx = x(e.time);
    const g = s('g', { 'data-step': i, class: e.ok ? 'ok-step' : 'failed-step' });
    const title = s('title', {}, `${new Date(e.time).toISOString()} ${e.source} ${e.stage}${e.msg ? `: ${e.msg}` : ''}`);
    g.append(title, s('circle', { cx, cy: y, r: e.ok ? 4 : 6, class: e.ok ? 'ok' : 'fail' }));
    // Failures always get their label (stage and message, e.g. the exit code); other steps when there is room.
    // Past the middle, a label runs leftwards so it stays in the picture.
    const side = cx > width / 2 ? { x: cx - 8, 'text-anchor': 'end' } : { x: cx + 8 };
    if (!e.ok) g.append(s('text', { ...side, y: y + 14, class: 'fail-label' }, `${e.stage}: ${e.msg ?? 'failed'}`));
    else if (cx - lastLabelX > 70) {
      g.append(s('text', { x: cx + 6, y: y - 7 }, e.stage.length > 24 ? `${e.stage.slice(0, 23)}…` : e.stage));
      lastLabelX = cx;
    }
    svg.append(g);
  });
  return svg;
}

export function mount(root, param) {
  const name = decodeURIComponent(param);
  let node = null;
  let events = [];
  let watched = null;
  const abort = new AbortController();

  const header = h('h1', {}, name);
  const summary = h('div', { id: 'summary', class: 'card' }, 'loading...');
  const settings = h('section', { class: 'card', id: 'settings' });
  const powerCard = h('section', { class: 'card', id: 'power' }, h('h2', {}, 'Power'));
  const picture = h('div', { id: 'timeline-picture' });
  const tableBox = h('div', { id: 'timeline-table' });
  const consoleBox = h('section', { class: 'card wide', id: 'console-card' });
  root.append(
    h('p', {}, h('a', { href: '#/nodes' }, '← nodes')),
    header,
    h('div', { class: 'cards' }, summary, settings, powerCard, h('section', { class: 'card wide' }, h('h2', {}, 'Boot timeline (latest boot)'), picture, h('details', {}, h('summary', {}, 'as a table (every recorded step)'), tableBox)), consoleBox),
  );

  function renderNode() {
    const v = node.verdict;
    summary.replaceChildren(
      h('h2', {}, 'Status'),
      h('div', { class: `big ${v.verdict === 'READY' ? 'ok' : 'bad'}`, id: 'verdict' }, v.verdict),
      v.reason ? h('p', { id: 'verdict-reason' }, v.reason) : null,
      h('p', {}, `state ${node.state ?? 'never seen'}, last contact ${ago(node.lastcontact)}${node.lastaddr ? ` from ${node.lastaddr}` : ''}`),
      h('p', {}, `image: booted ${node.bootImage ? node.bootImage.slice(0, 12) : '-'}${node.bootVnfs ? ` (${node.bootVnfs})` : ''}, current ${node.currentImage ? node.currentImage.slice(0, 12) : '-'}`,
        node.bootImage && node.currentImage && node.bootImage !== node.currentImage ? h('b', { class: 'warn' }, ' (changed since boot)') : null),
    );
    const rows = [['nodeid', node.nodeid, null], ...FIELDS.map((f) => [f, node[f], node.sources[f] ?? null]), ['lease', node.leaseAddress, null]];
    for (const [k, val] of Object.entries(node.attrs).sort()) rows.push([`attrs.${k}`, val, node.sources[`attrs.${k}`] ?? null]);
    settings.replaceChildren(
      h('h2', {}, 'Settings'),
      h('dl', { class: 'kv' }, rows.flatMap(([k, val, src]) => [h('dt', {}, k), h('dd', { 'data-field': k }, val === null || val === '' ? '-' : String(val)), h('span', { class: 'src' }, src ?? '')])),
    );
  }

  function renderTimeline() {
    picture.replaceChildren(timelineSvg(lastBoot(events), Math.max(600, picture.clientWidth || 1200)));
    tableBox.replaceChildren(
      h(
        'table',
        { id: 'timeline' },
        h('tr', {}, h('th', {}, 'time'), h('th', {}, 'source'), h('th', {}, 'step'), h('th', {}, 'message')),
        events.map((e) => h('tr', { class: e.ok ? undefined : 'failed' }, h('td', {}, new Date(e.time).toLocaleTimeString()), h('td', {}, e.source), h('td', {}, e.stage), h('td', {}, e.msg ?? ''))),
      ),
    );
  }

  async function loadPower() {
    const state = h('p', { id: 'power-state' }, 'asking the driver...');
    const task = h('p', { id: 'task-phases', class: 'muted' });
    powerCard.replaceChildren(h('h2', {}, 'Power'), state);
    if (can('operator')) {
      const act = (label, path, body) => h('button', { type: 'button', 'data-action': label, onclick: () => run(path, body, task) }, label);
      powerCard.append(
        h('div', { class: 'toolbar', id: 'node-actions' }, act('on', 'power', { action: 'on' }), act('off', 'power', { action: 'off' }), act('shutdown', 'power', { action: 'shutdown' }), act('reset', 'power', { action: 'reset' }), act('cycle', 'power', { action: 'cycle' }), act('reload', 'reload', {})),
      );
      // Deploy: another VNFS, set then booted and followed to ready on it, phase by phase.
      const pick = h('select', { id: 'deploy-vnfs', 'aria-label': 'VNFS to deploy' });
      const go = h('button', { type: 'button', 'data-action': 'deploy', disabled: true, onclick: () => run('deploy', { vnfs: pick.value }, task) }, 'deploy');
      powerCard.append(h('div', { class: 'toolbar', id: 'deploy' }, pick, go));
      api('GET', '/vnfs', undefined, abort)
        .then(({ items }) => {
          pick.replaceChildren(...items.map((v) => h('option', { value: v.name, selected: v.name === node?.vnfs ? true : undefined }, v.imageBytes === null ? `${v.name} (not built)` : v.name)));
          go.disabled = items.length === 0;
        })
        .catch(() => {});
    }
    powerCard.append(task);
    try {
      const p = await api('GET', `/nodes/${encodeURIComponent(name)}/power`, undefined, abort);
      state.textContent = `${p.state} (${p.driver})`;
    } catch (err) {
      state.textContent = err.status === 409 ? 'no power driver configured' : `unknown: ${err.message}`;
    }
  }

  async function run(path, body, line) {
    line.textContent = `${path} ${body.action ?? body.vnfs ?? ''}...`;
    try {
      const t = await api('POST', `/nodes/${encodeURIComponent(name)}/${path}`, body);
      watched = t.id;
      showTask(t, line);
    } catch (err) {
      line.textContent = err.message;
    }
  }

  // The phases a task went through for this node (a reload: power, dhcp, kernel, init, getfile, ready).
  let trail = [];
  function showTask(t, line = document.getElementById('task-phases')) {
    if (!line) return;
    const mine = Array.isArray(t.nodes) ? t.nodes.find((n) => typeof n === 'object' && n.node === name) : null;
    const phase = mine?.phase ?? t.phases?.[name]?.phase ?? null;
    if (line.dataset.task !== t.id) trail = [];
    if (phase && trail.at(-1) !== phase) trail.push(phase);
    line.replaceChildren(`task ${t.id} ${t.action}: ${t.status}`, t.result && t.result !== 'incomplete' ? ` (${t.result}) ` : ' ', ...trail.map((p) => h('span', { class: 'phase', 'data-phase': p }, p)));
    line.dataset.task = t.id;
    line.dataset.status = t.status;
  }

  async function load() {
    const enc = encodeURIComponent(name);
    const [n, tl] = await Promise.all([api('GET', `/nodes/${enc}`, undefined, abort), api('GET', `/nodes/${enc}/timeline?limit=500`, undefined, abort)]);
    node = n;
    events = tl.events;
    renderNode();
    renderTimeline();
  }

  let reloadTimer = null;
  const off = subscribe((e) => {
    if (e.kind === 'gap') return void load();
    if (e.kind === 'task' && e.id === watched) return showTask(e);
    if (!node || (e.node !== node.name && e.nodeid !== node.nodeid)) return;
    if (e.kind === 'timeline') {
      events.push({ time: e.time, nodeid: e.nodeid, source: e.source, stage: e.stage, msg: e.msg ?? null, ok: e.ok, addr: e.addr ?? null });
      renderTimeline();
    }
    // State, contact and verdict: re-read (debounced), the API judges.
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => void api('GET', `/nodes/${encodeURIComponent(name)}`, undefined, abort).then((n) => { node = n; renderNode(); }).catch(() => {}), 300);
  });

  let closeConsole = null;
  load()
    .then(async () => {
      void loadPower();
      const { mountConsole } = await import('./console.js');
      if (!abort.signal.aborted) closeConsole = mountConsole(consoleBox, node.name);
    })
    .catch((err) => summary.replaceChildren(h('p', { class: 'error' }, err.message)));
  return () => {
    abort.abort();
    off();
    clearTimeout(reloadTimer);
    closeConsole?.();
  };
}
