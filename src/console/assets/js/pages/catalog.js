// The event catalog: every event type with its description, schema and
// example payload, and a form that sends a test event, checking the payload
// as it is typed.

import { h, field, replace, pretty, debounce } from '../dom.js';
import { cached, exchange, p, post } from '../api.js';
import { FAMILY_TITLES } from './webhook_form.js';
import { payloadView } from '../viewer.js';

export async function render(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const catalog = await cached('/v1/event-types');
  const types = catalog.data;
  const chosen = types.find((t) => t.name === ctx.params[1]) || types[0];

  const families = new Map();
  for (const t of types) {
    if (!families.has(t.family)) families.set(t.family, []);
    families.get(t.family).push(t);
  }
  const nav = h('nav', { class: 'panel type-list', 'aria-label': 'Event types' },
    [...families.entries()].map(([family, list]) => [
      h('h2', null, FAMILY_TITLES[family] || family),
      h('ul', null, list.map((t) => h('li', null, h('a', {
        href: `#/p/${enc}/catalog/${encodeURIComponent(t.name)}`,
        'aria-current': t === chosen ? 'page' : null,
      }, t.name)))),
    ]));

  const detail = h('div', null,
    h('div', { class: 'page-head' }, h('div', null,
      h('div', { class: 'crumbs' }, 'Event catalog · ', FAMILY_TITLES[chosen.family] || chosen.family),
      h('h1', { class: 'mono' }, chosen.name),
      h('p', null, chosen.description))),
    sendPanel(ctx, project, chosen),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-example' }, h('h2', { id: 'sec-example' }, 'Example payload'),
      payloadView(chosen.example, `Example payload of ${chosen.name}`)),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-schema' }, h('h2', { id: 'sec-schema' }, 'Schema'),
      h('p', { class: 'muted' }, 'JSON Schema (2020-12). Fields mlhook fills in (discriminators, fixed values) are in properties but not required.'),
      h('details', null, h('summary', null, 'Show the schema'), payloadView(chosen.schema, `Schema of ${chosen.name}`))),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-test-payload' }, h('h2', { id: 'sec-test-payload' }, 'Test payload'),
      h('p', { class: 'muted' }, 'What "Test webhook" and "Validate" send for this family.'),
      h('details', null, h('summary', null, 'Show the test payload'), payloadView(chosen.test_payload, `Test payload of ${chosen.name}`))));

  replace(ctx.view, h('div', { class: 'catalog' }, nav, detail));
  ctx.done(`${chosen.name} · Event catalog`);
}

function sendPanel(ctx, project, type) {
  const enc = encodeURIComponent(project);
  if (type.family === 'operational') {
    return h('section', { class: 'panel', 'aria-labelledby': 'sec-send' }, h('h2', { id: 'sec-send' }, 'Send a test event'),
      h('p', { class: 'muted' }, 'mlhook raises this event itself, when a webhook\'s health changes; it cannot be sent by hand. Subscribe a webhook to it to be told.'));
  }
  if (ctx.session.who.kind === 'read') {
    return h('section', { class: 'panel', 'aria-labelledby': 'sec-send' }, h('h2', { id: 'sec-send' }, 'Send a test event'),
      h('p', { class: 'muted' }, 'You signed in with a read token: it may look, not send. Sign in with a write or admin token to send a test event.'));
  }
  const payload = h('textarea', { name: 'payload', class: 'tall', spellcheck: 'false' }, pretty(type.example));
  const payloadField = field('Payload', payload, `The ${type.name} payload, as the vendor document gives it. Fields mlhook derives may be left out.`);
  const key = h('input', { name: 'idempotency_key', type: 'text', maxlength: '255', autocomplete: 'off', spellcheck: 'false' });
  const keyField = field('Idempotency key (optional)', key, 'Sending again with the same key and payload answers the first event; the same key with another payload is refused.');
  const check = h('div', { class: 'check-status', role: 'status', 'aria-live': 'polite' });
  const result = h('div', { 'aria-live': 'polite' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Send event');
  let valid = false;

  const showViolations = (violations) => {
    check.className = 'check-status bad';
    replace(check, h('strong', null, '✗ Not valid yet:'), h('ul', null, violations.map((v) => h('li', null,
      h('code', null, v.field.replace(/^\/payload/, '') || '/'), ' ', v.message))));
    payload.setAttribute('aria-invalid', 'true');
  };
  const validate = debounce(async () => {
    let parsed;
    try {
      parsed = JSON.parse(payload.value);
    } catch (e) {
      valid = false;
      check.className = 'check-status bad';
      replace(check, h('strong', null, '✗ Not JSON: '), e.message);
      payload.setAttribute('aria-invalid', 'true');
      send.setAttribute('aria-disabled', 'true');
      return;
    }
    try {
      const answer = await post(`/v1/event-types/${encodeURIComponent(type.name)}/validate`, { payload: parsed, project });
      valid = answer.valid;
      if (valid) {
        check.className = 'check-status ok';
        const about = answer.object ? ` It is about ${answer.object.type} ${answer.object.name || ''}${answer.object.version ? ` v${answer.object.version}` : ''}.` : '';
        replace(check, h('strong', null, '✓ Valid.'), about);
        payload.removeAttribute('aria-invalid');
      } else {
        showViolations(answer.violations);
      }
    } catch (e) {
      valid = false;
      check.className = 'check-status bad';
      replace(check, e.message);
    }
    send.setAttribute('aria-disabled', valid ? 'false' : 'true');
  }, 250);
  payload.addEventListener('input', () => {
    check.className = 'check-status';
    check.textContent = 'Checking…';
    validate();
  });

  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      if (!valid) {
        payload.focus();
        return;
      }
      send.disabled = true;
      keyField.error.hidden = true;
      key.removeAttribute('aria-invalid');
      try {
        const body = { type: type.name, payload: JSON.parse(payload.value) };
        if (key.value) body.idempotency_key = key.value;
        const { data: answer, headers } = await exchange('POST', p(project, 'events'), body);
        const repeat = headers.get('Idempotent-Replayed') === 'true';
        const n = answer.deliveries.length;
        replace(result, h('div', { class: `banner ${n ? 'ok' : 'warn'}`, role: 'status' },
          h('div', null,
            h('p', null, h('strong', null, repeat ? 'Already accepted' : 'Accepted'), ` as event ${answer.id}: `,
              repeat ? 'this key was sent with this payload before, so nothing new was stored. ' : '',
              n ? `${n} ${n === 1 ? 'delivery' : 'deliveries'}.` : 'no webhook of this project listens to it (check events and scope).'),
            n ? h('ul', null, answer.deliveries.map((d) => h('li', null,
              h('a', { href: `#/p/${enc}/deliveries/${encodeURIComponent(d)}` }, `Delivery ${d}`)))) : null),
          h('a', { class: 'button', href: `#/p/${enc}/deliveries?event_type=${encodeURIComponent(type.name)}` }, 'Open the delivery log')));
      } catch (err) {
        if (err.code === 'idempotency_key_reused') {
          keyField.error.textContent = 'Already used with another payload: nothing was stored. Send the first payload again, or use a new key for a new event.';
          keyField.error.hidden = false;
          key.setAttribute('aria-invalid', 'true');
          key.setAttribute('aria-describedby', `${keyField.error.id} ${key.id}-hint`);
          replace(result, h('div', { class: 'banner bad', role: 'alert' }, h('p', null, err.message)));
          key.focus();
        } else if (err.details && err.details.length) showViolations(err.details);
        else replace(result, h('div', { class: 'banner bad', role: 'alert' }, h('p', null, err.message)));
      } finally {
        send.disabled = false;
      }
    },
  }, payloadField.wrap, check, keyField.wrap, h('div', { class: 'actions' }, send, h('span', { class: 'muted' }, `to project ${project}`)), result);
  validate();
  return h('section', { class: 'panel', 'aria-labelledby': 'sec-send' }, h('h2', { id: 'sec-send' }, 'Send a test event'),
    h('p', { class: 'muted' }, 'Publishes an event of this type to the project now, as a client would: every matching webhook gets a delivery.'), form);
}
