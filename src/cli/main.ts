#!/usr/bin/env node
import { serve } from './serve';
import { pub, sub } from './talk';

const HELP = `wsgate: WebSocket fan-out gateway

  wsgate serve [options]        run a gateway node (wsgate serve --help for options)
  wsgate sub <topic…>           print deliveries of topics
  wsgate pub <topic> <data>     publish (HTTP API; --via ws for the socket)`;

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (argv: readonly string[]) => Promise<void>> = { serve, sub, pub };
const run = command === undefined ? undefined : commands[command];
if (run === undefined) {
  console.log(HELP);
  process.exit(command === undefined || command === 'help' || command === '--help' ? 0 : 2);
} else {
  run(rest).catch((e: Error) => {
    console.error(`wsgate ${command}: ${e.message}`);
    process.exit(1);
  });
}
