import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { App, type TemplatedApp, type us_listen_socket, type us_socket, us_listen_socket_close, us_socket_local_port } from 'uWebSockets.js';
import type { Config } from '../config/schema';
import type { Logger } from '../log';
import { type GuardMemory, createGuardMemory } from '../guard/upgrade-guard';
import { type ProcessTablesMemory, createProcessTables } from '../shared/process-tables';
import { listenExclusive } from '../server/listen';
import { childApps } from './acceptor';
import { type MeshMemory, createMesh, renewPeer } from './mesh';
import { mergeWorkerMetrics } from './metrics-merge';
import type { FromWorker, MetricJson, ToWorker, WorkerBoot } from './messages';

/** --workers as a count: auto is what libuv says the process may run in parallel (affinity; a cgroup quota too from libuv 1.49, Node 22+). */
export function workerCount(setting: string): number {
  return setting === 'auto' ? availableParallelism() : Number(setting);
}

/** Longest wait for every worker's metrics when /metrics is scraped. */
const COLLECT_TIMEOUT_MS = 2000;
/** Pause before replacing a dead worker (a worker failing at once again must not spin the process). */
const RESPAWN_DELAY_MS = 200;

interface Slot {
  worker: Worker;
  generation: number;
  apps: { app: number; admin: number | null } | null;
  /** The worker asked to leave the acceptors (it failed) or was drained. */
  leaving: boolean;
}

/**
 * The main thread of `serve --workers N`: owns the listening sockets (acceptor apps that hand each new
 * connection to one worker's app), starts and replaces workers, answers /metrics for the whole process
 * and drains every worker on a signal. Workers are nodes of an in-process cluster (InProcessBroker).
 */
export class Supervisor {
  // Made once the first workers are ready: a main-thread App created while the workers were still
  // loading uWS kept them from ever finishing their start (seen on this build).
  private acceptor: TemplatedApp | null = null;
  private adminAcceptor: TemplatedApp | null = null;
  private readonly mesh: MeshMemory;
  private readonly guard: GuardMemory;
  private readonly tables: ProcessTablesMemory;
  private readonly slots: Slot[] = [];
  private readonly channel = `wsgate-control-${process.pid}-${Date.now()}`;
  private listenSocket: us_listen_socket | null = null;
  private adminListenSocket: us_listen_socket | null = null;
  private draining = false;
  private nextCollect = 0;
  private readonly collecting = new Map<number, { metrics: Map<number, MetricJson[]>; waiting: number; done: () => void }>();
  private allExited: () => void = () => {};
  private readonly exited = new Promise<void>((resolve) => (this.allExited = resolve));

  constructor(
    private readonly config: Config,
    private readonly log: Logger,
    readonly count: number,
  ) {
    this.mesh = createMesh(count);
    this.guard = createGuardMemory(config);
    this.tables = createProcessTables(config, count);
  }

  /** Starts every worker, then listens; resolves with the bound port. */
  async start(): Promise<number> {
    await Promise.all(Array.from({ length: this.count }, (_, i) => this.spawn(i, 0)));
    this.acceptor = App();
    if (this.config.adminPort !== 0) this.adminAcceptor = App();
    for (const slot of this.slots) this.admit(slot);
    if (this.adminAcceptor !== null) {
      this.adminListenSocket = await listenExclusive(this.adminAcceptor, this.config.adminHost, this.config.adminPort, '--admin-port');
      this.log.info({ host: this.config.adminHost, port: this.config.adminPort }, 'admin listening');
    }
    // Exclusive: the port is this process's alone; the workers share it only through the acceptor.
    this.listenSocket = await listenExclusive(this.acceptor, this.config.host, this.config.port, '--port');
    const port = us_socket_local_port(this.listenSocket as unknown as us_socket);
    this.log.info({ host: this.config.host, port, broker: this.config.broker === 'memory' ? 'in-process' : this.config.broker.replace(/:\/\/.*/, ''), workers: this.count }, 'listening');
    return port;
  }

  /** Workers running and taking connections. */
  get live(): number {
    return this.slots.filter((s) => s.apps !== null && !s.leaving).length;
  }

  private spawn(index: number, generation: number): Promise<void> {
    const boot: WorkerBoot = { config: this.config, index, generation, mesh: this.mesh, guard: this.guard, tables: this.tables, channel: this.channel };
    const worker = new Worker(path.join(__dirname, 'worker-main.js'), { workerData: boot });
    const slot: Slot = { worker, generation, apps: null, leaving: false };
    this.slots[index] = slot;
    return new Promise((resolve, reject) => {
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          slot.apps = { app: m.app, admin: m.admin };
          this.admit(slot);
          resolve();
        } else this.onMessage(slot, m);
      });
      worker.on('error', (err) => this.log.error({ err, worker: index }, 'worker error'));
      worker.on('exit', (code) => {
        if (slot.apps === null) reject(new Error(`worker ${index} exited with code ${code} before it was ready`));
        this.onExit(index, slot, code);
      });
    });
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    switch (m.type) {
      case 'dying':
        this.release(slot);
        return this.send(slot, { type: 'released' });
      case 'scrape':
        return void this.scrape().then(
          (text) => this.send(slot, { type: 'scraped', id: m.id, text, ok: true }),
          (e: Error) => this.send(slot, { type: 'scraped', id: m.id, text: e.message, ok: false }),
        );
      case 'collected': {
        const c = this.collecting.get(m.id);
        if (c === undefined) return;
        c.metrics.set(this.slots.indexOf(slot), m.metrics);
        if (--c.waiting === 0) c.done();
        return;
      }
      case 'drained':
      case 'ready':
        return;
    }
  }

  /** Puts a ready worker's apps into the acceptors (once they exist). */
  private admit(slot: Slot): void {
    if (slot.apps === null || this.acceptor === null) return;
    childApps(this.acceptor).addChildAppDescriptor(slot.apps.app);
    if (slot.apps.admin !== null && this.adminAcceptor !== null) childApps(this.adminAcceptor).addChildAppDescriptor(slot.apps.admin);
  }

  /** Takes a worker's apps out of the acceptors: no new connection goes to it. */
  private release(slot: Slot): void {
    if (slot.leaving || slot.apps === null) return;
    slot.leaving = true;
    if (this.acceptor === null) return;
    childApps(this.acceptor).removeChildAppDescriptor(slot.apps.app);
    if (slot.apps.admin !== null && this.adminAcceptor !== null) childApps(this.adminAcceptor).removeChildAppDescriptor(slot.apps.admin);
  }

  private onExit(index: number, slot: Slot, code: number): void {
    this.release(slot);
    if (this.draining) {
      if (this.slots.every((s) => s.worker.threadId === -1)) this.allExited();
      return;
    }
    if (slot.apps === null) return;
    this.log.error({ worker: index, code }, 'worker exited: replacing it (its clients reconnect; its topics start a new epoch)');
    renewPeer(this.mesh, index);
    setTimeout(() => {
      if (this.draining) return;
      for (let other = 0; other < this.slots.length; other++) {
        if (other === index) continue;
        const out = this.mesh.rings[other]?.[index] as SharedArrayBuffer;
        const inbound = this.mesh.rings[index]?.[other] as SharedArrayBuffer;
        this.send(this.slots[other] as Slot, { type: 'peer', index, out, inbound, bell: this.mesh.bells[index] as SharedArrayBuffer });
      }
      this.spawn(index, slot.generation + 1).then(
        () => this.log.info({ worker: index }, 'worker replaced'),
        (err: unknown) => this.log.error({ err, worker: index }, 'worker could not be replaced'),
      );
    }, RESPAWN_DELAY_MS);
  }

  private send(slot: Slot, m: ToWorker): void {
    slot.worker.postMessage(m);
  }

  /** Every answering worker's metrics, merged into one exposition. */
  private async scrape(): Promise<string> {
    const id = ++this.nextCollect;
    const live = this.slots.filter((s) => s.apps !== null && !s.leaving);
    const metrics = new Map<number, MetricJson[]>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      this.collecting.set(id, { metrics, waiting: live.length, done: () => (clearTimeout(timer), resolve()) });
      for (const slot of live) this.send(slot, { type: 'collect', id });
    });
    this.collecting.delete(id);
    return mergeWorkerMetrics(metrics).metrics();
  }

  /** Test hook for the failure path: makes worker `index` throw an uncaught error. */
  fail(index: number): void {
    this.send(this.slots[index] as Slot, { type: 'fail' });
  }

  /**
   * Stops listening, drains every worker (each closes its clients with 1012 over the drain window),
   * resolves when all have exited.
   */
  drain(): Promise<void> {
    return this.stop({ type: 'drain' });
  }

  /** Stops listening and closes every worker at once (its clients are cut); resolves when all have exited. */
  close(): Promise<void> {
    return this.stop({ type: 'close' });
  }

  private async stop(how: ToWorker & { type: 'drain' | 'close' }): Promise<void> {
    if (this.draining) return this.exited;
    this.draining = true;
    this.stopListening();
    for (const slot of this.slots) {
      if (slot.worker.threadId === -1) continue;
      this.release(slot);
      this.send(slot, how);
    }
    if (this.slots.every((s) => s.worker.threadId === -1)) this.allExited();
    await this.exited;
    this.acceptor?.close();
    this.adminAcceptor?.close();
  }

  private stopListening(): void {
    if (this.listenSocket !== null) us_listen_socket_close(this.listenSocket);
    if (this.adminListenSocket !== null) us_listen_socket_close(this.adminListenSocket);
    this.listenSocket = this.adminListenSocket = null;
  }
}
