// The console's shell: sign-in, the header, and the views by location hash
// (`#/` the fleet, `#/services`, `#/services/NAME`, `#/services/NAME/logs`, `#/services/NAME/traffic`,
// `#/services/NAME/data`).

import { h, fill } from './dom.js';
import { api, token, whenSignedOut } from './api.js';
import * as fleet from './fleet.js';
import * as services from './services.js';
import * as service from './service.js';
import * as logs from './logs.js';
import * as traffic from './traffic.js';
import * as data from './data.js';

const root = document.getElementById('app');
let me = null;
let stopView = null;

function signInView(message) {
  stopView?.();
  stopView = null;
  me = null;
  const input = h('input', {
    id: 'token', type: 'password', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'vrg_… or the root token', 'aria-label': 'Admin token',
  });
  const form = h('form', { class: 'sign-in', onsubmit: (event) => {
    event.preventDefault();
    token.set(input.value.trim());
    start();
  } },
  h('h1', {}, 'Verge console'),
  h('p', {}, 'Sign in with an admin token (', h('code', {}, 'verge token create'), '). It stays in this tab until you sign out or close it.'),
  message ? h('p', { class: 'error', role: 'alert' }, message) : null,
  input,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  fill(root, form);
  input.focus();
}

async function start() {
  if (!token.get()) return signInView();
  try {
    me = await api('GET', '/admin/v1/whoami');
  } catch (e) {
    token.clear();
    return signInView(e.status === 401 ? 'That token is not valid here.' : e.message);
  }
  route();
}

function header() {
  const scope = me.service ? `service ${me.service}` : 'whole node';
  const right = me.write ? 'read-write' : 'read-only';
  return h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, 'Verge'),
    me.service ? null : h('nav', {},
      h('a', { href: '#/' }, 'Fleet'),
      h('a', { href: '#/services' }, 'Services')),
    h('span', { class: 'whoami', title: `token ${me.name}` }, `${me.name} · ${scope} · ${right}`),
    h('button', { type: 'button', class: 'sign-out', onclick: () => {
      token.clear();
      signInView('Signed out.');
    } }, 'Sign out'));
}

function route() {
  if (!me) return;
  stopView?.();
  stopView = null;
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  // A service's token has one page: its service's.
  if (me.service && !(parts[0] === 'services' && parts[1] === me.service)) {
    location.hash = `#/services/${encodeURIComponent(me.service)}`;
    return;
  }
  const main = h('main', { id: 'view' });
  fill(root, header(), main);
  const ctx = { me, main };
  if (parts.length === 0) stopView = fleet.show(ctx);
  else if (parts[0] === 'services' && parts.length === 1) stopView = services.show(ctx);
  else if (parts[0] === 'services' && parts.length === 2) stopView = service.show(ctx, parts[1]);
  else if (parts[0] === 'services' && parts.length === 3 && parts[2] === 'logs') stopView = logs.show(ctx, parts[1]);
  else if (parts[0] === 'services' && parts.length === 3 && parts[2] === 'traffic') stopView = traffic.show(ctx, parts[1]);
  else if (parts[0] === 'services' && parts.length === 3 && parts[2] === 'data') stopView = data.show(ctx, parts[1]);
  else fill(main, h('p', { class: 'error' }, 'No such page. '), h('a', { href: '#/' }, 'Back to the fleet'));
}

whenSignedOut((reason) => signInView(`Signed out: ${reason}`));
window.addEventListener('hashchange', route);
start();
