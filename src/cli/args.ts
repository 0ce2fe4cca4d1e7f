/** A usage mistake on the command line: printed with the command's help hint, exit code 2. */
export class UsageError extends Error {}

export interface Parsed {
  readonly positional: string[];
  readonly opts: Map<string, string>;
}

/** Splits `argv` into positional arguments and `--name value` pairs, accepting only `allowed` names. */
export function parseArgs(argv: readonly string[], allowed: readonly string[]): Parsed {
  const positional: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const name = a.slice(2);
    if (!allowed.includes(name)) throw new UsageError(`unknown option ${a}; accepted: ${allowed.map((o) => '--' + o).join(', ')}`);
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`option ${a} needs a value`);
    opts.set(name, value);
    i++;
  }
  return { positional, opts };
}

/** Whether the arguments ask for help (`--help` or `-h` anywhere). */
export const wantsHelp = (argv: readonly string[]): boolean => argv.includes('--help') || argv.includes('-h');
