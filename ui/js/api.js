// The web UI's only way into the daemon: the public API (/api/v1) with the session cookie, the
// session's CSRF secret on every change, and one shared event stream (/api/v1/events).

export const BASE = '/api/v1';

/** The logged-in session: {name, role, csrf, expires}, or null. */
export let session = null;

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

/** One API call: JSON in and out; throws ApiError with the API's message. */
export async function api(method, path, body, { signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && session?.csrf) headers['X-CSRF-Token'] = session.csrf;
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', signal });
  if (res.status === 204) return null;
  const data = res.headers.get('content-type')?.startsWith('application/json') ? await res.json() : null;
  if (!res.ok) {
    if (res.status === 401 && session) onLoggedOut?.();
    throw new ApiError(res.status, data);
  }
  return data;
}

let onLoggedOut = null;
export function whenLoggedOut(fn) { onLoggedOut = fn; }

/** The session of the cookie, if there is a live one. */
export async function resume() {
  try {
    session = await api('GET', '/session');
  } catch {
    session = null;
  }
  return session;
}

export async function login(token) {
  session = await api('POST', '/session', { token });
  return session;
}

export async function logout() {
  try { await api('DELETE', '/session'); } finally { session = null; closeEvents(); }
}

/** Roles in order: a role may do what the ones before it may. */
const RANK = { viewer: 1, operator: 2, admin: 3 };
export const can = (role) => session !== null && RANK[session.role] >= RANK[role];

// One EventSource for the whole UI; pages subscribe and unsubscribe.
let source = null;
const listeners = new Set();
let statusListener = null;

export function onStreamStatus(fn) { statusListener = fn; }

/** Calls fn(event) for each event ({kind, node, time, ...data}); fn({kind:'gap'}) when events were lost. Returns the unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  openEvents();
  return () => listeners.delete(fn);
}

function openEvents() {
  if (source) return;
  source = new EventSource(`${BASE}/events`);
  const deliver = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch { return; }
    for (const l of [...listeners]) l(e);
  };
  for (const kind of ['node', 'timeline', 'task']) source.addEventListener(kind, deliver);
  source.addEventListener('gap', () => { for (const l of [...listeners]) l({ kind: 'gap' }); });
  source.onopen = () => statusListener?.(true);
  source.onerror = () => statusListener?.(false);
}

export function closeEvents() {
  source?.close();
  source = null;
  statusListener?.(false);
}

/** Every node, page after page (the API's cursor); onPage(nodesSoFar) after each page but the last. */
export async function allNodes(query = '', { signal } = {}, onPage = null) {
  const out = [];
  let cursor = null;
  do {
    const q = new URLSearchParams(query);
    q.set('limit', '5000');
    if (cursor) q.set('cursor', cursor);
    const page = await api('GET', `/nodes?${q}`, undefined, { signal });
    out.push(...page.items);
    cursor = page.next;
    if (cursor) onPage?.(out);
  } while (cursor);
  return out;
}

// Small DOM helpers.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const nodeHref = (name) => `#/node/${encodeURIComponent(name)}`;

export function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}
