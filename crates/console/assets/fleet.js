// The fleet: every node as its heartbeat shows it (a single node: one row), polled
// every two seconds, and each node's requests per second over the last hour (its
// traffic history's total). A node that is cut off, stale, behind on the control
// state or failed to load a service's active version stands out, with the reason.

import { h, fill, table, repeat, ago } from './dom.js';
import { api } from './api.js';
import { slots, lineChart } from './traffic.js';

const POLL_MS = 2000;

/** A node's requests per second in its latest 10 s sample (0 if it had none lately). */
function rate(history, node) {
  const total = history.series.find((s) => s.node === node && s.service === '*');
  const last = total?.samples[total.samples.length - 1];
  if (!last || Date.now() - last.t > 2.5 * history.step_s * 1000) return 0;
  return last.requests.reduce((a, b) => a + b, 0) / history.step_s;
}

export function link(node) {
  if (node.status === 'gone') return 'gone (stopped)';
  if (node.status === 'stale') return 'stale (not heard from)';
  return node.connected ? 'connected' : 'cut off';
}

/** Each node's requests per second over the hour, one line per node. */
function drawChart(box, plot, history, names) {
  const perNode = names.map((name) => slots(history.series.filter((s) => s.node === name && s.service === '*'), history.step_s, Date.now() / 1000));
  const xs = perNode.length ? perNode[0].xs : [];
  const data = [xs, ...perNode.map(({ samples }) => samples.map((s) => s.requests.reduce((a, b) => a + b, 0) / history.step_s))];
  if (plot && plot.series.length === names.length + 1) {
    plot.setData(data);
    return plot;
  }
  plot?.destroy();
  return lineChart(box, 'Requests/s by node, last hour', names, data,
    Math.max(480, Math.min(1150, box.clientWidth - 12)));
}

export function show({ main }) {
  const body = h('div', { class: 'fleet' });
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const chartBox = h('div', { class: 'chart chart-nodes' });
  fill(main, h('h1', {}, 'Fleet'), problem, body, chartBox);
  let plot = null;
  let history = null;
  let sinceHistory = Infinity;
  const stop = repeat(async () => {
    const { nodes, revision } = await api('GET', '/admin/v1/nodes');
    // The history changes every 10 s; read it every fifth poll.
    sinceHistory += POLL_MS;
    if (sinceHistory >= 10_000) {
      history = await api('GET', '/admin/v1/traffic');
      sinceHistory = 0;
      plot = drawChart(chartBox, plot, history, nodes.map((n) => n.name));
    }
    const rows = nodes.map((node) => {
      const r = rate(history, node.name);
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
        h('td', { class: 'num rps' }, r.toFixed(1)),
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
  return () => {
    stop();
    plot?.destroy();
  };
}
