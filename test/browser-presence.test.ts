import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BrowserContext, chromium } from 'playwright-core';
import { buildPage } from '../src/page/build';
import { ChildGateway, freePort } from './sdk-harness';

const ARTIFACTS = path.join(__dirname, '..', '..', 'test-artifacts');

describe('built-in page: presence and join/leave on the demo chat topic (headless Chromium)', () => {
  let browser: BrowserContext;
  let profile: string;
  let node: ChildGateway;

  before(async () => {
    await buildPage();
    node = await ChildGateway.start(await freePort(), ['--demo', '--page']);
    profile = mkdtempSync(path.join(tmpdir(), 'wsgate-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 800 },
    });
  });
  after(async () => {
    await browser?.close();
    await node?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
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
