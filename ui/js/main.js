// The web UI's shell: login, the header, and a hash router (#/, #/nodes, #/node/NAME, #/tasks,
// #/task/ID, #/groups, #/vnfs) that mounts one page at a time; each page's mount returns its unmount.
import { closeEvents, login, logout, onStreamStatus, resume, session, whenLoggedOut } from './api.js';

const app = document.getElementById('app');
const top = document.getElementById('top');
let unmount = null;

const routes = [
  [/^#?\/?$/, 'overview', () => import('./overview.js')],
  [/^#\/nodes(?:\?(.*))?$/, 'nodes', () => import('./nodes.js')],
  [/^#\/node\/([^?]+)$/, 'nodes', () => import('./node.js')],
  [/^#\/tasks$/, 'tasks', () => import('./tasks.js')],
  [/^#\/task\/([^?]+)$/, 'tasks', () => import('./tasks.js')],
  [/^#\/groups$/, 'groups', () => import('./groups.js')],
  [/^#\/(vnfs)$/, 'vnfs', () => import('./groups.js')],
];

async function route() {
  if (!session) return showLogin();
  unmount?.();
  unmount = null;
  const hash = location.hash || '#/';
  for (const [re, nav, load] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    for (const a of top.querySelectorAll('[data-nav]')) a.classList.toggle('on', a.dataset.nav === nav);
    const page = await load();
    app.replaceChildren();
    unmount = page.mount(app, m[1]);
    return;
  }
  app.replaceChildren(Object.assign(document.createElement('p'), { textContent: `No such page: ${hash}` }));
}

function showLogin(message = '') {
  unmount?.();
  unmount = null;
  closeEvents();
  top.hidden = true;
  app.replaceChildren(document.getElementById('login-page').content.cloneNode(true));
  const form = document.getElementById('login');
  const error = document.getElementById('login-error');
  error.textContent = message;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      await login(form.token.value);
      form.token.value = '';
      started();
    } catch (err) {
      error.textContent = err.message;
    }
  });
}

function started() {
  top.hidden = false;
  document.getElementById('who').textContent = `${session.name} (${session.role})`;
  document.body.dataset.role = session.role;
  void route();
}

document.getElementById('logout').addEventListener('click', async () => {
  await logout().catch(() => {});
  showLogin('Logged out.');
});
onStreamStatus((on) => {
  const el = document.getElementById('live');
  el.textContent = on ? 'live' : 'offline';
  el.classList.toggle('on', on);
});
whenLoggedOut(() => showLogin('Your session ended: log in again.'));
window.addEventListener('hashchange', () => void route());

if (await resume()) started();
else showLogin();
