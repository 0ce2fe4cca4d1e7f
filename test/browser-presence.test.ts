import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { buildPage } from '../src/page/build';
import { launchChromium } from './helpers/chromium';
import { ChildGateway, freePort } from './sdk-harness';

const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

describe('built-in page: presence and join/leave on the demo chat topic (headless Chromium)', () => {
  let browser: BrowserContext;
  let closeBrowser: (() => Promise<void>) | undefined;
  let node: ChildGateway;

  before(async () => {
    await buildPage();
    node = await ChildGateway.start(await freePort(), ['--demo', '--page']);
    ({ browser, close: closeBrowser } = await launchChromium({ width: 1280, height: 800 }));
  });
  after(async () => {
    await closeBrowser?.();
    await node?.stop();
  });

  test('two pages see each other present; one leaving is logged and leaves the list', async () => {
    const first = await browser.newPage();
    const errors: string[] = [];
    first.on('pageerror', (e) => errors.push(e.message));
    await first.goto(`http://127.0.0.1:${node.port}/`);
    await first.locator('#presence li').first().waitFor({ timeout: 5000 });
    assert.equal(await first.locator('#presence li').count(), 1, 'alone at first');

    const second = await browser.newPage();
    await second.goto(`http://127.0.0.1:${node.port}/`);
    await second.locator('#presence li').nth(1).waitFor({ timeout: 5000 });
    await first.locator('#events li', { hasText: 'joined demo.chat' }).waitFor({ timeout: 5000 });
    await first.locator('#presence li').nth(1).waitFor({ timeout: 5000 });
    await second.close();
    await first.locator('#events li', { hasText: 'left demo.chat' }).waitFor({ timeout: 5000 });
    await first.waitForFunction(() => document.querySelectorAll('#presence li').length === 1, undefined, { timeout: 5000 });
    assert.deepEqual(errors, []);
    mkdirSync(ARTIFACTS, { recursive: true });
    await first.screenshot({ path: path.join(ARTIFACTS, 'browser-presence.png') });
    await first.close();
  });
});
