import type { Cluster, FaultWindow, Hook, Node } from './cluster';
import { FEEDS, type Member, type Publisher, ROOMS, type Subscriber, type Watcher } from './workload';

export interface Invariant {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

const inWindow = (at: number, windows: readonly FaultWindow[], before = 500, after = 1000) => windows.some((w) => at >= w.from - before && at <= (w.to || Infinity) + after);

/**
 * Every resumable subscriber got every acknowledged message exactly once or an explicit gap. Redis: in
 * order, and a message missing between two received ones needs a gap event between them. NATS (core,
 * at most once across an outage, documented): a missing message needs a gap event or must have been
 * published during a fault. And the last publish after the faults reached every subscriber still open.
 */
export function checkDeliveries(kind: string, publisher: Publisher, subscribers: readonly Subscriber[], windows: readonly FaultWindow[]): Invariant[] {
  const dupes: string[] = [];
  const disorder: string[] = [];
  const unexplained: string[] = [];
  let explainedByGap = 0;
  let inFault = 0;
  const ackedBy = new Map<string, Map<number, number>>();
  for (const p of publisher.acked) {
    let m = ackedBy.get(p.topic);
    if (m === undefined) ackedBy.set(p.topic, (m = new Map()));
    m.set(p.k, p.at);
  }
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
            const at = ackedBy.get(topic)?.get(k);
            if (at === undefined) continue; // never acknowledged: no promise made
            if (gapSincePrev) explainedByGap++;
            else unexplained.push(`sub ${s.id} ${topic} k=${k}`);
          }
        }
        prev = Math.max(prev, e.k);
        gapSincePrev = false;
      }
      if (kind !== 'redis' && got.size > 0) {
        const ks = [...got];
        const lo = Math.min(...ks);
        const hi = Math.max(...ks);
        const hadGap = list.some((e) => !('k' in e));
        for (const [k, at] of ackedBy.get(topic) ?? []) {
          if (k <= lo || k >= hi || got.has(k)) continue;
          if (hadGap) explainedByGap++;
          else if (inWindow(at, windows)) inFault++;
          else unexplained.push(`sub ${s.id} ${topic} k=${k}`);
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
  const limits = kind === 'redis' ? '' : `; ${inFault} lost while a fault was on (core NATS is at most once across an outage: documented)`;
  return [
    { name: 'every message at most once per subscriber', ok: dupes.length === 0, detail: dupes.slice(0, 10).join(', ') || 'no duplicates' },
    ...(kind === 'redis' ? [{ name: 'Redis: in publish order', ok: disorder.length === 0, detail: disorder.slice(0, 10).join(', ') || 'in order' }] : []),
    { name: 'every acknowledged message delivered or behind an explicit gap', ok: unexplained.length === 0, detail: `${unexplained.length} unexplained ${unexplained.slice(0, 10).join(', ')}; ${explainedByGap} behind a gap event${limits}` },
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

/**
 * The occupancy events in the order their nodes sent them (stable within a request); a repeat whose
 * opposite event follows within CROSSING_MS from another request is taken as the two having crossed.
 */
function decidedOrder(hooks: readonly Hook[]): Hook[] {
  const byTopic = new Map<string, Hook[]>();
  const ids = new Set<string>();
  for (const h of [...hooks].sort((x, y) => x.at - y.at)) {
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
      if (prev.name === cur.name && next.name !== cur.name && next.at - cur.at <= CROSSING_MS) [list[i], list[i + 1]] = [next, cur];
    }
    out.push(...list);
  }
  return out;
}

/**
 * topic_occupied / topic_vacated alternate per topic, starting with occupied (each change once per
 * cluster), and every topic held at the end was last announced occupied.
 */
export function checkOccupancy(hooks: readonly Hook[], members: readonly Member[], subscribers: readonly Subscriber[], windows: readonly FaultWindow[], kind: string): Invariant {
  const last = new Map<string, string>();
  const bad: string[] = [];
  const stateLoss: string[] = [];
  for (const h of decidedOrder(hooks)) {
    if ((h.name !== 'topic_occupied' && h.name !== 'topic_vacated') || h.topic === undefined) continue;
    const prev = last.get(h.topic) ?? 'topic_vacated';
    if (prev === h.name) {
      // Redis restarted without persistence forgets vacates still waiting for their delay (docs/cluster.md).
      const lost = kind === 'redis' && windows.some((w) => w.what === 'broker restart' && h.at >= w.from && h.at <= w.to + 5000);
      (lost ? stateLoss : bad).push(`${h.topic}: ${h.name} twice`);
    }
    last.set(h.topic, h.name);
  }
  const held = new Set<string>([...FEEDS.filter(() => subscribers.some((s) => s.closedAt === null))]);
  for (const m of members) for (const t of m.topics) held.add(t);
  for (let r = 0; r < ROOMS; r++) held.add(`room.${r}`).add(`chat.${r}`);
  for (const t of held) if (last.get(t) !== 'topic_occupied') bad.push(`${t} held but last announced ${last.get(t) ?? 'never'}`);
  const counted = hooks.filter((h) => h.name.startsWith('topic_')).length;
  return {
    name: 'occupied/vacated alternate per topic, once per cluster, and end as the truth',
    ok: bad.length === 0,
    detail: `${counted} events; ${bad.slice(0, 8).join('; ') || 'alternating'}${stateLoss.length > 0 ? `; ${stateLoss.length} repeat(s) after a broker state loss (documented)` : ''}`,
  };
}
