// Shows API errors next to the inputs they name. The API names the field at
// fault as a JSON pointer into the request body (`/url`, `/headers/1/key`,
// `/template/blocks/0/text`); each input registers the pointer it fills.

import { h, replace } from './dom.js';

export class FormErrors {
  /** `summary` is where errors that name no registered input are listed. */
  constructor(summary) {
    this.summary = summary;
    this.summary.classList.add('form-errors');
    this.summary.setAttribute('role', 'alert');
    this.summary.hidden = true;
    this.fields = new Map();
  }

  /**
   * `pointer` is filled by `input`; its message goes to `error` (a <p>).
   * Changing the input takes its error away: the message was about the old
   * value, and a stale one reads as if the fix did not work.
   */
  bind(pointer, input, error) {
    const entry = { input, error };
    this.fields.set(pointer, entry);
    if (!input.dataset.clearsError) {
      input.dataset.clearsError = '1';
      const forget = () => this.forget(input);
      input.addEventListener('input', forget);
      input.addEventListener('change', forget);
    }
  }

  /** Hides the errors shown for `input`, and the summary once nothing is left. */
  forget(input) {
    for (const entry of this.fields.values()) if (entry.input === input) this.hide(entry);
  }

  hide({ input, error }) {
    input.removeAttribute('aria-invalid');
    error.hidden = true;
    error.textContent = '';
    const described = (input.getAttribute('aria-describedby') || '').split(' ').filter((id) => id && id !== error.id);
    if (described.length) input.setAttribute('aria-describedby', described.join(' '));
    else input.removeAttribute('aria-describedby');
  }

  unbind(prefix) {
    for (const key of [...this.fields.keys()]) if (key === prefix || key.startsWith(`${prefix}/`)) this.fields.delete(key);
  }

  clear() {
    for (const entry of this.fields.values()) this.hide(entry);
    this.summary.hidden = true;
    this.summary.replaceChildren();
  }

  /** The registered pointer that best covers `field`: itself or its closest parent. */
  target(field) {
    let pointer = field || '';
    for (;;) {
      if (this.fields.has(pointer)) return this.fields.get(pointer);
      const cut = pointer.lastIndexOf('/');
      if (cut <= 0) return null;
      pointer = pointer.slice(0, cut);
    }
  }

  /**
   * Shows an ApiError: each detail by its field, the rest in the summary.
   * `reword(field, message)` may put a message in the form's words.
   */
  show(error, reword = (_, m) => m) {
    this.clear();
    const raw = error.details && error.details.length
      ? error.details
      : [{ field: error.field, message: error.field ? error.message.replace(`${error.field}: `, '') : error.message }];
    const details = raw.map((d) => ({ field: d.field, message: reword(d.field, d.message) }));
    const loose = [];
    let first = null;
    for (const d of details) {
      const target = this.target(d.field);
      if (!target) {
        loose.push(d.field ? `${d.field}: ${d.message}` : d.message);
        continue;
      }
      const already = target.error.textContent;
      target.error.textContent = already ? `${already}; ${d.message}` : d.message;
      target.error.hidden = false;
      target.input.setAttribute('aria-invalid', 'true');
      const described = (target.input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
      if (!described.includes(target.error.id)) described.push(target.error.id);
      target.input.setAttribute('aria-describedby', described.join(' '));
      first = first || target.input;
    }
    if (loose.length) {
      replace(this.summary,
        h('strong', null, first ? 'Also:' : 'The server refused this:'),
        h('ul', null, loose.map((m) => h('li', null, m))));
      this.summary.hidden = false;
    }
    if (first && typeof first.focus === 'function') first.focus();
    else if (loose.length) this.summary.scrollIntoView({ block: 'nearest' });
  }
}
