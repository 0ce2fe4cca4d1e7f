import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** Where the built page lives: dist/page, next to the compiled dist/src. */
export const PAGE_DIR = path.resolve(__dirname, '..', '..', 'page');
const SOURCE_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'page');

/**
 * Bundles the page script and the SDK (with msgpackr) into one ES module for browsers, and copies the
 * HTML. A bundler rather than hand-written JS: the page then uses the very SDK that is tested, with no
 * second client to keep in sync. esbuild is a dev dependency, needed only at build time; `ws` is marked
 * external because the SDK loads it only where no native WebSocket exists, never in a browser.
 */
export async function buildPage(outDir = PAGE_DIR): Promise<void> {
  const esbuild = await import('esbuild');
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(SOURCE_DIR, 'browser', 'app.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    sourcemap: false,
    external: ['ws'],
    logLevel: 'warning',
  });
  copyFileSync(path.join(SOURCE_DIR, 'static', 'index.html'), path.join(outDir, 'index.html'));
}

if (require.main === module) {
  buildPage().catch((e: Error) => {
    console.error(`page build failed: ${e.message}`);
    process.exit(1);
  });
}
