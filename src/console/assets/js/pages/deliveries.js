// The delivery log (newest first, filtered, more rows as you scroll) and one
// delivery with its attempts: request (headers masked by the server),
// response, duration, error; and Redeliver.

import { h, field, replace, empty, when, timeAgo, statusBadge, codeBadge, labelCells } from '../dom.js';
import { cached, get, p, post, query } from '../api.js';
import { attemptView, outcomeView } from '../sending.js';

const STATUSES = ['pending', 'succeeded', 'failed', 'exhausted', 'paused'];
const SINCE = [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const FILTERS = ['webhook_id', 'event_type', 'status', 'since'];

export async function renderList(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const [hooks, catalog] = await Promise.all([get(p(project, 'webhooks')), cached('/v1/event-types')]);
  const names = Object.fromEntries(hooks.data.map((w) => [w.id, w.name]));
  const current = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));

  const select = (name, label, options) => {
    const s = h('select', { name }, options.map(([v, t]) => h('option', { value: v, selected: v === current[name] }, t)));
    s.addEventListener('change', () => {
      const next = { ...current, [name]: s.value };
      ctx.go(`#/p/${enc}/deliveries${query(next)}`);
    });
    return field(label, s);
  };
  const filters = h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter deliveries' },
    select('webhook_id', 'Webhook', [['', 'All webhooks'], ...hooks.data.map((w) => [w.id, w.name])]).wrap,
    select('event_type', 'Event type', [['', 'All event types'], ...catalog.data.map((t) => [t.name, t.name])]).wrap,
    select('status', 'Status', [['', 'Any status'], ...STATUSES.map((s) => [s, s])]).wrap,
    select('since', 'Time', SINCE).wrap,
    h('button', { type: 'button', onclick: () => ctx.go(location.hash) }, 'Refresh'));

  const filtered = FILTERS.some((k) => current[k]);
  const tbody = h('tbody');
  const more = h('div', { class: 'load-more' });
  const holder = h('div');
  let cursor = null;
  let loading = false;

  const headings = ['When', 'Event type', 'Webhook', 'Status', 'Attempts', 'Response', 'Next attempt'];
  const rowOf = (d) => labelCells(h('tr', { 'data-delivery': d.id },
    h('td', null, h('a', { href: `#/p/${enc}/deliveries/${encodeURIComponent(d.id)}` }, timeAgo(d.created_at)),
      h('span', { class: 'cell-sub mono' }, d.id)),
    h('td', { class: 'mono' }, d.event_type, d.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
    h('td', null, names[d.webhook_id] || h('span', { class: 'mono' }, d.webhook_id)),
    h('td', null, statusBadge(d.status)),
    h('td', { class: 'num' }, d.attempts),
    h('td', null, codeBadge(d.last_status_code)),
    h('td', null, d.next_attempt_at ? timeAgo(d.next_attempt_at) : h('span', { class: 'muted' }, '—'))), headings);

  const load = async () => {
    if (loading) return;
    loading = true;
    replace(more, h('span', { class: 'muted' }, 'Loading…'));
    try {
      const page = await get(p(project, 'deliveries') + query({ ...current, cursor, limit: 50 }));
      if (!ctx.live()) return;
      if (!cursor && !page.data.length) {
        replace(holder, filtered
          ? empty('No delivery matches these filters', 'Widen the time or clear a filter.',
            h('a', { class: 'button', href: `#/p/${enc}/deliveries` }, 'Clear filters'))
          : empty('No deliveries yet', 'A delivery is made for each webhook an event matches. Send a test event from the event catalog, or test a webhook from its page.',
            h('a', { class: 'button primary', href: `#/p/${enc}/catalog` }, 'Send a test event'),
            h('a', { class: 'button', href: `#/p/${enc}/webhooks` }, 'Webhooks')));
        return;
      }
      for (const d of page.data) tbody.appendChild(rowOf(d));
      cursor = page.next_cursor;
      replace(more, cursor
        ? h('button', { type: 'button', onclick: load }, 'Load more')
        : h('span', { class: 'muted' }, 'That is every delivery.'));
    } catch (e) {
      replace(more, h('span', { class: 'field-error' }, e.message));
    } finally {
      loading = false;
    }
  };

  replace(holder, h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Deliveries', tabindex: '0' },
    h('table', { class: 'list' },
      h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))),
      tbody)), more);
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Delivery log'),
      h('p', null, 'Every delivery of every event, newest first. Open one to see its attempts.'))),
    filters, holder);
  // More rows as the end of the list comes into view.
  const observer = new IntersectionObserver((entries) => {
    if (!ctx.live()) observer.disconnect();
    else if (entries.some((e) => e.isIntersecting) && cursor && !loading) load();
  });
  observer.observe(more);
  await load();
  ctx.done('Delivery log');
}

export async function renderOne(ctx) {
  const [project, id] = ctx.params;
  const enc = encodeURIComponent(project);
  const d = await get(p(project, 'deliveries', id));
  const webhook = await get(p(project, 'webhooks', d.webhook_id)).catch(() => null);
  const attempts = h('ol', { class: 'attempts', 'aria-label': 'Attempts, newest first', reversed: true });
  const summary = h('dl', { class: 'summary' });
  const results = h('div', { 'aria-live': 'polite' });

  const draw = (delivery) => {
    replace(summary,
      h('dt', null, 'Status'), h('dd', null, statusBadge(delivery.status), delivery.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
      h('dt', null, 'Event'), h('dd', { class: 'mono' }, delivery.event_type, h('span', { class: 'cell-sub' }, delivery.event_id)),
      h('dt', null, 'Webhook'), h('dd', null, webhook
        ? h('a', { href: `#/p/${enc}/webhooks/${encodeURIComponent(webhook.id)}` }, webhook.name)
        : h('span', { class: 'mono' }, `${delivery.webhook_id} (deleted)`)),
      h('dt', null, 'Attempts'), h('dd', null, String(delivery.attempts)),
      h('dt', null, 'Created'), h('dd', null, when(delivery.created_at)),
      h('dt', null, 'Next attempt'), h('dd', null, delivery.next_attempt_at ? when(delivery.next_attempt_at) : 'none planned'));
    const history = [...delivery.history].reverse();
    replace(attempts, history.length
      ? history.map((a, i) => attemptView(a, i === 0))
      : h('li', null, empty('No attempt yet', delivery.next_attempt_at
        ? `The first attempt is planned for ${when(delivery.next_attempt_at)}.`
        : 'The first attempt is on its way; refresh in a moment.')));
  };
  draw(d);

  const redeliver = h('button', { type: 'button', class: 'primary' }, 'Redeliver');
  redeliver.addEventListener('click', async () => {
    redeliver.disabled = true;
    redeliver.textContent = 'Sending…';
    try {
      const outcome = await post(p(project, 'deliveries', id, 'redeliver'));
      results.replaceChildren(outcomeView(outcome, { title: 'Redelivery', open: false }));
      draw(await get(p(project, 'deliveries', id)));
    } catch (e) {
      results.replaceChildren(h('div', { class: 'banner bad', role: 'alert' }, h('p', null, e.message)));
    } finally {
      redeliver.disabled = false;
      redeliver.textContent = 'Redeliver';
    }
  });
  const writer = ctx.session.who.kind !== 'read';
  replace(ctx.view,
    h('div', { class: 'page-head' },
      h('div', null, h('div', { class: 'crumbs' }, h('a', { href: `#/p/${enc}/deliveries` }, 'Delivery log')),
        h('h1', null, 'Delivery ', h('span', { class: 'mono' }, id))),
      h('div', { class: 'actions' }, writer ? redeliver : null,
        h('button', { type: 'button', onclick: async () => draw(await get(p(project, 'deliveries', id))) }, 'Refresh'))),
    h('section', { class: 'panel', 'aria-label': 'Delivery' }, summary,
      h('p', { class: 'muted' }, 'Redeliver sends it again now, whatever its state; a manual attempt is not retried.'), results),
    h('section', { 'aria-labelledby': 'sec-attempts' }, h('h2', { id: 'sec-attempts' }, 'Attempts'), attempts));
  ctx.done(`Delivery ${id}`);
}
