// A project's own pages, under one "Settings" section with tabs: the
// project (rename, link base URL, delete with confirmation), its tokens
// (create, list, revoke), its sources (pages/sources.js) and its audit log.

import { h, field, replace, table, empty, when, timeAgo, toast, copy } from '../dom.js';
import { del, get, p, patch, post, query } from '../api.js';
import { FormErrors } from '../forms.js';
import { payloadView } from '../viewer.js';

function tabs(enc, current) {
  const tab = (name, text) => h('a', { href: `#/p/${enc}/${name}`, 'aria-current': name === current ? 'page' : null }, text);
  return h('nav', { class: 'tabs', 'aria-label': 'Project settings' },
    tab('settings', 'Project'), tab('tokens', 'Tokens'), tab('sources', 'Sources'), tab('audit', 'Audit log'));
}

export function head(enc, current, title, text) {
  return [h('div', { class: 'page-head' }, h('div', null, h('h1', null, title), h('p', null, text))), tabs(enc, current)];
}

export async function renderSettings(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const proj = await get(`/v1/projects/${enc}`);
  const writer = ctx.session.who.kind !== 'read';
  const admin = ctx.session.who.access === 'admin';

  const summary = h('div');
  const errors = new FormErrors(summary);
  const name = field('Name', h('input', { type: 'text', name: 'name', value: proj.name, required: true, autocomplete: 'off', disabled: !writer }));
  const base = field('Link base URL', h('input', { type: 'url', name: 'link_base_url', value: proj.link_base_url || '', placeholder: 'https://app.valohai.com', disabled: !writer }),
    'Completes relative links in payloads (Valohai\'s url) for the chat formats. Empty: none.');
  errors.bind('/name', name.input, name.error);
  errors.bind('/link_base_url', base.input, base.error);
  const saved = h('p', { role: 'status', class: 'muted' });
  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      errors.clear();
      try {
        const after = await patch(`/v1/projects/${enc}`, {
          name: name.input.value.trim(), link_base_url: base.input.value.trim() || null,
        });
        await ctx.projectList(true);
        saved.textContent = `Saved at ${when(new Date().toISOString())}.`;
        const option = document.querySelector(`#project-switch option[value="${CSS.escape(project)}"]`);
        if (option) option.textContent = `${after.name} (${after.id})`;
      } catch (err) {
        errors.show(err);
      }
    },
  }, summary, h('div', { class: 'form-row' }, name.wrap, base.wrap),
  writer ? h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save')) : null, saved);

  replace(ctx.view, head(enc, 'settings', 'Project settings', `The project ${project}: its name, tokens and history.`),
    h('section', { class: 'panel', 'aria-labelledby': 'sec-project' }, h('h2', { id: 'sec-project' }, 'Project'),
      h('dl', { class: 'summary' }, h('dt', null, 'Id'), h('dd', { class: 'mono' }, proj.id),
        h('dt', null, 'Created'), h('dd', null, when(proj.created_at))),
      h('p'), form),
    admin ? deletePanel(ctx, proj) : null);
  ctx.done('Project settings');
}

/** Deleting asks for the project's id to be typed: it takes every webhook, event and delivery with it. */
function deletePanel(ctx, proj) {
  const confirmInput = h('input', { type: 'text', name: 'confirm', autocomplete: 'off', spellcheck: 'false' });
  const confirmField = field(`Type ${proj.id} to confirm`, confirmInput);
  const button = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Delete this project');
  confirmInput.addEventListener('input', () => { button.disabled = confirmInput.value.trim() !== proj.id; });
  const status = h('p', { role: 'status' });
  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      if (confirmInput.value.trim() !== proj.id) return;
      try {
        await del(`/v1/projects/${encodeURIComponent(proj.id)}`);
        await ctx.projectList(true);
        toast(`Project ${proj.id} deleted`);
        ctx.go('#/projects');
      } catch (err) {
        status.textContent = err.message;
      }
    },
  }, h('div', { class: 'inline-form' }, confirmField.wrap, button), status);
  return h('section', { class: 'panel danger-zone', 'aria-labelledby': 'sec-delete' }, h('h2', { id: 'sec-delete' }, 'Delete the project'),
    h('p', null, 'Deletes the project with its webhooks, events, deliveries and tokens. This cannot be undone; the audit log stays readable to the admin.'),
    form);
}

export async function renderTokens(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const writer = ctx.session.who.kind !== 'read';
  const list = await get(p(project, 'tokens'));
  const headings = ['Name', 'Prefix', 'Kind', 'Created', 'State', ''];
  const rows = list.data.map((t) => h('tr', { 'data-token': t.id },
    h('td', null, t.name || h('span', { class: 'muted' }, '(no name)')),
    h('td', { class: 'mono' }, `${t.prefix}…`),
    h('td', null, h('span', { class: `badge ${t.kind === 'read' ? 'idle' : 'info'}` }, t.kind)),
    h('td', null, timeAgo(t.created_at)),
    h('td', null, t.revoked_at ? h('span', { class: 'badge bad', title: when(t.revoked_at) }, 'revoked') : h('span', { class: 'badge ok' }, 'active')),
    h('td', null, writer && !t.revoked_at ? h('button', {
      type: 'button', class: 'small danger',
      onclick: async () => {
        if (!window.confirm(`Revoke the token ${t.name || t.prefix}? Anything using it stops working at once.`)) return;
        await del(p(project, 'tokens', t.id));
        toast('Token revoked');
        ctx.go(location.hash);
      },
    }, 'Revoke', h('span', { class: 'sr-label' }, ` ${t.name || t.prefix}`)) : null)));
  const listPart = rows.length ? table('Tokens', headings, rows)
    : empty('No project tokens', 'A token lets a script or a platform send events and manage webhooks of this project. Create one below.');
  replace(ctx.view, head(enc, 'tokens', 'Tokens', 'Bearer tokens of this project. A token is shown once, when it is created; the list shows its first characters only.'),
    h('section', { class: 'panel', 'aria-label': 'Token list' }, listPart),
    writer ? createToken(ctx, project) : null);
  ctx.done('Tokens');
}

function createToken(ctx, project) {
  const summary = h('div');
  const errors = new FormErrors(summary);
  const name = field('Name', h('input', { type: 'text', name: 'name', placeholder: 'ci-pipeline', autocomplete: 'off' }), 'What uses it: it helps to revoke the right one later.');
  const kind = field('Kind', h('select', { name: 'kind' },
    h('option', { value: 'write' }, 'write: send events, manage webhooks'), h('option', { value: 'read' }, 'read: see everything, change nothing')));
  errors.bind('/name', name.input, name.error);
  errors.bind('/kind', kind.input, kind.error);
  const shown = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      errors.clear();
      const body = { kind: kind.input.value };
      if (name.input.value.trim()) body.name = name.input.value.trim();
      try {
        const made = await post(p(project, 'tokens'), body);
        name.input.value = '';
        // Shown here once; the page forgets it when you leave.
        replace(shown, h('div', { class: 'banner ok', role: 'status' },
          h('div', null, h('p', null, h('strong', null, `Token ${made.name || made.prefix} created.`), ' Copy it now: it is not shown again.'),
            h('code', { class: 'secret-value', 'data-testid': 'new-token' }, made.token)),
          h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: () => copy(made.token, 'Token copied') }, 'Copy token'),
            h('button', { type: 'button', onclick: () => ctx.go(location.hash) }, 'Done'))));
      } catch (err) {
        errors.show(err);
      }
    },
  }, summary, h('div', { class: 'form-row' }, name.wrap, kind.wrap), h('button', { type: 'submit', class: 'primary' }, 'Create token'));
  return h('section', { class: 'panel', 'aria-labelledby': 'sec-new-token' }, h('h2', { id: 'sec-new-token' }, 'New token'), shown, form);
}

export async function renderAudit(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const headings = ['When', 'Who', 'What', 'Target', 'Changes'];
  const tbody = h('tbody');
  const more = h('div', { class: 'load-more' });
  const holder = h('div');
  let cursor = null;
  const load = async () => {
    const page = await get(p(project, 'audit') + query({ cursor, limit: 50 }));
    if (!ctx.live()) return;
    if (!cursor && !page.data.length) {
      replace(holder, empty('Nothing recorded yet', 'Changes to the project, its tokens and webhooks are listed here, newest first.'));
      return;
    }
    for (const a of page.data) {
      const changed = a.changes && Object.keys(a.changes).length;
      const row = h('tr', { 'data-audit': a.id },
        h('td', null, timeAgo(a.at)),
        h('td', { class: 'mono' }, a.actor),
        h('td', { class: 'mono' }, a.action),
        h('td', { class: 'mono' }, a.target_id),
        h('td', null, changed
          ? h('details', { class: 'changes' }, h('summary', null, `${Object.keys(a.changes).length} ${Object.keys(a.changes).length === 1 ? 'field' : 'fields'}`),
            payloadView(a.changes, 'Changes', 'short'))
          : h('span', { class: 'muted' }, '—')));
      [...row.children].forEach((td, i) => td.setAttribute('data-label', headings[i]));
      tbody.appendChild(row);
    }
    cursor = page.next_cursor;
    replace(more, cursor ? h('button', { type: 'button', onclick: () => load().catch((e) => replace(more, h('span', { class: 'field-error' }, e.message))) }, 'Load more')
      : h('span', { class: 'muted' }, 'That is the whole history.'));
  };
  replace(holder, h('div', { class: 'table-wrap', role: 'region', 'aria-label': 'Audit log', tabindex: '0' },
    h('table', { class: 'list' }, h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))), tbody)), more);
  replace(ctx.view, head(enc, 'audit', 'Audit log', 'Who changed what in this project, newest first. Secrets never appear: a changed secret shows as changed, not its value.'),
    holder);
  await load();
  ctx.done('Audit log');
}
