import { type Cluster, type FaultWindow, type Hook, type Node } from './cluster';
import { FEEDS, type Member, PUBLISH_TIMEOUT_MS, type Published, type Publisher, ROOMS, type Seen, type Subscriber, type Watcher } from './workload';

export interface Invariant {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const inWindow = (at: number, windows: readonly FaultWindow[], before = 500, after = 1000) => windows.some((w) => at >= w.from - before && at <= (w.to || Infinity) + after);

const clock = (t: number) => new Date(t).toISOString().slice(11, 23);

/**
 * NATS: whether a gap event comes right before the first message numbered above `k` in `list` (receive
 * order), i.e. the outage the gap reports lies between what came before `k` and what came after it.
 */
function gapBefore(list: readonly Seen[]): (k: number) => boolean {
  const maxUpTo: number[] = [];
  let max = 0;
  for (const e of list) maxUpTo.push((max = Math.max(max, 'k' in e ? e.k : 0)));
  return (k) => {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((maxUpTo[mid] as number) > k) hi = mid;
      else lo = mid + 1;
    }
    return lo > 0 && lo < list.length && !('k' in (list[lo - 1] as Seen));
  };
}

/**
 * Core NATS: a node acknowledges a publish once it delivered it locally; it forwards it at the end of that
 * event-loop turn (docs/cluster.md). So a publish is lost with its node when that node was SIGKILLed within
 * the publisher's timeout after acknowledging it, acknowledged nothing after it, and no subscriber on
 * another node got it: the forward never left.
 */
function lostWithPublisher(acked: readonly Published[], subscribers: readonly Subscriber[], windows: readonly FaultWindow[]): (p: Published, s: Subscriber) => boolean {
  const nextAck = new Map<Published, number>();
  const lastAt = new Map<number, number>();
  for (let i = acked.length - 1; i >= 0; i--) {
    const p = acked[i] as Published;
    nextAck.set(p, lastAt.get(p.node) ?? Infinity);
    lastAt.set(p.node, p.at);
  }
  const reachedOn = new Map<string, Set<number>>();
  for (const s of subscribers) {
    for (const [topic, list] of s.seen) {
      for (const e of list) {
        if (!('k' in e)) continue;
        const key = `${topic} ${e.k}`;
        let nodes = reachedOn.get(key);
        if (nodes === undefined) reachedOn.set(key, (nodes = new Set()));
        nodes.add(s.node);
      }
    }
  }
  return (p, s) => {
    if (s.node === p.node) return false; // delivered locally before the acknowledgment
    const kill = windows.find((w) => w.kind === 'kill' && w.node === p.node && w.from >= p.at);
    if (kill === undefined || kill.from - p.at > PUBLISH_TIMEOUT_MS || (nextAck.get(p) as number) < kill.from) return false;
    return [...(reachedOn.get(`${p.topic} ${p.k}`) ?? [])].every((n) => n === p.node);
  };
}

/** Where a missing message sits: its subscriber, when it was sent and acknowledged through which node, and the faults around it. */
function place(s: Subscriber, p: Published, windows: readonly FaultWindow[]): string {
  const before = windows.filter((w) => w.from <= p.at).pop();
  const after = windows.find((w) => w.from > p.at);
  const near = [
    before === undefined ? '' : `after ${before.what} (${clock(before.from)}, lifted ${clock(before.back)}, ready ${before.to === 0 ? 'never' : clock(before.to)})`,
    after === undefined ? '' : `before ${after.what} (${clock(after.from)}, ${after.from - p.at} ms after the ack)`,
  ];
  return `sub ${s.id} (node ${s.node}, open ${clock(s.openedAt)}–${s.closedAt === null ? 'end' : clock(s.closedAt)}) ${p.topic} k=${p.k}: sent ${clock(p.sent)}, acked ${clock(p.at)} via node ${p.node}; ${near.filter((x) => x !== '').join(', ')}`;
}

/**
 * Every resumable subscriber got every acknowledged message exactly once or an explicit gap. Redis: in
 * order, and a message missing between two received ones needs a gap event between them. NATS (core,
 * at most once across an outage, documented): a missing message needs a gap event right before the first
 * message numbered above it, or must have been acknowledged during a fault, or lost with its publishing
 * node (above). And the last publish after the faults reached every subscriber still open.
 */
export function checkDeliveries(kind: string, publisher: Publisher, subscribers: readonly Subscriber[], windows: readonly FaultWindow[]): Invariant[] {
  const dupes: string[] = [];
  const disorder: string[] = [];
  const unexplained: string[] = [];
  let explainedByGap = 0;
  let inFault = 0;
  let withPublisher = 0;
  const ackedBy = new Map<string, Map<number, Published>>();
  for (const p of publisher.acked) {
    let m = ackedBy.get(p.topic);
    if (m === undefined) ackedBy.set(p.topic, (m = new Map()));
    m.set(p.k, p);
  }
  const diedWith = lostWithPublisher(publisher.acked, subscribers, windows);
  for (const s of subscribers) {
    for (const topic of FEEDS) {
      const list = s.seen.get(topic) ?? [];
      const got = new Set<number>();
      let prev = 0;
      let gapSincePrev = false;
      for (const e of list) {
        if (!('k' in e)) {
          gapSincePrev = true;
          continue;
        }
        if (got.has(e.k)) dupes.push(`sub ${s.id} ${topic} k=${e.k}`);
        got.add(e.k);
        if (kind === 'redis' && prev > 0) {
          if (e.k <= prev) disorder.push(`sub ${s.id} ${topic} ${prev} then ${e.k}: ${JSON.stringify(list.slice(Math.max(0, list.indexOf(e) - 4), list.indexOf(e) + 2))}`);
          for (let k = prev + 1; k < e.k; k++) {
            const p = ackedBy.get(topic)?.get(k);
            if (p === undefined) continue; // never acknowledged: no promise made
            if (gapSincePrev) explainedByGap++;
            else unexplained.push(place(s, p, windows));
          }
        }
        prev = Math.max(prev, e.k);
        gapSincePrev = false;
      }
      if (kind !== 'redis' && got.size > 0) {
        const ks = [...got];
        const lo = Math.min(...ks);
        const hi = Math.max(...ks);
        const behindGap = gapBefore(list);
        for (const [k, p] of ackedBy.get(topic) ?? []) {
          if (k <= lo || k >= hi || got.has(k)) continue;
          if (behindGap(k)) explainedByGap++;
          else if (inWindow(p.at, windows)) inFault++;
          else if (diedWith(p, s)) withPublisher++;
          else unexplained.push(place(s, p, windows));
        }
      }
    }
  }
  const finalMissing: string[] = [];
  for (const topic of FEEDS) {
    const last = [...(ackedBy.get(topic)?.keys() ?? [])].pop();
    if (last === undefined) continue;
    for (const s of subscribers) if (s.closedAt === null && !(s.seen.get(topic) ?? []).some((e) => 'k' in e && e.k === last)) finalMissing.push(`sub ${s.id} ${topic}`);
  }
  const limits = kind === 'redis' ? '' : `; ${inFault} lost while a fault was on (core NATS is at most once across an outage: documented); ${withPublisher} lost with their publishing node, SIGKILLed before it forwarded them (documented)`;
  return [
    { name: 'every message at most once per subscriber', ok: dupes.length === 0, detail: dupes.slice(0, 10).join(', ') || 'no duplicates' },
    ...(kind === 'redis' ? [{ name: 'Redis: in publish order', ok: disorder.length === 0, detail: disorder.slice(0, 10).join(', ') || 'in order' }] : []),
    { name: 'every acknowledged message delivered or behind an explicit gap', ok: unexplained.length === 0, detail: `${unexplained.length} unexplained ${unexplained.slice(0, 10).join('; ')}; ${explainedByGap} behind a gap event${limits}` },
    { name: 'the last publish after the faults reached every open subscriber', ok: finalMissing.length === 0, detail: finalMissing.join(', ') || 'all' },
  ];
}

/** The members each topic has now, by the clients' own account (plus the watcher, subscribed to every room and chat). */
function truth(members: readonly Member[], topic: string): string[] {
  return members.filter((m) => m.conn !== null && m.topics.includes(topic)).map((m) => m.user).sort();
}

/** The users `node` lists on `topic` (the watcher left out), sorted; null when it did not answer. */
async function listed(node: Node, topic: string): Promise<string[] | null> {
  const res = await fetch(`${node.http}/topics/${topic}/presence`, { signal: AbortSignal.timeout(3000) }).catch(() => null);
  const body = res === null ? null : ((await res.json().catch(() => null)) as { presence?: { user: string }[] } | null);
  return body?.presence === undefined ? null : body.presence.map((e) => e.user).filter((u) => u !== 'watcher').sort();
}

/**
 * Presence on every node and the watcher's joins/leaves equal the truth; with a finite bound, in time.
 * Every node is asked about every topic at once, so the answers describe one moment (the call's start).
 */
export async function checkPresence(cluster: Cluster, watcher: Watcher, members: readonly Member[], convergedMs: number, boundMs: number): Promise<Invariant[]> {
  const wrong: string[] = [];
  const topics: string[] = [];
  for (let r = 0; r < ROOMS; r++) topics.push(`room.${r}`, `chat.${r}`);
  const wants = topics.map((t) => truth(members, t));
  const nodes = cluster.live();
  const answers = await Promise.all(topics.map((t) => Promise.all(nodes.map((n) => listed(n, t)))));
  topics.forEach((topic, i) => {
    const want = wants[i] as string[];
    const heard = watcher.users(topic);
    if (heard.join() !== want.join()) wrong.push(`watcher's joins/leaves on ${topic}: [${heard}] want [${want}]`);
    nodes.forEach((node, j) => {
      const got = (answers[i] as (string[] | null)[])[j];
      if (got?.join() !== want.join()) wrong.push(`node ${node.slot} presence ${topic}: [${got ?? 'no answer'}] want [${want}]`);
    });
  });
  const out: Invariant[] = [
    { name: 'presence on every node and joins/leaves equal the truth', ok: wrong.length === 0, detail: wrong.slice(0, 8).join('; ') || 'equal' },
    { name: 'joins and leaves alternate per member (each once)', ok: watcher.repeats.length === 0, detail: watcher.repeats.slice(0, 8).join('; ') || 'alternating' },
  ];
  if (Number.isFinite(boundMs)) out.push({ name: `converged within the bound (${boundMs} ms after every node was ready again)`, ok: convergedMs <= boundMs, detail: `${convergedMs} ms` });
  return out;
}

/** Webhooks from two nodes sent this close together may be in either order (each request's time_ms is its node's send time). */
const CROSSING_MS = 100;

/** When an event was decided: the ledger's `decided_ms` (Redis), else when its node sent it. */
const decided = (h: Hook): number => h.decided ?? h.at;

/**
 * The occupancy events in the order they were decided (stable within a request), each id once; without
 * the ledger's decision time (NATS), a repeat whose opposite event follows within CROSSING_MS from
 * another request is taken as the two having crossed.
 */
function decidedOrder(hooks: readonly Hook[]): Hook[] {
  const byTopic = new Map<string, Hook[]>();
  const ids = new Set<string>();
  for (const h of [...hooks].sort((x, y) => decided(x) - decided(y))) {
    if ((h.name !== 'topic_occupied' && h.name !== 'topic_vacated') || h.topic === undefined) continue;
    // A retried batch (its POST timed out under load) repeats its events' ids: the same event, not a second one.
    if (h.id !== undefined && ids.has(h.id)) continue;
    if (h.id !== undefined) ids.add(h.id);
    let list = byTopic.get(h.topic);
    if (list === undefined) byTopic.set(h.topic, (list = []));
    list.push(h);
  }
  const out: Hook[] = [];
  for (const list of byTopic.values()) {
    for (let i = 1; i + 1 < list.length; i++) {
      const [prev, cur, next] = [list[i - 1] as Hook, list[i] as Hook, list[i + 1] as Hook];
      if (cur.decided === undefined && prev.name === cur.name && next.name !== cur.name && next.at - cur.at <= CROSSING_MS) [list[i], list[i + 1]] = [next, cur];
    }
    out.push(...list);
  }
  return out;
}

/**
 * topic_occupied / topic_vacated alternate per topic, starting with occupied (each change once per
 * cluster, repeats of an id dropped), and every topic held at the end was last announced occupied. The
 * ledger keeps decided events in its outbox until delivered (a dead node's are sent by its reaper), so an
 * event lost with a SIGKILLed node is a failure like any other.
 */
export function checkOccupancy(hooks: readonly Hook[], members: readonly Member[], subscribers: readonly Subscriber[], windows: readonly FaultWindow[], kind: string): Invariant {
  const last = new Map<string, Hook>();
  const bad: string[] = [];
  const stateLoss: string[] = [];
  for (const h of decidedOrder(hooks)) {
    if ((h.name !== 'topic_occupied' && h.name !== 'topic_vacated') || h.topic === undefined) continue;
    const prev = last.get(h.topic);
    if ((prev?.name ?? 'topic_vacated') === h.name) {
      // Redis restarted without persistence forgets vacates still waiting for their delay and the outboxes
      // (docs/cluster.md): the topic's next event after that may repeat, however long after the restart.
      const since = prev === undefined ? -Infinity : decided(prev);
      const lost = kind === 'redis' && windows.some((w) => w.kind === 'broker restart' && w.to >= since && w.from <= decided(h));
      (lost ? stateLoss : bad).push(`${h.topic}: ${h.name} twice (decided ${clock(decided(h))} on node ${h.node}${prev === undefined ? '' : `, the one before ${clock(decided(prev))} on node ${prev.node}`})`);
    }
    last.set(h.topic, h);
  }
  const held = new Set<string>([...FEEDS.filter(() => subscribers.some((s) => s.closedAt === null))]);
  for (const m of members) for (const t of m.topics) held.add(t);
  for (let r = 0; r < ROOMS; r++) held.add(`room.${r}`).add(`chat.${r}`);
  for (const t of held) {
    const end = last.get(t);
    if (end?.name !== 'topic_occupied') bad.push(`${t} held but last announced ${end?.name ?? 'never'}`);
  }
  const topicHooks = hooks.filter((h) => h.name.startsWith('topic_'));
  const counted = `${new Set(topicHooks.map((h) => h.id)).size} events (${topicHooks.length} received)`;
  const documented = [stateLoss.length > 0 ? `${stateLoss.length} repeat(s) after a broker state loss (documented)` : ''];
  return {
    name: 'occupied/vacated alternate per topic, once per cluster, and end as the truth',
    ok: bad.length === 0,
    detail: [counted, bad.slice(0, 8).join('; ') || 'alternating', ...documented.filter((d) => d !== '')].join('; '),
  };
}
