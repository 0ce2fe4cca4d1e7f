import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { GatewayClient } from '../src/client/gateway-client';
import { startGateway, waitFor } from './helpers/gateway';
import { missingTool } from './helpers/tools';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', '..', 'test', 'fixtures', 'python_client.py');

describe('interop with a Python client (python3-websockets)', () => {
  it('subscribes, publishes and receives alongside a JS client', { skip: missingTool(PYTHON, 'python3-websockets', ['-c', 'import websockets']) }, async (t) => {
    const g = await startGateway(['--client-publish']);
    const js = await GatewayClient.connect(g.ws, { topics: ['py'] });
    const jsGot: unknown[] = [];
    js.onDelivery = (d) => jsGot.push(d);
    const py = spawn(PYTHON, [SCRIPT, g.ws], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(async () => {
      if (py.exitCode === null) py.kill('SIGKILL');
      await js.close();
      await g.stop();
    });
    let out = '';
    let err = '';
    py.stdout.on('data', (d: Buffer) => (out += d.toString()));
    py.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => out.includes('READY') || py.exitCode !== null, 10000, 'python client');
    assert.ok(out.includes('READY'), `python failed: ${err}`);
    await js.pub('py', { from: 'node' }).catch(() => {});
    const exit = await new Promise<number | null>((resolve) => py.on('exit', resolve));
    assert.equal(exit, 0, err);
    const lines = out.trim().split('\n').filter((l) => l !== 'READY').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]?.op, 'ok');
    assert.deepEqual(lines[1], { t: 'py', s: 1, d: { from: 'python' } });
    assert.deepEqual(lines[2], { op: 'ok', id: 2, seq: 1 });
    assert.deepEqual(lines[3], { t: 'py', s: 2, d: { from: 'node' } });
    await waitFor(() => jsGot.length === 2);
    assert.deepEqual(jsGot, [{ t: 'py', s: 1, d: { from: 'python' } }, { t: 'py', s: 2, d: { from: 'node' } }]);
  });
});
