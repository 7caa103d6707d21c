// How a send looks: the answer of validate, test and redeliver, and each
// attempt of a delivery. Request (headers as the server masked them),
// response (status, headers, body), duration, error.

import { h, codeBadge, copy, when } from './dom.js';
import { payloadView } from './viewer.js';

function headerTable(headers, label) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'No headers.');
  return h('div', null,
    h('table', { class: 'kv', 'aria-label': label },
      h('tbody', null, entries.map(([k, v]) => h('tr', null, h('th', { scope: 'row' }, k), h('td', null, String(v)))))),
    h('div', { class: 'viewer-bar' }, h('button', {
      type: 'button', class: 'small', onclick: () => copy(entries.map(([k, v]) => `${k}: ${v}`).join('\n'), `${label} copied`),
    }, 'Copy headers', h('span', { class: 'sr-label' }, ` (${label.toLowerCase()})`))));
}

function requestPart(request) {
  if (!request) return null;
  return h('div', null,
    h('h3', { class: 'sub-head' }, 'Request sent'),
    h('p', { class: 'mono' }, `${request.method || 'POST'} ${request.url}`),
    headerTable(request.headers, 'Request headers'),
    payloadView(request.body || '', 'Request body', 'short'));
}

function responsePart(response, error) {
  const parts = [h('h3', { class: 'sub-head' }, 'Response got')];
  if (response) {
    parts.push(h('p', null, codeBadge(response.status)),
      headerTable(response.headers, 'Response headers'),
      response.body ? payloadView(response.body, 'Response body', 'short') : h('p', { class: 'muted' }, 'Empty body.'));
    if (response.truncated) parts.push(h('p', { class: 'muted' }, 'The body was longer than the 64 KiB kept.'));
  } else {
    parts.push(h('p', { class: 'muted' }, 'No response.'));
  }
  if (error) {
    parts.push(h('h3', { class: 'sub-head' }, 'Error'),
      h('p', null, h('span', { class: 'badge bad' }, error.kind), ' ', error.message));
  }
  return h('div', null, parts);
}

/** One line saying how it went: "Accepted · 200 OK · 3 ms". */
function verdict(good, response, error, durationMs) {
  return [
    h('span', { class: `badge ${good ? 'ok' : 'bad'}` }, good ? '✓ Accepted' : '✗ Failed'),
    response ? codeBadge(response.status) : null,
    error && !response ? h('span', null, error.kind) : null,
    h('span', { class: 'muted' }, `${durationMs} ms`),
  ];
}

/**
 * A send's answer ({valid, request, response, error, duration_ms}) as a
 * collapsible block. `title` says what it was ("Validation", "Test").
 */
export function outcomeView(outcome, { title, open = true, at = new Date().toISOString() } = {}) {
  const full = {
    valid: outcome.valid, delivery_id: outcome.delivery_id, request: outcome.request,
    response: outcome.response, error: outcome.error, duration_ms: outcome.duration_ms,
  };
  const copyButton = h('button', {
    type: 'button', class: 'small',
    onclick: () => copy(JSON.stringify(full, null, 2), 'Full response copied'),
  }, 'Copy full response');
  return h('details', { class: `result ${outcome.valid ? 'good' : 'failed'}`, open, 'data-testid': 'send-result' },
    h('summary', null, h('strong', null, title), verdict(outcome.valid, outcome.response, outcome.error, outcome.duration_ms),
      h('span', { class: 'muted' }, when(at))),
    h('div', { class: 'result-body' },
      h('div', { class: 'split' }, requestPart(outcome.request), responsePart(outcome.response, outcome.error)),
      h('div', { class: 'actions' }, copyButton)));
}

/** One attempt of a delivery (AttemptView). */
export function attemptView(a, open) {
  const good = a.response && a.response.status >= 200 && a.response.status < 300 && !a.error;
  return h('li', null, h('details', { class: `result ${good ? 'good' : 'failed'}`, open, 'data-testid': 'attempt' },
    h('summary', null, h('strong', null, `Attempt ${a.attempt}`),
      a.manual ? h('span', { class: 'badge info' }, 'manual') : null,
      verdict(good, a.response, a.error, a.duration_ms),
      h('span', { class: 'muted' }, when(a.started_at)),
      a.next_attempt_at ? h('span', { class: 'muted' }, `next attempt ${when(a.next_attempt_at)}`) : null),
    h('div', { class: 'result-body' },
      h('div', { class: 'split' }, requestPart(a.request), responsePart(a.response, a.error)))));
}
