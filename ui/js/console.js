// The node's serial console in the browser: xterm.js over the API's console WebSocket. The session
// is shared (every viewer sees the same output; joining shows the scrollback); operators type,
// viewers watch. Opened on demand, so a page view does not hold the BMC's SOL. Keystrokes go as
// binary frames; an operator's terminal size goes as a `resize` control message whenever the fit
// addon changes it, so the node's side (a pty: ipmitool SOL, the exec console) wraps to this page.
import { can, h } from './api.js';

let loaded = null;
function loadXterm() {
  if (!document.querySelector('link[data-xterm]')) document.head.append(h('link', { rel: 'stylesheet', href: 'vendor/xterm/css/xterm.css', 'data-xterm': true }));
  loaded ??= Promise.all([import('../vendor/xterm/lib/xterm.mjs'), import('../vendor/addon-fit/lib/addon-fit.mjs')]);
  return loaded;
}

export function mountConsole(box, node) {
  const status = h('span', { class: 'console-status', id: 'console-status' }, 'closed');
  const viewers = h('span', { class: 'console-status', id: 'console-viewers' });
  const size = h('span', { class: 'console-status muted', id: 'console-size' });
  const openBtn = h('button', { type: 'button', id: 'console-open', onclick: () => void open() }, 'Open console');
  const closeBtn = h('button', { type: 'button', id: 'console-close', hidden: true, onclick: () => close('closed') }, 'Close');
  const screen = h('div', { class: 'console-box', id: 'console', hidden: true });
  box.append(h('h2', {}, 'Serial console'), h('div', { class: 'toolbar' }, openBtn, closeBtn, status, viewers, size, can('operator') ? null : h('span', { class: 'muted' }, '(watch only: typing needs the operator role)')), screen);

  let term = null;
  let fit = null;
  let ws = null;
  let wanted = false;
  let retry = null;
  let resizeObs = null;
  const encoder = new TextEncoder();

  // Only an operator's size counts at the far end (the daemon ignores a watcher's).
  function sendSize() {
    screen.dataset.cols = String(term.cols);
    screen.dataset.rows = String(term.rows);
    if (ws?.readyState === WebSocket.OPEN && can('operator')) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
  }

  async function open() {
    wanted = true;
    openBtn.hidden = true;
    closeBtn.hidden = false;
    screen.hidden = false;
    if (!term) {
      const [{ Terminal }, { FitAddon }] = await loadXterm();
      term = new Terminal({ convertEol: false, scrollback: 5000, disableStdin: !can('operator'), fontSize: 13, cursorBlink: can('operator') });
      fit = new FitAddon();
      term.loadAddon(fit);
      term.open(screen);
      fit.fit();
      resizeObs = new ResizeObserver(() => fit.fit());
      resizeObs.observe(screen);
      const key = (d) => ws?.readyState === WebSocket.OPEN && can('operator') && ws.send(encoder.encode(d));
      term.onData(key);
      // Some mouse reports are raw bytes, not text.
      term.onBinary((d) => ws?.readyState === WebSocket.OPEN && can('operator') && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
      term.onResize(sendSize);
    }
    connect();
  }

  // The size the node's terminal has (the last typing operator's, maybe not this page's).
  function nodeSize({ cols, rows, by }) {
    size.textContent = `node terminal ${cols}x${rows}`;
    size.title = by ? `set by ${by}` : '';
    size.dataset.cols = String(cols);
    size.dataset.rows = String(rows);
  }

  function connect() {
    clearTimeout(retry);
    status.textContent = 'connecting...';
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const sock = new WebSocket(`${proto}://${location.host}/api/v1/nodes/${encodeURIComponent(node)}/console`);
    ws = sock;
    sock.binaryType = 'arraybuffer';
    sock.onmessage = (m) => {
      if (typeof m.data !== 'string') return term.write(new Uint8Array(m.data));
      const c = JSON.parse(m.data);
      if (c.type === 'attached') {
        // The scrollback follows: start from a clean screen (a reconnect sends it again).
        term.reset();
        status.textContent = `attached via ${c.via}${c.canType ? '' : ' (watching)'}`;
        status.dataset.state = 'attached';
        viewers.textContent = `${c.viewers} watching`;
        if (c.size) nodeSize(c.size);
        else size.textContent = c.resizable ? '' : 'serial line: no window size';
        sendSize();
      } else if (c.type === 'size') nodeSize(c);
      else if (c.type === 'viewers') viewers.textContent = `${c.viewers} watching`;
      else if (c.type === 'error') {
        status.textContent = c.message;
        status.dataset.state = 'error';
        wanted = false;
      } else if (c.type === 'closed') status.textContent = `console closed: ${c.reason}`;
      else if (c.type === 'readonly' || c.type === 'invalid') status.textContent = c.message;
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (status.dataset.state === 'attached') status.dataset.state = 'closed';
      if (wanted) {
        status.textContent = 'disconnected: reconnecting...';
        retry = setTimeout(connect, 2000);
      } else {
        openBtn.hidden = false;
        closeBtn.hidden = true;
      }
    };
  }

  function close(why) {
    wanted = false;
    clearTimeout(retry);
    const s = ws;
    ws = null;
    s?.close();
    status.textContent = why;
    status.dataset.state = 'closed';
    viewers.textContent = '';
    openBtn.hidden = false;
    closeBtn.hidden = true;
  }

  return () => {
    close('closed');
    resizeObs?.disconnect();
    term?.dispose();
  };
}
