import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DialectName, PUSHER_BENCH_APP } from './dialect';
import { freePort, pinning, spawnNode, stopProcess, waitForPort } from './procs';
import { soketiArgs, soketiBin } from './soketi';

export type ServerName = 'wsgate' | 'pusher' | 'uws' | 'ws' | 'socketio' | 'soketi';
export const ALL_SERVERS: readonly ServerName[] = ['wsgate', 'pusher', 'uws', 'ws', 'socketio', 'soketi'];

/** dist/ root: this file is dist/bench/lib/servers.js. */
const DIST = path.resolve(__dirname, '..', '..');
export const WSGATE_MAIN = path.join(DIST, 'src', 'cli', 'main.js');

export interface ServerDef {
  name: ServerName;
  label: string;
  dialect: DialectName;
  /** node arguments (script first) for a given port. */
  args(port: number): string[];
}

const baseline = (file: string) => (port: number) => [path.join(DIST, 'bench', 'baselines', file), '--port', String(port)];

const wsgateArgs = (port: number): string[] => [
  WSGATE_MAIN,
  'serve',
  '--host',
  '127.0.0.1',
  '--port',
  String(port),
  '--client-publish',
  // A bench machine: the open HTTP API and unlimited command rate are what is measured.
  '--api-insecure',
  '--max-commands-per-second',
  '0',
  '--log-level',
  'warn',
  '--max-connections',
  '200000',
  '--max-backpressure',
  String(1024 * 1024),
  // Exit promptly on SIGTERM (the default drains connections over 10 s).
  '--drain-window',
  '0',
];

export const SERVERS: Record<ServerName, ServerDef> = {
  wsgate: {
    name: 'wsgate',
    label: 'wsgate',
    dialect: 'plain',
    args: (port) => wsgateArgs(port),
  },
  // The same wsgate process spoken to through its Pusher front door (client events as publishes).
  pusher: {
    name: 'pusher',
    label: 'wsgate (Pusher protocol)',
    dialect: 'pusher',
    args: (port) => [
      ...wsgateArgs(port),
      '--pusher-apps',
      `${PUSHER_BENCH_APP.id}:${PUSHER_BENCH_APP.key}:${PUSHER_BENCH_APP.secret}`,
      '--pusher-client-events',
      '--pusher-client-events-per-second',
      '10000',
      // A Pusher publisher sends client events, which need a subscription to the channel, so each one
      // holds every topic of the scenario (manytopics: 1,000); wsgate's publish needs none.
      '--max-topics-per-conn',
      '10000',
    ],
  },
  uws: { name: 'uws', label: 'raw uWS', dialect: 'plain', args: baseline('uws.js') },
  ws: { name: 'ws', label: 'ws', dialect: 'plain', args: baseline('ws.js') },
  socketio: { name: 'socketio', label: 'Socket.IO', dialect: 'socketio', args: baseline('socketio.js') },
  // run.ts checks soketiBin() before a run includes it.
  soketi: {
    name: 'soketi',
    label: 'Soketi',
    dialect: 'pusher',
    args: (port) => {
      const bin = soketiBin();
      if (bin instanceof Error) throw bin;
      return soketiArgs(bin, port);
    },
  },
};

export function wsgateAvailable(): boolean {
  return fs.existsSync(WSGATE_MAIN);
}

export interface RunningServer {
  def: ServerDef;
  port: number;
  pid: number;
  child: ChildProcess;
}

/** Node flags for servers, e.g. `--cpu-prof` (set by `--cpu-prof` on the bench command line). */
export const serverNodeFlags: string[] = [];

/**
 * Starts a server pinned to the server core and waits until it accepts TCP connections. `nodeFlags`:
 * for node itself (e.g. `-r GC_PRELOAD`), before the script.
 */
export async function startServer(def: ServerDef, extraArgs: readonly string[] = [], nodeFlags: readonly string[] = []): Promise<RunningServer> {
  const port = await freePort();
  const child = spawnNode(pinning()?.server ?? null, [...serverNodeFlags, ...nodeFlags, ...def.args(port), ...extraArgs], false);
  try {
    await waitForPort(port, child, 15000);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${def.name}: no pid`);
  return { def, port, pid: child.pid, child };
}

export async function stopServer(s: RunningServer): Promise<void> {
  await stopProcess(s.child);
}
