import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, type Page, chromium } from 'playwright-core';
import { buildPage } from '../src/page/build';
import { AppBackend, json } from './helpers/app-backend';
import { ChildGateway, type InProcessGateway, TcpProxy, firstBreak, freePort, sleep, startGateway } from './sdk-harness';

const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

/** What the page keeps of every delivery (window.wsgatePage.kept). */
const kept = (page: Page, topic: string) =>
  page.evaluate((t) => (window as unknown as { wsgatePage: { kept: { topic: string; seq: number }[] } }).wsgatePage.kept.filter((k) => k.topic === t).map((k) => k.seq), topic);

describe('built-in page in headless Chromium', () => {
  let browser: BrowserContext;
  let profile: string;
  let node: ChildGateway;
  let proxy: TcpProxy;
  let plain: InProcessGateway;

  before(async () => {
    await buildPage();
    // History deep enough that a slow reconnect on a loaded machine still resumes (the default 100 is ~0.5 s here).
    node = await ChildGateway.start(await freePort(), ['--demo', '--page', '--client-publish', '--history-size', '20000']);
    // The browser reaches the gateway through a proxy the test can cut: an abrupt server-side disconnect.
    proxy = await TcpProxy.start(node.port);
    plain = await startGateway(['--page']);
    profile = mkdtempSync(path.join(tmpdir(), 'wsgate-chromium-'));
    // A fresh profile per run: nothing cached or remembered from another run.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
      viewport: { width: 1280, height: 800 },
    });
  });
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await node?.stop();
    await plain?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  test('connect, see demo messages, subscribe, publish, survive forced disconnects with no loss', async () => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const failedRequests: string[] = [];
    page.on('response', (r) => r.status() >= 400 && failedRequests.push(`${r.status()} ${r.url()}`));
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    await page.locator('#state', { hasText: 'open' }).waitFor({ timeout: 5000 });
    // Reading order: the first event is the first thing that happened.
    assert.match((await page.locator('#events li').first().textContent()) ?? '', /connecting/);
    assert.deepEqual(failedRequests, [], 'no request fails (the favicon is inline)');
    // The demo publishes every 2 s; the page subscribes to `demo` by default.
    await page.locator('#rows tr', { hasText: 'demo notification' }).first().waitFor({ timeout: 6000 });

    await page.fill('#sub-topic', 'load');
    await page.click('#sub-form button');
    await page.locator('#subs li[data-topic="load"]').waitFor();

    let published = 0;
    let publishing = true;
    const load = (async () => {
      while (publishing) {
        const res = await fetch(`http://127.0.0.1:${node.port}/publish`, { method: 'POST', body: JSON.stringify({ topic: 'load', data: { i: published + 1 } }), headers: { 'content-type': 'application/json' } });
        if (res.ok) published++;
        await sleep(5);
      }
    })();

    await page.fill('#pub-topic', 'demo');
    await page.fill('#pub-data', '{"text":"hello from the browser test"}');
    await page.click('#pub-form button');
    await page.locator('#pub-status', { hasText: 'published to demo as seq' }).waitFor({ timeout: 3000 });
    await page.locator('#rows tr', { hasText: 'hello from the browser test' }).waitFor({ timeout: 3000 });

    for (let i = 0; i < 3; i++) {
      await sleep(300);
      proxy.cut();
      await page.locator('#events li', { hasText: 'reconnecting' }).nth(i).waitFor({ timeout: 3000 });
      await page.locator('#state', { hasText: 'open' }).waitFor({ timeout: 5000 });
    }
    await sleep(1200); // let the rate settle for the screenshot
    publishing = false;
    await load;
    const deadline = Date.now() + 5000;
    while ((await kept(page, 'load')).length < published && Date.now() < deadline) await sleep(50);

    const loadSeqs = await kept(page, 'load');
    assert.ok(published > 100, `published ${published}`);
    assert.equal(firstBreak(loadSeqs, 1), -1, `load: sequence broken at index ${firstBreak(loadSeqs, 1)}`);
    assert.equal(loadSeqs.length, published);
    const demoSeqs = await kept(page, 'demo');
    assert.equal(firstBreak(demoSeqs, demoSeqs[0] ?? 0), -1, `demo: ${demoSeqs.join(',')}`);
    assert.equal(await page.locator('#events li.warn', { hasText: 'gap' }).count(), 0);
    assert.deepEqual(pageErrors, []);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-page.png') });
    console.log(`# browser: ${published} load messages across 3 forced disconnects, none lost or duplicated; demo seqs ${demoSeqs.join(',')}`);
    await page.close();
  });

  test('publishing without --client-publish shows the forbidden message', async () => {
    const page = await browser.newPage();
    await page.goto(`${plain.http}/`);
    await page.locator('#state', { hasText: 'open' }).waitFor({ timeout: 5000 });
    await page.click('#pub-form button');
    const status = page.locator('#pub-status.error');
    await status.waitFor({ timeout: 3000 });
    assert.match((await status.textContent()) ?? '', /^forbidden: .*--client-publish/);
    await page.close();
  });

  test('a gateway behind the connect proxy: the page cookies flow on the upgrade, no SDK or page change', async () => {
    const app = await AppBackend.start();
    app.on('/connect', (r, res) => {
      const cookie = (r.body as { headers: { cookie?: string } }).headers.cookie ?? '';
      if (!/(^|; )session=alice-session(;|$)/.test(cookie)) return json(res, 401, { reason: 'log in first' });
      json(res, 200, { user: 'alice', subscribe: ['demo', 'chat.*'], publish: ['chat.*'] });
    });
    const gw = await startGateway(['--page', '--client-publish', '--connect-proxy-url', `${app.url}/connect`]);
    const page = await browser.newPage();
    try {
      // No session yet: the application refuses and the page never opens.
      await page.goto(`${gw.http}/`);
      await sleep(1000);
      assert.notEqual((await page.locator('#state').textContent())?.trim(), 'open');
      assert.ok(app.at('/connect').length >= 1, 'the application was asked');
      // The application's login sets a cookie for the gateway's host; the browser sends it on the upgrade itself.
      await browser.addCookies([{ name: 'session', value: 'alice-session', domain: '127.0.0.1', path: '/' }]);
      await page.reload();
      await page.locator('#state', { hasText: 'open' }).waitFor({ timeout: 8000 });
      const asked = app.at('/connect').at(-1)?.body as { headers: Record<string, string> };
      assert.match(asked.headers.cookie ?? '', /session=alice-session/);
      assert.match(asked.headers['user-agent'] ?? '', /Chrome/);
      assert.equal(asked.headers.origin, gw.http);
      await fetch(`${gw.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'demo', data: { text: 'for alice' } }) });
      await page.locator('#rows tr', { hasText: 'for alice' }).waitFor({ timeout: 3000 });
      // The application's grants hold: publishing to demo is refused.
      await page.fill('#pub-topic', 'demo');
      await page.fill('#pub-data', '{"text":"not allowed"}');
      await page.click('#pub-form button');
      await page.locator('#pub-status.error', { hasText: 'forbidden' }).waitFor({ timeout: 3000 });
    } finally {
      await browser.clearCookies();
      await page.close();
      await gw.stop();
      await app.stop();
    }
  });
});
