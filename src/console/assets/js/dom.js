// Small DOM helpers. Text always goes in as text (never parsed as HTML), so
// nothing an API answer holds can become markup.

/** Creates an element: h('a', {href: '#/x', class: 'c'}, 'text', child, [more]). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = value;
    else if (key === 'selected') el.selected = value;
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An SVG element (for the success bars). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.appendChild(c);
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A unique id for label/for and aria-describedby pairs. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled input: returns {wrap, input, error}. `control` defaults to <input>. */
export function field(labelText, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const hintEl = hint ? h('small', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hintEl, error);
  return { wrap, input: control, error };
}

/** Pretty JSON text of a value, or of a string holding JSON; other text as is. */
export function pretty(value) {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/**
 * A scrollable code block, focusable so keyboard users can scroll it. The
 * heading before it names it; `label` is kept as its tooltip.
 */
export function code(text, label, extraClass = '') {
  return h('pre', { class: `code ${extraClass}`.trim(), tabindex: '0', title: label }, text);
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

export function when(iso) {
  if (!iso) return '—';
  return timeFormat.format(new Date(iso));
}

export function ago(iso) {
  if (!iso) return 'never';
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 45 ? `${s}s` : s < 2700 ? `${Math.round(s / 60)} min` : s < 86400 * 1.5
    ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** A <time> showing "3 min ago" with the full time on hover. */
export function timeAgo(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  return h('time', { datetime: iso, title: when(iso) }, ago(iso));
}

/** Host and path of a URL ("hooks.example.com/ml/churn"): webhooks on one host differ by path. */
export function hostPath(url) {
  try {
    const u = new URL(url);
    const path = u.pathname === '/' ? '' : u.pathname;
    return `${u.host}${path}${u.search ? '?…' : ''}`;
  } catch {
    return url;
  }
}

let toastTimer;
/** A short message in the corner, read out by screen readers. */
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3200);
}

export async function copy(text, what = 'Copied') {
  try {
    await navigator.clipboard.writeText(text);
    toast(`${what} to the clipboard`);
  } catch {
    toast('Copying is not allowed here: select the text and copy it by hand');
  }
}

/** Status of a delivery as a coloured badge. */
export function statusBadge(status) {
  const tone = { succeeded: 'ok', failed: 'warn', exhausted: 'bad', pending: 'idle', paused: 'idle' }[status] || 'idle';
  return h('span', { class: `badge ${tone}` }, status);
}

/** An HTTP status code as a badge with its reason. */
export function codeBadge(status) {
  if (status === null || status === undefined) return h('span', { class: 'muted' }, '—');
  const tone = status >= 200 && status < 300 ? 'ok' : status >= 500 ? 'bad' : 'warn';
  return h('span', { class: `badge ${tone}` }, `${status} ${REASONS[status] || ''}`.trim());
}

const REASONS = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content', 301: 'Moved', 302: 'Found',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Timeout',
  410: 'Gone', 413: 'Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Unavailable', 504: 'Gateway Timeout',
};

/** An empty state: what is missing and what to do next. */
export function empty(title, text, ...actions) {
  return h('div', { class: 'empty' }, h('strong', null, title), h('p', null, text),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}

/**
 * A table inside a scrollable, labelled region. On a narrow screen each row
 * becomes a card; every cell carries its column's name for that.
 */
export function table(label, headings, rows) {
  for (const row of rows) labelCells(row, headings);
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': label, tabindex: '0' },
    h('table', { class: 'list' },
      h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows)));
}

/** Gives each cell of `row` its column's name (shown before it when rows are cards). */
export function labelCells(row, headings) {
  [...row.children].forEach((td, i) => {
    if (headings[i]) td.setAttribute('data-label', headings[i]);
  });
  return row;
}

/** Sets the document title and moves focus to the page's heading. */
export function titled(main, title) {
  document.title = `${title} · mlhook`;
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

/** Runs `fn` once input has paused for `ms`. */
export function debounce(fn, ms = 300) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
