// Every service: its domains, its active version and how many live nodes serve it.

import { h, fill, table, repeat } from './dom.js';
import { api, seg } from './api.js';

/** The links between a service's pages; `current` is the one shown. */
export function serviceTabs(name, current) {
  const tab = (path, label) => h('a', {
    href: `#/services/${seg(name)}${path}`,
    class: path === current ? 'tab current' : 'tab',
    'aria-current': path === current ? 'page' : null,
  }, label);
  return h('nav', { class: 'tabs' }, tab('', 'Overview'), tab('/traffic', 'Traffic'), tab('/logs', 'Live logs'), tab('/data', 'KV & purge'));
}

export function show({ main }) {
  const body = h('div', {});
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  fill(main, h('h1', {}, 'Services'), problem, body);
  return repeat(async () => {
    const [list, { nodes }] = await Promise.all([
      api('GET', '/admin/v1/services'),
      api('GET', '/admin/v1/nodes'),
    ]);
    const live = nodes.filter((n) => n.status === 'live');
    const rows = list.map((s) => {
      const serving = live.filter((n) => s.active !== null && n.services[s.name]?.version === s.active && !n.services[s.name]?.failed);
      return h('tr', { class: 'service', 'data-service': s.name },
        h('td', {}, h('a', { href: `#/services/${seg(s.name)}` }, s.name)),
        h('td', {}, s.domains.join(', ') || '—'),
        h('td', { class: 'active' }, s.active === null ? 'none' : `v${s.active}`),
        h('td', { class: 'where' }, s.active === null ? '—' : `${serving.length} of ${live.length} live nodes`));
    });
    fill(body, list.length
      ? table('services', ['Service', 'Domains', 'Active version', 'Serving'], rows)
      : h('p', {}, 'No services yet: ', h('code', {}, 'verge deploy'), ' creates one.'));
  }, 2000, (e) => {
    problem.hidden = !e;
    problem.textContent = e ? `Could not read the services: ${e.message}` : '';
  });
}
