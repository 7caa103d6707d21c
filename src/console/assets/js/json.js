// A small JSON tokenizer for highlighting: it never fails (text that is not
// JSON still comes back whole, as plain pieces), and it only labels pieces,
// so highlighted text is exactly the text given.

const PATTERN = /("(?:[^"\\\n]|\\.)*"?)(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],:])|(\s+)|(\{\{[^}]*\}\}?)|([^"\s{}[\],:]+|.)/gs;

/** The pieces of `text`: [{kind, text}], kind one of key, string, number, literal, punct, space, template, plain. */
export function tokens(text) {
  const out = [];
  PATTERN.lastIndex = 0;
  for (const m of text.matchAll(PATTERN)) {
    if (m[1] !== undefined) {
      out.push({ kind: m[2] ? 'key' : 'string', text: m[1] });
      if (m[2]) out.push({ kind: 'punct', text: m[2] });
    } else if (m[3] !== undefined) out.push({ kind: 'number', text: m[3] });
    else if (m[4] !== undefined) out.push({ kind: 'literal', text: m[4] });
    else if (m[5] !== undefined) out.push({ kind: 'punct', text: m[5] });
    else if (m[6] !== undefined) out.push({ kind: 'space', text: m[6] });
    else if (m[7] !== undefined) out.push({ kind: 'template', text: m[7] });
    else out.push({ kind: 'plain', text: m[8] });
  }
  return out;
}

/**
 * The text as highlighted nodes: a span per piece (class j-<kind>), the
 * placeholders of a template ({{ title }}) inside strings marked too.
 */
export function highlight(text) {
  const fragment = document.createDocumentFragment();
  for (const t of tokens(text)) {
    if (t.kind === 'space' || t.kind === 'plain') {
      fragment.appendChild(document.createTextNode(t.text));
      continue;
    }
    const span = document.createElement('span');
    span.className = `j-${t.kind}`;
    if (t.kind === 'string' && t.text.includes('{{')) {
      for (const part of t.text.split(/(\{\{[^}]*\}\})/)) {
        if (!part) continue;
        if (part.startsWith('{{')) {
          const mark = document.createElement('span');
          mark.className = 'j-template';
          mark.textContent = part;
          span.appendChild(mark);
        } else span.appendChild(document.createTextNode(part));
      }
    } else span.textContent = t.text;
    fragment.appendChild(span);
  }
  return fragment;
}
