// A service's data: browse its KV stores (keys by prefix, a page at a time; a value
// as text or hex), put and delete with a write token; and purge its edge cache by
// surrogate key, URL or all, with each node's acknowledgement.

import { h, fill, table, confirmDialog, when, viewReady } from './dom.js';
import { api, seg } from './api.js';
import { serviceTabs } from './services.js';

const PAGE = 50;

/** Base64 → bytes. */
function decode64(text) {
  const binary = atob(text);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** Bytes → base64. */
function encode64(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** The bytes as UTF-8 text, or `null` when they are not text. */
function asText(bytes) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return /[\u0000-\u0008\u000e-\u001f]/.test(text) ? null : text;
  } catch {
    return null;
  }
}

/** A classic hex dump: offset, 16 bytes, their printable characters. */
export function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = [...bytes.slice(i, i + 16)];
    const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(47);
    const chars = row.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex}  ${chars}`);
  }
  return lines.join('\n');
}

export function show({ me, main }, name) {
  const base = `/admin/v1/services/${seg(name)}`;
  const problem = h('p', { class: 'error', role: 'alert', hidden: true });
  const report = (e) => {
    problem.hidden = !e;
    problem.textContent = e ? e.message : '';
  };
  const storeSelect = h('select', { class: 'store-choice', 'aria-label': 'Store' });
  const prefixInput = h('input', { class: 'prefix', placeholder: 'key prefix', 'aria-label': 'Prefix' });
  const keysBox = h('div', { class: 'keys' });
  const valueBox = h('div', { class: 'value' });
  const purgeBox = h('section', { class: 'purge' });
  let cursors = [];

  async function call(op) {
    return api('POST', `${base}/kv/${seg(storeSelect.value)}`, op);
  }

  async function list(cursor) {
    report(null);
    try {
      const page = await call({ op: 'list', prefix: prefixInput.value, cursor: cursor ?? null, limit: PAGE });
      const rows = page.keys.map((key) => h('tr', { class: 'kv-key', 'data-key': key },
        h('td', {}, h('button', { type: 'button', class: 'link open-key', onclick: () => open(key) }, key))));
      fill(keysBox,
        page.keys.length ? table('keys', ['Key'], rows) : h('p', { class: 'hint' }, 'No keys with this prefix.'),
        h('div', { class: 'paging' },
          cursors.length ? h('button', { type: 'button', class: 'previous', onclick: () => {
            cursors.pop();
            list(cursors[cursors.length - 1]);
          } }, 'Previous page') : null,
          page.cursor ? h('button', { type: 'button', class: 'next', onclick: () => {
            cursors.push(page.cursor);
            list(page.cursor);
          } }, 'Next page') : null));
    } catch (e) {
      report(e);
    }
  }

  async function open(key) {
    report(null);
    try {
      const answer = await call({ op: 'get', key });
      if (answer.result === 'not_found') {
        fill(valueBox, h('p', { class: 'hint' }, `${key}: not found (deleted, or expired).`));
        return;
      }
      const bytes = decode64(answer.value_base64);
      const text = asText(bytes);
      const hexView = h('pre', { class: 'value-hex', hidden: text !== null }, hexDump(bytes));
      const textView = text === null ? null : h('pre', { class: 'value-text' }, text);
      const toggle = text === null ? null : h('button', { type: 'button', class: 'toggle-hex', onclick: () => {
        hexView.hidden = !hexView.hidden;
        textView.hidden = !hexView.hidden;
      } }, 'Text / hex');
      fill(valueBox,
        h('h3', { class: 'value-key' }, key),
        h('dl', {},
          h('dt', {}, 'Size'), h('dd', {}, `${bytes.length} bytes${text === null ? ' (binary: shown in hex)' : ''}`),
          h('dt', {}, 'Generation'), h('dd', {}, answer.generation),
          h('dt', {}, 'Metadata'), h('dd', {}, answer.metadata ?? '—'),
          h('dt', {}, 'Expires'), h('dd', {}, answer.expires_at_ms ? when(answer.expires_at_ms) : 'never')),
        toggle, textView, hexView,
        me.write ? h('button', { type: 'button', class: 'delete-key danger', onclick: async () => {
          if (!(await confirmDialog(`Delete ${key} from ${storeSelect.value}?`, 'Delete'))) return;
          try {
            await call({ op: 'delete', key });
            fill(valueBox, h('p', { class: 'hint deleted' }, `${key} deleted.`));
            list(cursors[cursors.length - 1]);
          } catch (e) {
            report(e);
          }
        } }, 'Delete') : null);
    } catch (e) {
      report(e);
    }
  }

  function putForm() {
    const key = h('input', { class: 'put-key', placeholder: 'key', required: true, 'aria-label': 'Key' });
    const value = h('textarea', { class: 'put-value', rows: 3, placeholder: 'value (text)', 'aria-label': 'Value' });
    const ttl = h('input', { class: 'put-ttl', type: 'number', min: 1, placeholder: 'TTL s (optional)', 'aria-label': 'TTL in seconds' });
    return h('form', { class: 'put', onsubmit: async (e) => {
      e.preventDefault();
      report(null);
      try {
        const bytes = new TextEncoder().encode(value.value);
        await call({ op: 'put', key: key.value, value_base64: encode64(bytes), mode: 'overwrite',
          ttl_ms: ttl.value ? Number(ttl.value) * 1000 : null, metadata: null, if_generation: null });
        open(key.value);
        list(cursors[cursors.length - 1]);
      } catch (err) {
        report(err);
      }
    } }, h('h3', {}, 'Put a value'), key, value, ttl, h('button', { type: 'submit', class: 'primary' }, 'Put'));
  }

  function purgeSection() {
    const result = h('div', { class: 'purge-result' });
    const run = async (what, path, body) => {
      if (!(await confirmDialog(`Purge ${what} from ${name}'s edge cache on every node?`, 'Purge'))) return;
      report(null);
      try {
        const answer = await api('POST', `${base}/purge/${path}`, body);
        const nodes = Object.entries(answer.nodes ?? {});
        fill(result,
          h('p', { class: 'purged' }, `Purged ${what}: ${answer.purged} objects on this node.`),
          nodes.length ? table('purge-nodes', ['Node', 'Acknowledged'], nodes.map(([node, said]) =>
            h('tr', { class: 'purge-node', 'data-node': node }, h('td', {}, node), h('td', { class: 'ack' }, said)))) : null);
      } catch (e) {
        report(e);
      }
    };
    const key = h('input', { class: 'purge-key', placeholder: 'surrogate key', 'aria-label': 'Surrogate key' });
    const url = h('input', { class: 'purge-url', placeholder: 'https://host/path?query', size: 40, 'aria-label': 'URL' });
    fill(purgeBox, h('h2', {}, 'Purge the edge cache'),
      h('form', { class: 'purge-by-key', onsubmit: (e) => {
        e.preventDefault();
        run(`surrogate key ${key.value}`, `keys/${seg(key.value)}`);
      } }, key, h('button', { type: 'submit' }, 'Purge key')),
      h('form', { class: 'purge-by-url', onsubmit: (e) => {
        e.preventDefault();
        run(url.value, 'url', { url: url.value });
      } }, url, h('button', { type: 'submit' }, 'Purge URL')),
      h('button', { type: 'button', class: 'purge-all danger', onclick: () => run('everything', 'all') }, 'Purge everything'),
      result);
  }

  fill(main, h('h1', {}, name), serviceTabs(name, '/data'), problem,
    h('h2', {}, 'KV stores'),
    h('form', { class: 'kv-browse', onsubmit: (e) => {
      e.preventDefault();
      cursors = [];
      list(null);
    } }, h('label', {}, 'Store ', storeSelect), h('label', {}, 'Prefix ', prefixInput), h('button', { type: 'submit' }, 'List')),
    h('div', { class: 'kv-grid' }, keysBox, valueBox),
    me.write ? h('div', { class: 'kv-write' }) : null,
    me.write ? purgeBox : null);
  if (me.write) {
    main.querySelector('.kv-write').append(putForm());
    purgeSection();
  }

  (async () => {
    try {
      const { stores } = await api('GET', `${base}/kv`);
      viewReady();
      if (!stores.length) {
        fill(keysBox, h('p', { class: 'hint' }, 'The active version declares no KV store.'));
        for (const form of main.querySelectorAll('form.kv-browse, .kv-write')) form.hidden = true;
        return;
      }
      fill(storeSelect, stores.map((s) => h('option', { value: s }, s)));
      list(null);
    } catch (e) {
      report(e);
    }
  })();
  storeSelect.addEventListener('change', () => {
    cursors = [];
    list(null);
  });
  return () => {};
}
