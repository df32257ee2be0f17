// A service's live log lines (`verge logs --tail` in the page): the admin API's
// server-sent events, read with fetch so the token goes in a header (EventSource
// cannot send one). A request's guest lines are grouped under its access line;
// every node's lines are tagged with it; the same status and search filters as the
// CLI; pausable (lines keep arriving and are shown on resume).

import { h, fill, viewReady } from './dom.js';
import { token, seg } from './api.js';
import { serviceTabs } from './services.js';

/** Requests kept on the page; older ones are dropped from the top. */
const KEEP = 300;
/** Lines held while paused; past it the oldest go. */
const HOLD = 5000;

/** Reads `body` as server-sent events: calls `onEvent(type, data)` per event. */
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length) onEvent(type, data.join('\n'));
    }
  }
}

function statusClass(status) {
  return `s${Math.floor(status / 100)}xx`;
}

export function show({ main }, name) {
  const statusInput = h('input', { class: 'status-filter', placeholder: '5xx,404', size: 10, 'aria-label': 'Statuses' });
  const searchInput = h('input', { class: 'search-filter', placeholder: 'text in the line', 'aria-label': 'Search' });
  const nodeInput = h('input', { class: 'node-filter', placeholder: 'node name', size: 10, 'aria-label': 'Node' });
  const state = h('span', { class: 'stream-state' }, 'connecting…');
  const pauseButton = h('button', { type: 'button', class: 'pause' }, 'Pause');
  const list = h('div', { class: 'log-lines', 'aria-live': 'off' });
  const groups = new Map();
  let paused = false;
  let held = [];
  let controller = null;
  let stopped = false;
  let anonymous = 0;

  const form = h('form', { class: 'log-filters', onsubmit: (e) => {
    e.preventDefault();
    connect();
  } },
  h('label', {}, 'Status ', statusInput),
  h('label', {}, 'Search ', searchInput),
  h('label', {}, 'Node ', nodeInput),
  h('button', { type: 'submit' }, 'Apply'),
  pauseButton, state);
  fill(main, h('h1', {}, name), serviceTabs(name, '/logs'), form, list);

  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) {
      const lines = held;
      held = [];
      lines.forEach(show1);
      setState('watching');
    } else {
      setState('paused');
    }
  });

  function setState(text) {
    state.textContent = text;
  }

  function group(line) {
    const id = line.request_id ?? `line-${anonymous++}`;
    let g = groups.get(id);
    if (!g) {
      const head = h('div', { class: 'head pending' }, h('span', { class: 'request-id' }, id), ' in progress…');
      g = { el: h('div', { class: 'request', 'data-request-id': id }, head), head };
      groups.set(id, g);
      list.prepend(g.el);
      while (groups.size > KEEP) {
        const [oldest] = groups.keys();
        groups.get(oldest).el.remove();
        groups.delete(oldest);
      }
    }
    return g;
  }

  function show1(line) {
    const g = group(line);
    const node = line.node ? h('span', { class: 'node-tag' }, line.node) : null;
    if (line.type === 'access') {
      const head = h('div', { class: `head ${statusClass(line.status)}` },
        h('span', { class: 'time' }, (line.ts ?? '').replace('T', ' ').replace(/\..*/, '')),
        node,
        h('span', { class: 'status' }, line.status),
        h('span', { class: 'method' }, line.method),
        h('span', { class: 'path' }, line.path),
        h('span', { class: 'duration' }, `${((line.duration_us ?? 0) / 1000).toFixed(1)} ms`),
        line.outcome && line.outcome !== 'ok' ? h('span', { class: 'outcome' }, line.outcome) : null,
        h('span', { class: 'request-id' }, line.request_id));
      g.head.replaceWith(head);
      g.head = head;
    } else {
      const kind = line.level ?? line.stream ?? line.event ?? line.endpoint ?? line.type;
      g.el.append(h('div', { class: `line ${line.type}` }, node,
        h('span', { class: 'kind' }, kind), h('span', { class: 'message' }, line.message ?? JSON.stringify(line))));
    }
  }

  function onEvent(type, data) {
    if (type === 'ready') {
      setState(paused ? 'paused' : 'watching');
      viewReady();
      return;
    }
    if (type === 'dropped') {
      const n = JSON.parse(data).dropped;
      list.prepend(h('div', { class: 'dropped' }, `${n} lines lost: the page fell behind`));
      return;
    }
    let line;
    try {
      line = JSON.parse(data);
    } catch {
      line = { type: 'raw', message: data };
    }
    if (paused) {
      held.push(line);
      if (held.length > HOLD) held.shift();
      setState(`paused (${held.length} lines held)`);
    } else {
      show1(line);
    }
  }

  async function connect() {
    controller?.abort();
    controller = new AbortController();
    const mine = controller;
    const query = new URLSearchParams();
    if (statusInput.value.trim()) query.set('status', statusInput.value.trim());
    if (searchInput.value) query.set('search', searchInput.value);
    if (nodeInput.value.trim()) query.set('node', nodeInput.value.trim());
    setState('connecting…');
    try {
      const resp = await fetch(`/admin/v1/services/${seg(name)}/logs?${query}`, {
        headers: { authorization: `Bearer ${token.get()}` },
        signal: mine.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        setState(`refused: ${body.error ?? resp.status}`);
        return;
      }
      await readEvents(resp.body, onEvent);
      if (!mine.signal.aborted) setState('the node closed the stream; reconnecting…');
    } catch (e) {
      if (mine.signal.aborted) return;
      setState(`disconnected (${e.message}); reconnecting…`);
    }
    if (!stopped && controller === mine) setTimeout(() => controller === mine && connect(), 2000);
  }

  // Leaving the page ends the stream too: a browser may keep a left page (and its
  // connection) for the back button, and holds only six connections per node.
  // Coming back to it (the back button) connects again.
  const leave = () => controller?.abort();
  const back = (event) => event.persisted && !stopped && connect();
  window.addEventListener('pagehide', leave);
  window.addEventListener('pageshow', back);
  connect();
  return () => {
    stopped = true;
    window.removeEventListener('pagehide', leave);
    window.removeEventListener('pageshow', back);
    controller?.abort();
  };
}
