// The web console as a person uses it, in headless Chromium, against a real
// `mlhook serve` and a real receiver (both started by tests/it/console.rs,
// which passes their addresses in the environment):
//
// sign in; create a project; create a webhook with two headers (one
// protected, typed but never added with +) and a secret; validate it while
// the receiver answers 200, then 500, and see both; save anyway; reveal the
// signing secret; test the webhook and copy the full response; send a test
// event from the catalog (checked as it is typed); find its delivery in the
// log with its attempt; redeliver; then every fix and screen of the console's
// second pass (issue 28: focus never under the sticky bar, errors that go when
// the field is fixed, rotations, tests by type, a phone's cards, a read
// token, the log's chart, retry and search, events, payload viewers, the
// template editor, tokens, the audit log, project settings), on a desktop
// and a 390 px phone; sign out. Along the way: axe-core finds
// no serious or critical accessibility violation on any screen, the
// protected value, the secret and the token never appear in the page's
// HTML nor in any answer the page fetched, and every screen is saved as a
// screenshot.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const BASE = need('MLHOOK_URL');
const TOKEN = need('MLHOOK_ADMIN_TOKEN');
const RECEIVER = need('RECEIVER_URL');
const SHOTS = process.env.SCREENSHOT_DIR || 'screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const PROTECTED = `protected-${randomBytes(8).toString('hex')}`;
const SECRET = `secret-${randomBytes(8).toString('hex')}`;
const SOURCE_SECRET = `source-${randomBytes(8).toString('hex')}-shared-with-mlflow`;
const NEXT_SOURCE_SECRET = `next-${randomBytes(8).toString('hex')}-shared-with-mlflow`;
const NEVER_SHOWN = [PROTECTED, SECRET, TOKEN, SOURCE_SECRET, NEXT_SOURCE_SECRET];

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through \`cargo test --test console\``);
  return value;
}

/** A call to the API with the admin token, as a script would make it (not the page). */
async function api(method, path, body) {
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

/** Makes the receiver answer `status` from now on. */
async function receiverAnswers(status) {
  const r = await fetch(`${RECEIVER}/control/${status}`, { method: 'POST' });
  assert.equal(r.status, 204);
}

/**
 * Tabs through the form from its heading to the button bar's last control;
 * answers how many tab stops there were and which ended up (partly) under
 * the sticky button bar (WCAG 2.2, 2.4.11 Focus Not Obscured).
 */
async function obscuredTabStops(p, most = 160) {
  // The body preview fills in after a moment and moves what is below it.
  await p.locator('.preview pre').getByText(/\S/).first().waitFor();
  await p.evaluate(() => document.querySelector('main h1').focus());
  const hidden = [];
  let count = 0;
  for (let i = 0; i < most; i += 1) {
    await p.keyboard.press('Tab');
    const r = await p.evaluate(async () => {
      await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
      const el = document.activeElement;
      const bar = document.querySelector('.sticky-actions');
      if (!el || el === document.body || !bar) return null;
      if (bar.contains(el)) return { ok: true, end: el.textContent === 'Cancel' };
      const a = el.getBoundingClientRect();
      const b = bar.getBoundingClientRect();
      return {
        ok: a.bottom <= b.top + 1 || a.top >= b.bottom,
        what: `${el.tagName.toLowerCase()} ${el.getAttribute('aria-label') || el.name || el.textContent.trim().slice(0, 30)}`,
      };
    });
    if (!r) break;
    count += 1;
    if (!r.ok) hidden.push(r.what);
    if (r.end) break;
  }
  return { count, hidden };
}

/** Signs in on a fresh page with `token`, starting at `hash`. */
async function signInAt(p, hash, token) {
  await p.goto(`${BASE}/${hash}`);
  await p.getByLabel('Token').fill(token);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

test('the web console', { timeout: 180_000 }, async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);

  // Every answer the page fetched, and every complaint of the browser.
  const fetched = [];
  const problems = [];
  /** Error answers the story causes on purpose: [method, path pattern, status]. */
  const expectedErrors = [
    ['GET', /^\/console\/session$/, 401], // before signing in
    ['POST', /^\/console\/session$/, 401], // the wrong token
    ['POST', /^\/v1\/projects$/, 403], // the CSRF check
    ['GET', /^\/v1\/projects$/, 401], // after signing out
    ['POST', /^\/v1\/projects\/fraud-team\/webhooks\/validate$/, 400], // ftp://, then an empty URL
    ['POST', /^\/v1\/formats\/preview$/, 400], // the template typo
    ['GET', /^\/v1\/projects\/nope\/webhooks$/, 404], // the unknown project
  ];
  const errorAnswers = [];
  function watch(p) {
    p.on('response', async (response) => {
      const type = response.request().resourceType();
      if (type !== 'fetch' && type !== 'xhr' && type !== 'document') return;
      if (response.status() >= 400) {
        const path = new URL(response.url()).pathname;
        const method = response.request().method();
        if (!expectedErrors.some(([m, re, st]) => m === method && re.test(path) && st === response.status())) {
          errorAnswers.push(`${method} ${path} → ${response.status()}`);
        }
      }
      try {
        fetched.push({ url: response.url(), body: await response.text(), headers: await response.allHeaders() });
      } catch {
        // A redirect or a page that navigated away has no body to read.
      }
    });
    p.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure() && r.failure().errorText})`));
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    p.on('console', (m) => {
      // An error answer is logged by Chromium as a failed resource; those are
      // checked one by one above. Anything else (a CSP refusal, an exception)
      // is a fault.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  }
  watch(page);

  /** A link of the top bar. */
  const section = (name) => page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true });

  /** Screenshot, axe-core and the secret check of the screen shown now. */
  async function screen(name, { fullPage = true } = {}, p = page) {
    await p.waitForLoadState('networkidle');
    await p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
    await accessible(name, p);
    await noSecretsIn(name, p);
  }

  async function accessible(name, p = page) {
    // Evaluated through the DevTools protocol, so the page's CSP (no inline
    // script) does not stand in its way and needs no exception.
    await p.evaluate(AXE);
    const result = await p.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
    const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(serious.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), [],
      `axe-core found serious violations on ${name}`);
  }

  async function noSecretsIn(name, p = page) {
    const html = await p.content();
    for (const secret of NEVER_SHOWN) {
      assert.ok(!html.includes(secret), `${name}: the page's HTML holds a secret`);
      assert.ok(!p.url().includes(secret), `${name}: the URL holds a secret`);
    }
    for (const f of fetched) {
      for (const secret of NEVER_SHOWN) {
        assert.ok(!f.body.includes(secret), `${name}: the answer of ${f.url} holds a secret`);
      }
    }
  }

  // One story: after a failing step the later ones are skipped, and the
  // screen at the failure is kept as failure-<step>.png.
  let failed = false;
  const step = (name, fn) => t.test(name, { skip: failed && 'an earlier step failed' }, async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40).replace(/-$/, '');
      await page.screenshot({ path: join(SHOTS, `failure-${slug}.png`), fullPage: true }).catch(() => {});
      throw e;
    }
  });

  await step('sign in with a token, kept in an HttpOnly cookie', async () => {
    const loaded = await page.goto(`${BASE}/`);
    await page.getByRole('heading', { name: 'Sign in to mlhook' }).waitFor();
    const csp = (await loaded.allHeaders())['content-security-policy'];
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    await screen('signin');

    await page.getByLabel('Token').fill('mlh_not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('This token is not valid').waitFor();
    assert.equal(await page.getByLabel('Token').getAttribute('aria-invalid'), 'true');

    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === 'mlhook_session');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('mlhook_session')), false);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
    assert.ok(!stored.includes(TOKEN), 'the token is not in web storage');
  });

  await step('a cookie-authenticated write without the console header is refused (CSRF)', async () => {
    const refused = await page.evaluate(async () => {
      const r = await fetch('/v1/projects', {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: 'csrf', name: 'csrf' }),
      });
      return { status: r.status, body: await r.json() };
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'csrf_check_failed');
  });

  await step('create a project from the empty list', async () => {
    await page.getByText('No projects yet').waitFor();
    await screen('projects');
    await page.getByLabel('Id').fill('fraud-team');
    await page.getByLabel('Name', { exact: true }).fill('Fraud team');
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await page.getByText('No webhooks yet').waitFor();
    await screen('webhooks-empty');
  });

  await step('create a webhook through the form: two headers, one protected; validate 200 then 500', async () => {
    // By keyboard: Tab to "+ Create webhook", Enter.
    for (let i = 0; i < 30; i += 1) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement.textContent)) === '+ Create webhook') break;
    }
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'New webhook' }).waitFor();

    // Keyboard focus never hides under the sticky button bar.
    const walk = await obscuredTabStops(page);
    assert.ok(walk.count > 40, `only ${walk.count} tab stops`);
    assert.deepEqual(walk.hidden, [], 'tab stops under the button bar');
    // The description is prose in a short box; the secret lines up with the scheme beside it.
    const desc = await page.getByLabel('Description').evaluate((el) => ({ font: getComputedStyle(el).fontFamily, height: el.getBoundingClientRect().height }));
    assert.doesNotMatch(desc.font, /mono/i);
    assert.ok(desc.height < 80, `the description box is ${desc.height}px tall`);
    const secretTop = await page.getByLabel('Secret', { exact: true }).evaluate((el) => el.getBoundingClientRect().top);
    const schemeTop = await page.getByLabel('Signing scheme').evaluate((el) => el.getBoundingClientRect().top);
    assert.ok(Math.abs(secretTop - schemeTop) <= 1, `secret input at ${secretTop}, scheme at ${schemeTop}`);

    // An error from the API appears next to the field it names.
    await page.getByLabel('URL', { exact: true }).fill('ftp://nowhere');
    await page.getByRole('button', { name: 'Validate' }).click();
    const urlError = page.locator('#' + (await page.getByLabel('URL', { exact: true }).getAttribute('id')) + '-error');
    await urlError.waitFor();
    assert.match(await urlError.textContent(), /http/i);
    // Fixing the field takes its error away at once, not at the next Validate.
    await page.getByLabel('URL', { exact: true }).fill('https://');
    await urlError.waitFor({ state: 'hidden' });
    assert.equal(await page.getByLabel('URL', { exact: true }).getAttribute('aria-invalid'), null);
    // An empty URL says what to type, not the parser's words.
    await page.getByLabel('URL', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Validate' }).click();
    await urlError.waitFor();
    const said = await urlError.textContent();
    assert.match(said, /Type the receiver's full URL, starting with https:\/\//);
    assert.doesNotMatch(said, /relative URL/);

    // The fields follow the format: a template editor with a live preview ...
    const format = page.getByLabel('Format', { exact: true });
    await format.selectOption({ label: 'Custom JSON template' });
    const template = page.getByLabel('Template', { exact: true });
    assert.match(await template.inputValue(), /\{\{ title \}\}/, 'a starter template');
    await template.fill('{"kind": "{{ event.typo }}"}');
    await page.getByText(/Does not render: \/template\/kind/).waitFor();
    await template.fill('{"kind": "{{ event.type }}", "source": "mlhook"}');
    await page.locator('.preview pre').getByText('"source": "mlhook"').waitFor();
    // The editor highlights the JSON and its placeholders as typed.
    const shadow = page.locator('.code-editor .code-shadow');
    assert.equal(await shadow.locator('.j-key').first().textContent(), '"kind"');
    assert.equal(await shadow.locator('.j-template').textContent(), '{{ event.type }}');
    await page.getByRole('button', { name: 'Format JSON' }).click();
    assert.equal(await template.inputValue(), '{\n  "kind": "{{ event.type }}",\n  "source": "mlhook"\n}');
    await screen('template-editor', { fullPage: false });
    // ... GitHub's repository and token instead of a URL ...
    await format.selectOption({ label: 'GitHub Actions (repository_dispatch)' });
    await page.getByLabel('GitHub repository').waitFor();
    assert.equal(await page.getByLabel('URL', { exact: true }).isVisible(), false);
    await page.getByLabel('GitHub repository').fill('acme/models');
    await page.locator('.preview').getByText('https://api.github.com/repos/acme/models/dispatches').waitFor();
    // ... and back to plain JSON.
    await format.selectOption({ label: 'JSON' });
    assert.equal(await template.isVisible(), false);

    await page.getByLabel('Name', { exact: true }).fill('churn releases');
    await page.getByLabel('Description').fill('Tells the release bot about new churn models.');
    await page.getByLabel('URL', { exact: true }).fill(`${RECEIVER}/hooks`);
    // Search the event types; "All" of a family chooses only the types shown.
    const search = page.getByLabel('Find an event type');
    await search.fill('model_ changed');
    await page.getByText(/^\d+ of \d+ event types match\.$/).waitFor();
    assert.equal(await page.getByRole('checkbox', { name: /^MODEL_VERSION_CREATED/ }).isVisible(), false);
    await page.getByRole('checkbox', { name: /^MODEL_STATUS_CHANGED/ }).waitFor();
    await page.getByRole('checkbox', { name: 'Choose all: Model registry (Comet)' }).check();
    const registry = await page.locator('input[data-family="model_registry"]:checked').evaluateAll((els) => els.map((e) => e.value));
    assert.ok(registry.includes('MODEL_STATUS_CHANGED') && !registry.includes('MODEL_VERSION_CREATED'), registry.join());
    for (const name of registry) await page.locator(`input[value="${name}"]`).uncheck();
    await search.fill('');
    // Every family's "All", at once, then none.
    const family = page.locator('details.family', { hasText: 'Monitoring runs' });
    if ((await family.getAttribute('open')) === null) await family.locator('summary').click();
    const monitoring = page.getByRole('checkbox', { name: /^Choose all: Monitoring runs/ });
    await monitoring.check();
    const runs = await page.locator('input[data-family="monitoring"]').count();
    assert.equal(await page.locator('input[data-family="monitoring"]:checked').count(), runs);
    await monitoring.uncheck();
    assert.equal(await page.locator('input[data-family="monitoring"]:checked').count(), 0);
    await page.getByRole('checkbox', { name: /^MODEL_VERSION_CREATED/ }).check();
    await page.getByRole('checkbox', { name: /^MODEL_STATUS_CHANGED/ }).check();
    await page.getByLabel('Object type').selectOption('model');
    await page.getByLabel('Object name').fill('churn');

    // One header added with +, one typed (protected) and never added.
    await page.getByLabel('New header name').fill('X-Team');
    await page.getByLabel('New header value').fill('ml-platform');
    await page.getByRole('button', { name: 'Add header' }).click();
    assert.equal(await page.getByLabel('Header 1 name').inputValue(), 'X-Team');
    await page.getByLabel('New header name').fill('X-Api-Key');
    await page.getByLabel('New header protected').check();
    await page.getByLabel('New header value').fill(PROTECTED);
    await page.getByText('Not added yet').waitFor();
    await page.getByLabel('Secret', { exact: true }).fill(SECRET);

    await receiverAnswers(200);
    await page.getByRole('button', { name: 'Validate' }).click();
    const results = page.getByTestId('send-result');
    await results.first().locator('summary').getByText('200 OK').waitFor();
    assert.equal(await results.count(), 1);
    // The pending header became a row of its own when validating.
    assert.equal(await page.getByLabel('Header 2 name').inputValue(), 'X-Api-Key');
    // The request shown is the one sent, with the protected value masked.
    const sent = await results.first().textContent();
    assert.match(sent, /x-api-key/i);
    assert.match(sent, /\*\*\*\*\*\*\*\*/);

    await receiverAnswers(500);
    await page.getByRole('button', { name: 'Validate' }).click();
    await results.first().locator('summary').getByText('500 Internal Server Error').waitFor();
    assert.equal(await results.count(), 2, 'both validations are shown');
    await results.first().getByText('the receiver fails on purpose').waitFor();
    await screen('webhook-form');

    // Saving after a failed validation warns, and is allowed.
    await receiverAnswers(200);
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await page.getByText('The last validation failed (the receiver answered 500).').waitFor();
    await page.getByRole('button', { name: 'Save anyway' }).click();
    await page.getByRole('heading', { name: /churn releases/ }).waitFor();
    const config = page.getByRole('region', { name: 'Configuration' });
    await config.getByText('X-Team: ml-platform').waitFor();
    await config.getByText('X-Api-Key:').waitFor();
  });

  await step('webhook detail: signing secret on click, copy, rotate; test with copy', async () => {
    assert.equal(await page.getByTestId('signing-key').count(), 0);
    await page.getByRole('button', { name: 'Reveal' }).click();
    const key = await page.getByTestId('signing-key').textContent();
    assert.match(key, /^whsec_/);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
    await page.getByRole('button', { name: 'Hide' }).click();
    const updated = page.getByTestId('updated-at');
    const updatedAtFirst = await updated.textContent();
    await page.waitForTimeout(1100); // "Updated" shows seconds
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByLabel('The old key keeps signing for').selectOption('1h');
    await page.getByRole('button', { name: 'Rotate key' }).click();
    await page.getByText(/^Rotated at /).waitFor();
    const previous = page.getByTestId('previous-key');
    await previous.getByText(/The previous key also signs until/).waitFor();
    const firstUntil = await previous.textContent();
    const rotated = await page.getByTestId('signing-key').textContent();
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, key);
    assert.notEqual(await updated.textContent(), updatedAtFirst, 'Updated follows the rotation');
    await page.getByRole('button', { name: 'Hide' }).click();
    // A second rotation: one "previous key" line, the new one's.
    page.once('dialog', (dialog) => dialog.accept());
    await page.getByLabel('The old key keeps signing for').selectOption('24h');
    await page.getByRole('button', { name: 'Rotate key' }).click();
    await page.waitForFunction((before) => document.querySelector('[data-testid="previous-key"]').textContent !== before, firstUntil);
    assert.equal(await page.getByText(/previous key (also )?signs/).count(), 1);
    const again = await page.getByTestId('signing-key').textContent();
    assert.match(again, /^whsec_/);
    assert.notEqual(again, rotated);
    await page.getByRole('button', { name: 'Hide' }).click();

    // A registry webhook's test is Comet's TEST event, and says so.
    const testType = page.getByRole('region', { name: 'Test webhook' }).getByLabel('Event type');
    assert.equal(await testType.inputValue(), 'TEST');
    await page.getByRole('button', { name: 'Test webhook' }).click();
    const result = page.getByTestId('send-result').first();
    await result.locator('summary').getByText('200 OK').waitFor();
    await result.locator('summary').getByText('Test: TEST').waitFor();
    await result.getByRole('button', { name: 'Copy full response' }).click();
    const copied = JSON.parse(await page.evaluate(() => navigator.clipboard.readText()));
    assert.equal(copied.response.status, 200);
    assert.equal(copied.valid, true);

    await page.getByRole('button', { name: 'Recover deliveries' }).click();
    await page.getByText('Nothing to recover').waitFor();
    await screen('webhook-detail');

    // After a reload the heading has focus (for screen readers) but no ring.
    await page.reload();
    await page.getByRole('heading', { name: /churn releases/ }).waitFor();
    const heading = await page.evaluate(() => {
      const h1 = document.querySelector('main h1');
      return { focused: document.activeElement === h1, outline: getComputedStyle(h1).outlineStyle };
    });
    assert.deepEqual(heading, { focused: true, outline: 'none' });
  });

  await step('send a test event from the catalog, checked as it is typed', async () => {
    await section('Event catalog').click();
    await page.getByRole('link', { name: 'MODEL_VERSION_CREATED', exact: true }).click();
    await page.getByRole('heading', { name: 'MODEL_VERSION_CREATED' }).waitFor();
    const payload = page.getByLabel('Payload', { exact: true });
    await payload.fill('{"workspaceName": "ml", "registryModelName": "churn", "version": 3');
    await page.getByText('✗ Not JSON').waitFor();
    await payload.fill(JSON.stringify({
      workspaceName: 'ml', registryModelName: 'churn', version: 3, tags: ['candidate'],
      createdAt: 1795600000, sourceExperimentKey: null,
    }, null, 2));
    await page.getByText('✗ Not valid yet').waitFor();
    await page.locator('.check-status').getByText('/version').waitFor();
    await payload.fill(JSON.stringify({
      workspaceName: 'ml', registryModelName: 'churn', version: '3', tags: ['candidate'],
      createdAt: 1795600000, sourceExperimentKey: null,
    }, null, 2));
    await page.getByText('✓ Valid.').waitFor();
    await page.getByRole('button', { name: 'Send event' }).click();
    await page.getByText(/Accepted as event evt_.*1 delivery/).waitFor();
    await screen('catalog');
  });

  await step('the delivery log shows the delivery; its attempts; redeliver', async () => {
    await page.getByRole('link', { name: 'Open the delivery log' }).click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    const row = page.locator('tr', { hasText: 'MODEL_VERSION_CREATED' }).first();
    for (let i = 0; i < 50 && !(await row.getByText('succeeded').count()); i += 1) {
      await page.waitForTimeout(200);
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    }
    await row.getByText('succeeded').waitFor();
    await screen('deliveries');

    await row.getByRole('link').first().click();
    await page.getByRole('heading', { name: /^Delivery msg_/ }).waitFor();
    const attempts = page.getByTestId('attempt');
    await attempts.first().getByText('Attempt 1').waitFor();
    await attempts.first().locator('summary').getByText('200 OK').waitFor();
    const shown = await attempts.first().textContent();
    assert.match(shown, /x-api-key\s*\*{8}/i, 'the protected header is masked');
    assert.match(shown, /authorization\s*\*{8}/i, 'the secret is masked');

    await page.getByRole('button', { name: 'Redeliver' }).click();
    await attempts.first().getByText('Attempt 2').waitFor();
    await attempts.first().getByText('manual').waitFor();
    assert.equal(await attempts.count(), 2);
    await screen('delivery');
  });

  await step('a 410 disables the webhook; enable it and recover its delivery, with progress', async () => {
    const hooks = (await api('GET', '/v1/projects/fraud-team/webhooks')).body.data;
    const id = hooks.find((w) => w.name === 'churn releases').id;
    await receiverAnswers(410);
    const sent = await api('POST', '/v1/projects/fraud-team/events', {
      type: 'MODEL_STATUS_CHANGED',
      payload: { workspaceName: 'ml', registryModelName: 'churn', version: '3', tags: [], status: 'Production', createdAt: 1795600000, sourceExperimentKey: null },
    });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    for (let i = 0; i < 100; i += 1) {
      if (!(await api('GET', `/v1/projects/fraud-team/webhooks/${id}`)).body.enabled) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await receiverAnswers(200);
    await section('Webhooks').click();
    await page.getByRole('link', { name: 'churn releases' }).click();
    const banner = page.locator('.banner.bad');
    await banner.getByText('Disabled').waitFor();
    assert.match(await banner.textContent(), /410/);
    await screen('webhook-disabled', { fullPage: false });
    await banner.getByRole('button', { name: 'Enable' }).click();
    await page.locator('h1').getByText('Enabled').waitFor();
    await page.getByRole('button', { name: 'Recover deliveries' }).click();
    await page.getByText('1 of 1 re-queued deliveries sent again.').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('progress').evaluate((p) => p.value), 1);
  });

  await step('the webhook list, filters, and the dark theme', async () => {
    // Two more webhooks, made by a script, so that the list has some variety.
    const teams = await api('POST', '/v1/projects/fraud-team/webhooks', {
      name: 'drift alerts', description: 'Monitoring runs to the #ml-alerts channel.', url: `${RECEIVER}/teams`,
      format: 'teams', events: ['RUN_COMPLETED'],
    });
    assert.equal(teams.status, 201, JSON.stringify(teams.body));
    const paused = await api('POST', '/v1/projects/fraud-team/webhooks', {
      name: 'release bot (staging)', url: `${RECEIVER}/staging`, events: ['*'], enabled: false,
    });
    assert.equal(paused.status, 201, JSON.stringify(paused.body));
    const run = (await api('GET', '/v1/event-types/RUN_COMPLETED')).body.example;
    assert.equal((await api('POST', '/v1/projects/fraud-team/events', { type: 'RUN_COMPLETED', payload: run })).status, 202);
    for (let i = 0; i < 100; i += 1) {
      const log = (await api('GET', '/v1/projects/fraud-team/deliveries?event_type=RUN_COMPLETED&status=succeeded')).body;
      if (log.data.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await section('Webhooks').click();
    const row = page.locator('tr', { hasText: 'churn releases' });
    await row.waitFor();
    await row.getByText('Enabled').waitFor();
    await row.getByText(/% of \d+/).waitFor();
    await page.locator('tr', { hasText: 'drift alerts' }).getByText('succeeded').waitFor();
    // Host and path: two webhooks on one receiver differ.
    assert.match(await row.locator('td').nth(1).textContent(), /^127\.0\.0\.1:\d+\/hooks$/);
    assert.match(await page.locator('tr', { hasText: 'drift alerts' }).locator('td').nth(1).textContent(), /\/teams$/);
    await screen('webhooks', { fullPage: false });

    // One webhook's numbers are slow: the rows show at once, its numbers when they come.
    const slow = `**/webhooks/${teams.body.id}/stats`;
    await page.route(slow, async (route) => {
      await new Promise((r) => setTimeout(r, 3000));
      await route.continue();
    });
    await section('Delivery log').click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    const asked = Date.now();
    await section('Webhooks').click();
    await row.getByText(/% of \d+/).waitFor({ timeout: 2000 });
    await page.locator('tr', { hasText: 'drift alerts' }).getByText('loading…').first().waitFor({ timeout: 500 });
    assert.ok(Date.now() - asked < 2500, `the list took ${Date.now() - asked} ms`);
    await page.locator('tr', { hasText: 'drift alerts' }).getByText('succeeded').waitFor({ timeout: 8000 });
    await page.unroute(slow);
    await page.getByLabel('State').selectOption('disabled');
    await page.locator('tr', { hasText: 'release bot (staging)' }).waitFor();
    assert.equal(await row.count(), 0);
    await page.getByLabel('Event type').selectOption('mlhook.webhook.disabled');
    await page.getByText('No webhook matches these filters').waitFor();
    await page.getByLabel('State').selectOption('');
    await page.getByLabel('Event type').selectOption('MODEL_STATUS_CHANGED');
    await row.waitFor();
    assert.equal(await page.locator('tbody tr').count(), 2, 'churn releases, and the * webhook');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screen('webhooks-dark', { fullPage: false });
    await page.getByRole('link', { name: 'churn releases' }).click();
    await page.getByRole('heading', { name: /churn releases/ }).waitFor();
    await screen('webhook-detail-dark');
    await section('Delivery log').click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    await page.locator('tbody tr').first().getByRole('link').first().click();
    await page.getByTestId('attempt').first().waitFor();
    await screen('delivery-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await section('Webhooks').click();
  });

  await step('edit: write-only values show as set, never their value', async () => {
    await page.getByRole('link', { name: 'churn releases' }).click();
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit churn releases' }).waitFor();
    assert.equal(await page.getByLabel('Header 2 value').inputValue(), '');
    assert.equal(await page.getByLabel('Header 2 value').getAttribute('placeholder'), 'stored, hidden: type to replace');
    await page.getByRole('button', { name: 'Replace' }).waitFor();
    await page.getByRole('button', { name: 'Remove', exact: true }).waitFor();
    // Validating an edit uses the stored secret and protected value: the
    // server applies the form's changes to the stored webhook.
    await receiverAnswers(200);
    await page.getByRole('button', { name: 'Validate' }).click();
    const result = page.getByTestId('send-result').first();
    await result.locator('summary').getByText('200 OK').waitFor();
    const sent = await result.textContent();
    assert.match(sent, /authorization/i);
    assert.match(sent, /x-api-key/i);
    assert.match(sent, /\*\*\*\*\*\*\*\*/);
    await screen('webhook-edit');
    await page.getByRole('link', { name: 'Cancel' }).click();
  });

  await step('the test panel sends the chosen type; a 500 fits the recent deliveries', async () => {
    await section('Webhooks').click();
    await page.getByRole('link', { name: 'drift alerts' }).click();
    await page.getByRole('heading', { name: /drift alerts/ }).waitFor();
    const panel = page.getByRole('region', { name: 'Test webhook' });
    assert.doesNotMatch(await panel.textContent(), /Comet/, 'Comet is named only for registry webhooks');
    assert.equal(await panel.getByLabel('Event type').inputValue(), 'RUN_COMPLETED');
    await receiverAnswers(500);
    await page.getByRole('button', { name: 'Test webhook' }).click();
    await panel.getByTestId('send-result').first().locator('summary').getByText('Test: RUN_COMPLETED').waitFor();
    await receiverAnswers(200);
    const recent = page.getByRole('region', { name: 'Recent deliveries' });
    await recent.getByText('500 Internal Server Error').first().waitFor();
    const fits = await recent.evaluate((wrap) => ({ scroll: wrap.scrollWidth, client: wrap.clientWidth }));
    assert.ok(fits.scroll <= fits.client, `the recent deliveries need ${fits.scroll}px in ${fits.client}px`);
  });

  await step('delivery log: chart, retry all failed, auto-refresh, search by id; events; payload viewer', async () => {
    await section('Delivery log').click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    const chartLabel = () => page.getByTestId('success-chart').locator('svg').getAttribute('aria-label');
    await page.getByTestId('success-chart').waitFor();
    assert.match(await chartLabel(), /^The project fraud-team, the last 24 hours: \d+ succeeded, [1-9]\d* failed, \d+ waiting/);
    // Per webhook: the chart follows the webhook filter.
    await page.getByLabel('Webhook', { exact: true }).selectOption({ label: 'drift alerts' });
    await page.waitForFunction(() => /^drift alerts, the last 24 hours: 1 succeeded, 1 failed/
      .test(document.querySelector('[data-testid="success-chart"] svg')?.getAttribute('aria-label') || ''));

    // Retry every failed delivery the filters match, with a count and progress.
    const retry = page.getByRole('button', { name: /^Retry all failed \(\d+\)$/ });
    await retry.waitFor();
    const n = Number((await retry.textContent()).match(/\((\d+)\)/)[1]);
    assert.equal(n, 1, 'the 500 of the test');
    page.once('dialog', (d) => d.accept());
    await retry.click();
    await page.getByText(/^1 of 1 sent again: 1 succeeded, 0 failed\.$/).waitFor();
    assert.equal(await page.locator('progress[aria-label="Retry progress"]').evaluate((el) => el.value), 1);
    await page.getByRole('button', { name: 'Retry all failed (0)' }).waitFor();
    await screen('delivery-log-tools', { fullPage: false });

    // Auto-refresh: a new delivery shows without a click.
    await page.getByLabel(/Auto-refresh/).check();
    assert.match(page.url(), /auto=1/);
    const rows = await page.locator('tbody tr').count();
    const run = (await api('GET', '/v1/event-types/RUN_COMPLETED')).body.example;
    const sent = await api('POST', '/v1/projects/fraud-team/events', { type: 'RUN_COMPLETED', payload: run });
    assert.equal(sent.status, 202);
    await page.waitForFunction((before) => document.querySelectorAll('tbody tr').length > before, rows, { timeout: 15_000 });
    await page.getByLabel(/Auto-refresh/).uncheck();

    // Search by event id: the event, its deliveries, its payload.
    const eventId = sent.body.id;
    await page.getByLabel('Delivery or event id').fill(eventId);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('heading', { name: `Event ${eventId}` }).waitFor();
    await page.getByRole('region', { name: 'Deliveries of this event' }).getByRole('link', { name: 'drift alerts' }).waitFor();
    const payload = page.getByTestId('payload');
    assert.ok(await payload.locator('.j-key').count() > 3, 'the payload is highlighted');
    assert.match(await payload.textContent(), /\n {2}"/, 'pretty first');
    await page.getByRole('button', { name: 'Raw Payload' }).click();
    assert.doesNotMatch(await payload.textContent(), /\n/);
    await page.getByRole('button', { name: 'Copy Payload' }).click();
    const stored = (await api('GET', `/v1/projects/fraud-team/events/${eventId}`)).body.payload;
    assert.deepEqual(JSON.parse(await page.evaluate(() => navigator.clipboard.readText())), stored);
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.getByRole('heading', { name: 'Deliveries (2)' }).waitFor();
    await screen('event');
    await section('Events').click();
    await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
    await page.locator('tr', { hasText: eventId }).waitFor();
    await screen('events', { fullPage: false });

    // Search by delivery id; ids and headers copy.
    await section('Delivery log').click();
    await page.getByRole('heading', { name: 'Delivery log' }).waitFor();
    const deliveryId = await page.locator('tbody tr').first().getAttribute('data-delivery');
    await page.getByLabel('Delivery or event id').fill(deliveryId);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('heading', { name: `Delivery ${deliveryId}` }).waitFor();
    await page.getByRole('button', { name: 'Copy Delivery id' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), deliveryId);
    await page.getByTestId('attempt').first().getByRole('button', { name: 'Copy headers (request headers)' }).click();
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), /^content-type: application\/json$/m);
  });

  await step('an unknown project is named as such in the picker', async () => {
    await page.goto(`${BASE}/#/p/nope/webhooks`);
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    await page.waitForFunction(() => {
      const s = document.getElementById('project-switch');
      return s && s.selectedOptions[0] && s.selectedOptions[0].textContent === 'nope (unknown)';
    });
    await page.goto(`${BASE}/#/p/fraud-team/webhooks`);
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
  });

  await step('on a phone: a short top bar, rows as cards, focus clear of the button bar', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, colorScheme: 'light' });
    try {
      const pp = await phone.newPage();
      pp.setDefaultTimeout(10_000);
      watch(pp);
      await signInAt(pp, '#/p/fraud-team/webhooks', TOKEN);
      await pp.getByRole('heading', { name: 'Webhooks' }).waitFor();
      await pp.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
      const top = await pp.locator('.topbar').evaluate((el) => el.getBoundingClientRect().height);
      assert.ok(top <= 110, `the top bar is ${top}px tall`);
      const fitsIn = (el) => {
        const r = el.getBoundingClientRect();
        return r.left >= 0 && r.right <= window.innerWidth;
      };
      assert.ok(await pp.locator('#project-switch').evaluate(fitsIn), 'the project picker is whole');
      const noSideways = () => pp.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      assert.ok(await noSideways(), 'the webhooks page scrolls sideways');
      const card = pp.locator('tr', { hasText: 'churn releases' });
      for (const label of ['URL', 'State', 'Success (last day)', 'Last delivery']) {
        assert.ok(await card.locator(`td[data-label="${label}"]`).evaluate(fitsIn), `${label} is off-screen`);
      }
      await screen('webhooks-phone', {}, pp);

      await pp.getByRole('link', { name: 'Delivery log' }).click();
      await pp.getByRole('heading', { name: 'Delivery log' }).waitFor();
      const first = pp.locator('tbody tr').first();
      for (const label of ['Status', 'Response']) {
        assert.ok(await first.locator(`td[data-label="${label}"]`).evaluate(fitsIn), `${label} is off-screen`);
      }
      assert.ok(await noSideways(), 'the delivery log scrolls sideways');
      await screen('deliveries-phone', { fullPage: false }, pp);

      await pp.goto(`${BASE}/#/p/fraud-team/webhooks`);
      await pp.getByRole('link', { name: 'churn releases' }).click();
      await pp.getByRole('heading', { name: /churn releases/ }).waitFor();
      assert.ok(await noSideways(), 'the webhook page scrolls sideways');
      const outside = await pp.evaluate(() => [...document.querySelectorAll('main select, main input, main button')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5).map((el) => el.name || el.textContent));
      assert.deepEqual(outside, [], 'controls past the right edge');
      await screen('webhook-detail-phone', {}, pp);

      await pp.goto(`${BASE}/#/p/fraud-team/webhooks/new`);
      await pp.getByRole('heading', { name: 'New webhook' }).waitFor();
      const walk = await obscuredTabStops(pp);
      assert.ok(walk.count > 40, `only ${walk.count} tab stops`);
      assert.deepEqual(walk.hidden, [], 'tab stops under the button bar');
      assert.ok(await noSideways(), 'the form scrolls sideways');
      await pp.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
      await screen('webhook-form-phone', { fullPage: false }, pp);
    } finally {
      await phone.close();
    }
  });

  await step('a read token is told at once that it cannot create webhooks', async () => {
    const made = await api('POST', '/v1/projects/fraud-team/tokens', { name: 'dashboards', kind: 'read' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    NEVER_SHOWN.push(made.body.token);
    const reader = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: 'light' });
    try {
      const rp = await reader.newPage();
      rp.setDefaultTimeout(10_000);
      watch(rp);
      await signInAt(rp, '#/p/fraud-team/webhooks/new', made.body.token);
      await rp.getByText('This token can only read').waitFor();
      assert.equal(await rp.getByRole('button', { name: 'Create webhook' }).count(), 0);
      assert.equal(await rp.getByLabel('URL', { exact: true }).count(), 0);
      await accessible('read-only form', rp);
      await rp.getByRole('link', { name: 'Back to the webhooks' }).click();
      await rp.getByRole('heading', { name: 'Webhooks' }).waitFor();
      assert.equal(await rp.getByRole('link', { name: '+ Create webhook' }).count(), 0);
    } finally {
      await reader.close();
    }
  });

  await step('webhooks list: search and sort', async () => {
    await section('Webhooks').click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
    const names = () => page.locator('tbody tr .cell-main').allTextContents();
    assert.deepEqual(await names(), ['churn releases', 'drift alerts', 'release bot (staging)']);
    await page.getByLabel('Search').fill('teams');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
    assert.deepEqual(await names(), ['drift alerts']);
    assert.match(page.url(), /q=teams/);
    await page.getByLabel('Search').fill('');
    await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 3);
    await page.getByLabel('Sort by').selectOption('newest');
    assert.deepEqual(await names(), ['release bot (staging)', 'drift alerts', 'churn releases']);
    await page.getByLabel('Sort by').selectOption('success');
    assert.equal((await names())[2], 'release bot (staging)', 'no deliveries: last');
    assert.match(page.url(), /sort=success/);
    await screen('webhooks-sorted', { fullPage: false });
  });

  await step('project settings: rename; tokens shown once, listed, revoked; audit log; delete after typing the id', async () => {
    await section('Settings').click();
    await page.getByRole('heading', { name: 'Project settings' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Fraud and risk');
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    await page.getByText(/^Saved at /).waitFor();
    assert.equal((await api('GET', '/v1/projects/fraud-team')).body.name, 'Fraud and risk');
    await page.waitForFunction(() => document.getElementById('project-switch').selectedOptions[0].textContent === 'Fraud and risk (fraud-team)');
    await screen('settings', { fullPage: false });

    const tabs = page.getByRole('navigation', { name: 'Project settings' });
    await tabs.getByRole('link', { name: 'Tokens' }).click();
    await page.getByRole('heading', { name: 'Tokens' }).waitFor();
    await page.locator('tr', { hasText: 'dashboards' }).getByText('read').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('ci-pipeline');
    await page.getByRole('button', { name: 'Create token' }).click();
    const token = await page.getByTestId('new-token').textContent();
    assert.match(token, /^mlh_/);
    await page.getByRole('button', { name: 'Copy token' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
    const works = await fetch(`${BASE}/v1/projects/fraud-team/webhooks`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(works.status, 200);
    await screen('tokens', { fullPage: false });
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('tr', { hasText: 'ci-pipeline' });
    await row.getByText('active').waitFor();
    assert.ok(!(await page.content()).includes(token), 'a token is shown once');
    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: /^Revoke/ }).click();
    await page.locator('tr', { hasText: 'ci-pipeline' }).getByText('revoked').waitFor();
    const refused = await fetch(`${BASE}/v1/projects/fraud-team/webhooks`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(refused.status, 401);

    await tabs.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.locator('tr', { hasText: 'token.revoked' }).waitFor();
    await page.locator('tr', { hasText: 'project.updated' }).waitFor();
    const created = page.locator('tr', { hasText: 'token.created' }).first();
    await created.locator('summary').click();
    await created.getByTestId('payload').getByText('"ci-pipeline"').waitFor();
    await screen('audit', { fullPage: false });

    assert.equal((await api('POST', '/v1/projects', { id: 'scratch', name: 'Scratch' })).status, 201);
    await page.goto(`${BASE}/#/p/scratch/settings`);
    await page.getByRole('heading', { name: 'Project settings' }).waitFor();
    const remove = page.getByRole('button', { name: 'Delete this project' });
    assert.equal(await remove.isDisabled(), true);
    await page.getByLabel('Type scratch to confirm').fill('scratc');
    assert.equal(await remove.isDisabled(), true);
    await page.getByLabel('Type scratch to confirm').fill('scratch');
    await remove.click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    assert.equal((await api('GET', '/v1/projects/scratch')).status, 404);
    assert.equal(await page.getByRole('link', { name: 'Scratch' }).count(), 0);
  });

  await step('sources: a write-only secret, the URL for MLflow, refused requests listed, deleted', async () => {
    await page.goto(`${BASE}/#/p/fraud-team/sources`);
    await page.getByRole('heading', { name: 'Sources', exact: true }).waitFor();
    await page.getByText('No sources').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('mlflow prod');
    await page.getByLabel('Secret', { exact: true }).fill(SOURCE_SECRET);
    await page.getByRole('button', { name: 'Create source' }).click();
    const url = await page.getByTestId('source-url').textContent();
    assert.match(url, /\/v1\/projects\/fraud-team\/sources\/src_[0-9a-f]+\/mlflow$/);
    assert.equal(await page.getByLabel('Secret', { exact: true }).inputValue(), '', 'the secret leaves the form');
    const refused = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 400);
    await page.getByRole('button', { name: 'Done' }).click();
    const row = page.locator('tr', { hasText: 'mlflow prod' });
    await row.getByText('signed', { exact: true }).waitFor();
    await row.getByRole('button', { name: /^Refused requests/ }).click();
    await page.getByTestId('source-log').getByText('missing_header').waitFor();
    const refusedWithBody = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-mlflow-delivery-id': 'd-1', 'x-mlflow-timestamp': String(Math.floor(Date.now() / 1000)) },
      body: '{"entity": "model_version", "action": "created"}',
    });
    assert.equal(refusedWithBody.status, 401, 'no signature');
    await row.getByRole('button', { name: /^Refused requests/ }).click();
    const withBody = page.getByTestId('source-log').locator('tr', { hasText: 'missing_signature' });
    await withBody.locator('summary').click();
    await withBody.getByText('"model_version"').first().waitFor();
    await screen('sources', { fullPage: false });
    await row.getByRole('button', { name: /^Change secret/ }).click();
    await page.getByLabel('New secret', { exact: true }).fill(NEXT_SOURCE_SECRET);
    await page.getByLabel('The old secret still verifies for').selectOption('1h');
    await page.getByRole('button', { name: 'Change secret', exact: true }).click();
    await page.getByText(/^Secret changed; the old one verifies until /).waitFor();
    const [changed] = (await api('GET', '/v1/projects/fraud-team/sources')).body.data;
    assert.ok(changed.previous_secret_expires_at, 'the old secret has a grace period');
    assert.ok(Date.parse(changed.previous_secret_expires_at) - Date.now() > 50 * 60_000, 'about an hour of grace');
    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: /^Delete/ }).click();
    await page.getByText('No sources').waitFor();
    assert.equal((await api('GET', '/v1/projects/fraud-team/sources')).body.data.length, 0);
  });

  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to mlhook' }).waitFor();
    assert.equal((await context.cookies()).some((c) => c.name === 'mlhook_session' && c.value), false);
    const status = await page.evaluate(async () => (await fetch('/v1/projects')).status);
    assert.equal(status, 401);
  });

  await step('no secret reached the page, and the browser saw no fault', async () => {
    await noSecretsIn('the whole run');
    assert.ok(fetched.length > 20, `the page fetched ${fetched.length} answers`);
    assert.deepEqual(problems, []);
    assert.deepEqual(errorAnswers, [], 'error answers the story did not expect');
  });
});
