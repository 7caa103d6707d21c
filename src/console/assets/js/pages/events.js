// Events: the project's events, newest first (filtered by type and time),
// and one event with its payload and every delivery it made.

import { h, field, replace, empty, when, timeAgo, statusBadge, codeBadge, labelCells, toast } from '../dom.js';
import { cached, get, p, post, query } from '../api.js';
import { payloadView } from '../viewer.js';

const SINCE = [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const FILTERS = ['event_type', 'since'];

export async function renderList(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const catalog = await cached('/v1/event-types');
  const current = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));
  const select = (name, label, options) => {
    const s = h('select', { name }, options.map(([v, t]) => h('option', { value: v, selected: v === current[name] }, t)));
    s.addEventListener('change', () => ctx.go(`#/p/${enc}/events${query({ ...current, [name]: s.value })}`));
    return field(label, s);
  };
  const headings = ['When', 'Event type', 'Object', 'Id'];
  const tbody = h('tbody');
  const more = h('div', { class: 'load-more' });
  const holder = h('div', null, h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Events', tabindex: '0' },
    h('table', { class: 'list' }, h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))), tbody)), more);
  let cursor = null;
  const load = async () => {
    const page = await get(p(project, 'events') + query({ ...current, cursor, limit: 50 }));
    if (!ctx.live()) return;
    if (!cursor && !page.data.length) {
      replace(holder, empty(FILTERS.some((k) => current[k]) ? 'No event matches these filters' : 'No events yet',
        'Events arrive from your ML platform (POST …/events) or from the event catalog\'s test sender.',
        h('a', { class: 'button', href: `#/p/${enc}/catalog` }, 'Send a test event')));
      return;
    }
    for (const e of page.data) {
      tbody.appendChild(labelCells(h('tr', { 'data-event': e.id },
        h('td', null, h('a', { href: `#/p/${enc}/events/${encodeURIComponent(e.id)}` }, timeAgo(e.created_at))),
        h('td', { class: 'mono' }, e.type, e.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
        h('td', null, objectText(e.object)),
        h('td', { class: 'mono' }, e.id)), headings));
    }
    cursor = page.next_cursor;
    replace(more, cursor ? h('button', { type: 'button', onclick: () => load().catch((err) => replace(more, h('span', { class: 'field-error' }, err.message))) }, 'Load more')
      : h('span', { class: 'muted' }, 'That is every event.'));
  };
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: `#/p/${enc}/deliveries` }, 'Delivery log')),
      h('h1', null, 'Events'), h('p', null, 'Every event the project received, newest first. Open one to see where it was delivered.'))),
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Filter events' },
      select('event_type', 'Event type', [['', 'All event types'], ...catalog.data.map((t) => [t.name, t.name])]).wrap,
      select('since', 'Time', SINCE).wrap),
    holder);
  await load();
  ctx.done('Events');
}

function objectText(object) {
  if (!object) return h('span', { class: 'muted' }, '—');
  const text = [object.object_type, object.object_name, object.version && `v${object.version}`].filter(Boolean).join(' ');
  return text || h('span', { class: 'muted' }, '—');
}

export async function renderOne(ctx) {
  const [project, id] = ctx.params;
  const enc = encodeURIComponent(project);
  const [event, hooks] = await Promise.all([get(p(project, 'events', id)), get(p(project, 'webhooks'))]);
  const names = Object.fromEntries(hooks.data.map((w) => [w.id, w.name]));
  const headings = ['Delivery', 'Webhook', 'Status', 'Attempts', 'Response', 'Next attempt'];
  const rows = event.deliveries.map((d) => labelCells(h('tr', { 'data-delivery': d.id },
    h('td', { class: 'mono' }, h('a', { href: `#/p/${enc}/deliveries/${encodeURIComponent(d.id)}` }, d.id)),
    h('td', null, names[d.webhook_id]
      ? h('a', { href: `#/p/${enc}/webhooks/${encodeURIComponent(d.webhook_id)}` }, names[d.webhook_id])
      : h('span', { class: 'mono' }, `${d.webhook_id} (deleted)`)),
    h('td', null, statusBadge(d.status)),
    h('td', { class: 'num' }, d.attempts),
    h('td', null, codeBadge(d.last_status_code)),
    h('td', null, d.next_attempt_at ? timeAgo(d.next_attempt_at) : h('span', { class: 'muted' }, '—'))), headings));
  const deliveries = rows.length
    ? h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Deliveries of this event', tabindex: '0' },
      h('table', { class: 'list' }, h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, rows)))
    : empty('No deliveries', 'No webhook listened to this event when it arrived. Replay sends it to the webhooks that match it now.');
  const writer = ctx.session.who.kind !== 'read';
  const replayStatus = h('p', { role: 'status', class: 'muted' });
  const replay = writer ? h('button', {
    type: 'button',
    onclick: async () => {
      try {
        const answer = await post(p(project, 'events', id, 'replay'));
        const n = (answer.deliveries || []).length;
        toast(`Replayed: ${n} ${n === 1 ? 'delivery' : 'deliveries'}`);
        ctx.go(location.hash);
      } catch (e) {
        replayStatus.textContent = e.message;
      }
    },
  }, 'Replay') : null;
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: `#/p/${enc}/events` }, 'Events')),
      h('h1', null, 'Event ', h('span', { class: 'mono' }, id))),
    h('div', { class: 'actions' }, replay,
      h('a', { class: 'button', href: `#/p/${enc}/deliveries?event_id=${encodeURIComponent(id)}` }, 'In the delivery log'))),
    replayStatus,
    h('section', { class: 'panel', 'aria-label': 'Event' }, h('dl', { class: 'summary' },
      h('dt', null, 'Type'), h('dd', { class: 'mono' }, event.type, event.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
      h('dt', null, 'Object'), h('dd', null, objectText(event.object)),
      h('dt', null, 'Received'), h('dd', null, when(event.created_at)))),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-deliveries' }, h('h2', { id: 'sec-deliveries' }, `Deliveries (${rows.length})`), deliveries),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-payload' }, h('h2', { id: 'sec-payload' }, 'Payload'),
      payloadView(event.payload, 'Payload')));
  ctx.done(`Event ${id}`);
}
