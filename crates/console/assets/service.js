// A service: which version is live on which node, its versions, and (with a write
// token) activate, roll back and delete, each confirmed first, an activation's
// per-node result shown as the nodes report it.

import { h, fill, table, repeat, confirmDialog, when, bytes } from './dom.js';
import { api, seg } from './api.js';
import { link } from './fleet.js';
import { serviceTabs } from './services.js';

const POLL_MS = 2000;

export function show({ me, main }, name) {
  const base = `/admin/v1/services/${seg(name)}`;
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const summary = h('section', { class: 'summary' });
  const rollout = h('section', { class: 'rollout', hidden: true });
  const nodesBox = h('section', { class: 'where' });
  const versionsBox = h('section', { class: 'versions' });
  fill(main, h('h1', {}, name), serviceTabs(name, ''), problem, summary, rollout, nodesBox, versionsBox);

  // An activation in flight: the version it makes live, and the answer once given.
  let deploying = null;
  let latest = null;
  let refresh = () => {};

  const report = (e) => {
    problem.hidden = !e;
    problem.textContent = e ? e.message : '';
  };

  function nodeState(node) {
    const state = node.services[name];
    if (!state) return 'not serving';
    return state.failed ? `v${state.version} failed here: ${state.failed}` : `v${state.version}`;
  }

  async function act(question, button, call) {
    if (!(await confirmDialog(question, button))) return;
    report(null);
    try {
      await call();
    } catch (e) {
      report(e);
    }
    refresh();
  }

  async function activate(version, rollback) {
    deploying = { version, answer: null, rollback };
    renderRollout();
    refresh();
    try {
      const answer = rollback
        ? await api('POST', `${base}/rollback`)
        : await api('POST', `${base}/activate`, { version });
      deploying.version = answer.active;
      deploying.answer = answer.nodes;
    } catch (e) {
      deploying.error = e.message;
    }
    renderRollout();
  }

  function renderRollout() {
    if (!deploying) return;
    rollout.hidden = false;
    const verb = deploying.rollback ? 'Rollback' : `Activation of v${deploying.version}`;
    let rows = [];
    if (deploying.answer) {
      rows = Object.entries(deploying.answer).map(([node, what]) =>
        h('tr', { class: 'rollout-node', 'data-node': node }, h('td', {}, node), h('td', { class: 'result' }, what)));
    } else if (latest && deploying.version !== null) {
      rows = latest.nodes.filter((n) => n.status === 'live').map((n) => {
        const s = n.services[name];
        const what = s && s.version === deploying.version ? (s.failed ? `failed: ${s.failed}` : 'serving') : 'pending';
        return h('tr', { class: 'rollout-node', 'data-node': n.name }, h('td', {}, n.name), h('td', { class: 'result' }, what));
      });
    }
    const state = deploying.error ? `failed: ${deploying.error}` : deploying.answer ? 'done' : 'in progress…';
    fill(rollout, h('h2', {}, `${verb}: `, h('span', { class: 'state' }, state)),
      rows.length ? table('rollout', ['Node', 'Result'], rows) : null);
  }

  function render(service, versions, nodes) {
    const live = nodes.filter((n) => n.status === 'live');
    const liveOn = (number) => live.filter((n) => n.services[name]?.version === number && !n.services[name]?.failed).map((n) => n.name);
    const canWrite = me.write;
    fill(summary,
      h('dl', {},
        h('dt', {}, 'Domains'), h('dd', {}, service.domains.join(', ') || '—'),
        h('dt', {}, 'Active version'), h('dd', { class: 'active' }, service.active === null ? 'none' : `v${service.active}`),
        h('dt', {}, 'Active before'), h('dd', {}, service.history.map((v) => `v${v}`).join(', ') || '—')),
      canWrite && service.history.length
        ? h('button', { type: 'button', class: 'rollback danger', onclick: () => act(
          `Roll ${name} back from v${service.active} to v${service.history[service.history.length - 1]} on every node?`,
          'Roll back', () => activate(null, true)) }, `Roll back to v${service.history[service.history.length - 1]}`)
        : null);
    fill(nodesBox, h('h2', {}, 'Where it runs'), table('service-nodes', ['Node', 'PoP', 'Link', 'Serving'],
      nodes.map((n) => h('tr', { class: n.services[name]?.failed ? 'node alert' : 'node', 'data-node': n.name },
        h('td', {}, n.name), h('td', {}, n.pop ?? '—'), h('td', {}, link(n)), h('td', { class: 'serving' }, nodeState(n))))));
    const rows = [...versions].reverse().map((v) => {
      const active = v.number === service.active;
      const on = liveOn(v.number);
      return h('tr', { class: active ? 'version active' : 'version', 'data-version': v.number },
        h('td', { class: 'num' }, `v${v.number}`, active ? h('span', { class: 'badge' }, 'active') : null),
        h('td', { class: 'sha', title: v.sha256 }, v.sha256.slice(0, 12)),
        h('td', { class: 'num' }, bytes(v.size)),
        h('td', {}, v.uploaded_by),
        h('td', {}, when(v.uploaded_at_ms)),
        h('td', { class: 'live-on' }, on.join(', ') || '—'),
        canWrite ? h('td', { class: 'actions' },
          active ? null : h('button', { type: 'button', class: 'activate primary', 'data-version': v.number, onclick: () => act(
            `Make v${v.number} of ${name} live on every node?`, `Activate v${v.number}`, () => activate(v.number, false)) }, 'Activate'),
          active ? null : h('button', { type: 'button', class: 'delete danger', 'data-version': v.number, onclick: () => act(
            `Delete v${v.number} of ${name}? Its package is removed; this cannot be undone.`, `Delete v${v.number}`,
            () => api('DELETE', `${base}/versions/${v.number}`)) }, 'Delete')) : null);
    });
    const headings = ['Version', 'SHA-256', 'Size', 'Uploaded by', 'Uploaded', 'Live on'];
    if (canWrite) headings.push('');
    fill(versionsBox, h('h2', {}, 'Versions'), versions.length
      ? table('versions', headings, rows)
      : h('p', {}, 'No versions yet: ', h('code', {}, 'verge deploy'), ' uploads one.'));
  }

  const stop = repeat(async () => {
    const [service, versions, fleet] = await Promise.all([
      api('GET', base),
      api('GET', `${base}/versions`),
      api('GET', '/admin/v1/nodes'),
    ]);
    latest = fleet;
    render(service, versions, fleet.nodes);
    renderRollout();
  }, () => (deploying && !deploying.answer ? POLL_MS / 4 : POLL_MS), report);
  refresh = stop.now;
  return stop;
}
