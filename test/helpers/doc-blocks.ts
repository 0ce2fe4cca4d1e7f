import { readFileSync } from 'node:fs';

/**
 * A fenced code block of a Markdown doc and what its info string says about testing it:
 *
 *   ```sh test                      run in the doc's session, must exit 0
 *   ```sh test bg ready=listening   start and keep running (a terminal of its own); wait for the text
 *   ```sh test env                  run; the variables it exports carry to the session's later blocks
 *   ```js file=docs/examples/x.mjs  must equal that file (with `test`: run it with node)
 *   ```ts file=… typecheck          must equal that file; type-checked
 *   ```sh skip=<reason…>            not run, for the reason given (installs, root-only steps)
 *
 * `expect=<text>` (repeatable): the output must contain it. `session=<name>`: blocks of one session share
 * ports, background processes and exported variables; the default is one session per file.
 */
export interface DocBlock {
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly lang: string;
  readonly text: string;
  readonly flags: ReadonlySet<string>;
  readonly expect: readonly string[];
  readonly ready: string | undefined;
  readonly session: string;
  readonly source: string | undefined;
  readonly skip: string | undefined;
}

/** Languages a reader would run: such a block must be tested, be a tested file, or say why not. */
export const RUNNABLE = new Set(['sh', 'bash', 'shell', 'console', 'js', 'javascript', 'mjs', 'ts', 'typescript']);

function parseInfo(info: string): Pick<DocBlock, 'lang' | 'flags' | 'expect' | 'ready' | 'session' | 'source' | 'skip'> & { sessionGiven: string | undefined } {
  const [lang = '', ...rest] = info.trim().split(/\s+/);
  const skipAt = info.indexOf('skip=');
  const flags = new Set<string>();
  const expect: string[] = [];
  let ready: string | undefined;
  let sessionGiven: string | undefined;
  let source: string | undefined;
  if (skipAt >= 0) return { lang, flags, expect, ready, session: '', sessionGiven, source, skip: info.slice(skipAt + 5).trim() };
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (eq < 0) {
      flags.add(token);
      continue;
    }
    const [key, value] = [token.slice(0, eq), token.slice(eq + 1)];
    if (key === 'expect') expect.push(value);
    else if (key === 'ready') ready = value;
    else if (key === 'session') sessionGiven = value;
    else if (key === 'file') source = value;
    else throw new Error(`unknown attribute ${key}= in info string "${info}"`);
  }
  return { lang, flags, expect, ready, session: '', sessionGiven, source, skip: undefined };
}

/** Every fenced block of a Markdown file, in order (contents de-indented like the fence). */
export function readBlocks(file: string, absolute: string): DocBlock[] {
  const lines = readFileSync(absolute, 'utf8').split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const [, indent = '', fence = '', info = ''] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j] as string;
      if (l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '') break;
      body.push(l.startsWith(indent) ? l.slice(indent.length) : l.trimStart());
    }
    const parsed = parseInfo(info);
    blocks.push({ ...parsed, session: `${file}#${parsed.sessionGiven ?? 'main'}`, file, line: i + 1, text: body.join('\n') + '\n' });
    i = j;
  }
  return blocks;
}
