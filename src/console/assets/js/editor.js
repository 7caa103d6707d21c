// A code editor for JSON templates: a plain <textarea> (so typing, undo,
// selection, screen readers and form filling work as everywhere) over a
// highlighted copy of its text. Tab still moves focus (no keyboard trap);
// Enter keeps the line's indentation; "Format" pretty-prints valid JSON.

import { h } from './dom.js';
import { highlight } from './json.js';

/** Makes `textarea` a highlighted editor; returns the element to place. */
export function codeEditor(textarea) {
  textarea.classList.add('code-input');
  textarea.setAttribute('spellcheck', 'false');
  textarea.setAttribute('autocapitalize', 'off');
  const shadow = h('pre', { class: 'code-shadow', 'aria-hidden': 'true' });
  const paint = () => {
    // A trailing newline needs a character after it to take its line.
    shadow.replaceChildren(highlight(textarea.value), document.createTextNode('\n '));
    shadow.scrollTop = textarea.scrollTop;
    shadow.scrollLeft = textarea.scrollLeft;
  };
  textarea.addEventListener('input', paint);
  textarea.addEventListener('scroll', () => {
    shadow.scrollTop = textarea.scrollTop;
    shadow.scrollLeft = textarea.scrollLeft;
  });
  textarea.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
    const { selectionStart: start, value } = textarea;
    const line = value.slice(value.lastIndexOf('\n', start - 1) + 1, start);
    const indent = line.match(/^\s*/)[0] + (/[{[]\s*$/.test(line) ? '  ' : '');
    e.preventDefault();
    textarea.setRangeText(`\n${indent}`, start, textarea.selectionEnd, 'end');
    textarea.dispatchEvent(new Event('input', { bubbles: true }));
  });
  const format = h('button', {
    type: 'button', class: 'small',
    onclick: () => {
      try {
        textarea.value = JSON.stringify(JSON.parse(textarea.value), null, 2);
        textarea.dispatchEvent(new Event('input', { bubbles: true }));
      } catch {
        // Not JSON yet: the preview already says where.
      }
    },
  }, 'Format JSON');
  // The value may be set by code (a starter template): paint after it too.
  const observer = { paint };
  paint();
  const wrap = h('div', { class: 'code-editor' }, shadow);
  return { element: h('div', null, h('div', { class: 'viewer-bar' }, format), wrap), wrap, paint: observer.paint };
}
