import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SERVERS, startServer, stopServer } from '../bench/lib/servers';

/**
 * The raw uWS baseline with `--threads 2` (the cores scenario's floor): the acceptor alternates
 * connections between the two threads' apps, so subscribers sit on both, and every publish must reach
 * all of them whichever thread it arrived on; numbered by the topic's owner thread or through shared
 * counters, each topic is numbered once.
 */
const CLIENTS = 4;
const PUBLISHES = 5;

interface Delivery {
  t: string;
  s: number;
  d: { from: number; n: number };
}

async function exchange(port: number): Promise<Delivery[][]> {
  const received: Delivery[][] = [];
  const sockets: WebSocket[] = [];
  try {
    // One at a time, so the acceptor's round-robin puts every other one on the other thread.
    for (let i = 0; i < CLIENTS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?topics=news`);
      const got: Delivery[] = [];
      ws.on('message', (m) => got.push(JSON.parse(String(m)) as Delivery));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      sockets.push(ws);
      received.push(got);
    }
    for (let n = 0; n < PUBLISHES; n++) sockets.forEach((ws, from) => ws.send(JSON.stringify({ op: 'pub', topic: 'news', data: { from, n } })));
    const deadline = Date.now() + 10_000;
    while (received.some((g) => g.length < CLIENTS * PUBLISHES) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return received;
  } finally {
    for (const ws of sockets) ws.terminate();
  }
}

const key = (d: Delivery): string => `${d.d.from}:${d.d.n}`;

describe('raw uWS baseline with --threads 2', () => {
  it('delivers every publish to subscribers on both threads', async () => {
    const server = await startServer(SERVERS.uws, ['--threads', '2']);
    try {
      const received = await exchange(server.port);
      const all = Array.from({ length: CLIENTS }, (_, from) => Array.from({ length: PUBLISHES }, (_, n) => `${from}:${n}`)).flat().sort();
      for (const got of received) assert.deepEqual(got.map(key).sort(), all);
    } finally {
      await stopServer(server);
    }
  });

  for (const numbering of ['owner', 'shared']) {
    it(`with --numbering ${numbering}, numbers each topic once: every subscriber sees 1, 2, 3 … for the same messages`, async () => {
      const server = await startServer(SERVERS.uws, ['--threads', '2', '--numbering', numbering]);
      try {
        const received = await exchange(server.port);
        const first = received[0] as Delivery[];
        assert.deepEqual(
          first.map((d) => d.s),
          Array.from({ length: CLIENTS * PUBLISHES }, (_, i) => i + 1),
        );
        for (const got of received) assert.deepEqual(got.map((d) => `${d.s}=${key(d)}`), first.map((d) => `${d.s}=${key(d)}`));
      } finally {
        await stopServer(server);
      }
    });
  }
});
