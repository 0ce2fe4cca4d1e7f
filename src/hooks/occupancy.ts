import type { Logger } from '../log';
import type { Stats } from '../metrics/stats';
import type { InterestListener } from '../pubsub/hub';

const REASSERT_ATTEMPTS = 30;
const REASSERT_RETRY_MS = 1000;
const MAX_UNSETTLED = 100_000;
/**
 * How often this node looks for entries of its own outbox that it is not sending (one ledger read; NATS
 * walks the bucket's keys), for two periods after a ledger call failed (none on a quiet, healthy ledger).
 */
const RESEND_EVERY_MS = 30_000;

/** What could not reach the ledger: a change of this node's interest, or the confirmation of a vacate. */
type Unsettled = 'change' | 'confirm';

/** An occupancy event kept in the ledger's outbox until it is delivered: its id and when the ledger decided it. */
export interface Outboxed {
  readonly id: string;
  readonly decidedMs: number;
}

/** An outbox entry of a gone node, now this node's to send. */
export interface TakenOver extends Outboxed {
  readonly change: 'occupied' | 'vacated';
  readonly topic: string;
}

/** A ledger's answer to a change: false, or announce it (true; or an Outboxed when the ledger keeps it in an outbox). */
export type Verdict = boolean | Outboxed;

/**
 * Told of each occupancy change this node announces for the cluster; `outboxed` when the ledger keeps it
 * until delivered, then the sink answers a promise settled once its webhook left (acknowledged or given up).
 */
export type OccupancySink = (change: 'occupied' | 'vacated', topic: string, outboxed?: Outboxed) => Promise<unknown> | void;

/**
 * Where occupancy is decided, so that each change of a topic is announced by exactly one node. Calls for
 * one topic come in alternation (occupy, vacate, occupy, …) and must be answered in the order made.
 */
export interface OccupancyLedger {
  /** This node's first subscriber arrived. True: the topic was empty and no vacate is pending, announce `topic_occupied`. */
  occupy(topic: string): Promise<Verdict> | Verdict;
  /** This node's last subscriber left. True: the topic is now empty everywhere; this node confirms after the delay. */
  vacate(topic: string): Promise<boolean> | boolean;
  /** After the delay. True: still empty and not re-occupied meanwhile, announce `topic_vacated`. */
  confirmVacated(topic: string): Promise<Verdict> | Verdict;
  /**
   * Removes the memberships of `node`, which stopped heartbeating. Returns the topics it left empty whose
   * vacate this node now confirms after the delay (each such topic is returned to exactly one caller).
   */
  reap(node: string): Promise<string[]> | string[];
  /**
   * This node, back after being away, still has subscribers of `topic`. True: it had been reaped and the
   * topic was announced vacated meanwhile, announce `topic_occupied` (exactly one node sees true). A
   * membership that was kept, or lost with the broker's state, is restored silently.
   */
  reoccupy(topic: string): Promise<Verdict> | Verdict;
  /** The outbox of `node` (gone), each entry handed to exactly one caller, which sends it (ledgers with an outbox). */
  takeOver?(node: string): Promise<TakenOver[]>;
  /**
   * The entries of this node's own outbox that it is not sending now: decided by a call whose reply was
   * lost (the ledger applied it, the node saw an error), or whose removal did not reach the ledger. Each
   * returned entry counts as being sent until delivered() (not returned again meanwhile).
   */
  ownOutbox?(): Promise<TakenOver[]>;
  /** The event `id` of `topic` left this node (acknowledged or given up): its outbox entry goes. */
  delivered?(id: string, topic: string): void;
  close(): Promise<void>;
}

/** One node's occupancy: no shared state, a pending vacate is a set entry. */
export class LocalLedger implements OccupancyLedger {
  private readonly pending = new Set<string>();

  occupy(topic: string): boolean {
    return !this.pending.delete(topic);
  }

  vacate(topic: string): boolean {
    this.pending.add(topic);
    return true;
  }

  confirmVacated(topic: string): boolean {
    return this.pending.delete(topic);
  }

  reap(): string[] {
    return []; // no other nodes
  }

  reoccupy(): boolean {
    return false; // never reaped
  }

  async close(): Promise<void> {}
}

/**
 * Turns this node's topic interest into `topic_occupied` / `topic_vacated` webhooks, decided by a ledger
 * (node-local or cluster-wide). `topic_vacated` waits `delayMs`: a topic occupied again within it sends nothing.
 */
export class Occupancy implements InterestListener {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private reasserting: NodeJS.Timeout | null = null;
  /** Topics whose last call could not reach the ledger (broker away), settled by reassert(). */
  private readonly failed = new Map<string, Unsettled>();
  /** Topics with a change call to the ledger not answered yet (a NATS request may fail seconds later). */
  private readonly inFlight = new Map<string, number>();
  private closed = false;
  private resending = false;
  /** Until when the periodic outbox read runs: a failed call may have been applied late (see RESEND_EVERY_MS). */
  private suspectUntil = 0;
  private readonly sweep: NodeJS.Timeout | null;

  constructor(
    private readonly ledger: OccupancyLedger,
    private readonly announce: OccupancySink,
    private readonly delayMs: number,
    private readonly stats: Stats,
    private readonly log: Logger,
    /** The topics this node has subscribers of now. */
    private readonly held: () => string[],
  ) {
    // Also catches an entry left by a lost reply that no reassert followed (bounded: one read per period).
    this.sweep = ledger.ownOutbox === undefined ? null : setInterval(() => Date.now() < this.suspectUntil && this.resendOwn(), RESEND_EVERY_MS).unref();
  }

  interestAdded(topic: string): void {
    this.settle(topic, this.track(topic, this.ledger.occupy(topic)), (v) => this.emit('occupied', topic, v), 'change');
  }

  interestRemoved(topic: string): void {
    this.settle(topic, this.track(topic, this.ledger.vacate(topic)), () => this.confirmLater(topic), 'change');
  }

  /** Counts the change call in flight for `topic` until it is answered (either way); bounded by the topics. */
  private track<T>(topic: string, answer: Promise<T> | T): Promise<T> | T {
    if (!(answer instanceof Promise)) return answer;
    this.inFlight.set(topic, (this.inFlight.get(topic) ?? 0) + 1);
    const done = () => {
      const n = (this.inFlight.get(topic) ?? 1) - 1;
      if (n > 0) this.inFlight.set(topic, n);
      else this.inFlight.delete(topic);
    };
    answer.then(done, done);
    return answer;
  }

  /**
   * A node stopped heartbeating (died without closing): every surviving node asks the ledger to drop its
   * memberships, and the ledger hands each topic it left empty to exactly one of them to confirm.
   */
  nodeGone(node: string): Promise<void> {
    // Its undelivered events first: they were decided before anything the reap below decides.
    return Promise.all([this.takeOver(node), this.reapGone(node)]).then(() => undefined);
  }

  /**
   * Sends the events left in the outbox of `node` (gone). Retried while the ledger is away (unlike the
   * reap, whose late retry could remove a node that came back: a late take-over only repeats ids).
   */
  private takeOver(node: string, attempt = 0): Promise<void> | undefined {
    return this.ledger.takeOver?.(node).then(
      (events) => {
        this.stats.webhookTakenOver += events.length;
        for (const e of events.sort((a, b) => a.decidedMs - b.decidedMs)) this.emit(e.change, e.topic, e);
        if (events.length > 0) this.log.info({ node, events: events.length }, 'sending the undelivered occupancy webhooks of a node that stopped heartbeating');
      },
      (e: Error) => {
        this.suspected();
        if (attempt + 1 >= REASSERT_ATTEMPTS || this.closed) return this.log.warn({ node, err: e.message }, 'occupancy ledger unavailable; outbox of a gone node not taken over');
        setTimeout(() => void this.takeOver(node, attempt + 1), REASSERT_RETRY_MS).unref();
      },
    );
  }

  private reapGone(node: string): Promise<void> {
    return Promise.resolve(this.ledger.reap(node)).then(
      (topics) => {
        for (const topic of topics) this.confirmLater(topic);
        if (topics.length > 0) this.log.info({ node, topics: topics.length }, 'vacating the topics of a node that stopped heartbeating');
      },
      (e: Error) => {
        this.stats.webhookEvents.dropped++;
        this.log.warn({ node, err: e.message }, 'occupancy ledger unavailable; memberships of a gone node not removed');
      },
    );
  }

  /**
   * After the node was away from the broker (or declared gone by the others): every topic it still has
   * subscribers of is asserted in the ledger again (reoccupy), and every call that could not reach the
   * ledger meanwhile is made again: a change of interest is settled as it is now (occupied if held, else
   * vacated), a vacate confirmation is confirmed (unless the topic is held again). What cannot be reached
   * yet is retried (REASSERT_ATTEMPTS times).
   */
  reassert(attempt = 0): void {
    clearTimeout(this.reasserting ?? undefined);
    this.reasserting = null;
    const held = new Set(this.held());
    const unsettled = new Map(this.failed);
    this.failed.clear();
    const run = (topic: string, kind: Unsettled, answer: () => Promise<Verdict> | Verdict, then: (v: Verdict) => void) =>
      Promise.resolve()
        .then(answer)
        .then(
          (v) => v !== false && then(v),
          (e: Error) => {
            this.unsettled(topic, kind);
            throw e;
          },
        );
    const occupied = (topic: string) => (v: Verdict) => this.emit('occupied', topic, v);
    const answers: Promise<unknown>[] = [];
    for (const topic of held) {
      // A change still unanswered may not have reached the ledger: settled as a change (reoccupy would take
      // its absence for the broker's lost state and restore the membership silently, the event unsent).
      if (unsettled.get(topic) === 'change' || this.inFlight.has(topic)) answers.push(run(topic, 'change', () => this.ledger.occupy(topic), occupied(topic)));
      else answers.push(run(topic, 'change', () => this.ledger.reoccupy(topic), occupied(topic)));
    }
    for (const [topic, kind] of unsettled) {
      if (held.has(topic)) continue;
      if (kind === 'change') answers.push(run(topic, kind, () => this.ledger.vacate(topic), () => this.confirmLater(topic)));
      else answers.push(run(topic, kind, () => this.ledger.confirmVacated(topic), (v) => this.emit('vacated', topic, v)));
    }
    Promise.all(answers).then(
      () => this.resendOwn(),
      (e: Error) => {
        if (attempt + 1 >= REASSERT_ATTEMPTS || this.closed) return this.log.warn({ err: e.message }, 'occupancy ledger unavailable; memberships not re-asserted');
        this.reasserting = setTimeout(() => this.reassert(attempt + 1), REASSERT_RETRY_MS).unref();
      },
    );
  }

  /**
   * Sends again, with their ids and in decided order, the entries of this node's own outbox that it is not
   * sending: events the ledger decided for calls whose reply was lost with the connection (the node saw an
   * error and settled the topic as it is now), or whose removal failed. One read at a time; a failed read
   * waits for the next reassert or period.
   */
  resendOwn(): void {
    const own = this.ledger.ownOutbox?.bind(this.ledger);
    if (own === undefined || this.resending || this.closed) return;
    this.resending = true;
    own()
      .then(
        (events) => {
          this.stats.webhookResent += events.length;
          for (const e of events.sort((a, b) => a.decidedMs - b.decidedMs)) this.emit(e.change, e.topic, e);
          if (events.length > 0) this.log.info({ events: events.length }, 'sending occupancy webhooks left in this node\'s outbox (a reply lost with the connection)');
        },
        (e: Error) => {
          this.suspected();
          this.log.debug({ err: e.message }, 'occupancy ledger unavailable; own outbox not read');
        },
      )
      .finally(() => {
        this.resending = false;
      });
  }

  /** A ledger call failed: its outcome may show in this node's outbox later, read for the next two periods. */
  private suspected(): void {
    this.suspectUntil = Date.now() + 2 * RESEND_EVERY_MS;
  }

  /** A change of `topic` did not reach the ledger: settled when the node is back (bounded: beyond, it stays unannounced). */
  private unsettled(topic: string, kind: Unsettled): void {
    this.suspected();
    if (this.failed.size < MAX_UNSETTLED || this.failed.has(topic)) this.failed.set(topic, kind);
    // A failure can be reported after the node is back (a request that timed out late): settle it soon.
    if (this.reasserting === null && !this.closed) this.reasserting = setTimeout(() => this.reassert(), REASSERT_RETRY_MS).unref();
  }

  private confirmLater(topic: string): void {
    clearTimeout(this.timers.get(topic));
    const timer = setTimeout(() => this.confirm(topic), this.delayMs);
    timer.unref();
    this.timers.set(topic, timer);
  }

  private confirm(topic: string): void {
    this.timers.delete(topic);
    this.settle(topic, this.ledger.confirmVacated(topic), (v) => this.emit('vacated', topic, v), 'confirm');
  }

  /** Announces a change; one kept in the ledger's outbox leaves it once its webhooks left this node. */
  private emit(change: 'occupied' | 'vacated', topic: string, v: Verdict | TakenOver): void {
    const outboxed = typeof v === 'object' ? { id: v.id, decidedMs: v.decidedMs } : undefined;
    const sent = this.announce(change, topic, outboxed);
    const delivered = this.ledger.delivered?.bind(this.ledger);
    if (outboxed === undefined || delivered === undefined) return;
    const done = () => delivered(outboxed.id, topic);
    void Promise.resolve(sent).then(done, done);
  }

  private settle(topic: string, answer: Promise<Verdict> | Verdict, then: (v: Verdict) => void, kind: Unsettled): void {
    if (answer === true) then(answer);
    else if (answer instanceof Promise) {
      answer.then(
        (v) => {
          // A later call for the topic reached the ledger: an earlier failure is moot.
          this.failed.delete(topic);
          if (v !== false) then(v);
        },
        (e: Error) => {
          // The ledger is away (broker outage): counted with the drops, settled when the node is back.
          this.stats.webhookEvents.dropped++;
          this.unsettled(topic, kind);
          this.log.warn({ topic, err: e.message }, 'occupancy ledger unavailable; event not sent');
        },
      );
    }
  }

  /** Confirms pending vacates at once (the node is leaving and could not later), then closes the ledger. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reasserting ?? undefined);
    clearInterval(this.sweep ?? undefined);
    const pending = [...this.timers.keys()];
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(
      pending.map(async (topic) => {
        try {
          const v = await this.ledger.confirmVacated(topic);
          if (v !== false) this.emit('vacated', topic, v);
        } catch {
          this.stats.webhookEvents.dropped++;
        }
      }),
    );
    await this.ledger.close();
  }
}
