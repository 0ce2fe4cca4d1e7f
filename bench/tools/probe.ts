import { Generator } from '../gen/handle';
import { pinning } from '../lib/procs';
import { type RunningServer, SERVERS, type ServerName, startServer, stopServer } from '../lib/servers';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a probe against one bench server and its generator (pinned as the bench pins them), stopping both after. */
export function probe(name: ServerName, nodeFlags: readonly string[], fn: (server: RunningServer, gen: Generator) => Promise<void>): void {
  const run = async (): Promise<void> => {
    const server = await startServer(SERVERS[name], [], nodeFlags);
    const gen = await Generator.start(pinning()?.generator ?? null, { host: '127.0.0.1', port: server.port, dialect: server.def.dialect }, 3);
    try {
      await fn(server, gen);
    } finally {
      await gen.close();
      await stopServer(server);
    }
  };
  void run().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
