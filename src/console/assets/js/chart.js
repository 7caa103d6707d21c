// Success over time: deliveries counted per time slot and drawn as stacked
// bars (succeeded, failed, waiting). The counts come from the delivery log
// itself (GET …/deliveries), so the chart follows the log's filters.

import { h, svg } from './dom.js';
import { get, p, query } from './api.js';

/** How far back a chart looks for each "Time" filter of the log, and its slots. */
const WINDOWS = {
  '': { ms: 24 * 3600e3, slots: 24, unit: 'hour', text: 'the last 24 hours' },
  '1h': { ms: 3600e3, slots: 12, unit: '5 minutes', text: 'the last hour' },
  '24h': { ms: 24 * 3600e3, slots: 24, unit: 'hour', text: 'the last 24 hours' },
  '7d': { ms: 7 * 24 * 3600e3, slots: 7, unit: 'day', text: 'the last 7 days' },
  '30d': { ms: 30 * 24 * 3600e3, slots: 30, unit: 'day', text: 'the last 30 days' },
};

/** At most this many deliveries are read for one chart (four pages). */
const MOST = 1000;

/** The deliveries of `filters` in the window, newest first, at most MOST. */
async function deliveriesIn(project, filters, since) {
  const out = [];
  let cursor = null;
  do {
    const page = await get(p(project, 'deliveries') + query({ ...filters, since, cursor, limit: 250 }));
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && out.length < MOST);
  return { rows: out, capped: Boolean(cursor) };
}

/** Counts per slot: [{start, succeeded, failed, waiting}], oldest first. */
export function bucket(rows, now, window) {
  const width = window.ms / window.slots;
  const start = now - window.ms;
  const slots = Array.from({ length: window.slots }, (_, i) => ({ start: start + i * width, succeeded: 0, failed: 0, waiting: 0 }));
  for (const d of rows) {
    const i = Math.floor((new Date(d.created_at).getTime() - start) / width);
    if (i < 0 || i >= slots.length) continue;
    const kind = d.status === 'succeeded' ? 'succeeded' : d.status === 'failed' || d.status === 'exhausted' ? 'failed' : 'waiting';
    slots[i][kind] += 1;
  }
  return slots;
}

const slotTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/**
 * The chart for the log's filters (`webhook_id`, `event_type`; the status
 * filter is left out: the chart shows every outcome). `label` names what it
 * covers ("churn releases", "the project").
 */
export async function successChart(project, filters, sinceKey, label) {
  const window = WINDOWS[sinceKey] || WINDOWS[''];
  const now = Date.now();
  const { rows, capped } = await deliveriesIn(project, filters, new Date(now - window.ms).toISOString());
  const slots = bucket(rows, now, window);
  const total = slots.reduce((n, s) => ({ ok: n.ok + s.succeeded, bad: n.bad + s.failed, wait: n.wait + s.waiting }), { ok: 0, bad: 0, wait: 0 });
  const done = total.ok + total.bad;
  const rate = done ? `${Math.round((total.ok / done) * 100)} % succeeded` : 'nothing finished yet';
  const summary = `${label}, ${window.text}: ${total.ok} succeeded, ${total.bad} failed, ${total.wait} waiting (${rate})${capped ? `; the newest ${MOST} deliveries` : ''}.`;
  const most = Math.max(1, ...slots.map((s) => s.succeeded + s.failed + s.waiting));
  const W = 600;
  const H = 90;
  const gap = 2;
  const barW = W / slots.length - gap;
  const bars = slots.map((s, i) => {
    const x = i * (W / slots.length);
    const scale = (n) => (n / most) * (H - 4);
    const okH = scale(s.succeeded);
    const badH = scale(s.failed);
    const waitH = scale(s.waiting);
    return svg('g', null,
      svg('title', null, document.createTextNode(`${slotTime.format(new Date(s.start))} (a ${window.unit}): ${s.succeeded} succeeded, ${s.failed} failed, ${s.waiting} waiting`)),
      svg('rect', { class: 'slot', x, y: 0, width: barW, height: H }),
      svg('rect', { class: 'ok-part', x, y: H - okH, width: barW, height: okH }),
      svg('rect', { class: 'bad-part', x, y: H - okH - badH, width: barW, height: badH }),
      svg('rect', { class: 'pending-part', x, y: H - okH - badH - waitH, width: barW, height: waitH }));
  });
  return h('figure', { class: 'chart', 'data-testid': 'success-chart' },
    svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': summary }, ...bars),
    h('figcaption', null,
      h('span', { class: 'legend ok' }, 'succeeded'), h('span', { class: 'legend bad' }, 'failed'), h('span', { class: 'legend idle' }, 'waiting'),
      h('span', { class: 'chart-summary' }, summary)));
}
