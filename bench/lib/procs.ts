import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

let pinningOff = false;

/** `--no-pin`: servers and generator run unpinned, every thread where the scheduler puts it. */
export function disablePinning(): void {
  pinningOff = true;
}

/** Cores for the server and the generator; null when the machine has a single core or `--no-pin` (no pinning). */
export function pinning(): { server: number; generator: number } | null {
  return !pinningOff && os.cpus().length >= 2 ? { server: 0, generator: 1 } : null;
}

/** How the run placed its processes, for the report. */
export function pinningLabel(): string {
  const pin = pinning();
  if (pin !== null) return `server on core ${pin.server}, generator on core ${pin.generator} (taskset)`;
  return pinningOff ? 'none (--no-pin): every thread of server and generator where the scheduler puts it' : 'single core: not pinned';
}

/** Spawns `node <args>` pinned to `cpu` with taskset (taskset execs node, so the PID is node's). */
export function spawnNode(cpu: number | null, args: readonly string[], ipc: boolean): ChildProcess {
  return spawnPinned(cpu, process.execPath, args, ipc ? ['ignore', 'inherit', 'pipe', 'ipc'] : ['ignore', 'inherit', 'pipe']);
}

/**
 * Spawns `command <args>` pinned to `cpu` with taskset (same PID), keeps the tail of its stderr
 * (stdio[2] must be 'pipe' for that) and tracks it for killAllChildren.
 */
export function spawnPinned(cpu: number | null, command: string, args: readonly string[], stdio: ('ignore' | 'inherit' | 'pipe' | 'ipc')[]): ChildProcess {
  const child = cpu === null ? spawn(command, args, { stdio }) : spawn('taskset', ['-c', String(cpu), command, ...args], { stdio });
  // Keep the tail of stderr for error reports; servers log little at warn level.
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => {
    tail = (tail + d.toString()).slice(-2000);
  });
  stderrTails.set(child, () => tail);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Every child still running, so an interrupted run can stop them (by PID) before exiting. */
const live = new Set<ChildProcess>();

export function killAllChildren(): void {
  for (const c of live) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
}

const stderrTails = new WeakMap<ChildProcess, () => string>();

export function stderrOf(child: ChildProcess): string {
  return stderrTails.get(child)?.() ?? '';
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when a TCP connect to the port succeeds; rejects when the child dies or on timeout. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}): ${stderrOf(child)}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} not listening after ${timeoutMs} ms: ${stderrOf(child)}`);
}

/** SIGTERM by PID, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** What gc-on-signal.ts writes on stderr after each collection it was asked for. */
export const GC_MARK = 'bench-gc-done';

/** Preload for `node -r` that makes a server collect its garbage on SIGUSR2 (see collectGarbage). */
export const GC_PRELOAD = path.join(__dirname, 'gc-on-signal.js');

/** Reports asked of each child, per kind of preload: the n-th answer carries n after its mark. */
const asked = new WeakMap<ChildProcess, Map<string, number>>();

/**
 * Sends `signal` to a child started with `-r <preload>` and waits (up to `timeoutMs`) for its answer on
 * stderr, a line `<mark> <n>[ <value>]` for the n-th time asked: returns the value ('' without one).
 */
async function askPreload(child: ChildProcess, signal: NodeJS.Signals, mark: string, preload: string, timeoutMs: number): Promise<string> {
  if (child.pid === undefined) throw new Error(`${mark}: no pid`);
  const counts = asked.get(child) ?? new Map<string, number>();
  asked.set(child, counts);
  const n = (counts.get(mark) ?? 0) + 1;
  counts.set(mark, n);
  process.kill(child.pid, signal);
  const deadline = Date.now() + timeoutMs;
  const line = `${mark} ${n}`;
  for (;;) {
    const err = stderrOf(child);
    const at = err.lastIndexOf(`\n${line}`);
    const end = at < 0 ? -1 : err.indexOf('\n', at + 1);
    if (end > 0 && (err[at + 1 + line.length] === ' ' || at + 1 + line.length === end)) return err.slice(at + 1 + line.length, end).trim();
    if (Date.now() > deadline) throw new Error(`no answer to ${signal} within ${timeoutMs} ms (started with -r ${preload}?)`);
    await sleep(50);
  }
}

/**
 * A full collection in a server started with `-r GC_PRELOAD`, resolved once it reports done (throws
 * after `timeoutMs`): RSS read after it is what the process holds, whatever its GC timing.
 */
export async function collectGarbage(child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  await askPreload(child, 'SIGUSR2', GC_MARK, GC_PRELOAD, timeoutMs);
}

/** What heap-sampler.ts writes on stderr when it stops: the report's number, then the bytes sampled. */
export const SAMPLE_MARK = 'bench-heap-sampled';

/** Preload for `node -r` that samples every allocation between two SIGWINCHs (see sampledBytes). */
export const SAMPLER_PRELOAD = path.join(__dirname, 'heap-sampler.js');

/** Starts allocation sampling in a server started with `-r SAMPLER_PRELOAD`. */
export function startSampling(child: ChildProcess): void {
  if (child.pid === undefined) throw new Error('startSampling: no pid');
  process.kill(child.pid, 'SIGWINCH');
}

/** Stops it: the JS heap bytes allocated since startSampling (V8's sampling heap profiler, collected objects included). */
export async function sampledBytes(child: ChildProcess, timeoutMs = 30_000): Promise<number> {
  return Number(await askPreload(child, 'SIGWINCH', SAMPLE_MARK, SAMPLER_PRELOAD, timeoutMs));
}

/** Resident set size of a process in bytes (from /proc). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The soft open-files limit of this process (children inherit it). */
export function openFilesLimit(): number {
  const m = /Max open files\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/** CPU seconds (user + system) a process has used so far, from /proc (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * Times any thread of a process went to sleep and was woken again so far: the sum of every thread's
 * voluntary context switches, from /proc (threads that ended are not counted).
 */
export function threadSleeps(pid: number): number {
  let sum = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'));
      sum += Number(m?.[1] ?? 0);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return sum;
}
