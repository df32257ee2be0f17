// The fleet: every node as its heartbeat shows it (a single node: one row), polled
// every two seconds. A node that is cut off, stale, behind on the control state or
// failed to load a service's active version stands out, with the reason.

import { h, fill, table, repeat, ago } from './dom.js';
import { api } from './api.js';

const POLL_MS = 2000;

/** Requests per second from two heartbeats of the same node. */
function rate(previous, beat, at) {
  if (!previous || previous.started !== beat.started_at_ms || at <= previous.at) return null;
  if (beat.requests === previous.requests) return previous.rate;
  return ((beat.requests - previous.requests) * 1000) / (at - previous.at);
}

export function link(node) {
  if (node.status === 'gone') return 'gone (stopped)';
  if (node.status === 'stale') return 'stale (not heard from)';
  return node.connected ? 'connected' : 'cut off';
}

export function show({ main }) {
  const body = h('div', { class: 'fleet' });
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  fill(main, h('h1', {}, 'Fleet'), problem, body);
  const seen = new Map();
  return repeat(async () => {
    const { nodes, revision } = await api('GET', '/admin/v1/nodes');
    const rows = nodes.map((node) => {
      const at = Date.now() - node.last_seen_ms_ago;
      const key = node.name;
      const r = rate(seen.get(key), node, at);
      if (!seen.get(key) || node.requests !== seen.get(key).requests) {
        seen.set(key, { requests: node.requests, at, started: node.started_at_ms, rate: r });
      }
      const lag = Math.max(0, revision - node.applied_revision);
      const failed = Object.entries(node.services).filter(([, s]) => s.failed);
      const why = [];
      if (node.status !== 'live' || !node.connected) why.push(link(node));
      if (lag > 0 && node.status === 'live') why.push(`${lag} changes behind`);
      for (const [name, s] of failed) why.push(`${name}: ${s.failed}`);
      return h('tr', { class: why.length ? 'node alert' : 'node', 'data-node': node.name },
        h('td', { class: 'name' }, node.name),
        h('td', {}, node.pop ?? '—'),
        h('td', {}, node.verge_version),
        h('td', { class: 'link' }, link(node)),
        h('td', { class: 'num' }, node.applied_revision),
        h('td', { class: 'num lag' }, lag),
        h('td', { class: 'num rps' }, r === null ? '…' : r.toFixed(1)),
        h('td', {}, ago(node.last_seen_ms_ago)),
        h('td', {}, Object.keys(node.services).length),
        h('td', { class: 'why' }, why.join('; ')));
    });
    fill(body, table('nodes', ['Node', 'PoP', 'Verge', 'Link', 'Applied revision', 'Lag', 'Requests/s', 'Last heartbeat', 'Services', 'Attention'], rows),
      h('p', { class: 'hint' }, `Control revision ${revision}. Updated every ${POLL_MS / 1000} s.`));
  }, POLL_MS, (e) => {
    problem.hidden = !e;
    problem.textContent = e ? `Could not read the nodes: ${e.message}` : '';
  });
}
