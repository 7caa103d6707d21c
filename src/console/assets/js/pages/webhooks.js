// The webhooks of a project: one table, filtered by event type and state,
// each row with its success over the last day and its last delivery.

import { h, svg, field, replace, table, empty, hostPath, timeAgo, debounce } from '../dom.js';
import { cached, get, p } from '../api.js';
import { listens } from '../patterns.js';

export async function render(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const [list, catalog, formats] = await Promise.all([
    get(p(project, 'webhooks')), cached('/v1/event-types'), cached('/v1/formats'),
  ]);
  const webhooks = list.data;
  const formatTitle = Object.fromEntries(formats.data.map((f) => [f.format, f.title]));
  // Rows show at once; each row's numbers fill in as its answer comes (a
  // slow webhook's numbers do not hold up the list).
  const stats = new Map();
  const fillStats = (w) => {
    for (const tr of ctx.view.querySelectorAll(`tr[data-webhook="${CSS.escape(w.id)}"]`)) statsCells(tr, stats.get(w.id));
  };
  let draw = () => {};
  const arrived = (w, s) => {
    stats.set(w.id, s);
    if (!ctx.live()) return;
    fillStats(w);
    // A sort by the numbers is redone once they are all in, not row by row.
    if (stats.size === webhooks.length && STATS_SORTS.has(sortBy.value)) draw();
  };
  for (const w of webhooks) {
    get(p(project, 'webhooks', w.id, 'stats')).then((s) => arrived(w, s)).catch(() => arrived(w, null));
  }

  const createButton = ctx.session.who.kind === 'read' ? null
    : h('a', { class: 'button primary', href: `#/p/${enc}/webhooks/new` }, '+ Create webhook');
  const head = h('div', { class: 'page-head' },
    h('div', null, h('h1', null, 'Webhooks'), h('p', null, `Where the events of ${project} are delivered.`)),
    h('div', { class: 'actions' }, createButton));

  if (!webhooks.length) {
    replace(ctx.view, head, h('section', { class: 'panel' }, empty('No webhooks yet',
      'A webhook sends the events you choose to a URL: your service, Slack, Teams, Discord or GitHub Actions. Create one, validate it against your receiver, then send a test event.',
      createButton, h('a', { class: 'button', href: `#/p/${enc}/catalog` }, 'Browse the event catalog'))));
    ctx.done(`Webhooks of ${project}`);
    return;
  }

  const eventFilter = h('select', { name: 'event' }, h('option', { value: '' }, 'Any event type'),
    h('option', { value: '*' }, 'All platform events (*)'),
    catalog.data.map((t) => h('option', { value: t.name }, t.name)));
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Name, URL, description', autocomplete: 'off' });
  const sortBy = h('select', { name: 'sort' }, SORTS.map(([v, t]) => h('option', { value: v }, t)));
  const stateFilter = h('select', { name: 'state' }, h('option', { value: '' }, 'Any state'),
    h('option', { value: 'enabled' }, 'Enabled'), h('option', { value: 'disabled' }, 'Disabled'));
  eventFilter.value = ctx.query.get('event') || '';
  stateFilter.value = ctx.query.get('state') || '';
  search.value = ctx.query.get('q') || '';
  sortBy.value = SORTS.some(([v]) => v === ctx.query.get('sort')) ? ctx.query.get('sort') : 'name';
  const eventField = field('Event type', eventFilter);
  const stateField = field('State', stateFilter);
  const searchField = field('Search', search);
  const sortField = field('Sort by', sortBy);
  const tableHolder = h('div');
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });

  draw = () => {
    const ev = eventFilter.value;
    const st = stateFilter.value;
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const shown = webhooks.filter((w) => (!ev || listens(w.events, ev))
      && (!st || (st === 'enabled') === w.enabled)
      && words.every((word) => `${w.name} ${w.description || ''} ${w.url} ${w.id}`.toLowerCase().includes(word)));
    shown.sort(SORTERS[sortBy.value](stats));
    const q = new URLSearchParams();
    if (ev) q.set('event', ev);
    if (st) q.set('state', st);
    if (words.length) q.set('q', search.value.trim());
    if (sortBy.value !== 'name') q.set('sort', sortBy.value);
    history.replaceState(null, '', `#/p/${enc}/webhooks${q.toString() ? `?${q}` : ''}`);
    count.textContent = `${shown.length} of ${webhooks.length} webhooks`;
    if (!shown.length) {
      replace(tableHolder, empty('No webhook matches these filters', 'Clear a filter to see more.',
        h('button', { type: 'button', onclick: () => { eventFilter.value = ''; stateFilter.value = ''; search.value = ''; draw(); } }, 'Clear filters')));
      return;
    }
    replace(tableHolder, table('Webhooks',
      ['Name', 'URL', 'Format', 'Events', 'Scope', 'State', 'Success (last day)', 'Last delivery'],
      shown.map((w) => row(w, stats, formatTitle, enc))));
  };
  eventFilter.addEventListener('change', draw);
  stateFilter.addEventListener('change', draw);
  sortBy.addEventListener('change', draw);
  search.addEventListener('input', debounce(draw, 150));
  replace(ctx.view, head,
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter webhooks' }, searchField.wrap, eventField.wrap, stateField.wrap, sortField.wrap, count),
    tableHolder);
  draw();
  ctx.done(`Webhooks of ${project}`);
}

function row(w, stats, formatTitle, enc) {
  const events = w.events.slice(0, 3).map((e) => h('span', { class: 'chip' }, e));
  if (w.events.length > 3) events.push(h('span', { class: 'chip', title: w.events.slice(3).join(', ') }, `+${w.events.length - 3}`));
  const tr = h('tr', { 'data-webhook': w.id },
    h('td', null, h('a', { class: 'cell-main', href: `#/p/${enc}/webhooks/${encodeURIComponent(w.id)}` }, w.name),
      w.description ? h('span', { class: 'cell-sub' }, w.description) : null),
    h('td', { class: 'mono url-cell', title: w.url }, hostPath(w.url)),
    h('td', null, formatTitle[w.format] || w.format),
    h('td', null, h('div', { class: 'chips' }, events)),
    h('td', null, scopeText(w.scope)),
    h('td', null, w.enabled ? h('span', { class: 'badge ok' }, 'Enabled')
      : [h('span', { class: 'badge bad' }, 'Disabled'), w.disabled_reason ? h('span', { class: 'cell-sub' }, w.disabled_reason) : null]),
    h('td', { 'data-cell': 'success' }),
    h('td', { 'data-cell': 'last' }));
  if (stats.has(w.id)) statsCells(tr, stats.get(w.id));
  else {
    for (const td of tr.querySelectorAll('[data-cell]')) replace(td, h('span', { class: 'muted', 'aria-busy': 'true' }, 'loading…'));
  }
  return tr;
}

/** The row's two numbers cells, from its stats (null: none available). */
function statsCells(tr, stats) {
  const last = stats ? latest(stats.last_success_at, stats.last_failure_at) : null;
  replace(tr.querySelector('[data-cell="success"]'), successBar(stats && stats.last_day));
  replace(tr.querySelector('[data-cell="last"]'), last
    ? [timeAgo(last.at), h('span', { class: 'cell-sub' }, last.ok ? 'succeeded' : 'failed')]
    : h('span', { class: 'muted' }, 'none yet'));
}

function latest(success, failure) {
  if (!success && !failure) return null;
  if (!failure || (success && success > failure)) return { at: success, ok: true };
  return { at: failure, ok: false };
}

const SORTS = [['name', 'Name (A–Z)'], ['newest', 'Newest first'], ['success', 'Success, lowest first'], ['last', 'Last delivery, newest first']];
const STATS_SORTS = new Set(['success', 'last']);

const byName = (a, b) => a.name.localeCompare(b.name);
/** Comparators by sort key; the numbers ones put rows without numbers last. */
const SORTERS = {
  name: () => byName,
  newest: () => (a, b) => b.created_at.localeCompare(a.created_at) || byName(a, b),
  success: (stats) => (a, b) => {
    const rate = (w) => {
      const r = stats.get(w.id) && stats.get(w.id).last_day.success_rate;
      return r === null || r === undefined ? 2 : r;
    };
    return rate(a) - rate(b) || byName(a, b);
  },
  last: (stats) => (a, b) => {
    const at = (w) => {
      const s = stats.get(w.id);
      const l = s && latest(s.last_success_at, s.last_failure_at);
      return l ? l.at : '';
    };
    return at(b).localeCompare(at(a)) || byName(a, b);
  },
};

export function scopeText(scope) {
  const parts = [scope.object_type, scope.object_name, scope.version && `v${scope.version}`].filter(Boolean);
  return parts.length ? parts.join(' ') : h('span', { class: 'muted' }, 'everything');
}

/** A small stacked bar: succeeded, failed, pending over the window. */
export function successBar(window) {
  if (!window) return h('span', { class: 'muted' }, '—');
  const bad = window.failed + window.exhausted;
  const total = window.succeeded + bad + window.pending + window.paused;
  if (!total) return h('span', { class: 'muted' }, 'no deliveries');
  const width = 80;
  const okW = Math.round((window.succeeded / total) * width);
  const badW = Math.round((bad / total) * width);
  const rate = window.success_rate === null ? '—' : `${Math.round(window.success_rate * 100)} %`;
  const bar = svg('svg', { width, height: 8, viewBox: `0 0 ${width} 8`, 'aria-hidden': 'true', focusable: 'false' },
    svg('rect', { class: 'ok-part', x: 0, y: 0, width: okW, height: 8 }),
    svg('rect', { class: 'bad-part', x: okW, y: 0, width: badW, height: 8 }),
    svg('rect', { class: 'pending-part', x: okW + badW, y: 0, width: Math.max(0, width - okW - badW), height: 8 }));
  return h('span', { class: 'rate', title: `${window.succeeded} succeeded, ${bad} failed, ${window.pending + window.paused} waiting` },
    bar, h('span', null, `${rate} of ${total}`));
}
