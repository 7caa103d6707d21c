// The project's sources, a tab of its settings: the URLs MLflow posts its
// own webhooks to. Create one (its URL is shown to paste into MLflow; the
// secret is never shown again), see each one's refused requests, change its
// secret (the old one verifies for a grace period), delete.

import { h, field, replace, table, empty, timeAgo, toast, copy, when } from '../dom.js';
import { del, get, p, patch, post } from '../api.js';
import { FormErrors } from '../forms.js';
import { payloadView } from '../viewer.js';
import { head } from './project_settings.js';

export async function render(ctx) {
  const project = ctx.project;
  const enc = encodeURIComponent(project);
  const writer = ctx.session.who.kind !== 'read';
  const list = await get(p(project, 'sources'));
  const headings = ['Name', 'Kind', 'Signed', 'Created', ''];
  const rows = list.data.map((s) => h('tr', { 'data-source': s.id },
    h('td', null, s.name, h('div', { class: 'mono muted' }, s.id)),
    h('td', null, s.kind),
    h('td', null, s.secret_set ? h('span', { class: 'badge ok' }, 'signed') : h('span', { class: 'badge bad' }, 'unsigned')),
    h('td', null, timeAgo(s.created_at)),
    h('td', null, logButton(ctx, project, s),
      writer && s.secret_set ? changeSecretButton(ctx, project, s) : null,
      writer ? deleteButton(ctx, project, s) : null)));
  const listPart = rows.length ? table('Sources', headings, rows)
    : empty('No sources', 'A source is the URL your MLflow tracking server posts its webhooks to; mlhook checks, stores and routes what arrives. Create one below.');
  replace(ctx.view, head(enc, 'sources', 'Sources', 'Where ML platforms send their own webhooks to mlhook. Secrets are write-only: they are never shown after creation.'),
    h('section', { class: 'panel', 'aria-label': 'Source list' }, listPart),
    h('div', { 'aria-live': 'polite', 'data-testid': 'source-log' }),
    writer ? createSource(ctx, project) : null);
  ctx.done('Sources');
}

/** Shows the source's refused requests, newest first, under the list. */
function logButton(ctx, project, source) {
  return h('button', {
    type: 'button', class: 'small',
    onclick: async () => {
      const log = await get(p(project, 'sources', source.id, 'log'));
      const target = ctx.view.querySelector('[data-testid="source-log"]');
      const headings = ['When', 'Status', 'Code', 'Event', 'Reason', 'Body'];
      const rows = log.data.map((r) => h('tr', null,
        h('td', null, timeAgo(r.at)), h('td', null, String(r.status)), h('td', { class: 'mono' }, r.code),
        h('td', { class: 'mono' }, r.event_type || '—'), h('td', null, r.reason),
        h('td', null, r.body
          ? h('details', { class: 'changes' }, h('summary', null, 'As sent'), payloadView(r.body, 'Body as sent', 'short'))
          : h('span', { class: 'muted' }, '—'))));
      replace(target, h('section', { class: 'panel', 'aria-labelledby': 'sec-source-log' },
        h('h2', { id: 'sec-source-log' }, `Refused requests of ${source.name}`),
        rows.length ? table('Refused requests', headings, rows) : h('p', { class: 'muted' }, 'None: every request was accepted.')));
    },
  }, 'Refused requests', h('span', { class: 'sr-label' }, ` of ${source.name}`));
}

/** A form under the list to give the source a new secret. */
function changeSecretButton(ctx, project, source) {
  return h('button', {
    type: 'button', class: 'small',
    onclick: () => {
      const target = ctx.view.querySelector('[data-testid="source-log"]');
      const summary = h('div');
      const errors = new FormErrors(summary);
      const secret = field('New secret', h('input', { type: 'password', name: 'new_secret', autocomplete: 'new-password' }),
        'Set the same secret on MLflow\'s webhook. Write-only: never shown again.');
      const grace = field('The old secret still verifies for', h('select', { name: 'secret_grace_period' },
        [['10m', '10 minutes'], ['1h', '1 hour'], ['24h', '1 day'], ['0s', 'No time: it stops at once']]
          .map(([value, text]) => h('option', { value }, text))),
        'MLflow keeps its webhook settings for a minute: requests it signs with the old secret meanwhile are accepted.');
      errors.bind('/secret', secret.input, secret.error);
      errors.bind('/secret_grace_period', grace.input, grace.error);
      const form = h('form', {
        novalidate: true,
        onsubmit: async (e) => {
          e.preventDefault();
          errors.clear();
          try {
            const changed = await patch(p(project, 'sources', source.id), {
              secret: secret.input.value, secret_grace_period: grace.input.value,
            });
            secret.input.value = '';
            // Shown after the list is drawn again: a new screen clears the toast.
            ctx.go(location.hash);
            toast(changed.previous_secret_expires_at
              ? `Secret changed; the old one verifies until ${when(changed.previous_secret_expires_at)}`
              : 'Secret changed');
          } catch (err) {
            errors.show(err);
          }
        },
      }, summary, h('div', { class: 'form-row' }, secret.wrap, grace.wrap),
      h('button', { type: 'submit', class: 'primary' }, 'Change secret'));
      replace(target, h('section', { class: 'panel', 'aria-labelledby': 'sec-source-secret' },
        h('h2', { id: 'sec-source-secret' }, `New secret for ${source.name}`), form));
      secret.input.focus();
    },
  }, 'Change secret', h('span', { class: 'sr-label' }, ` of ${source.name}`));
}

function deleteButton(ctx, project, source) {
  return h('button', {
    type: 'button', class: 'small danger',
    onclick: async () => {
      if (!window.confirm(`Delete the source ${source.name}? Its URL answers 404 from then on.`)) return;
      await del(p(project, 'sources', source.id));
      toast('Source deleted');
      ctx.go(location.hash);
    },
  }, 'Delete', h('span', { class: 'sr-label' }, ` ${source.name}`));
}

function createSource(ctx, project) {
  const summary = h('div');
  const errors = new FormErrors(summary);
  const name = field('Name', h('input', { type: 'text', name: 'name', placeholder: 'mlflow prod', autocomplete: 'off' }));
  const secret = field('Secret', h('input', { type: 'password', name: 'secret', autocomplete: 'new-password' }),
    'The secret you give MLflow\'s webhook (16 bytes or more). Write-only: never shown again.');
  const unsigned = h('input', { type: 'checkbox', name: 'unsigned' });
  const workspace = field('Workspace name', h('input', { type: 'text', name: 'workspace_name', autocomplete: 'off' }),
    'The Comet workspaceName of events MLflow sends without a workspace. Empty: the source\'s name.');
  for (const [pointer, f] of [['/name', name], ['/secret', secret], ['/workspace_name', workspace]]) errors.bind(pointer, f.input, f.error);
  const shown = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      errors.clear();
      const body = { name: name.input.value.trim() };
      if (unsigned.checked) body.unsigned = true;
      else body.secret = secret.input.value;
      if (workspace.input.value.trim()) body.workspace_name = workspace.input.value.trim();
      try {
        const made = await post(p(project, 'sources'), body);
        secret.input.value = '';
        replace(shown, h('div', { class: 'banner ok', role: 'status' },
          h('div', null, h('p', null, h('strong', null, `Source ${made.name} created.`), ' Give MLflow\'s webhook this URL and the same secret.'),
            h('code', { 'data-testid': 'source-url' }, made.url)),
          h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: () => copy(made.url, 'URL copied') }, 'Copy URL'),
            h('button', { type: 'button', onclick: () => ctx.go(location.hash) }, 'Done'))));
      } catch (err) {
        errors.show(err);
      }
    },
  }, summary, h('div', { class: 'form-row' }, name.wrap, secret.wrap, workspace.wrap),
  h('div', { class: 'field' }, h('label', { class: 'check' }, unsigned, h('span', null, 'Unsigned',
    h('small', { class: 'hint' }, 'Accept requests without a signature: the URL alone authenticates them.')))),
  h('button', { type: 'submit', class: 'primary' }, 'Create source'));
  return h('section', { class: 'panel', 'aria-labelledby': 'sec-new-source' }, h('h2', { id: 'sec-new-source' }, 'New MLflow source'), shown, form);
}
