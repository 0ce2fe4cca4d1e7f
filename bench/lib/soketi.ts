import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PUSHER_BENCH_APP } from './dialect';

/**
 * Soketi (`@soketi/soketi` from npm) as a Pusher-protocol baseline. Its package pins uWebSockets.js to
 * a GitHub tag (v20.10.0), which a registry-only machine cannot fetch and which has no binary for
 * Node 20+; bench/soketi/package.json overrides it with the registry build the gateway uses
 * (20.57.0, whose API Soketi 1.6.1 runs on unchanged), and the project's copy, patched for this host's
 * glibc at install, is linked in its place. Installed on first use into bench/soketi/node_modules.
 */
const DIR = path.resolve(__dirname, '..', '..', '..', 'bench', 'soketi');
const BIN = path.join(DIR, 'node_modules', '@soketi', 'soketi', 'bin', 'server.js');
const PROJECT_UWS = path.resolve(__dirname, '..', '..', '..', 'node_modules', 'uWebSockets.js');

/** The Soketi entry point, installing it first if needed; an Error says why it cannot run. */
export function soketiBin(): string | Error {
  try {
    if (!fs.existsSync(BIN)) {
      console.log('  installing @soketi/soketi into bench/soketi (first use) …');
      execFileSync('npm', ['install', '--prefix', DIR, '--no-audit', '--no-fund', '--no-package-lock', '--loglevel', 'error'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
    }
    const uws = path.join(DIR, 'node_modules', 'uWebSockets.js');
    if (!fs.lstatSync(uws, { throwIfNoEntry: false })?.isSymbolicLink()) {
      fs.rmSync(uws, { recursive: true, force: true });
      fs.symlinkSync(PROJECT_UWS, uws, 'dir');
    }
    return BIN;
  } catch (e) {
    return new Error(`Soketi could not be installed or prepared: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Soketi's arguments for `port`: a config file with the bench app, client events on, no rate limits. */
export function soketiArgs(bin: string, port: number): string[] {
  const file = path.join(os.tmpdir(), `wsgate-bench-soketi-${port}.json`);
  const app = { ...PUSHER_BENCH_APP, maxConnections: -1, enableClientMessages: true, enabled: true, maxBackendEventsPerSecond: -1, maxClientEventsPerSecond: -1, maxReadRequestsPerSecond: -1, webhooks: [] };
  fs.writeFileSync(file, JSON.stringify({ port, host: '127.0.0.1', 'metrics.enabled': false, 'appManager.array.apps': [app], 'channelLimits.maxNameLength': 200 }));
  return [bin, 'start', `--config=${file}`];
}
