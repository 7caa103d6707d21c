// Sign in with a token (admin or project). The token goes to the server
// once, in a POST body; the server keeps it in an HttpOnly cookie, so this
// page never stores it and no URL ever holds it.

import { h, field, replace } from '../dom.js';
import { ApiError, post } from '../api.js';

export async function render(ctx) {
  const token = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, spellcheck: 'false' });
  const tokenField = field('Token', token,
    'An admin token (mlhook-data/admin-token) or a project token (mlh_…). It is kept in a cookie this page cannot read, until you sign out or close the browser.');
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      tokenField.error.hidden = true;
      token.removeAttribute('aria-invalid');
      submit.disabled = true;
      try {
        const who = await post('/console/session', { token: token.value });
        token.value = '';
        ctx.signedIn(who);
      } catch (err) {
        const message = err instanceof ApiError && err.status === 401
          ? 'This token is not valid (unknown or revoked).'
          : err.message;
        tokenField.error.textContent = message;
        tokenField.error.hidden = false;
        token.setAttribute('aria-invalid', 'true');
        token.setAttribute('aria-describedby', `${token.id}-hint ${tokenField.error.id}`);
        token.focus();
      } finally {
        submit.disabled = false;
      }
    },
  }, tokenField.wrap, submit);
  replace(ctx.view, h('div', { class: 'signin' },
    h('div', { class: 'panel' },
      h('h1', null, h('img', { src: '/console/assets/icon.svg', alt: '', width: 28, height: 28 }), 'Sign in to mlhook'),
      h('p', { class: 'muted' }, 'Configure, test and watch your webhooks.'),
      form)));
  ctx.done('Sign in');
  token.focus();
}
