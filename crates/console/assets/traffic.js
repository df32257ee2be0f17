// A service's traffic over the last hour at 10-second resolution, from
// `GET /admin/v1/traffic?service=NAME`: every node's samples, summed (or one
// node's), as line charts (uPlot, vendored), refreshed every 10 s.

import { h, fill, repeat } from './dom.js';
import { api, seg } from './api.js';
import { serviceTabs } from './services.js';

const HOUR_S = 3600;
const COLORS = ['#1f6feb', '#1a7f37', '#8250df', '#b26a00', '#c62828', '#57606a'];

/** A uPlot line chart of `data` (`[xs, ...one array per label]`) in `box`. */
export function lineChart(box, title, labels, data, width) {
  return new window.uPlot({
    title,
    width,
    height: 220,
    scales: { x: { time: true } },
    series: [{}, ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, points: { show: true, size: 3 } }))],
    axes: [{}, { size: 56 }],
  }, data, box);
}

/** The charts: a title and its lines, each a value of a merged sample. */
const CHARTS = [
  {
    id: 'requests', title: 'Requests/s by status class',
    lines: [
      ['2xx', (s, step) => s.requests[1] / step],
      ['3xx', (s, step) => s.requests[2] / step],
      ['4xx', (s, step) => s.requests[3] / step],
      ['5xx', (s, step) => s.requests[4] / step],
    ],
  },
  {
    id: 'latency', title: 'Latency (ms; the slowest node\'s)',
    lines: [['p50', (s) => s.p50_ms], ['p99', (s) => s.p99_ms]],
  },
  {
    id: 'cpu', title: 'Guest CPU per request (µs)',
    lines: [['CPU', (s) => (s.instances ? s.guest_cpu_us / s.instances : null)]],
  },
  {
    id: 'cache', title: 'Cache hit ratio (%)',
    lines: [['hits', (s) => (s.cache_lookups ? (100 * s.cache_hits) / s.cache_lookups : null)]],
  },
  {
    id: 'errors', title: 'Failures/s',
    lines: [
      ['origin errors', (s, step) => s.origin_errors / step],
      ['overloaded', (s, step) => s.overloaded / step],
      ['limits', (s, step) => s.limits / step],
      ['other failures', (s, step) => s.failures / step],
    ],
  },
];

const COUNTS = ['instances', 'guest_cpu_us', 'cache_lookups', 'cache_hits', 'origin_errors', 'overloaded', 'limits', 'failures'];

/** Samples of several nodes in the same interval, as one: counts add up,
 * percentiles are the slowest node's. */
function merge(a, b) {
  const out = { ...a, requests: a.requests.map((n, i) => n + b.requests[i]) };
  for (const k of COUNTS) out[k] = a[k] + b[k];
  out.p50_ms = Math.max(a.p50_ms ?? 0, b.p50_ms ?? 0) || null;
  out.p99_ms = Math.max(a.p99_ms ?? 0, b.p99_ms ?? 0) || null;
  return out;
}

const EMPTY = { requests: [0, 0, 0, 0, 0], p50_ms: null, p99_ms: null, instances: 0, guest_cpu_us: 0,
  cache_lookups: 0, cache_hits: 0, origin_errors: 0, overloaded: 0, limits: 0, failures: 0 };

/** The hour's slots (seconds, every `step`), each with the merged sample of the
 * chosen series (an empty one when no request came). */
export function slots(series, step, nowS) {
  const end = Math.floor(nowS / step) * step;
  const start = end - HOUR_S + step;
  const merged = new Map();
  for (const s of series) {
    for (const sample of s.samples) {
      const slot = Math.floor(sample.t / 1000 / step) * step;
      if (slot < start || slot > end) continue;
      merged.set(slot, merged.has(slot) ? merge(merged.get(slot), sample) : sample);
    }
  }
  const xs = [];
  const samples = [];
  for (let t = start; t <= end; t += step) {
    xs.push(t);
    samples.push(merged.get(t) ?? EMPTY);
  }
  return { xs, samples };
}

function summary(samples) {
  const total = samples.reduce((n, s) => n + s.requests.reduce((a, b) => a + b, 0), 0);
  const errors = samples.reduce((n, s) => n + s.requests[4], 0);
  const p99 = Math.max(0, ...samples.map((s) => s.p99_ms ?? 0));
  return { total, errors, p99 };
}

export function show(_ctx, name) {
  const nodeSelect = h('select', { class: 'node-choice', 'aria-label': 'Node' }, h('option', { value: '' }, 'All nodes'));
  const totals = h('p', { class: 'traffic-summary' }, 'Waiting for the first samples…');
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const grid = h('div', { class: 'charts' });
  fill(_ctx.main, h('h1', {}, name), serviceTabs(name, '/traffic'),
    h('div', { class: 'traffic-controls' }, h('label', {}, 'Node ', nodeSelect),
      h('span', { class: 'hint' }, 'The last hour at 10 s resolution; refreshed every 10 s.')),
    problem, totals, grid);
  const charts = new Map();
  let last = null;

  function draw() {
    if (!last) return;
    const { history, nodes } = last;
    const chosen = nodeSelect.value;
    const series = history.series.filter((s) => !chosen || s.node === chosen);
    const step = history.step_s;
    const { xs, samples } = slots(series, step, Date.now() / 1000);
    const { total, errors, p99 } = summary(samples);
    totals.dataset.requests = total;
    totals.textContent = `Last hour${chosen ? ` on ${chosen}` : ` on ${nodes.length} node${nodes.length === 1 ? '' : 's'}`}: `
      + `${total} requests, ${errors} answered 5xx, slowest p99 ${p99.toFixed(1)} ms.`;
    const width = Math.max(320, Math.min(560, grid.clientWidth / 2 - 24));
    for (const chart of CHARTS) {
      const data = [xs, ...chart.lines.map(([, f]) => samples.map((s) => (s === EMPTY && chart.id !== 'requests' && chart.id !== 'errors' ? null : f(s, step))))];
      let plot = charts.get(chart.id);
      if (!plot) {
        const box = h('div', { class: `chart chart-${chart.id}` });
        grid.append(box);
        plot = lineChart(box, chart.title, chart.lines.map(([label]) => label), data, width);
        charts.set(chart.id, plot);
      } else {
        plot.setData(data);
      }
    }
  }

  nodeSelect.addEventListener('change', draw);
  const stop = repeat(async () => {
    const [history, fleet] = await Promise.all([
      api('GET', `/admin/v1/traffic?service=${seg(name)}`),
      api('GET', '/admin/v1/nodes'),
    ]);
    const names = fleet.nodes.map((n) => n.name);
    const have = [...nodeSelect.options].slice(1).map((o) => o.value);
    if (names.join() !== have.join()) {
      const keep = nodeSelect.value;
      fill(nodeSelect, h('option', { value: '' }, 'All nodes'), names.map((n) => h('option', { value: n }, n)));
      nodeSelect.value = names.includes(keep) ? keep : '';
    }
    last = { history, nodes: names };
    draw();
  }, 10_000, (e) => {
    problem.hidden = !e;
    problem.textContent = e ? `Could not read the traffic: ${e.message}` : '';
  });
  return () => {
    stop();
    for (const plot of charts.values()) plot.destroy();
  };
}
