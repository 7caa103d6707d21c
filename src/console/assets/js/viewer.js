// A payload or body as people read it: highlighted JSON, pretty or raw,
// with a Copy button. Text that is not JSON is shown as it is.

import { h, copy } from './dom.js';
import { highlight } from './json.js';

/** `value`: a parsed JSON value, or the text as received. */
export function payloadView(value, label, extraClass = '') {
  const raw = typeof value === 'string' ? value : JSON.stringify(value);
  let parsed;
  let isJson = true;
  try {
    parsed = typeof value === 'string' ? JSON.parse(value) : value;
  } catch {
    isJson = false;
  }
  const pretty = isJson ? JSON.stringify(parsed, null, 2) : raw;
  const pre = h('pre', { class: `code ${extraClass}`.trim(), tabindex: '0', title: label, 'data-testid': 'payload' });
  let mode = 'pretty';
  const prettyButton = h('button', { type: 'button', class: 'small' }, 'Pretty', h('span', { class: 'sr-label' }, ` ${label}`));
  const rawButton = h('button', { type: 'button', class: 'small' }, 'Raw', h('span', { class: 'sr-label' }, ` ${label}`));
  const draw = () => {
    const text = mode === 'pretty' ? pretty : raw;
    pre.replaceChildren(isJson ? highlight(text) : document.createTextNode(text));
    prettyButton.setAttribute('aria-pressed', String(mode === 'pretty'));
    rawButton.setAttribute('aria-pressed', String(mode === 'raw'));
  };
  prettyButton.addEventListener('click', () => { mode = 'pretty'; draw(); });
  rawButton.addEventListener('click', () => { mode = 'raw'; draw(); });
  draw();
  const toolbar = h('div', { class: 'viewer-bar', role: 'group', 'aria-label': `${label}: view` },
    isJson && raw !== pretty ? [prettyButton, rawButton] : null,
    h('button', { type: 'button', class: 'small', onclick: () => copy(mode === 'pretty' ? pretty : raw, `${label} copied`) },
      'Copy', h('span', { class: 'sr-label' }, ` ${label}`)));
  return h('div', { class: 'viewer' }, toolbar, pre);
}

/** A small Copy button for a value (an id, a header block). */
export function copyButton(text, what) {
  return h('button', { type: 'button', class: 'small copy', onclick: () => copy(text, `${what} copied`), title: `Copy ${what}` },
    'Copy', h('span', { class: 'sr-label' }, ` ${what}`));
}
