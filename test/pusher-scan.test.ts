import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeBounded } from '../src/protocol/codec';
import { GatewayError } from '../src/protocol/codes';
import { C_CHANNEL, C_DATA, C_EVENT, ClientEventScan, E_DATA, E_EVENT, E_SOCKET, E_USER, EventDataScan } from '../src/pusher/event-scan';
import { parseClientFrame } from '../src/pusher/frames';
import { pusherEventOf } from '../src/pusher/pusher-wire';
import { sign } from '../src/pusher/signature';
import { type TestGateway, startGateway, waitFor } from './helpers/gateway';
import { APP, rawPusher } from './helpers/pusher-clients';

/**
 * The Pusher door's in-place scanners (src/pusher/event-scan.ts) against the general path they stand in
 * for, on generated frames: whatever a scanner takes, the general decode must read the same way (same
 * event, channel, data, UTF-16 data length); frames of the common shape must be taken (else the test
 * proves nothing); and through a real gateway, events reach the channel's other subscribers intact and
 * never their sender.
 */

const MAX_DEPTH = 8;
const RUNS = 4000;

/** What the door does with a text frame today: a client event's fields, 'other' for anything else. */
function general(bytes: Buffer): { event: string; channel: string | undefined; data: unknown } | 'other' {
  let value: unknown;
  try {
    value = decodeBounded(bytes, false, MAX_DEPTH + 2, MAX_DEPTH);
  } catch {
    return 'other';
  }
  const frame = value instanceof GatewayError ? null : parseClientFrame(value);
  return frame === null || !frame.event.startsWith('client-') ? 'other' : frame;
}

// ---- generators ----------------------------------------------------------------------------------

const anyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }), // lone surrogates included
  fc.constantFrom('', 'é', '😀', '\u0000', '\u2028', '"\\/', '\ud800', 'a\udc00b', 'x'.repeat(300)),
);
const eventName = fc.oneof(
  fc.constant('client-b'),
  anyText.map((s) => 'client-' + s),
  fc.stringMatching(/^client-[A-Za-z0-9_.:-]{0,12}$/),
  anyText,
  fc.constantFrom('pusher:ping', 'pusher:subscribe', 'client-', 'client', 'Client-x', 'client-' + 'y'.repeat(193), 'client-' + 'y'.repeat(194)),
);
const channelName = fc.oneof(fc.stringMatching(/^(private|presence|private-encrypted)-[A-Za-z0-9_=@,.;-]{1,20}$/), anyText, fc.constant('private-' + 'c'.repeat(200)));
const dataValue = fc.oneof(
  { weight: 4, arbitrary: anyText },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

/** A JSON string of `s`, some chars written as other escapes than JSON.stringify's (as other clients may). */
function jsonString(s: string, escapeSome: boolean, rnd: number): string {
  const plain = JSON.stringify(s);
  if (!escapeSome) return plain;
  let out = '"';
  let k = rnd;
  for (const ch of s) {
    k = (k * 1103515245 + 12345) & 0x7fffffff;
    if (k % 4 === 0) for (let i = 0; i < ch.length; i++) out += '\\u' + ch.charCodeAt(i).toString(16).padStart(4, '0');
    else if (ch === '/' && k % 2 === 0) out += '\\/';
    else out += JSON.stringify(ch).slice(1, -1);
  }
  return out + '"';
}

interface Entry {
  readonly key: string;
  readonly value: unknown;
}

/** An object's text from entries in order (repeats kept: JSON.parse takes the last), with whitespace. */
const objectText = fc.record({
    entries: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, fc.array(fc.record({ key: fc.constantFrom('event', 'data', 'channel', 'socket_id', 'x', '__proto__', ''), value: dataValue }), { maxLength: 2 })),
    ws: fc.constantFrom('', ' ', '\n\t ', '\r'),
    escapeKeys: fc.constantFrom(false, false, false, true),
    escapeValues: fc.boolean(),
    rnd: fc.nat(),
  });

function render(entries: readonly Entry[], ws: string, escapeKeys: boolean, escapeValues: boolean, rnd: number): string {
  const parts = entries
    .filter((e) => e.value !== undefined)
    .map((e, i) => {
      // Names (event, channel, socket id) are escaped with the keys, other strings with the values.
      const escape = e.key === 'data' || e.key === 'user_id' ? escapeValues : escapeKeys;
      const value = typeof e.value === 'string' ? jsonString(e.value, escape, rnd + 7 * i) : JSON.stringify(e.value);
      return `${ws}${jsonString(e.key, escapeKeys, rnd + i)}${ws}:${ws}${value}${ws}`;
    });
  return `${ws}{${parts.join(',')}}${ws}`;
}

/** Byte-level damage: truncation, a flipped or inserted byte, bad UTF-8, a BOM, nesting around it. */
const mutation = fc.oneof(
  { weight: 6, arbitrary: fc.constant((b: Buffer) => b) },
  fc.nat().map((n) => (b: Buffer) => b.subarray(0, n % (b.length + 1))),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([n, v]) => (b: Buffer) => {
    const c = Buffer.from(b);
    if (c.length > 0) c[n % c.length] = v;
    return c;
  }),
  fc.tuple(fc.nat(), fc.constantFrom(...['\\x41', '\\u12', '\\u00G1', '\\a', '\\', '\\\'', '\t', '\u007f'].map((t) => [...Buffer.from(t)]), [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0x5c], [0x22], [0x00])).map(
    ([n, bad]) =>
      (b: Buffer) => {
        const at = n % (b.length + 1);
        return Buffer.concat([b.subarray(0, at), Buffer.from(bad), b.subarray(at)]);
      },
  ),
  fc.constant((b: Buffer) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b])),
  fc.integer({ min: 1, max: 20 }).map((d) => (b: Buffer) => Buffer.from('['.repeat(d) + b.toString('latin1') + ']'.repeat(d), 'latin1')),
);

const clientFrame = fc.record({
  event: eventName,
  channel: fc.option(channelName, { nil: undefined }),
  data: dataValue,
  extra: objectText,
  order: fc.nat(),
  duplicate: fc.constantFrom(false, false, false, true),
});

type ClientFrameSpec = typeof clientFrame extends fc.Arbitrary<infer T> ? T : never;

function clientFrameEntries(f: ClientFrameSpec): Entry[] {
  const entries: Entry[] = [{ key: 'event', value: f.event }, { key: 'channel', value: f.channel }, { key: 'data', value: f.data }, ...f.extra.entries];
  if (f.duplicate) entries.push({ key: 'event', value: 'client-dup' });
  const k = f.order % entries.length;
  return [...entries.slice(k), ...entries.slice(0, k)];
}

// ---- properties ----------------------------------------------------------------------------------

describe('ClientEventScan agrees with the general decode', () => {
  const scan = new ClientEventScan();

  /** When the scanner takes `bytes`, the general path reads the very same client event from them. */
  function agrees(bytes: Buffer): boolean {
    if (!scan.frame(bytes, bytes.length)) return false;
    const f = scan.fields;
    const ref = general(bytes);
    assert.notEqual(ref, 'other', `scanner took a frame the general path does not: ${bytes.toString('latin1')}`);
    if (ref === 'other') return true;
    assert.equal(ref.event, bytes.toString('latin1', (f.start[C_EVENT] as number) + 1, (f.end[C_EVENT] as number) - 1));
    assert.equal(ref.channel, bytes.toString('latin1', (f.start[C_CHANNEL] as number) + 1, (f.end[C_CHANNEL] as number) - 1));
    assert.equal(typeof ref.data, 'string');
    assert.equal(ref.data, JSON.parse(bytes.toString('utf8', f.start[C_DATA] as number, f.end[C_DATA] as number)));
    assert.equal((ref.data as string).length, f.units[C_DATA], 'data length in UTF-16 units, as the size limit reads it');
    return true;
  }

  it(`${RUNS} generated frames, valid and damaged`, () => {
    let taken = 0;
    fc.assert(
      fc.property(clientFrame, mutation, (f, damage) => {
        const text = render(clientFrameEntries(f), f.extra.ws, f.extra.escapeKeys, f.extra.escapeValues, f.extra.rnd);
        if (agrees(damage(Buffer.from(text, 'utf8')))) taken++;
      }),
      { numRuns: RUNS },
    );
    assert.ok(taken > RUNS / 50, `the scanner took ${taken} of ${RUNS}: too few to prove anything`);
  });

  it('takes every client event of the common shape (plain names, string data), however written', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^client-[A-Za-z0-9_.:-]{0,30}$/),
        fc.stringMatching(/^(private|presence)-[A-Za-z0-9_=@,.;-]{1,40}$/),
        anyText,
        objectText,
        fc.nat(),
        (event, channel, data, style, order) => {
          const entries: Entry[] = [{ key: 'event', value: event }, { key: 'channel', value: channel }, { key: 'data', value: data }];
          const k = order % 3;
          const text = render([...entries.slice(k), ...entries.slice(0, k)], style.ws, false, true, style.rnd);
          assert.ok(agrees(Buffer.from(text, 'utf8')), `not taken: ${text}`);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('leaves to the general path what it must not decide', () => {
    const refused = [
      '{"event":"client-a","channel":"private-a","data":{"x":1}}', // object data: stringified the general way
      '{"event":"client-a","channel":"private-a"}', // no data
      '{"event":"client-a","data":"x"}', // no channel: the general path's error
      '{"event":"client-a","channel":"private-a","data":"x","extra":1}',
      '{"event":"client-a","event":"client-b","channel":"private-a","data":"x"}',
      '{"event":"client-\\u0061","channel":"private-a","data":"x"}', // escape in the name
      '{"event":"client-é","channel":"private-a","data":"x"}',
      '{"\\u0065vent":"client-a","channel":"private-a","data":"x"}',
      '{"event":"pusher:ping","channel":"private-a","data":"x"}',
      '{"event":"client-a","channel":"private-a","data":"x"} x',
      '\ufeff{"event":"client-a","channel":"private-a","data":"x"}',
      `{"event":"client-${'y'.repeat(194)}","channel":"private-a","data":"x"}`, // 201 chars
    ];
    for (const text of refused) assert.equal(scan.frame(Buffer.from(text), Buffer.byteLength(text)), false, text);
    const bad = Buffer.from('{"event":"client-a","channel":"private-a","data":"\xff"}', 'latin1');
    assert.equal(scan.frame(bad, bad.length), false, 'bad UTF-8');
    assert.equal(general(bad), 'other', 'which the general path refuses too');
  });
});

describe('EventDataScan agrees with pusherEventOf', () => {
  const scan = new EventDataScan();
  const payload = fc.record({
    event: fc.oneof(eventName, fc.integer()),
    data: dataValue,
    socket: fc.option(fc.oneof(fc.stringMatching(/^[0-9]{1,9}\.[0-9]{1,9}$/), anyText), { nil: undefined }),
    user: fc.option(fc.oneof(anyText, fc.integer()), { nil: undefined }),
    extra: objectText,
    order: fc.nat(),
  });

  it(`${RUNS} generated event data, valid and damaged`, () => {
    let taken = 0;
    fc.assert(
      fc.property(payload, mutation, (p, damage) => {
        const entries: Entry[] = [
          { key: 'event', value: p.event },
          { key: 'data', value: p.data },
          { key: 'socket_id', value: p.socket },
          { key: 'user_id', value: p.user },
          ...p.extra.entries,
        ];
        const k = p.order % entries.length;
        const text = render([...entries.slice(k), ...entries.slice(0, k)], p.extra.ws, p.extra.escapeKeys, p.extra.escapeValues, p.extra.rnd);
        const bytes = damage(Buffer.from(text, 'utf8'));
        // Data sits inside a larger buffer (a broker envelope, a frame): only its extent is read.
        const framed = Buffer.concat([Buffer.from('{"d":'), bytes, Buffer.from('}')]);
        if (!scan.data(framed, 5, 5 + bytes.length)) return;
        taken++;
        const ev = pusherEventOf(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)));
        const f = scan.fields;
        const at = (field: number): unknown => JSON.parse(framed.toString('utf8', f.start[field] as number, f.end[field] as number));
        assert.equal(ev.name, at(E_EVENT));
        assert.equal(ev.data, at(E_DATA));
        assert.equal(ev.exclude, f.has(E_SOCKET) ? framed.toString('latin1', (f.start[E_SOCKET] as number) + 1, (f.end[E_SOCKET] as number) - 1) : undefined);
        assert.equal(ev.userId, f.has(E_USER) ? at(E_USER) : undefined);
      }),
      { numRuns: RUNS },
    );
    assert.ok(taken > RUNS / 50, `the scanner took ${taken} of ${RUNS}`);
  });
});

// ---- through a real gateway ----------------------------------------------------------------------

describe('scanned client events through a real gateway', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway(['--pusher-apps', `${APP.appId}:${APP.key}:${APP.secret}`, '--pusher-client-events', '--pusher-max-event-bytes', '64']);
  });
  after(async () => {
    await g.stop();
  });

  async function member(channel: string): Promise<Awaited<ReturnType<typeof rawPusher>>> {
    const raw = await rawPusher(g.port);
    raw.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel, auth: `${APP.key}:${sign(APP.secret, `${raw.socketId}:${channel}`)}` } }));
    await waitFor(() => raw.frames.some((f) => f.event === 'pusher_internal:subscription_succeeded'), 3000, 'subscribed');
    return raw;
  }

  it('reach the other subscribers as sent (escapes, unicode, the data limit in UTF-16 units), never the sender', async () => {
    const channel = 'private-scan';
    const sender = await member(channel);
    const receiver = await member(channel);
    const sends: { text: string; expect: { event: string; data: string } | 'refused' }[] = [
      { text: '{"event":"client-a","channel":"private-scan","data":"plain"}', expect: { event: 'client-a', data: 'plain' } },
      { text: '{ "data" : "q\\"\\\\\\/\\u00e9\\ud83d\\ude00\\n" , "channel":"private-scan", "event":"client-b" }', expect: { event: 'client-b', data: 'q"\\/é😀\n' } },
      { text: JSON.stringify({ event: 'client-c', channel, data: 'é'.repeat(64) }), expect: { event: 'client-c', data: 'é'.repeat(64) } }, // 128 bytes, 64 units
      { text: JSON.stringify({ event: 'client-d', channel, data: '😀'.repeat(33) }), expect: 'refused' }, // 66 units
      { text: JSON.stringify({ event: 'client-e', channel, data: { n: [1, 2] } }), expect: { event: 'client-e', data: '{"n":[1,2]}' } }, // general path
      { text: JSON.stringify({ event: 'client-f', channel: 'private-other', data: 'x' }), expect: 'refused' }, // not subscribed
      { text: '{"event":"client-g","channel":"private-scan","data":"\\ud800"}', expect: { event: 'client-g', data: '\ud800' } },
    ];
    for (const s of sends) sender.ws.send(s.text);
    const expected = sends.flatMap((s) => (s.expect === 'refused' ? [] : [s.expect]));
    const events = () => receiver.frames.filter((f) => String(f.event).startsWith('client-'));
    await waitFor(() => events().length === expected.length, 3000, 'events at the receiver');
    assert.deepEqual(
      events(),
      expected.map((e) => ({ event: e.event, channel, data: e.data })),
    );
    await waitFor(() => sender.frames.filter((f) => f.event === 'pusher:error').length === 2, 3000, 'two refusals');
    assert.equal(sender.frames.filter((f) => String(f.event).startsWith('client-')).length, 0, 'nothing echoed to the sender');
    sender.ws.close();
    receiver.ws.close();
  });
});
