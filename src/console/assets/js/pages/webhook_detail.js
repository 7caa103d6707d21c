// One webhook: its configuration, activity, signing secret (revealed on
// click, copied, rotated), "Test webhook", its disabled state with Enable,
// and recovery of failed deliveries with progress.

import { h, field, replace, table, empty, when, timeAgo, copy, toast, statusBadge, codeBadge } from '../dom.js';
import { ApiError, cached, del, get, p, patch, post, query } from '../api.js';
import { outcomeView } from '../sending.js';
import { scopeText, successBar } from './webhooks.js';
import { listens } from '../patterns.js';

export async function render(ctx) {
  const [project, id] = ctx.params;
  const enc = encodeURIComponent(project);
  const [w, stats, formats, recent, catalog] = await Promise.all([
    get(p(project, 'webhooks', id)),
    get(p(project, 'webhooks', id, 'stats')).catch(() => null),
    cached('/v1/formats'),
    get(p(project, 'deliveries') + query({ webhook_id: id, limit: 10 })),
    cached('/v1/event-types'),
  ]);
  const writer = ctx.session.who.kind !== 'read';
  const format = formats.data.find((f) => f.format === w.format);
  const base = `#/p/${enc}/webhooks/${encodeURIComponent(id)}`;

  const head = h('div', { class: 'page-head' },
    h('div', null, h('div', { class: 'crumbs' }, h('a', { href: `#/p/${enc}/webhooks` }, 'Webhooks')),
      h('h1', null, w.name, ' ', w.enabled ? h('span', { class: 'badge ok' }, 'Enabled') : h('span', { class: 'badge bad' }, 'Disabled')),
      w.description ? h('p', null, w.description) : null),
    writer ? h('div', { class: 'actions' },
      h('a', { class: 'button', href: `${base}/edit` }, 'Edit'),
      h('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          if (!window.confirm(`Delete the webhook "${w.name}" and its deliveries?`)) return;
          await del(p(project, 'webhooks', id));
          toast('Webhook deleted');
          ctx.go(`#/p/${enc}/webhooks`);
        },
      }, 'Delete')) : null);

  const disabled = w.enabled ? null : h('div', { class: 'banner bad', role: 'status' },
    h('p', null, h('strong', null, 'Disabled'), w.disabled_at ? ` since ${when(w.disabled_at)}` : '',
      w.disabled_reason ? `: ${w.disabled_reason.replace(/\.$/, '')}.` : '.',
      ' Its deliveries wait, paused; after enabling, recover them below.'),
    writer ? h('button', {
      type: 'button', class: 'primary',
      onclick: async () => {
        await patch(p(project, 'webhooks', id), { enabled: true });
        toast('Webhook enabled');
        ctx.go(base);
      },
    }, 'Enable') : null);

  const rate = w.effective_rate_limit;
  const updated = h('dd', { 'data-testid': 'updated-at' }, when(w.updated_at));
  /** After a change made on this page: what the API now says. */
  const reload = async () => {
    Object.assign(w, await get(p(project, 'webhooks', id)));
    replace(updated, when(w.updated_at));
  };
  const config = h('section', { class: 'panel', 'aria-labelledby': 'sec-config' }, h('h2', { id: 'sec-config' }, 'Configuration'),
    h('dl', { class: 'summary' },
      h('dt', null, 'URL'), h('dd', { class: 'mono' }, w.url),
      h('dt', null, 'Format'), h('dd', null, format ? format.title : w.format),
      w.github ? [h('dt', null, 'Repository'), h('dd', null, w.github.repository, ' · token ', w.github.has_token ? 'set' : 'missing')] : null,
      h('dt', null, 'Events'), h('dd', null, h('div', { class: 'chips' }, w.events.map((e) => h('span', { class: 'chip' }, e)))),
      h('dt', null, 'Scope'), h('dd', null, scopeText(w.scope)),
      h('dt', null, 'Headers'), h('dd', null, w.headers.length
        ? h('ul', { class: 'attempts' }, w.headers.map((hd) => h('li', { class: 'mono' }, `${hd.key}: `,
          hd.protected ? h('span', { class: 'badge idle' }, 'protected') : hd.value)))
        : h('span', { class: 'muted' }, 'none')),
      h('dt', null, 'Secret'), h('dd', null, w.has_secret ? h('span', { class: 'badge ok' }, 'set') : h('span', { class: 'muted' }, 'none')),
      h('dt', null, 'Rate limit'), h('dd', null, rate ? (rate.per_second ? `${rate.per_second} per second` : `${rate.per_minute} per minute`) : 'none',
        w.rate_limit ? '' : h('span', { class: 'muted' }, ' (the format\'s default)')),
      h('dt', null, 'Include result'), h('dd', null, w.include_result ? 'yes' : 'no'),
      h('dt', null, 'MLflow changes'), h('dd', null, { native: 'native (mlflow.*)', comet: 'Comet-shaped', both: 'both shapes' }[w.mlflow_shape] || w.mlflow_shape),
      h('dt', null, 'Created'), h('dd', null, when(w.created_at)),
      h('dt', null, 'Updated'), updated));

  const activityBody = h('div');
  const fillActivity = (s, r) => replace(activityBody,
    s ? h('dl', { class: 'summary' },
      h('dt', null, 'Last hour'), h('dd', null, successBar(s.last_hour)),
      h('dt', null, 'Last day'), h('dd', null, successBar(s.last_day)),
      h('dt', null, 'Last success'), h('dd', null, timeAgo(s.last_success_at)),
      h('dt', null, 'Last failure'), h('dd', null, timeAgo(s.last_failure_at))) : h('p', { class: 'muted' }, 'No numbers available.'),
    recentTable(r.data, enc));
  fillActivity(stats, recent);
  /** Reads the numbers and recent deliveries again (after a test or a recovery). */
  const refreshActivity = async () => {
    const [s, r] = await Promise.all([
      get(p(project, 'webhooks', id, 'stats')).catch(() => null),
      get(p(project, 'deliveries') + query({ webhook_id: id, limit: 10 })),
    ]);
    if (ctx.live()) fillActivity(s, r);
  };
  const activity = h('section', { class: 'panel', 'aria-labelledby': 'sec-activity' }, h('h2', { id: 'sec-activity' }, 'Activity'),
    activityBody,
    h('p', null, h('a', { href: `#/p/${enc}/deliveries?webhook_id=${encodeURIComponent(id)}` }, 'All deliveries of this webhook in the log →')));

  replace(ctx.view, head, disabled,
    h('div', { class: 'grid-2' }, config, activity),
    writer ? signingPanel(project, w, reload) : null,
    writer ? testPanel(project, w, catalog, refreshActivity) : null,
    writer ? recoverPanel(project, w, refreshActivity) : null);
  ctx.done(w.name);
}

function recentTable(rows, enc) {
  if (!rows.length) {
    return empty('No deliveries yet', 'Send a test below, or an event from the event catalog.');
  }
  return table('Recent deliveries', ['When', 'Event type', 'Status', 'Response'], rows.map((d) => h('tr', null,
    h('td', null, h('a', { href: `#/p/${enc}/deliveries/${encodeURIComponent(d.id)}` }, timeAgo(d.created_at))),
    h('td', { class: 'mono' }, d.event_type, d.is_test ? [' ', h('span', { class: 'badge info' }, 'test')] : null),
    h('td', null, statusBadge(d.status)),
    h('td', null, codeBadge(d.last_status_code)))));
}

function signingPanel(project, w, reload) {
  const path = p(project, 'webhooks', w.id, 'signing-secret');
  const shown = h('div', { class: 'secret-state' });
  const status = h('p', { class: 'muted', role: 'status' });
  let revealed = null;
  const hmac = w.signing_scheme !== 'ed25519';

  const draw = () => {
    if (!hmac) {
      replace(shown, h('span', { class: 'secret-value', 'data-testid': 'signing-key' }, w.signing_public_key || ''),
        h('button', { type: 'button', class: 'small', onclick: () => copy(w.signing_public_key || '', 'Public key copied') }, 'Copy'));
      return;
    }
    if (revealed) {
      replace(shown, h('span', { class: 'secret-value', 'data-testid': 'signing-key' }, revealed),
        h('button', { type: 'button', class: 'small', onclick: () => copy(revealed, 'Signing secret copied') }, 'Copy'),
        h('button', { type: 'button', class: 'small', onclick: () => { revealed = null; draw(); } }, 'Hide'));
    } else {
      replace(shown, h('span', { class: 'secret-value' }, h('span', { 'aria-hidden': 'true' }, 'whsec_••••••••••••••••'), h('span', { class: 'sr-label' }, 'hidden')),
        h('button', {
          type: 'button', class: 'small',
          onclick: async () => {
            const key = await get(path);
            revealed = key.signing_secret;
            draw();
          },
        }, 'Reveal'));
    }
  };
  draw();
  // One line, always the current rotation's: after a second rotation the
  // first one's previous key is gone.
  const previous = h('p', { class: 'muted', 'data-testid': 'previous-key' });
  const drawPrevious = () => {
    const until = w.previous_signing_key_expires_at;
    previous.hidden = !until;
    previous.textContent = until ? `The previous key also signs until ${when(until)}.` : '';
  };
  drawPrevious();

  const grace = h('select', { name: 'grace' },
    h('option', { value: '' }, 'the server\'s default'), h('option', { value: '0s' }, 'no time: switch now'),
    h('option', { value: '1h' }, '1 hour'), h('option', { value: '24h' }, '24 hours'), h('option', { value: '7d' }, '7 days'));
  const graceField = field('The old key keeps signing for', grace);
  const rotate = h('button', {
    type: 'button',
    onclick: async () => {
      if (!window.confirm('Rotate the signing key? Receivers must switch to the new one before the old one stops signing.')) return;
      const body = grace.value ? { grace_period: grace.value } : {};
      try {
        await post(`${path}/rotate`, body);
        // The new key is read like any reveal: the rotation's answer need
        // not carry it. The webhook is read again for its previous key's
        // end and its "Updated" time.
        const [key] = await Promise.all([get(path), reload()]);
        revealed = hmac ? key.signing_secret : null;
        if (!hmac) w.signing_public_key = key.signing_public_key;
        status.textContent = `Rotated at ${when(new Date().toISOString())}.`;
        draw();
        drawPrevious();
      } catch (e) {
        status.textContent = e.message;
      }
    },
  }, 'Rotate key');

  return h('section', { class: 'panel', 'aria-labelledby': 'sec-signing' },
    h('h2', { id: 'sec-signing' }, hmac ? 'Signing secret' : 'Signing public key'),
    h('p', { class: 'muted' }, hmac
      ? 'Receivers verify the webhook-signature header with this secret (Standard Webhooks). Keep it private.'
      : 'Receivers verify the v1a (Ed25519) signatures with this public key.'),
    shown,
    previous,
    h('div', { class: 'inline-form' }, graceField.wrap, rotate),
    status);
}

/**
 * What each choice of the Test panel sends: the chosen type's test payload.
 * Comet's registry triggers have no test payload of their own (Comet's
 * "Test" button sends a TEST event whatever the trigger), so they are one
 * choice, TEST, named as such.
 */
function testChoices(w, catalog) {
  const family = Object.fromEntries(catalog.data.map((t) => [t.name, t.family]));
  // Names, `*` and patterns (`execution_*`) alike: the catalog's types they cover.
  const listed = catalog.data.map((t) => t.name).filter((name) => listens(w.events, name));
  const choices = [];
  let registry = false;
  for (const t of listed) {
    if (family[t] === 'model_registry' || t === 'TEST') {
      if (!registry) choices.push({ value: 'TEST', label: 'TEST (Comet\'s test event, for every registry trigger)' });
      registry = true;
    } else {
      choices.push({ value: t, label: t });
    }
  }
  return { choices, registry };
}

function testPanel(project, w, catalog, refreshActivity) {
  const { choices, registry } = testChoices(w, catalog);
  const select = h('select', { name: 'test_event_type' },
    choices.length ? choices.map((c) => h('option', { value: c.value }, c.label)) : h('option', { value: 'TEST' }, 'TEST'));
  const selectField = field('Event type', select);
  const results = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'button', class: 'primary' }, 'Test webhook');
  button.addEventListener('click', async () => {
    button.disabled = true;
    button.textContent = 'Sending…';
    try {
      const outcome = await post(p(project, 'webhooks', w.id, 'test'), { event_type: select.value });
      // The log's record names the type that was really sent.
      const sent = outcome.delivery_id
        ? (await get(p(project, 'deliveries', outcome.delivery_id)).catch(() => null))
        : null;
      const title = `Test: ${sent ? sent.event_type : select.value}`;
      for (const old of results.querySelectorAll('details[open]')) old.open = false;
      results.prepend(outcomeView(outcome, { title }));
      refreshActivity().catch(() => {});
    } catch (e) {
      results.prepend(h('div', { class: 'banner bad', role: 'alert' }, h('p', null, e.message)));
    } finally {
      button.disabled = false;
      button.textContent = 'Test webhook';
    }
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'sec-test' }, h('h2', { id: 'sec-test' }, 'Test webhook'),
    h('p', { class: 'muted' }, 'Sends the chosen event type\'s test payload now and shows what was sent and received',
      registry ? ' (for Comet\'s registry triggers that is Comet\'s TEST event, as Comet itself sends)' : '',
      '. It appears in the delivery log as a test and is never retried.'),
    h('div', { class: 'inline-form' }, selectField.wrap, button),
    results);
}

/** A value for <input type="datetime-local"> in local time. */
function localInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function recoverPanel(project, w, refreshActivity) {
  const since = h('input', { type: 'datetime-local', name: 'since', value: localInput(new Date(Date.now() - 24 * 3600 * 1000)) });
  const sinceField = field('Failed since', since);
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Recovery progress' });
  const status = h('p', { role: 'status' });
  const button = h('button', { type: 'button', disabled: !w.enabled }, 'Recover deliveries');
  button.addEventListener('click', async () => {
    const from = new Date(since.value);
    if (Number.isNaN(from.getTime())) {
      sinceField.error.textContent = 'Choose a date and time.';
      sinceField.error.hidden = false;
      return;
    }
    sinceField.error.hidden = true;
    button.disabled = true;
    const span = { webhook_id: w.id, since: from.toISOString(), until: new Date().toISOString(), limit: 250 };
    try {
      // Which deliveries the recovery takes, to follow exactly those.
      const taken = new Set();
      for (const s of ['failed', 'exhausted', 'paused']) {
        const page = await get(p(project, 'deliveries') + query({ ...span, status: s }));
        for (const d of page.data) taken.add(d.id);
      }
      const answer = await post(p(project, 'webhooks', w.id, 'recover'), { since: span.since, until: span.until });
      const total = answer.recovered;
      if (!total) {
        status.textContent = 'Nothing to recover: no failed, exhausted or paused delivery in that time.';
        return;
      }
      progress.hidden = false;
      progress.max = total;
      const deadline = Date.now() + 5 * 60 * 1000;
      for (;;) {
        const pending = await get(p(project, 'deliveries') + query({ ...span, status: 'pending' }));
        const waiting = pending.data.filter((d) => taken.size === 0 || taken.has(d.id)).length;
        const done = Math.max(0, total - waiting);
        progress.value = done;
        status.textContent = `${done} of ${total} re-queued deliveries sent again.`;
        if (!waiting || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 700));
      }
      status.textContent += ' See the results in the delivery log.';
      refreshActivity().catch(() => {});
    } catch (e) {
      if (e instanceof ApiError && e.field) {
        sinceField.error.textContent = e.message;
        sinceField.error.hidden = false;
      } else {
        status.textContent = e.message;
      }
    } finally {
      button.disabled = !w.enabled;
    }
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'sec-recover' }, h('h2', { id: 'sec-recover' }, 'Recover failed deliveries'),
    h('p', { class: 'muted' }, w.enabled
      ? 'Sends again the failed, exhausted and paused deliveries created since the chosen time, with a fresh retry schedule.'
      : 'Enable the webhook first: a disabled webhook keeps its deliveries paused.'),
    h('div', { class: 'inline-form' }, sinceField.wrap, button), progress, status);
}
