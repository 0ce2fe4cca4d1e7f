/**
 * Preloaded (`node -r`) into a server whose memory a scenario reads: on SIGUSR2, a full collection
 * that also hands freed heap pages back to the system (the inspector's collectGarbage: what V8's
 * memory reducer does on its own after some idle seconds), then GC_MARK and a count on stderr.
 * Every server gets the same, so RSS compares what each holds, not when each last collected.
 */
import { Session } from 'node:inspector';
import { GC_MARK } from './procs';

// One session for the process's life: disconnecting from inside a post callback stalls the loop.
let session: Session | null = null;
let collections = 0;

process.on('SIGUSR2', () => {
  if (session === null) {
    session = new Session();
    session.connect();
  }
  session.post('HeapProfiler.collectGarbage', () => process.stderr.write(`\n${GC_MARK} ${++collections}\n`));
});
