// Projects: the list, and (admin) a form to create one.

import { h, field, replace, table, empty, when } from '../dom.js';
import { post } from '../api.js';
import { FormErrors } from '../forms.js';

export async function render(ctx) {
  const list = await ctx.projectList(true);
  const admin = ctx.session.who.access === 'admin';
  const rows = list.map((p) => h('tr', null,
    h('td', null, h('a', { class: 'cell-main', href: `#/p/${encodeURIComponent(p.id)}/webhooks` }, p.name),
      h('span', { class: 'cell-sub mono' }, p.id)),
    h('td', null, p.link_base_url || h('span', { class: 'muted' }, '—')),
    h('td', null, when(p.created_at)),
    h('td', null, h('a', { href: `#/p/${encodeURIComponent(p.id)}/deliveries` }, 'Delivery log'))));
  const listPart = list.length
    ? table('Projects', ['Project', 'Link base URL', 'Created', ''], rows)
    : empty('No projects yet', admin
      ? 'A project holds one team\'s webhooks and events. Create the first one with the form below.'
      : 'This token sees no project.');
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Projects'),
      h('p', null, 'Each project has its own webhooks, events, delivery log and tokens.'))),
    h('section', { class: 'panel', 'aria-label': 'Project list' }, listPart),
    admin ? createForm(ctx) : null);
  ctx.done('Projects');
}

function createForm(ctx) {
  const summary = h('div');
  const errors = new FormErrors(summary);
  const id = field('Id', h('input', { type: 'text', name: 'id', required: true, placeholder: 'fraud-team', autocomplete: 'off' }),
    'A lowercase slug (a-z, 0-9, -): it appears in URLs and cannot change.');
  const name = field('Name', h('input', { type: 'text', name: 'name', required: true, placeholder: 'Fraud team', autocomplete: 'off' }));
  const base = field('Link base URL (optional)', h('input', { type: 'url', name: 'link_base_url', placeholder: 'https://app.valohai.com' }),
    'Completes relative links in payloads (Valohai\'s url) for the chat formats.');
  errors.bind('/id', id.input, id.error);
  errors.bind('/name', name.input, name.error);
  errors.bind('/link_base_url', base.input, base.error);
  // The name follows the id until it is typed in.
  let nameTouched = false;
  name.input.addEventListener('input', () => { nameTouched = true; });
  id.input.addEventListener('input', () => {
    if (!nameTouched) name.input.value = id.input.value.replace(/-/g, ' ').replace(/^./, (c) => c.toUpperCase());
  });
  const form = h('form', {
    novalidate: true,
    onsubmit: async (e) => {
      e.preventDefault();
      errors.clear();
      const body = { id: id.input.value.trim(), name: name.input.value.trim() };
      if (base.input.value.trim()) body.link_base_url = base.input.value.trim();
      try {
        const created = await post('/v1/projects', body);
        await ctx.projectList(true);
        ctx.go(`#/p/${encodeURIComponent(created.id)}/webhooks`);
      } catch (err) {
        errors.show(err);
      }
    },
  }, summary, h('div', { class: 'form-row' }, id.wrap, name.wrap, base.wrap),
  h('button', { type: 'submit', class: 'primary' }, 'Create project'));
  return h('section', { class: 'panel', 'aria-labelledby': 'new-project' }, h('h2', { id: 'new-project' }, 'New project'), form);
}
