import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { type DocBlock, RUNNABLE, readBlocks } from './helpers/doc-blocks';
import { freePort, sleep } from './helpers/gateway';

/**
 * Every command and program the docs show is run here as written, so a doc cannot drift from the code.
 * What is adapted, and why:
 * - ports: the docs' 8080, 8081 (gateways), 9091 (admin listener), 4222 (NATS) and 6379 (Redis) become free ports of this run
 *   (other test runs share the machine); WSGATE_PORT carries the 8080 one to commands that use the default;
 * - `npx wsgate …` runs package.json's bin (dist/src/cli/main.js) directly: npm exec resolves the same file
 *   (checked below, with a real `npx` on a fresh npm cache) but takes a second or two per call.
 * Everything else runs as a user runs it: `python3` included (the docs name Debian's /usr/bin/python3).
 */
const ROOT = path.join(__dirname, '..', '..');
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const DOC_PORTS = [8080, 8081, 9091, 4222, 6379];
const DOC_PORT = new RegExp(`\\b(${DOC_PORTS.join('|')})\\b`, 'g');
const STEP_MS = 30_000;
const BIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SCRATCH = path.join(ROOT, 'dist', 'doc-snippets');

const blocks: DocBlock[] = DOCS.flatMap((f) => readBlocks(f, path.join(ROOT, f)));
const where = (b: DocBlock) => `${b.file}:${b.line}`;

/** A directory first on PATH whose `npx` runs this checkout's wsgate bin and hands anything else to the real npx. */
function shimDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'wsgate-doc-bin-'));
  const realNpx = execFileSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(dir, 'npx'), `#!/bin/sh\nif [ "$1" = wsgate ]; then shift; exec "${process.execPath}" "${BIN}" "$@"; fi\nexec "${realNpx}" "$@"\n`);
  chmodSync(path.join(dir, 'npx'), 0o755);
  return dir;
}

/** One run of a shell step or background process, with its output. */
class Proc {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(
    readonly what: string,
    readonly child: ChildProcess,
  ) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  async waitFor(text: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.out.includes(text)) {
      if (this.child.exitCode !== null) throw new Error(`${this.what} exited ${this.child.exitCode} before printing "${text}":\n${this.out}`);
      if (Date.now() > deadline) throw new Error(`${this.what} did not print "${text}" within ${ms} ms:\n${this.out}`);
      await sleep(25);
    }
  }

  /** Kills the process group the step started (npm start runs the gateway as a grandchild). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      try {
        process.kill(-this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await this.exited;
  }
}

/** Ports, exported variables and background processes that the blocks of one session share. */
class Session {
  private readonly ports = new Map<number, number>();
  private readonly background: { block: DocBlock; proc: Proc }[] = [];
  private env: NodeJS.ProcessEnv = {};

  static async open(bin: string): Promise<Session> {
    const s = new Session();
    for (const p of DOC_PORTS) s.ports.set(p, await freePort());
    const { WSGATE_API_KEY: _k, WSGATE_JWT_SECRET: _j, WSGATE_PORT: _p, ...inherited } = process.env;
    s.env = { ...inherited, PATH: `${bin}:${process.env.PATH ?? ''}`, WSGATE_PORT: String(s.ports.get(8080)), WSGATE_HOST: '127.0.0.1' };
    return s;
  }

  mapPorts(text: string): string {
    return text.replace(DOC_PORT, (p) => String(this.ports.get(Number(p))));
  }

  private spawn(block: DocBlock, script: string): Proc {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], { cwd: ROOT, env: this.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    return new Proc(where(block), child);
  }

  async run(block: DocBlock): Promise<void> {
    if (block.lang === 'js' || block.lang === 'mjs') return this.step(block, `node ${this.scratchCopy(block)}`);
    if (block.flags.has('bg')) return this.startBackground(block);
    if (block.flags.has('env')) return this.exportsOf(block);
    return this.step(block, this.mapPorts(block.text));
  }

  /** A program file, with the session's ports, where it still resolves `wsgate/client` (inside the package). */
  private scratchCopy(block: DocBlock): string {
    mkdirSync(SCRATCH, { recursive: true });
    const file = path.join(SCRATCH, path.basename(block.source as string));
    writeFileSync(file, this.mapPorts(block.text));
    return file;
  }

  private async step(block: DocBlock, script: string): Promise<void> {
    const proc = this.spawn(block, script);
    proc.child.stdin?.end();
    const timer = setTimeout(() => void proc.kill(), STEP_MS);
    const code = await proc.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `${where(block)} exited ${code}:\n${block.text}\n--- output ---\n${proc.out}`);
    for (const text of block.expect) assert.ok(proc.out.includes(text), `${where(block)}: output lacks "${text}":\n${proc.out}`);
  }

  private async exportsOf(block: DocBlock): Promise<void> {
    const out = path.join(mkdtempSync(path.join(tmpdir(), 'wsgate-doc-env-')), 'env');
    await this.step(block, `${this.mapPorts(block.text)}\nenv -0 > ${out}`);
    this.env = Object.fromEntries(
      readFileSync(out, 'utf8')
        .split('\0')
        .filter((kv) => kv.includes('='))
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    rmSync(path.dirname(out), { recursive: true });
  }

  /** A terminal left running: the stdin stays open, as a terminal's would. */
  private async startBackground(block: DocBlock): Promise<void> {
    const proc = this.spawn(block, this.mapPorts(block.text));
    this.background.push({ block, proc });
    if (block.ready !== undefined) await proc.waitFor(block.ready, STEP_MS);
  }

  /** Checks what background processes were expected to print, then stops them all. */
  async close(): Promise<void> {
    try {
      for (const { block, proc } of this.background) for (const text of block.expect) await proc.waitFor(text, 10_000);
    } finally {
      for (const { proc } of this.background.reverse()) await proc.kill();
    }
  }
}

describe('the docs run as written', () => {
  const bin = shimDir();
  after(() => rmSync(bin, { recursive: true, force: true }));

  it('every block a reader would run is tested, a tested file, or skipped with a reason', () => {
    const loose = blocks.filter((b) => RUNNABLE.has(b.lang) && b.skip === undefined && !b.flags.has('test') && b.source === undefined);
    assert.deepEqual(loose.map(where), [], 'mark these blocks test/bg/env, file=, or skip=<reason>');
    const unexplained = blocks.filter((b) => b.skip !== undefined && b.skip.length < 8);
    assert.deepEqual(unexplained.map(where), [], 'a skip needs a reason');
  });

  it('blocks that show a file are that file, byte for byte', () => {
    for (const b of blocks.filter((x) => x.source !== undefined)) {
      assert.equal(b.text, readFileSync(path.join(ROOT, b.source as string), 'utf8'), `${where(b)} differs from ${b.source}`);
    }
  });

  it('`npx wsgate` is package.json\'s bin, which the test runs', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.equal(path.join(ROOT, pkg.bin.wsgate as string), BIN);
    assert.match(readFileSync(BIN, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  // npm exec "installs" the clone it runs in into its npx cache and runs its postinstall there: with a fresh
  // cache that was a full tsc build, 13-22 s before the first `npx wsgate` answered (issue 26).
  it('a real `npx wsgate` on a fresh npm cache runs this clone without building it again', { timeout: 120_000 }, async () => {
    const cache = mkdtempSync(path.join(tmpdir(), 'wsgate-npm-cache-'));
    try {
      const env = { ...process.env, npm_config_cache: cache, npm_config_foreground_scripts: 'true', npm_config_update_notifier: 'false' };
      const child = spawn('npx', ['wsgate', '--help'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const proc = new Proc('npx wsgate --help', child);
      const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
      const code = await proc.exited;
      clearTimeout(timer);
      assert.equal(code, 0, proc.out);
      assert.match(proc.out, /wsgate: WebSocket fan-out gateway/);
      assert.match(proc.out, /npx\/npm exec of an already built clone: skipping the build/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  const typed = blocks.filter((b) => b.flags.has('typecheck'));
  for (const b of typed) {
    it(`${where(b)} (${b.source}) type-checks against the published types`, () => {
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const args = [tsc, '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node', '--skipLibCheck', b.source as string];
      try {
        execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        assert.fail(`tsc: ${(e as { stdout?: string }).stdout ?? String(e)}`);
      }
    });
  }

  const sessions = new Map<string, DocBlock[]>();
  for (const b of blocks.filter((x) => x.skip === undefined && x.flags.has('test'))) sessions.set(b.session, [...(sessions.get(b.session) ?? []), b]);
  for (const [name, steps] of sessions) {
    it(`${name}: ${steps.length} block(s) in order`, { timeout: 180_000 }, async () => {
      const session = await Session.open(bin);
      try {
        for (const b of steps) await session.run(b);
      } finally {
        await session.close();
      }
    });
  }
});
