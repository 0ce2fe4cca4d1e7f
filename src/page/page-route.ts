import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { sendText } from '../server/http-reply';
import { PAGE_DIR } from './build';

interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

/**
 * Serves the built-in page at `/` (and its script at `/app.js`) from memory: the files are read once
 * here, so a request never touches the disk. Registered only with `--page`.
 */
export function registerPage(app: TemplatedApp, config: Config, log: Logger, dir = PAGE_DIR): void {
  let assets: Map<string, Asset>;
  try {
    // The page learns the WebSocket path from a meta tag, so a custom --ws-path needs no rebuild.
    const html = readFileSync(path.join(dir, 'index.html'), 'utf8').replace('{{WS_PATH}}', config.wsPath);
    assets = new Map([
      ['/', { body: Buffer.from(html), contentType: 'text/html; charset=utf-8' }],
      ['/app.js', { body: readFileSync(path.join(dir, 'app.js')), contentType: 'text/javascript; charset=utf-8' }],
    ]);
  } catch (e) {
    // A missing build must not stop the gateway; the page explains what to do instead.
    log.error({ dir, err: (e as Error).message }, 'built-in page not built: run `npm run build`');
    app.get('/', (res) => sendText(res, '503 Service Unavailable', 'wsgate: the built-in page is not built; run `npm run build`.\n'));
    return;
  }
  for (const [route, asset] of assets) {
    app.get(route, (res) => {
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('content-type', asset.contentType).writeHeader('cache-control', 'no-cache').end(asset.body);
      });
    });
  }
}
