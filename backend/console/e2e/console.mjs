// Browser test of the faregate web console: Playwright (playwright-core,
// no browser download) driving Debian's chromium headless. Run by
// TestBrowser (console_test.go), which starts a back office filled with
// signed uploads and settled days and passes it in the environment.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import path from 'node:path';

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} unset`); return v; };
const base = env('FAREGATE_URL');
const token = env('FAREGATE_OPERATOR_TOKEN');
const user = env('FAREGATE_OPERATOR_USER');
const password = env('FAREGATE_OPERATOR_PASSWORD');
const riderToken = env('FAREGATE_RIDER');
const riderPAN = env('FAREGATE_RIDER_PAN');
const artifacts = env('FAREGATE_ARTIFACTS');

async function api(p) {
  const r = await fetch(base + p, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(r.status, 200, `${p}: ${r.status}`);
  return r.json();
}

const browser = await chromium.launchPersistentContext(env('FAREGATE_USER_DATA'), {
  executablePath: env('FAREGATE_CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1200, height: 860 },
});
let step = 'start';
try {
  const page = browser.pages()[0] ?? await browser.newPage();
  const text = async (sel) => (await page.locator(sel).first().textContent()).trim();
  const shot = (name) => page.screenshot({ path: path.join(artifacts, name + '.png'), fullPage: true });

  step = 'login enforced';
  for (const p of ['/console/', '/console/gates', '/console/denylist', `/console/rider?token=${riderToken}`]) {
    await page.goto(base + p);
    assert.equal(new URL(page.url()).pathname, '/console/login', `${p} without a session`);
  }
  await page.fill('#token', 'not the token');
  await page.click('#login');
  assert.match(await text('#error'), /Wrong operator token/);
  await page.fill('#user', user);
  await page.fill('#password', 'not the password');
  await page.click('#login-password');
  assert.match(await text('#error'), /Wrong user name or password/);
  await page.fill('#user', 'nobody');
  await page.fill('#password', password);
  await page.click('#login-password');
  assert.match(await text('#error'), /Wrong user name or password/, 'an unknown user reads like a wrong password');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  await shot('login');
  await page.fill('#user', user);
  await page.fill('#password', password);
  await page.click('#login-password');
  assert.equal(new URL(page.url()).pathname, '/console/');
  assert.equal(await text('#user-name'), user, 'the header names the operator');
  const ck = (await browser.cookies(base + '/console/')).find((c) => c.name === 'faregate_console');
  assert.ok(ck, 'session cookie');
  assert.equal(ck.httpOnly, true);
  assert.equal(ck.sameSite, 'Strict');

  step = 'overview';
  const ov = await api('/v1/overview');
  assert.ok(ov.taps > 0 && ov.riders > 0, 'the back office has data');
  for (const [sel, want] of [['#taps', ov.taps], ['#opened', ov.opened], ['#refused', ov.refused], ['#riders', ov.riders],
    ['#fares', ov.fares], ['#charged', ov.charged], ['#saved', ov.saved], ['#billed', ov.billed],
    ['#declined-amount', ov.declined.amount], ['#declined-count', ov.declined.charges],
    ['#debt-owed', ov.debt.owed], ['#debt-listed', ov.debt.listed]]) {
    assert.equal(await text(sel), String(want), `overview ${sel}`);
  }
  assert.notEqual(ov.saved, '0.00', 'caps saved something');
  assert.equal(ov.declined.charges, 2);
  assert.ok(ov.decisions.some((d) => d.reason === 'denied'), 'gates refused the deny-listed cards');
  for (const d of ov.decisions) {
    const row = page.locator(`#decisions tr[data-decision="${d.decision}"][data-reason="${d.reason}"] td.n`);
    assert.equal((await row.textContent()).trim(), String(d.taps), `decisions ${d.decision}/${d.reason}`);
  }
  assert.equal(await page.locator('#decisions tbody tr').count(), ov.decisions.length);
  for (const s of ov.billing) {
    const cells = page.locator(`#billing tr[data-status="${s.status}"] td.n`);
    assert.equal((await cells.nth(0).textContent()).trim(), String(s.charges), `billing ${s.status}`);
    assert.equal((await cells.nth(1).textContent()).trim(), s.amount, `billing ${s.status}`);
  }
  assert.equal(await page.locator('#chart rect.open').count(), ov.hours.length, 'a bar per hour');
  assert.equal(await text('#chart-max'), String(Math.max(...ov.hours.map((h) => h.taps))));
  await shot('overview');

  step = 'rider by token';
  const rc = await api(`/v1/riders/${riderToken}/receipts`);
  await page.goto(`${base}/console/rider?token=${riderToken}`);
  for (const [sel, want] of [['#token', rc.token], ['#masked-pan', rc.masked_pan], ['#fares', rc.fares], ['#charged', rc.charged],
    ['#saved', rc.saved], ['#owed', rc.denylist.owed]]) {
    assert.equal(await text(sel), String(want), `rider ${sel}`);
  }
  assert.equal(await page.locator('#legs tbody tr').count(), rc.legs.length);
  assert.equal(await page.locator('#charges tbody tr').count(), rc.charges.length);
  assert.equal(await page.locator('#days tbody tr').count(), rc.days.length);
  const capped = rc.legs.filter((l) => l.capped_by).length;
  assert.ok(capped > 0, 'a cap bound some leg');
  assert.equal(await page.locator('#legs tbody tr', { hasText: rc.legs.find((l) => l.capped_by).capped_by }).count() >= 1, true);
  const html = await page.content();
  assert.ok(!html.includes(riderPAN), 'never the PAN');
  await shot('rider');

  step = 'rider by PAN';
  await page.goto(`${base}/console/rider`);
  await page.fill('#q-pan', riderPAN);
  await page.click('#find-pan');
  assert.equal(new URL(page.url()).searchParams.get('token'), riderToken);
  assert.ok(!page.url().includes(riderPAN) && !(await page.content()).includes(riderPAN), 'the PAN goes nowhere');
  assert.equal(await text('#saved'), rc.saved);

  step = 'deny list';
  const dl = await api('/v1/denylist/status');
  await page.goto(`${base}/console/denylist`);
  assert.equal(await text('#version'), String(dl.version));
  assert.equal(await text('#listed'), String(dl.listed));
  assert.equal(await text('#owed'), dl.debt.owed);
  assert.equal(await page.locator('#entries tbody tr').count(), dl.entries.length);
  for (const e of dl.entries) {
    assert.equal((await page.locator(`#entries tr[data-token="${e.token}"] td.owed`).textContent()).trim(), e.owed);
  }
  for (const g of dl.gates) {
    assert.equal((await page.locator(`#gates tr[data-gate="${g.id}"] td.dlv`).textContent()).trim(), String(g.denylist_version));
  }
  assert.ok(dl.gates.some((g) => g.denylist_behind > 0), 'a gate behind');
  await shot('denylist');

  step = 'gates';
  const gs = (await api('/v1/gates')).gates;
  await page.goto(`${base}/console/gates`);
  assert.equal(await page.locator('#gates tbody tr').count(), gs.length);
  for (const g of gs) {
    const row = `#gates tr[data-gate="${g.id}"]`;
    assert.equal((await page.locator(`${row} td.taps`).textContent()).trim(), String(g.taps), `${g.id} taps`);
    assert.equal((await page.locator(`${row} td.seq`).textContent()).trim(), String(g.last_seq), `${g.id} seq`);
    assert.equal((await page.locator(`${row} td.backlog`).textContent()).trim(), String(g.backlog), `${g.id} backlog`);
    assert.equal((await page.locator(`${row} td.dlv`).textContent()).trim(), String(g.denylist_version), `${g.id} deny list`);
  }
  await shot('gates');

  step = 'logout';
  await page.click('#logout');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  for (const p of ['/console/', '/console/gates', '/console/denylist', '/console/rider']) {
    await page.goto(base + p);
    assert.equal(new URL(page.url()).pathname, '/console/login', `${p} after logout`);
  }

  step = 'login by token';
  await page.fill('#token', token);
  await page.click('#login');
  assert.equal(new URL(page.url()).pathname, '/console/');
  assert.equal(await page.locator('#user-name').count(), 0, 'a token login names no user');
  await page.click('#logout');
  assert.equal(new URL(page.url()).pathname, '/console/login');
  console.log(`console e2e: ok (${ov.taps} taps, ${ov.riders} riders, saved ${ov.saved}); screenshots in ${artifacts}`);
} catch (e) {
  console.error(`console e2e failed at step "${step}":`, e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
