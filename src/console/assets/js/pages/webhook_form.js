// Create or edit a webhook: one form. The format decides which settings
// show; "Validate" sends the test payload to the configuration as typed and
// shows what was sent and what came back; save works either way, but warns
// when the configuration was not validated as it stands.

import { h, field, replace, uid, code, pretty, debounce, toast, empty } from '../dom.js';
import { ApiError, cached, get, p, patch, post } from '../api.js';
import { FormErrors } from '../forms.js';
import { outcomeView } from '../sending.js';
import { codeEditor } from '../editor.js';
import { highlight } from '../json.js';

export const FAMILY_TITLES = {
  monitoring: 'Monitoring runs (NannyML Cloud)',
  requests: 'Deployment and pipeline requests (UbiOps)',
  model_registry: 'Model registry (Comet)',
  executions: 'Executions, pipelines, deployments (Valohai)',
  mlflow: 'MLflow webhooks',
  test: 'Test events',
  operational: 'Delivery health (mlhook\'s own events)',
};

const OBJECT_TYPES = ['model', 'deployment', 'pipeline', 'experiment', 'project', 'prompt', 'budget_policy'];

const STARTER_TEMPLATE = `{
  "title": "{{ title }}",
  "summary": "{{ summary }}",
  "event": "{{ event.type }}",
  "object": "{{ object }}",
  "link": "{{ link }}",
  "at": "{{ event.time }}"
}`;

export async function render(ctx) {
  const [project, id] = ctx.params;
  const enc = encodeURIComponent(project);
  if (ctx.session.who.kind === 'read') {
    // Said before anything is typed, not at Create: the API would refuse it.
    const back = id ? `#/p/${enc}/webhooks/${encodeURIComponent(id)}` : `#/p/${enc}/webhooks`;
    replace(ctx.view, h('h1', null, id ? 'Edit webhook' : 'New webhook'),
      h('section', { class: 'panel' }, empty('This token can only read',
        'A read token sees the project\'s webhooks, deliveries and events but cannot create or change them. Sign in with a write token or the admin token to do that.',
        h('a', { class: 'button', href: back }, id ? 'Back to the webhook' : 'Back to the webhooks'))));
    ctx.done('Read only');
    return;
  }
  const [formats, catalog, existing] = await Promise.all([
    cached('/v1/formats'), cached('/v1/event-types'), id ? get(p(project, 'webhooks', id)) : null,
  ]);
  const editing = Boolean(existing);
  const w = existing || {
    name: '', description: '', url: '', format: 'json', events: [], scope: {}, headers: [],
    has_secret: false, include_result: false, enabled: true, rate_limit: null, mlflow_shape: 'native',
  };
  const formatInfo = Object.fromEntries(formats.data.map((f) => [f.format, f]));

  const summary = h('div');
  const errors = new FormErrors(summary);
  const bind = (pointer, f) => errors.bind(pointer, f.input, f.error);

  // Basics
  const name = field('Name', h('input', { type: 'text', name: 'name', value: w.name, autocomplete: 'off' }),
    'How the webhook appears in lists. Left empty: the URL\'s host.');
  const description = field('Description', h('textarea', { name: 'description', rows: 2, class: 'plain' }, w.description),
    'Optional: what it is for, who owns the receiver.');
  bind('/name', name);
  bind('/description', description);

  // Destination
  const format = field('Format', h('select', { name: 'format' },
    formats.data.map((f) => h('option', { value: f.format, selected: f.format === w.format }, f.title))));
  const formatNote = h('p', { class: 'muted', id: uid('format-note') });
  format.input.setAttribute('aria-describedby', formatNote.id);
  const url = field('URL', h('input', { type: 'url', name: 'url', value: w.format === 'github_dispatch' ? '' : w.url, placeholder: 'https://hooks.example.com/ml', autocomplete: 'off', spellcheck: 'false' }));
  const repo = field('GitHub repository', h('input', { type: 'text', name: 'github_repository', value: w.github ? w.github.repository : '', placeholder: 'owner/repo', autocomplete: 'off' }),
    'Workflows of this repository that listen to repository_dispatch are started.');
  const ghToken = secretControl('GitHub token', Boolean(w.github && w.github.has_token), false,
    'A token allowed to write the repository\'s contents (fine-grained: Contents read and write). Write-only: never shown again.');
  const apiUrl = field('GitHub API URL', h('input', { type: 'url', name: 'github_api_url', value: w.github ? w.github.api_url : '', placeholder: 'https://api.github.com' }),
    'Optional: GitHub Enterprise is https://HOST/api/v3.');
  const template = field('Template', h('textarea', {
    name: 'template', class: 'tall', spellcheck: 'false',
  }, w.template ? JSON.stringify(w.template, null, 2) : ''),
  'A JSON document whose strings may hold {{ title }}, {{ summary }}, {{ event.type }}, {{ payload.… }}, {{ object }}, {{ link }}, {{ fields }} (docs/destinations/template.md).');
  bind('/format', format);
  bind('/url', url);
  bind('/github', repo);
  bind('/github/repository', repo);
  errors.bind('/github/token', ghToken.input, ghToken.error);
  bind('/github/api_url', apiUrl);
  bind('/template', template);
  const githubGroup = h('div', null, repo.wrap, ghToken.wrap, apiUrl.wrap);
  // The template is edited as highlighted JSON; the textarea stays the input.
  const editor = codeEditor(template.input);
  template.wrap.insertBefore(editor.element, template.input);
  editor.wrap.appendChild(template.input);
  const templateColumn = h('div', null, template.wrap);

  // Body preview, live for templates.
  const previewType = h('select', { name: 'preview_event_type' });
  const previewTypeField = field('Preview for event type', previewType);
  const previewStatus = h('p', { class: 'muted', role: 'status' });
  const previewOut = code('', 'Body preview');
  const preview = h('div', { class: 'preview' }, h('h3', null, 'Body preview'), previewTypeField.wrap, previewStatus, previewOut);
  // Template editor and its live preview side by side; other formats: the preview alone.
  const destination = h('div', null, templateColumn, preview);

  // Events
  const star = h('input', { type: 'checkbox', value: '*', checked: w.events.includes('*') });
  const eventsError = h('p', { class: 'field-error', id: uid('events-error'), hidden: true });
  errors.bind('/events', star, eventsError);
  const boxes = [];
  const byFamily = new Map();
  for (const t of catalog.data) {
    if (!byFamily.has(t.family)) byFamily.set(t.family, []);
    byFamily.get(t.family).push(t);
  }
  // Each family folds; a long one starts folded unless one of its types is
  // chosen. Each has "All of them"; a search narrows every family at once.
  const familyParts = [];
  const families = [...byFamily.entries()].map(([family, types]) => {
    const title = FAMILY_TITLES[family] || family;
    const count = h('span', { class: 'muted' });
    const mine = types.map((t) => {
      const box = h('input', { type: 'checkbox', value: t.name, checked: w.events.includes(t.name), 'data-family': family });
      boxes.push(box);
      return box;
    });
    const all = h('input', { type: 'checkbox', 'data-all': family });
    const recount = () => {
      const n = mine.filter((b) => b.checked).length;
      count.textContent = n ? ` · ${n} of ${types.length} chosen` : ` · ${types.length} types`;
      // "All" speaks of the types shown (a search may hide some).
      const shown = mine.filter((b) => !b.closest('label')?.hidden);
      const chosen = shown.filter((b) => b.checked).length;
      all.checked = shown.length > 0 && chosen === shown.length;
      all.indeterminate = chosen > 0 && chosen < shown.length;
    };
    for (const b of mine) b.addEventListener('change', recount);
    all.addEventListener('change', () => {
      for (const b of mine) {
        if (b.disabled || b.closest('label').hidden) continue;
        b.checked = all.checked;
      }
      recount();
      refreshPreview();
    });
    recount();
    const rows = types.map((t, i) => h('label', { class: 'check', 'data-search': `${t.name} ${t.description}`.toLowerCase() }, mine[i],
      h('span', null, h('code', null, t.name), h('small', null, t.description))));
    const details = h('details', { class: 'family', open: types.length <= 8 || mine.some((b) => b.checked) },
      h('summary', null, h('strong', null, title), count),
      h('fieldset', null, h('legend', { class: 'sr-label' }, title),
        h('label', { class: 'check select-all' }, all, h('span', null, `Choose all: ${title}`)),
        rows));
    familyParts.push({ details, rows, all, mine, recount, wasOpen: details.open });
    return details;
  });
  const syncStar = () => {
    for (const b of boxes) b.disabled = star.checked && b.dataset.family !== 'operational';
    for (const f of familyParts) f.all.disabled = f.mine.every((b) => b.disabled);
  };
  star.addEventListener('change', syncStar);
  syncStar();
  // Patterns (`execution_*`) and types the catalog does not list have no box:
  // they are kept in a text field, so editing a webhook never drops them.
  const known = new Set(catalog.data.map((t) => t.name));
  const patterns = field('Patterns and other types',
    h('input', { type: 'text', name: 'patterns', autocomplete: 'off', spellcheck: false,
      value: w.events.filter((e) => e !== '*' && !known.has(e)).join(', '),
      placeholder: 'execution_*, mlflow.model_version_alias.*' }),
    'Comma-separated; * within a name stands for any run of characters.');
  const typedPatterns = () => patterns.input.value.split(',').map((e) => e.trim()).filter(Boolean);

  const search = h('input', { type: 'search', name: 'event_search', placeholder: 'MODEL_VERSION, drift, pipeline…', autocomplete: 'off', spellcheck: 'false' });
  const searchField = field('Find an event type', search, 'By name or description; "All" then chooses only the types shown.');
  const searchCount = h('p', { class: 'muted', role: 'status' });
  search.addEventListener('input', () => {
    const words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const f of familyParts) {
      let here = 0;
      for (const row of f.rows) {
        row.hidden = !words.every((word) => row.dataset.search.includes(word));
        if (!row.hidden) here += 1;
      }
      shown += here;
      f.recount();
      f.details.hidden = words.length > 0 && here === 0;
      f.details.open = words.length ? here > 0 : f.wasOpen;
    }
    searchCount.textContent = words.length ? `${shown} of ${boxes.length} event types match.` : '';
  });
  const selectedEvents = () => {
    const chosen = boxes.filter((b) => b.checked && !b.disabled).map((b) => b.value);
    return [...(star.checked ? ['*'] : []), ...chosen, ...typedPatterns()];
  };

  // Scope
  const objectType = field('Object type', h('select', { name: 'object_type' }, h('option', { value: '' }, 'Any'),
    OBJECT_TYPES.map((t) => h('option', { value: t, selected: w.scope.object_type === t }, t))));
  const objectName = field('Object name', h('input', { type: 'text', name: 'object_name', value: w.scope.object_name || '', placeholder: 'churn', autocomplete: 'off' }));
  const version = field('Version', h('input', { type: 'text', name: 'version', value: w.scope.version || '', placeholder: 'any', autocomplete: 'off' }));
  bind('/scope', objectType);
  bind('/scope/object_type', objectType);
  bind('/scope/object_name', objectName);
  bind('/scope/version', version);

  // Headers
  const headers = headerEditor(w.headers, errors);

  // Authentication and delivery
  const secret = secretControl('Secret', w.has_secret, true,
    'Optional. Sent verbatim as the Authorization header (the Comet document\'s secret). Write-only: never shown again.');
  errors.bind('/secret', secret.input, secret.error);
  const scheme = field('Signing scheme', h('select', { name: 'signing_scheme' },
    h('option', { value: 'hmac_sha256' }, 'HMAC-SHA256 (Standard Webhooks v1)'),
    h('option', { value: 'ed25519' }, 'Ed25519 (v1a; receivers hold a public key)')),
  'Every delivery is signed (webhook-signature). The key is shown on the webhook\'s page.');
  bind('/signing_scheme', scheme);
  const shape = field('MLflow changes', h('select', { name: 'mlflow_shape' },
    ...[['native', 'MLflow\'s own event (mlflow.*)'], ['comet', 'The Comet-shaped twin'], ['both', 'Both']]
      .map(([value, label]) => h('option', { value, selected: w.mlflow_shape === value }, label))),
  'When this webhook listens to both shapes of an MLflow change (e.g. *), the one it gets.');
  bind('/mlflow_shape', shape);
  const includeResult = h('input', { type: 'checkbox', name: 'include_result', checked: w.include_result });
  const includeError = h('p', { class: 'field-error', id: uid('ir-error'), hidden: true });
  errors.bind('/include_result', includeResult, includeError);
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: w.enabled });
  const enabledError = h('p', { class: 'field-error', id: uid('en-error'), hidden: true });
  errors.bind('/enabled', enabled, enabledError);
  const rl = w.rate_limit || {};
  const rateMode = field('Rate limit', h('select', { name: 'rate_mode' },
    h('option', { value: '' }, 'The format\'s default'),
    h('option', { value: 'per_second', selected: rl.per_second !== undefined }, 'Per second'),
    h('option', { value: 'per_minute', selected: rl.per_minute !== undefined }, 'Per minute')));
  const rateValue = field('Deliveries at most', h('input', { type: 'number', name: 'rate_value', min: 1, value: rl.per_second || rl.per_minute || '' }));
  const rateNote = h('p', { class: 'muted' });
  bind('/rate_limit', rateMode);
  bind('/rate_limit/per_second', rateValue);
  bind('/rate_limit/per_minute', rateValue);

  // The format decides what shows.
  const onFormat = () => {
    const f = formatInfo[format.input.value];
    const github = f.format === 'github_dispatch';
    url.wrap.hidden = github;
    githubGroup.hidden = !github;
    template.wrap.hidden = f.format !== 'template';
    templateColumn.hidden = f.format !== 'template';
    destination.className = f.format === 'template' ? 'split' : '';
    if (f.format === 'template' && !template.input.value.trim()) {
      template.input.value = STARTER_TEMPLATE;
      editor.paint();
    }
    replace(formatNote, f.description, ' Success: ', f.success, '.');
    const dflt = f.default_rate_limit;
    const dfltText = dflt ? (dflt.per_second ? `${dflt.per_second} per second` : `${dflt.per_minute} per minute`) : 'no limit';
    rateMode.input.options[0].textContent = `The format's default (${dfltText})`;
    url.input.placeholder = {
      slack: 'https://hooks.slack.com/services/…', discord: 'https://discord.com/api/webhooks/…',
      teams: 'https://….logic.azure.com/workflows/…',
    }[f.format] || 'https://hooks.example.com/ml';
  };
  const onRateMode = () => {
    rateValue.wrap.hidden = !rateMode.input.value;
    replace(rateNote, rateMode.input.value ? 'Deliveries above the limit wait their turn; none is dropped.' : '');
  };
  format.input.addEventListener('change', () => { onFormat(); refreshPreview(); });
  rateMode.input.addEventListener('change', onRateMode);
  onFormat();
  onRateMode();

  /** The request body as the API takes it; `forPatch` shapes it for PATCH. */
  const body = (forPatch) => {
    headers.commitPending();
    const f = format.input.value;
    const b = {};
    if (name.input.value.trim()) b.name = name.input.value.trim();
    b.description = description.input.value;
    b.format = f;
    if (f === 'github_dispatch') {
      b.github = { repository: repo.input.value.trim() };
      if (apiUrl.input.value.trim()) b.github.api_url = apiUrl.input.value.trim();
      const token = ghToken.value();
      if (typeof token === 'string') b.github.token = token;
    } else {
      b.url = url.input.value.trim();
    }
    if (f === 'template') b.template = templateValue(template.input.value);
    b.events = selectedEvents();
    const scope = {};
    if (objectType.input.value) scope.object_type = objectType.input.value;
    if (objectName.input.value.trim()) scope.object_name = objectName.input.value.trim();
    if (version.input.value.trim()) scope.version = version.input.value.trim();
    b.scope = scope;
    b.headers = headers.value();
    const s = secret.value();
    if (s !== undefined && (s !== null || forPatch)) b.secret = s;
    b.include_result = includeResult.checked;
    b.mlflow_shape = shape.input.value;
    b.enabled = enabled.checked;
    if (rateMode.input.value) {
      b.rate_limit = { [rateMode.input.value]: Number.parseInt(rateValue.input.value, 10) };
    } else if (forPatch) {
      b.rate_limit = null;
    }
    if (!editing) b.signing_scheme = scheme.input.value;
    return b;
  };

  // Preview
  const fillPreviewTypes = () => {
    const chosen = selectedEvents().filter((e) => e !== '*');
    const options = chosen.length ? chosen : catalog.data.filter((t) => t.family !== 'operational').map((t) => t.name);
    const keep = previewType.value;
    replace(previewType, options.map((n) => h('option', { value: n, selected: n === keep }, n)));
  };
  const renderPreview = debounce(async () => {
    const f = format.input.value;
    const req = {
      format: f, events: selectedEvents(), event_type: previewType.value || undefined,
      include_result: includeResult.checked,
    };
    if (!req.events.length) delete req.events;
    if (f === 'template') req.template = templateValue(template.input.value);
    if (f === 'github_dispatch' && repo.input.value.trim()) req.github_repository = repo.input.value.trim();
    if (name.input.value.trim()) req.name = name.input.value.trim();
    try {
      const out = await post('/v1/formats/preview', req);
      previewStatus.className = 'muted';
      previewStatus.textContent = `The body for the ${out.event_type} example (${out.content_type})${out.url ? `, sent to ${out.url}` : ''}:`;
      previewOut.replaceChildren(highlight(pretty(out.body)));
    } catch (e) {
      previewStatus.className = 'field-error';
      const detail = e.details && e.details.length ? e.details.map((d) => `${d.field}: ${d.message}`).join('; ') : e.message;
      previewStatus.textContent = `Does not render: ${detail}`;
      previewOut.textContent = '';
    }
  }, 350);
  /** The event types to preview at once; the body once typing pauses. */
  function refreshPreview() {
    fillPreviewTypes();
    renderPreview();
  }
  for (const el of [template.input, repo.input, name.input]) el.addEventListener('input', refreshPreview);
  for (const el of [previewType, includeResult, star, ...boxes]) el.addEventListener('change', refreshPreview);

  // Validate and save
  const results = h('div', { 'aria-live': 'polite' });
  const saveWarning = h('div', { class: 'banner warn', role: 'alert', hidden: true });
  let lastValidation = null;
  const signature = (b) => JSON.stringify(b);

  const validateButton = h('button', { type: 'button', onclick: () => validate() }, 'Validate');
  const saveButton = h('button', { type: 'submit', class: 'primary' }, editing ? 'Save changes' : 'Create webhook');
  const cancel = h('a', { class: 'button', href: editing ? `#/p/${enc}/webhooks/${encodeURIComponent(id)}` : `#/p/${enc}/webhooks` }, 'Cancel');


  /** The URL parser's words ("relative URL without a base") say what to type instead. */
  const reword = (pointer, message) => {
    if (!['/url', '/github/api_url'].includes(pointer) || !/relative URL without a base|empty host/i.test(message)) return message;
    const typed = (pointer === '/url' ? url.input : apiUrl.input).value.trim();
    if (!typed) return 'Type the receiver\'s full URL, starting with https:// (for example https://hooks.example.com/ml).';
    return `Type a full URL, starting with https:// (for example https://${typed.replace(/^[a-z]*:?\/*/i, '')}).`;
  };

  async function validate() {
    errors.clear();
    saveWarning.hidden = true;
    // Editing: the server applies the changes to the stored webhook, so the
    // secret and protected values it keeps are used without being typed again.
    const b = body(editing);
    const route = editing ? p(project, 'webhooks', id, 'validate') : p(project, 'webhooks', 'validate');
    validateButton.disabled = true;
    validateButton.textContent = 'Validating…';
    try {
      const outcome = await post(route, b);
      lastValidation = { signature: signature(b), valid: outcome.valid, status: outcome.response && outcome.response.status };
      for (const old of results.querySelectorAll('details[open]')) old.open = false;
      results.prepend(outcomeView(outcome, { title: 'Validation' }));
      results.scrollIntoView({ block: 'nearest' });
    } catch (e) {
      errors.show(e, reword);
    } finally {
      validateButton.disabled = false;
      validateButton.textContent = 'Validate';
    }
  }

  async function save(confirmed) {
    errors.clear();
    const b = body(editing);
    const validated = lastValidation && lastValidation.signature === signature(body(editing));
    if (!confirmed && !(validated && lastValidation.valid)) {
      let why;
      if (!lastValidation) why = 'This configuration has not been validated.';
      else if (!validated) why = 'The configuration changed since it was last validated.';
      else why = `The last validation failed${lastValidation.status ? ` (the receiver answered ${lastValidation.status})` : ''}.`;
      const anyway = h('button', { type: 'button', class: 'primary', onclick: () => save(true) }, 'Save anyway');
      replace(saveWarning, h('p', null, h('strong', null, why), ' Deliveries may fail until the receiver accepts them.'),
        h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => { saveWarning.hidden = true; validate(); } }, 'Validate first'), anyway));
      saveWarning.hidden = false;
      anyway.focus();
      return;
    }
    saveWarning.hidden = true;
    saveButton.disabled = true;
    try {
      const saved = editing
        ? await patch(p(project, 'webhooks', id), b)
        : await post(p(project, 'webhooks'), b);
      toast(editing ? 'Webhook saved' : 'Webhook created');
      ctx.go(`#/p/${enc}/webhooks/${encodeURIComponent(saved.id)}`);
    } catch (e) {
      if (e instanceof ApiError) errors.show(e, reword);
      else throw e;
    } finally {
      saveButton.disabled = false;
    }
  }

  const starError = eventsError;
  const bar = h('div', { class: 'sticky-actions' }, validateButton, saveButton, cancel);
  const form = h('form', {
    novalidate: true, 'aria-label': editing ? `Edit ${w.name}` : 'New webhook',
    onsubmit: (e) => { e.preventDefault(); save(false); },
  },
  summary,
  h('section', { class: 'panel', 'aria-labelledby': 'sec-basics' }, h('h2', { id: 'sec-basics' }, 'Basics'),
    h('div', { class: 'form-row' }, name.wrap, format.wrap), formatNote, description.wrap),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-dest' }, h('h2', { id: 'sec-dest' }, 'Destination'),
    url.wrap, githubGroup, destination),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-events' }, h('h2', { id: 'sec-events' }, 'Events'),
    h('p', { class: 'muted' }, 'The event types this webhook receives.'),
    h('label', { class: 'check field' }, star, h('span', null, h('strong', null, 'Every platform event (*)'),
      h('small', { class: 'hint' }, 'Also future types; mlhook\'s own delivery-health events are only sent when chosen below.'))),
    starError,
    h('div', { class: 'event-search' }, searchField.wrap, searchCount),
    h('div', { class: 'families' }, families), patterns.wrap),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-scope' }, h('h2', { id: 'sec-scope' }, 'Scope'),
    h('p', { class: 'muted' }, 'Only events about this object (each part narrows; leave all empty for every object).'),
    h('div', { class: 'form-row' }, objectType.wrap, objectName.wrap, version.wrap)),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-headers' }, h('h2', { id: 'sec-headers' }, 'Additional headers'),
    h('p', { class: 'muted' }, 'Sent with every delivery, e.g. an API key your receiver checks. A protected value is write-only: never shown again, masked in the delivery log.'),
    headers.element),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-auth' }, h('h2', { id: 'sec-auth' }, 'Authentication and delivery'),
    h('div', { class: 'form-row' }, secret.wrap, editing ? null : scheme.wrap),
    h('div', { class: 'form-row' }, rateMode.wrap, rateValue.wrap), rateNote,
    shape.wrap,
    h('div', { class: 'field' }, h('label', { class: 'check' }, includeResult, h('span', null, 'Include the request result',
      h('small', { class: 'hint' }, 'UbiOps request events: add the result when it is at most 16 kB.'))), includeError),
    h('div', { class: 'field' }, h('label', { class: 'check' }, enabled, h('span', null, 'Enabled',
      h('small', { class: 'hint' }, 'A disabled webhook keeps its deliveries paused until it is enabled and recovered.'))), enabledError)),
  h('section', { class: 'panel', 'aria-labelledby': 'sec-validate' }, h('h2', { id: 'sec-validate' }, 'Validation'),
    h('p', { class: 'muted' }, 'Validate sends the test payload of the first chosen event type to this configuration now, before saving, and shows the request sent and the response got. Nothing is stored.'),
    results),
  saveWarning,
  bar);
  keepClearOf(bar, form);

  const title = editing ? `Edit ${w.name}` : 'New webhook';
  replace(ctx.view,
    h('div', { class: 'page-head' }, h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: `#/p/${enc}/webhooks` }, 'Webhooks'), editing ? [' / ', h('a', { href: `#/p/${enc}/webhooks/${encodeURIComponent(id)}` }, w.name)] : null),
      h('h1', null, title))),
    form);
  refreshPreview();
  ctx.done(title);
}

/**
 * Focus Not Obscured (WCAG 2.4.11): whatever gets focus in `form` scrolls
 * above the sticky `bar`. The stylesheet's scroll padding covers most moves;
 * this covers the rest (a bar that wrapped to two lines on a phone, focus
 * that did not scroll at all).
 */
function keepClearOf(bar, form) {
  const clear = (el) => {
    if (bar.contains(el) || document.activeElement !== el) return;
    const hidden = el.getBoundingClientRect().bottom - bar.getBoundingClientRect().top;
    if (hidden > -8) window.scrollBy({ top: hidden + 16, behavior: 'instant' });
  };
  // Now, and once the browser has done its own scrolling to the element.
  form.addEventListener('focusin', (e) => {
    clear(e.target);
    requestAnimationFrame(() => clear(e.target));
  });
}

/** Template text as the API takes it: the parsed document, or the text when it is not JSON (the server names the error's place). */
function templateValue(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * A write-only value: shows "set" with Replace (and Remove) when stored.
 * value(): undefined to keep (or leave unset), null to remove, or the new text.
 */
function secretControl(labelText, isSet, removable, hint) {
  const input = h('input', { type: 'password', autocomplete: 'new-password', spellcheck: 'false' });
  const f = field(labelText, input, hint);
  let mode = isSet ? 'keep' : 'new';
  const state = h('div', { class: 'secret-state' });
  const draw = () => {
    input.hidden = mode === 'keep' || mode === 'remove';
    if (mode === 'new') {
      replace(state);
      return;
    }
    if (mode === 'keep') {
      replace(state, h('span', { class: 'badge ok' }, 'Set'),
        h('button', { type: 'button', class: 'small', onclick: () => { mode = 'replace'; draw(); input.focus(); } }, 'Replace'),
        removable ? h('button', { type: 'button', class: 'small danger', onclick: () => { mode = 'remove'; draw(); } }, 'Remove') : null);
    } else if (mode === 'replace') {
      replace(state, h('span', { class: 'badge info' }, 'Replacing'),
        h('button', { type: 'button', class: 'small', onclick: () => { mode = 'keep'; input.value = ''; draw(); } }, 'Keep the current one'));
    } else {
      replace(state, h('span', { class: 'badge warn' }, 'Will be removed on save'),
        h('button', { type: 'button', class: 'small', onclick: () => { mode = 'keep'; draw(); } }, 'Undo'));
    }
  };
  draw();
  f.wrap.insertBefore(state, input);
  return {
    wrap: f.wrap, input, error: f.error,
    value() {
      if (mode === 'remove') return null;
      if (mode === 'keep') return undefined;
      return input.value ? input.value : undefined;
    },
  };
}

/**
 * Header rows with − to remove, and a row to add one with +. What is typed
 * in the add row and not yet added is kept: it is added on validate and on
 * save (the NannyML wizard loses it).
 */
function headerEditor(initial, errors) {
  const rows = initial.map((hd) => ({ key: hd.key, value: hd.value || '', protected: hd.protected, stored: hd.protected }));
  const tbody = h('tbody');
  const newKey = h('input', { type: 'text', 'aria-label': 'New header name', placeholder: 'X-Api-Key', autocomplete: 'off', spellcheck: 'false' });
  const newValue = h('input', { type: 'text', 'aria-label': 'New header value', autocomplete: 'off', spellcheck: 'false' });
  const newProtected = h('input', { type: 'checkbox', 'aria-label': 'New header protected' });
  const addButton = h('button', { type: 'button', class: 'icon', 'aria-label': 'Add header', title: 'Add header' }, '+');
  const pendingNote = h('p', { class: 'pending-note', role: 'status' });
  const addError = h('p', { class: 'field-error', id: uid('hdr-error'), hidden: true });
  errors.bind('/headers', newKey, addError);

  const pending = () => newKey.value.trim() !== '' || newValue.value !== '';
  const notePending = () => {
    pendingNote.textContent = pending()
      ? `Not added yet: “${newKey.value.trim() || '(no name)'}” will be included when you validate or save, or press + now.`
      : '';
    newKey.closest('tr').classList.toggle('pending', pending());
  };
  newProtected.addEventListener('change', () => { newValue.type = newProtected.checked ? 'password' : 'text'; });

  const draw = () => {
    for (const key of [...errors.fields.keys()]) if (/^\/headers\/\d/.test(key)) errors.fields.delete(key);
    replace(tbody, rows.map((r, i) => {
      const n = i + 1;
      const key = h('input', { type: 'text', value: r.key, 'aria-label': `Header ${n} name`, autocomplete: 'off', spellcheck: 'false', oninput: (e) => { r.key = e.target.value; } });
      const value = h('input', {
        type: r.protected ? 'password' : 'text', value: r.value, 'aria-label': `Header ${n} value`, autocomplete: 'off', spellcheck: 'false',
        placeholder: r.stored ? 'stored, hidden: type to replace' : '',
        oninput: (e) => { r.value = e.target.value; },
      });
      const prot = h('input', {
        type: 'checkbox', checked: r.protected, 'aria-label': `Header ${n} protected`,
        onchange: (e) => { r.protected = e.target.checked; value.type = r.protected ? 'password' : 'text'; },
      });
      const keyError = h('p', { class: 'field-error', id: uid('hk'), hidden: true });
      const valueError = h('p', { class: 'field-error', id: uid('hv'), hidden: true });
      errors.bind(`/headers/${i}`, key, keyError);
      errors.bind(`/headers/${i}/key`, key, keyError);
      errors.bind(`/headers/${i}/value`, value, valueError);
      return h('tr', null,
        h('td', null, key, keyError),
        h('td', null, value, valueError),
        h('td', { class: 'narrow' }, h('label', { class: 'check' }, prot, h('span', { 'aria-hidden': 'true' }, 'protected'))),
        h('td', { class: 'narrow' }, h('button', {
          type: 'button', class: 'icon', title: 'Remove header', 'aria-label': `Remove header ${n}${r.key ? ` (${r.key})` : ''}`,
          onclick: () => { rows.splice(i, 1); draw(); },
        }, '−')));
    }));
  };

  const commitPending = () => {
    if (!pending()) return false;
    rows.push({ key: newKey.value.trim(), value: newValue.value, protected: newProtected.checked, stored: false });
    newKey.value = '';
    newValue.value = '';
    newProtected.checked = false;
    newValue.type = 'text';
    draw();
    notePending();
    return true;
  };
  addButton.addEventListener('click', () => { if (commitPending()) newKey.focus(); });
  for (const input of [newKey, newValue]) {
    input.addEventListener('input', notePending);
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        if (commitPending()) newKey.focus();
      }
    });
  }

  const element = h('div', null,
    h('table', { class: 'headers-table' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, 'Value'),
        h('th', { scope: 'col' }, 'Protected'), h('th', { scope: 'col' }, h('span', { class: 'sr-label' }, 'Actions')))),
      tbody,
      h('tfoot', null, h('tr', null,
        h('td', null, newKey, addError), h('td', null, newValue),
        h('td', { class: 'narrow' }, h('label', { class: 'check' }, newProtected, h('span', { 'aria-hidden': 'true' }, 'protected'))),
        h('td', { class: 'narrow' }, addButton)))),
    pendingNote);
  draw();
  return {
    element,
    commitPending,
    /** Stored protected values that are kept (not retyped). */
    value: () => rows.map((r) => {
      const out = { key: r.key, protected: r.protected };
      if (!(r.stored && r.protected && !r.value)) out.value = r.value;
      return out;
    }),
  };
}
