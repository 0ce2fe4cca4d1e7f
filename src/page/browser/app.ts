/**
 * The built-in page: connect, subscribe, publish, watch deliveries and the message rate. Runs in the
 * browser, bundled with the SDK by src/page/build.ts; it uses only the public SDK API.
 */
import { type MessageEvent, WsgateClient, type WsgateError } from '../../client/sdk';

const MAX_ROWS = 200;
/** Kept for tests and the curious (`window.wsgatePage` in the console): every delivery's topic and seq. */
const MAX_KEPT = 100_000;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page element #${id} missing`);
  return el as T;
};

const wsPath = document.querySelector('meta[name="wsgate-ws-path"]')?.getAttribute('content') ?? '/ws';
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${wsPath}`;

const state = $('state');
const rate = $('rate');
const total = $('total');
const subs = $('subs');
const rows = $('rows');
const events = $('events');
const pubStatus = $('pub-status');
const tokenInput = $<HTMLInputElement>('token');

const kept: { topic: string; seq: number }[] = [];
let received = 0;

const client = new WsgateClient({ url, token: () => tokenInput.value.trim() || undefined });
(window as unknown as { wsgatePage: unknown }).wsgatePage = { client, kept, url };

function logEvent(kind: 'info' | 'warn' | 'error', text: string): void {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  // Oldest first, like a log; the list keeps its scroll at the newest line.
  events.append(li);
  while (events.childElementCount > 50) events.firstElementChild?.remove();
  events.scrollTop = events.scrollHeight;
}

function renderSubs(): void {
  subs.replaceChildren(
    ...Object.entries(client.positions()).map(([topic, pos]) => {
      const li = document.createElement('li');
      li.dataset.topic = topic;
      const name = document.createElement('span');
      name.textContent = topic;
      const seq = document.createElement('span');
      seq.className = 'seq';
      seq.textContent = pos === null ? '…' : `seq ${pos.seq}`;
      const remove = document.createElement('button');
      remove.textContent = '×';
      remove.title = `unsubscribe ${topic}`;
      remove.onclick = () => client.unsubscribe(topic).then(renderSubs, showError);
      li.append(name, seq, remove);
      return li;
    }),
  );
}

function showError(e: unknown): void {
  logEvent('error', e instanceof Error ? e.message : String(e));
}

function addRow(m: MessageEvent): void {
  const tr = document.createElement('tr');
  for (const text of [new Date().toLocaleTimeString(), m.topic, String(m.seq), JSON.stringify(m.data)]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  rows.prepend(tr);
  if (rows.childElementCount > MAX_ROWS) rows.lastElementChild?.remove();
}

client.on('message', (m) => {
  received++;
  total.textContent = String(received);
  if (kept.length < MAX_KEPT) kept.push({ topic: m.topic, seq: m.seq });
  addRow(m);
});
client.on('gap', (g) =>
  logEvent('warn', `gap on ${g.topic}: had seq ${g.expected.seq}, server is at ${g.server.seq}${g.expected.epoch === g.server.epoch ? '' : ' (new epoch: history lost)'}`),
);
client.on('state', (s) => {
  state.textContent = s.state;
  state.className = `state ${s.state}`;
  const why = s.code === undefined ? '' : ` (code ${s.code})`;
  logEvent(s.state === 'open' ? 'info' : 'warn', `${s.state}${why}${s.delayMs === undefined ? '' : `, retry in ${s.delayMs} ms`}`);
  renderSubs();
});
client.on('error', (e: WsgateError) => logEvent('error', `${e.code}: ${e.reason}`));

// The rate is the messages of the last second, smoothed so the number does not flicker.
let lastCount = 0;
let smoothed = 0;
setInterval(() => {
  smoothed = smoothed * 0.5 + (received - lastCount) * 0.5;
  lastCount = received;
  rate.textContent = smoothed.toFixed(1);
  renderSubs();
}, 1000);

$<HTMLFormElement>('sub-form').onsubmit = (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('sub-topic');
  const topic = input.value.trim();
  if (topic === '') return;
  client.subscribe(topic).then((r) => {
    logEvent('info', `subscribed to ${r.topic} at seq ${r.seq}`);
    renderSubs();
  }, showError);
  renderSubs();
};

$<HTMLFormElement>('pub-form').onsubmit = (e) => {
  e.preventDefault();
  const topic = $<HTMLInputElement>('pub-topic').value.trim();
  let data: unknown;
  try {
    data = JSON.parse($<HTMLTextAreaElement>('pub-data').value);
  } catch (err) {
    pubStatus.className = 'status error';
    pubStatus.textContent = `not valid JSON: ${(err as Error).message}`;
    return;
  }
  client.publish(topic, data).then(
    (r) => {
      pubStatus.className = 'status ok';
      pubStatus.textContent = `published to ${topic} as seq ${r.seq}`;
    },
    (err: WsgateError) => {
      pubStatus.className = 'status error';
      pubStatus.textContent =
        err.code === 'forbidden' ? `forbidden: ${err.reason}. Publishing from clients needs the gateway to run with --client-publish.` : `${err.code}: ${err.reason}`;
    },
  );
};

$<HTMLButtonElement>('reconnect').onclick = () => {
  client.close();
  client.connect();
};

client.connect();
for (const topic of (new URLSearchParams(location.search).get('topics') ?? 'demo').split(',')) if (topic !== '') void client.subscribe(topic).catch(showError);
