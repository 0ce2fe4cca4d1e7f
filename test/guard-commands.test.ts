import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RawClient, type TestGateway, metric, sleep, startGateway, waitFor, SINGLE_THREAD_ONLY } from './helpers/gateway';

const pingFrames = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ op: 'ping', id: from + i }));

const publish = (g: TestGateway, topic: string, data: unknown) =>
  fetch(`${g.http}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, data }) });

describe('per-connection command rate (--max-commands-per-second, --command-burst)', () => {
  let g: TestGateway;
  let bystander: RawClient;
  before(async () => {
    g = await startGateway(['--max-commands-per-second', '10', '--command-burst', '5']);
    bystander = await RawClient.open(`${g.ws}?topics=calm`);
  });
  after(async () => {
    bystander.close();
    await g.stop();
  });

  it('over the burst: err rate_limited with the command id, not executed; tokens come back at the rate', { skip: SINGLE_THREAD_ONLY }, async () => {
    const c = await RawClient.open(g.ws);
    for (const f of pingFrames(1, 5)) c.ws.send(f);
    c.ws.send(JSON.stringify({ op: 'sub', topic: 'limited', id: 6 }));
    c.ws.send(JSON.stringify({ op: 'ping', id: 7 }));
    await c.received(7);
    const replies = c.json();
    assert.deepEqual(replies.slice(0, 5), [1, 2, 3, 4, 5].map((id) => ({ op: 'ok', id })));
    assert.deepEqual(
      replies.slice(5).map((r) => [r.op, r.id, r.code]),
      [['err', 6, 'rate_limited'], ['err', 7, 'rate_limited']],
    );
    assert.equal(g.gw.hub.get('limited'), undefined, 'the refused sub was not executed');
    await sleep(250); // 10/s: two tokens back
    c.ws.send(JSON.stringify({ op: 'ping', id: 8 }));
    await c.received(8);
    assert.deepEqual(c.json()[7], { op: 'ok', id: 8 });
    assert.equal(c.closeCode, null, 'a few refusals do not close');
    c.close();
  });

  it('a flood (more than a burst refused within 10 s) is closed with 4029; bystanders see nothing', async () => {
    const before = await metric(g.http, 'wsgate_commands_rate_limited_total');
    const flooder = await RawClient.open(g.ws);
    for (const f of pingFrames(1, 200)) flooder.ws.send(f);
    assert.equal(await flooder.closed(), 4029);
    // 5 run, 5 refused (the burst), the 6th refusal closes: nothing after it is read.
    const replies = flooder.json();
    assert.equal(replies.filter((r) => r.op === 'ok').length, 5);
    assert.equal(replies.filter((r) => r.code === 'rate_limited').length, 5);
    assert.equal(await metric(g.http, 'wsgate_commands_rate_limited_total'), before + 5);
    assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="command_flood"}'), 1);
    assert.equal((await publish(g, 'calm', 'still here')).status, 200);
    await bystander.received(1);
    assert.deepEqual(bystander.json(), [{ t: 'calm', s: 1, d: 'still here' }]);
    assert.equal(bystander.closeCode, null);
  });

  it('garbage frames are charged too (a flood of bad JSON is closed the same way)', async () => {
    const c = await RawClient.open(g.ws);
    for (let i = 0; i < 50; i++) c.ws.send('{not json');
    assert.equal(await c.closed(), 4029);
  });

  it('--max-commands-per-second 0 turns the limit off', async () => {
    const free = await startGateway(['--max-commands-per-second', '0']);
    try {
      const c = await RawClient.open(free.ws);
      for (const f of pingFrames(1, 1000)) c.ws.send(f);
      await c.received(1000);
      assert.ok(c.json().every((r) => r.op === 'ok'));
      c.close();
    } finally {
      await free.stop();
    }
  });
});

describe('containment: an unexpected exception stays with its connection or request', { skip: SINGLE_THREAD_ONLY }, () => {
  // No client input is known to make a handler throw any more: the two real triggers this suite
  // started with (20,000-deep nesting overflowing JSON.stringify in the fan-out, and a msgpack int64
  // decoding to a BigInt that JSON cannot encode) are refused or decoded safely since the nesting bound
  // and int64-as-number. So faults are injected from the test side into this in-process gateway's
  // public hub and private guard (no hook in src/): a throw where a bug would throw.
  let g: TestGateway;
  let bystander: RawClient;
  before(async () => {
    g = await startGateway(['--client-publish']);
    bystander = await RawClient.open(`${g.ws}?topics=calm`);
  });
  after(async () => {
    bystander.close();
    await g.stop();
  });

  /** Makes hub.deliver throw for topic `boom` while `run` runs. */
  const deliverThrows = async (run: () => Promise<void>) => {
    const hub = g.gw.hub;
    const deliver = hub.deliver;
    hub.deliver = function (topic, ...rest) {
      if (topic === 'boom') throw new RangeError('injected: Maximum call stack size exceeded');
      return deliver.call(this, topic, ...rest);
    };
    try {
      await run();
    } finally {
      hub.deliver = deliver;
    }
  };

  it('socket: a pub whose fan-out throws closes that connection with 1011, counted; the process and others carry on', async () => {
    await deliverThrows(async () => {
      const c = await RawClient.open(g.ws);
      c.ws.send(JSON.stringify({ op: 'pub', topic: 'boom', id: 1, data: 1 }));
      assert.equal(await c.closed(), 1011);
      assert.equal(c.closeReason, 'internal error');
      assert.equal(await metric(g.http, 'wsgate_handler_errors_total{handler="message"}'), 1);
      assert.equal(await metric(g.http, 'wsgate_disconnects_total{reason="internal_error"}'), 1);
      const ok = await RawClient.open(g.ws);
      ok.ws.send(JSON.stringify({ op: 'pub', topic: 'calm', id: 2, data: 'fine' }));
      await ok.received(1);
      assert.equal(ok.json()[0]?.op, 'ok');
      await waitFor(() => bystander.json().some((d) => d.d === 'fine'), 2000, 'bystander delivery');
      assert.equal(bystander.closeCode, null);
      ok.close();
    });
  });

  it('HTTP: a POST /publish whose handling throws is answered 500 internal_error, counted', async () => {
    await deliverThrows(async () => {
      const res = await publish(g, 'boom', 1);
      assert.equal(res.status, 500);
      assert.deepEqual(await res.json(), { code: 'internal_error', reason: 'internal error' });
      assert.equal(await metric(g.http, 'wsgate_handler_errors_total{handler="http"}'), 1);
      assert.equal((await publish(g, 'calm', 'after')).status, 200);
    });
  });

  it('an exception in the open and close handlers is contained the same way', { skip: SINGLE_THREAD_ONLY }, async () => {
    const hub = g.gw.hub;
    const original = { addSubscriber: hub.addSubscriber, removeSubscriber: hub.removeSubscriber };
    hub.addSubscriber = () => {
      throw new Error('injected: addSubscriber');
    };
    try {
      const c = await RawClient.open(`${g.ws}?topics=boom`);
      assert.equal(await c.closed(), 1011);
      assert.equal(await metric(g.http, 'wsgate_handler_errors_total{handler="open"}'), 1);
    } finally {
      hub.addSubscriber = original.addSubscriber;
    }
    const c = await RawClient.open(`${g.ws}?topics=boom2`);
    hub.removeSubscriber = () => {
      throw new Error('injected: removeSubscriber');
    };
    try {
      c.ws.close(1000);
      await c.closed();
      await waitFor(async () => (await metric(g.http, 'wsgate_handler_errors_total{handler="close"}')) === 1, 2000, 'close handler error counted');
    } finally {
      hub.removeSubscriber = original.removeSubscriber;
    }
    assert.equal(bystander.closeCode, null);
    assert.equal((await publish(g, 'calm', 'after injection')).status, 200);
  });

  it('an exception in the upgrade handler answers that upgrade 500 internal_error', { skip: SINGLE_THREAD_ONLY }, async () => {
    const guard = g.gw['guard'];
    const admit = guard.admit;
    guard.admit = () => {
      throw new Error('injected: admit');
    };
    try {
      await assert.rejects(RawClient.open(g.ws), /Unexpected server response: 500/);
      assert.equal(await metric(g.http, 'wsgate_handler_errors_total{handler="upgrade"}'), 1);
    } finally {
      guard.admit = admit;
    }
    const c = await RawClient.open(g.ws);
    assert.equal(c.closeCode, null);
    c.close();
  });
});
