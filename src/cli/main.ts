#!/usr/bin/env node
import { UsageError, wantsHelp } from './args';
import { serve, SERVE_HELP } from './serve';
import { pub, PUB_HELP, sub, SUB_HELP } from './talk';

const HELP = `wsgate: WebSocket fan-out gateway

Usage:
  wsgate serve [options]        run a gateway node
  wsgate sub <topic…>           print deliveries of topics as JSON lines
  wsgate pub <topic> <data>     publish a message (HTTP API; --via ws for the WebSocket)
  wsgate <command> --help       options and examples of a command

From a clone of the repository run it as \`npx wsgate …\` (after npm install); \`npm install -g .\` in
the clone puts \`wsgate\` on the PATH.`;

interface Command {
  readonly help: string;
  run(argv: readonly string[]): Promise<void>;
}

const commands: Record<string, Command> = {
  serve: { help: SERVE_HELP, run: serve },
  sub: { help: SUB_HELP, run: sub },
  pub: { help: PUB_HELP, run: pub },
};

const [name, ...rest] = process.argv.slice(2);
if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
  const topic = name === 'help' && rest[0] !== undefined ? commands[rest[0]] : undefined;
  console.log(topic?.help ?? HELP);
  process.exit(0);
}
const command = commands[name];
if (command === undefined) {
  console.error(`wsgate: unknown command ${name}\n\n${HELP}`);
  process.exit(2);
} else if (wantsHelp(rest)) {
  console.log(command.help);
} else {
  command.run(rest).catch((e: Error) => {
    if (e instanceof UsageError) {
      console.error(`wsgate ${name}: ${e.message}\n(wsgate ${name} --help shows the options and examples)`);
      process.exit(2);
    }
    console.error(`wsgate ${name}: ${e.message}`);
    process.exit(1);
  });
}
