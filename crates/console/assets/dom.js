// Builds the page from values. Every string becomes a text node and attributes are
// set one by one, so text from the API (service names, log lines, KV values) can
// never become markup or script.

/** An element with `props` (attributes, `class`, `on*` listeners) and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'href' && !String(value).startsWith('#')) {
      // Links stay inside the console: a `javascript:` URL cannot sneak in.
      throw new Error(`refusing a link outside the console: ${value}`);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces `el`'s children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table with a header row and one row per item. */
export function table(cls, headings, rows) {
  return h('table', { class: cls },
    h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows));
}

/** Marks when the page first shows its data (`bench/console.sh` times it). */
export function viewReady() {
  if (!performance.getEntriesByName('view-ready').length) performance.mark('view-ready');
}

/**
 * Runs `task` now and again `ms` (a number, or a function giving it) after each
 * run ends, until the returned function is called (when the view changes); its
 * `now()` runs the task at once. A failed run shows its error through `onError`
 * and the next run tries again.
 */
export function repeat(task, ms, onError) {
  let stopped = false;
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
      onError(null);
      viewReady();
    } catch (e) {
      onError(e);
    }
    running = false;
    if (stopped) return;
    if (again) {
      again = false;
      run();
      return;
    }
    timer = setTimeout(run, typeof ms === 'function' ? ms() : ms);
  };
  run();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  stop.now = run;
  return stop;
}

/** A modal question; resolves to whether the user confirmed. */
export function confirmDialog(question, action) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm' });
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    fill(dialog,
      h('p', {}, question),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'cancel', onclick: () => close(false) }, 'Cancel'),
        h('button', { type: 'button', class: 'confirm danger', onclick: () => close(true) }, action)));
    dialog.addEventListener('cancel', () => close(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** "3.2 s ago", "4 min ago". */
export function ago(ms) {
  if (ms < 1000) return 'just now';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min ago`;
  return `${(ms / 3_600_000).toFixed(1)} h ago`;
}

/** A time as the user's locale writes it. */
export function when(ms) {
  return new Date(ms).toLocaleString();
}

/** 1234567 → "1.2 MB". */
export function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
