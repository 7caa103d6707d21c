// The delivery log (newest first, filtered, more rows as you scroll) and one
// delivery with its attempts: request (headers masked by the server),
// response, duration, error; and Redeliver.

import { h, field, replace, empty, when, timeAgo, statusBadge, codeBadge, labelCells } from '../dom.js';
import { cached, get, p, post, query } from '../api.js';
import { attemptView, outcomeView } from '../sending.js';
import { successChart } from '../chart.js';
import { copyButton } from '../viewer.js';

const STATUSES = ['pending', 'succeeded', 'failed', 'exhausted', 'paused'];
const SINCE = [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']];
const FILTERS = ['webhook_id', 'event_id', 'event_type', 'status', 'since'];
const AUTO_SECONDS = 10;

export async function renderList(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const [hooks, catalog] = await Promise.all([get(p(project, 'webhooks')), cached('/v1/event-types')]);
  const names = Object.fromEntries(hooks.data.map((w) => [w.id, w.name]));
  const current = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || '']));
  const auto = ctx.query.get('auto') === '1';
  const writer = ctx.session.who.kind !== 'read';
  const here = (next) => `#/p/${enc}/deliveries${query(next)}`;

  const select = (name, label, options) => {
    const s = h('select', { name }, options.map(([v, t]) => h('option', { value: v, selected: v === current[name] }, t)));
    s.addEventListener('change', () => ctx.go(here({ ...current, [name]: s.value, auto: auto ? '1' : '' })));
    return field(label, s);
  };
  const autoBox = h('input', { type: 'checkbox', name: 'auto', checked: auto });
  autoBox.addEventListener('change', () => {
    history.replaceState(null, '', here({ ...current, auto: autoBox.checked ? '1' : '' }));
    schedule();
  });
  const filters = h('div', { class: 'filters', role: 'group', 'aria-label': 'Filter deliveries' },
    select('webhook_id', 'Webhook', [['', 'All webhooks'], ...hooks.data.map((w) => [w.id, w.name])]).wrap,
    select('event_type', 'Event type', [['', 'All event types'], ...catalog.data.map((t) => [t.name, t.name])]).wrap,
    select('status', 'Status', [['', 'Any status'], ...STATUSES.map((s) => [s, s])]).wrap,
    select('since', 'Time', SINCE).wrap,
    h('button', { type: 'button', onclick: () => refresh() }, 'Refresh'),
    h('label', { class: 'check auto-refresh' }, autoBox, h('span', null, `Auto-refresh every ${AUTO_SECONDS} s`)));

  const filtered = FILTERS.some((k) => current[k]);
  const tbody = h('tbody');
  const more = h('div', { class: 'load-more' });
  const holder = h('div');
  const chartHolder = h('div', { class: 'chart-holder', 'aria-live': 'off' });
  let cursor = null;
  let loading = false;

  const headings = ['When', 'Event type', 'Webhook', 'Status', 'Attempts', 'Response', 'Next attempt'];
  const rowOf = (d) => labelCells(h('tr', { 'data-delivery': d.id },
    h('td', null, h('a', { href: `#/p/${enc}/deliveries/${encodeURIComponent(d.id)}` }, timeAgo(d.created_at)),
      h('span', { class: 'cell-sub mono' }, d.id)),
    h('td', { class: 'mono' }, h('a', { href: `#/p/${enc}/events/${encodeURIComponent(d.event_id)}`, title: `Event ${d.event_id}` }, d.event_type),
      d.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
    h('td', null, names[d.webhook_id] || h('span', { class: 'mono' }, d.webhook_id)),
    h('td', null, statusBadge(d.status)),
    h('td', { class: 'num' }, d.attempts),
    h('td', null, codeBadge(d.last_status_code)),
    h('td', null, d.next_attempt_at ? timeAgo(d.next_attempt_at) : h('span', { class: 'muted' }, '—'))), headings);

  const tableView = h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Deliveries', tabindex: '0' },
    h('table', { class: 'list' },
      h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))),
      tbody));

  const load = async (fresh = false) => {
    if (loading) return;
    loading = true;
    if (!fresh) replace(more, h('span', { class: 'muted' }, 'Loading…'));
    try {
      const page = await get(p(project, 'deliveries') + query({ ...current, cursor: fresh ? null : cursor, limit: 50 }));
      if (!ctx.live()) return;
      if (fresh) {
        tbody.replaceChildren();
        cursor = null;
      }
      if (!cursor && !page.data.length) {
        replace(holder, filtered
          ? empty('No delivery matches these filters', 'Widen the time or clear a filter.',
            h('a', { class: 'button', href: `#/p/${enc}/deliveries` }, 'Clear filters'))
          : empty('No deliveries yet', 'A delivery is made for each webhook an event matches. Send a test event from the event catalog, or test a webhook from its page.',
            h('a', { class: 'button primary', href: `#/p/${enc}/catalog` }, 'Send a test event'),
            h('a', { class: 'button', href: `#/p/${enc}/webhooks` }, 'Webhooks')));
        return;
      }
      if (!holder.contains(tableView)) replace(holder, tableView, more);
      for (const d of page.data) tbody.appendChild(rowOf(d));
      cursor = page.next_cursor;
      replace(more, cursor
        ? h('button', { type: 'button', onclick: () => load() }, 'Load more')
        : h('span', { class: 'muted' }, 'That is every delivery.'));
    } catch (e) {
      replace(more, h('span', { class: 'field-error' }, e.message));
    } finally {
      loading = false;
    }
  };

  const chartOf = (current.webhook_id ? (names[current.webhook_id] || current.webhook_id) : `The project ${project}`)
    + (current.event_type ? ` (${current.event_type} only)` : '');
  const drawChart = async () => {
    try {
      const chart = await successChart(project, { webhook_id: current.webhook_id, event_type: current.event_type }, current.since, chartOf);
      if (ctx.live()) replace(chartHolder, chart);
    } catch (e) {
      if (ctx.live()) replace(chartHolder, h('p', { class: 'muted' }, `No chart: ${e.message}`));
    }
  };

  const retry = writer ? retryFailed(project, current, () => refresh()) : null;
  const refresh = async () => {
    await Promise.all([load(true), drawChart(), retry ? retry.count() : null]);
  };
  let timer = null;
  const schedule = () => {
    clearInterval(timer);
    if (!autoBox.checked) return;
    timer = setInterval(() => {
      if (!ctx.live()) clearInterval(timer);
      else if (!document.hidden && !(retry && retry.busy())) refresh().catch(() => {});
    }, AUTO_SECONDS * 1000);
  };

  replace(holder, tableView, more);
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Delivery log'),
      h('p', null, 'Every delivery of every event, newest first. Open one to see its attempts.')),
    h('div', { class: 'actions' }, h('a', { class: 'button', href: `#/p/${enc}/events` }, 'Events'))),
    searchForm(ctx, enc),
    filters,
    h('section', { class: 'panel', 'aria-labelledby': 'sec-chart' }, h('h2', { id: 'sec-chart' }, 'Success over time'), chartHolder),
    retry ? retry.element : null,
    holder);
  // More rows as the end of the list comes into view.
  const observer = new IntersectionObserver((entries) => {
    if (!ctx.live()) observer.disconnect();
    else if (entries.some((e) => e.isIntersecting) && cursor && !loading) load();
  });
  observer.observe(more);
  await Promise.all([load(), drawChart(), retry ? retry.count() : null]);
  schedule();
  ctx.done('Delivery log');
}

/** Finds a delivery (msg_…) or an event (evt_…) by its id. */
function searchForm(ctx, enc) {
  const input = h('input', { type: 'search', name: 'id', placeholder: 'msg_… or evt_…', autocomplete: 'off', spellcheck: 'false' });
  const f = field('Delivery or event id', input, 'Opens the delivery, or the event with all its deliveries.');
  return h('form', {
    class: 'inline-form search-form', role: 'search', 'aria-label': 'Find a delivery or an event',
    onsubmit: (e) => {
      e.preventDefault();
      const id = input.value.trim();
      f.error.hidden = false;
      if (id.startsWith('msg_')) ctx.go(`#/p/${enc}/deliveries/${encodeURIComponent(id)}`);
      else if (id.startsWith('evt_')) ctx.go(`#/p/${enc}/events/${encodeURIComponent(id)}`);
      else {
        f.error.textContent = 'A delivery id starts with msg_, an event id with evt_.';
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', `${f.error.id} ${input.id}-hint`);
        return;
      }
      f.error.hidden = true;
    },
  }, f.wrap, h('button', { type: 'submit' }, 'Find'));
}

/**
 * "Retry all failed" for the log's filters: counts the failed and exhausted
 * deliveries they match, and redelivers each (the manual send of the
 * delivery page), with a progress bar.
 */
function retryFailed(project, current, after) {
  const statuses = current.status ? [current.status].filter((s) => s === 'failed' || s === 'exhausted') : ['failed', 'exhausted'];
  let ids = [];
  let busy = false;
  const button = h('button', { type: 'button', disabled: true }, 'Retry all failed');
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Retry progress' });
  const status = h('p', { class: 'muted', role: 'status' });
  const count = async () => {
    if (busy) return;
    const found = [];
    for (const s of statuses) {
      let cursor = null;
      do {
        const page = await get(p(project, 'deliveries') + query({ ...current, status: s, cursor, limit: 250 }));
        found.push(...page.data.map((d) => d.id));
        cursor = page.next_cursor;
      } while (cursor && found.length < 1000);
    }
    ids = found;
    button.textContent = `Retry all failed (${ids.length})`;
    button.disabled = !ids.length;
    if (!ids.length && !progress.hidden) return;
    if (!ids.length) status.textContent = 'No failed delivery matches these filters.';
  };
  button.addEventListener('click', async () => {
    if (!window.confirm(`Send ${ids.length} failed deliveries again now?`)) return;
    busy = true;
    button.disabled = true;
    progress.hidden = false;
    progress.max = ids.length;
    progress.value = 0;
    let ok = 0;
    let bad = 0;
    const queue = [...ids];
    // A few at a time: each is a real send to a receiver that was failing.
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          const outcome = await post(p(project, 'deliveries', id, 'redeliver'));
          if (outcome.valid) ok += 1;
          else bad += 1;
        } catch {
          bad += 1;
        }
        progress.value = ok + bad;
        status.textContent = `${ok + bad} of ${ids.length} sent again: ${ok} succeeded, ${bad} failed.`;
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    busy = false;
    await after();
  });
  const element = h('section', { class: 'panel retry', 'aria-labelledby': 'sec-retry' },
    h('h2', { id: 'sec-retry' }, 'Retry failed deliveries'),
    h('p', { class: 'muted' }, 'Sends again, now, every failed or exhausted delivery these filters match (up to 1000); each is one manual attempt, not retried.'),
    h('div', { class: 'actions' }, button), progress, status);
  return { element, count, busy: () => busy };
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
      h('dt', null, 'Event'), h('dd', { class: 'mono' }, delivery.event_type,
        h('span', { class: 'cell-sub' }, h('a', { href: `#/p/${enc}/events/${encodeURIComponent(delivery.event_id)}` }, delivery.event_id), ' ',
          copyButton(delivery.event_id, 'Event id'))),
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
        h('h1', null, 'Delivery ', h('span', { class: 'mono' }, id)), copyButton(id, 'Delivery id')),
      h('div', { class: 'actions' }, writer ? redeliver : null,
        h('button', { type: 'button', onclick: async () => draw(await get(p(project, 'deliveries', id))) }, 'Refresh'))),
    h('section', { class: 'panel', 'aria-label': 'Delivery' }, summary,
      h('p', { class: 'muted' }, 'Redeliver sends it again now, whatever its state; a manual attempt is not retried.'), results),
    h('section', { 'aria-labelledby': 'sec-attempts' }, h('h2', { id: 'sec-attempts' }, 'Attempts'), attempts));
  ctx.done(`Delivery ${id}`);
}
