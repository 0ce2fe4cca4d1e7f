/**
 * Preloaded (`node -r`) into a server whose memory a scenario reads: on SIGUSR2, a full collection
 * that also hands freed heap pages back to the system (the inspector's collectGarbage: what V8's
 * memory reducer does on its own after some idle seconds), then GC_MARK and a count on stderr.
 * Every server gets the same, so RSS compares what each holds, not when each last collected.
 *
 * Worker threads (wsgate --workers) load the preload too and each has its own heap: the main thread
 * asks every worker that announced itself to collect (over a BroadcastChannel; signals reach only the
 * main thread) and collects its own heap once they have answered.
 */
import { Session } from 'node:inspector';
import { BroadcastChannel, isMainThread, threadId } from 'node:worker_threads';
import { GC_MARK } from './procs';

const CHANNEL = 'wsgate-bench-gc';
/** Longest wait for the workers' collections (a worker that ended never answers). */
const WORKERS_TIMEOUT_MS = 5000;

// One session per thread for its life: disconnecting from inside a post callback stalls the loop.
let session: Session | null = null;

function collect(done: () => void): void {
  if (session === null) {
    session = new Session();
    session.connect();
  }
  session.post('HeapProfiler.collectGarbage', done);
}

type GcMessage = { hello: number } | { collected: number } | 'collect';

const channel = new BroadcastChannel(CHANNEL);
// Never what keeps a thread alive.
channel.unref();

if (isMainThread) {
  let collections = 0;
  const workers = new Set<number>();
  let answered: ((id: number) => void) | null = null;
  channel.onmessage = (event) => {
    const m = (event as unknown as { data: GcMessage }).data;
    if (typeof m !== 'object') return;
    if ('hello' in m) workers.add(m.hello);
    else answered?.(m.collected);
  };
  const collectWorkers = (done: () => void): void => {
    const left = new Set(workers);
    if (left.size === 0) return done();
    const finish = (): void => {
      clearTimeout(timer);
      answered = null;
      done();
    };
    const timer = setTimeout(finish, WORKERS_TIMEOUT_MS);
    answered = (id) => {
      left.delete(id);
      if (left.size === 0) finish();
    };
    channel.postMessage('collect' satisfies GcMessage);
  };
  process.on('SIGUSR2', () => collectWorkers(() => collect(() => process.stderr.write(`\n${GC_MARK} ${++collections}\n`))));
} else {
  channel.onmessage = (event) => {
    if ((event as unknown as { data: GcMessage }).data === 'collect') collect(() => channel.postMessage({ collected: threadId } satisfies GcMessage));
  };
  channel.postMessage({ hello: threadId } satisfies GcMessage);
}
