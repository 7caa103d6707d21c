// The console's shell: who is signed in, the top bar, and the screens by
// the URL's fragment (#/p/<project>/webhooks). Each screen is a module in
// pages/ exporting `render(ctx)`.

import { h, replace, titled } from './dom.js';
import { ApiError, del, get, whenSignedOut } from './api.js';
import * as signin from './pages/signin.js';
import * as projects from './pages/projects.js';
import * as webhooks from './pages/webhooks.js';
import * as webhookForm from './pages/webhook_form.js';
import * as webhookDetail from './pages/webhook_detail.js';
import * as deliveries from './pages/deliveries.js';
import * as catalog from './pages/catalog.js';
import * as events from './pages/events.js';
import * as settings from './pages/project_settings.js';
import * as sources from './pages/sources.js';

const ROUTES = [
  [/^\/signin$/, signin.render, null],
  [/^\/projects$/, projects.render, null],
  [/^\/p\/([^/]+)\/webhooks$/, webhooks.render, 'webhooks'],
  [/^\/p\/([^/]+)\/webhooks\/new$/, webhookForm.render, 'webhooks'],
  [/^\/p\/([^/]+)\/webhooks\/([^/]+)\/edit$/, webhookForm.render, 'webhooks'],
  [/^\/p\/([^/]+)\/webhooks\/([^/]+)$/, webhookDetail.render, 'webhooks'],
  [/^\/p\/([^/]+)\/deliveries$/, deliveries.renderList, 'deliveries'],
  [/^\/p\/([^/]+)\/deliveries\/([^/]+)$/, deliveries.renderOne, 'deliveries'],
  [/^\/p\/([^/]+)\/events$/, events.renderList, 'events'],
  [/^\/p\/([^/]+)\/events\/([^/]+)$/, events.renderOne, 'events'],
  [/^\/p\/([^/]+)\/catalog(?:\/([^/]+))?$/, catalog.render, 'catalog'],
  [/^\/p\/([^/]+)\/settings$/, settings.renderSettings, 'settings'],
  [/^\/p\/([^/]+)\/tokens$/, settings.renderTokens, 'settings'],
  [/^\/p\/([^/]+)\/sources$/, sources.render, 'settings'],
  [/^\/p\/([^/]+)\/audit$/, settings.renderAudit, 'settings'],
];

const session = {
  who: null,
  projects: null,
  /** After sign-in, the screen that was asked for. */
  wanted: null,
};

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

/** The first screen for this session. */
function home() {
  if (session.who && session.who.access === 'project') return `#/p/${encodeURIComponent(session.who.project_id)}/webhooks`;
  return '#/projects';
}

export async function projectList(refresh = false) {
  if (!session.projects || refresh) session.projects = (await get('/v1/projects')).data;
  return session.projects;
}

function renderNav(project, section) {
  const nav = document.getElementById('nav');
  if (!session.who) return replace(nav);
  if (!project) {
    return replace(nav, h('div', { class: 'nav-links' }, h('a', { href: '#/projects', 'aria-current': section === null ? 'page' : null }, 'Projects')));
  }
  const enc = encodeURIComponent(project);
  const link = (name, text) => h('a', { href: `#/p/${enc}/${name}`, 'aria-current': section === name ? 'page' : null }, text);
  const select = h('select', {
    id: 'project-switch',
    onchange: (e) => go(`#/p/${encodeURIComponent(e.target.value)}/${section || 'webhooks'}`),
  }, h('option', { value: project, selected: true }, project));
  projectList().then((list) => {
    // A project not in the list (mistyped link, deleted) is named as such,
    // never shown as whichever project the select would fall back to.
    const known = list.some((p) => p.id === project);
    replace(select, known ? null : h('option', { value: project, selected: true }, `${project} (unknown)`),
      list.map((p) => h('option', { value: p.id, selected: p.id === project }, `${p.name} (${p.id})`)));
    select.value = project;
  }).catch(() => {});
  replace(nav,
    h('div', { class: 'project-switch' }, h('label', { for: 'project-switch', class: 'sr-label' }, 'Project'), select),
    h('div', { class: 'nav-links' },
      link('webhooks', 'Webhooks'), link('deliveries', 'Delivery log'), link('events', 'Events'), link('catalog', 'Event catalog'), link('settings', 'Settings'),
      session.who.access === 'admin' ? h('a', { href: '#/projects' }, 'All projects') : null));
  return nav;
}

function renderWho() {
  const who = document.getElementById('who');
  if (!session.who) return replace(who);
  const text = session.who.access === 'admin'
    ? 'Admin'
    : `Project ${session.who.project_id} · ${session.who.kind}`;
  return replace(who, h('span', { class: 'who-text', title: `Signed in with ${session.who.actor}` }, text),
    h('button', { type: 'button', class: 'small', title: `${text}: signed in with ${session.who.actor}`, onclick: signOut }, 'Sign out'));
}

async function signOut() {
  try {
    await del('/console/session');
  } catch {
    // The cookie is gone either way once the browser has the answer.
  }
  session.who = null;
  session.projects = null;
  go('#/signin');
}

/** Called by the sign-in page with the new session. */
export function signedIn(who) {
  session.who = who;
  session.projects = null;
  const target = session.wanted && session.wanted !== '#/signin' ? session.wanted : home();
  session.wanted = null;
  go(target);
}

async function route() {
  const hash = location.hash || '';
  if (!hash.startsWith('#/')) {
    location.replace(session.who ? home() : '#/signin');
    return;
  }
  const [path, search] = hash.slice(1).split('?');
  if (!session.who && path !== '/signin') {
    session.wanted = hash;
    location.replace('#/signin');
    return;
  }
  if (session.who && path === '/signin') {
    location.replace(home());
    return;
  }
  const match = ROUTES.map(([re, render, section]) => [path.match(re), render, section]).find(([m]) => m);
  const main = document.getElementById('main');
  document.getElementById('toast').classList.remove('show');
  if (!match) {
    renderNav(null, undefined);
    replace(main, h('h1', null, 'Not found'), h('p', null, 'No such screen. ', h('a', { href: home() }, 'Go to the start.')));
    titled(main, 'Not found');
    return;
  }
  const [m, render, section] = match;
  const params = m.slice(1).map((s) => (s === undefined ? undefined : decodeURIComponent(s)));
  const project = section ? params[0] : null;
  renderNav(project, section);
  renderWho();
  const view = h('div', { class: 'view' }, h('p', { class: 'loading' }, 'Loading…'));
  replace(main, view);
  const ctx = {
    view, params, project, session, go, signedIn, projectList,
    query: new URLSearchParams(search || ''),
    /** Whether this screen is still the one shown. */
    live: () => main.contains(view),
    done: (title) => titled(view, title),
  };
  try {
    await render(ctx);
  } catch (e) {
    if (!ctx.live()) return;
    if (e instanceof ApiError && e.status === 401) return;
    const message = e instanceof ApiError ? e.message : String(e);
    replace(view, h('h1', null, e.status === 404 ? 'Not found' : 'Something went wrong'),
      h('div', { class: 'banner bad', role: 'alert' }, h('p', null, message)),
      h('p', null, h('a', { href: home() }, 'Back to the start')));
    titled(view, 'Error');
  }
}

async function start() {
  whenSignedOut(() => {
    session.who = null;
    renderWho();
    if (!location.hash.startsWith('#/signin')) {
      session.wanted = location.hash;
      location.replace('#/signin');
    }
  });
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  try {
    session.who = await get('/console/session');
  } catch {
    session.who = null;
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
