import { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { ConnectResult, GenCmd, GenConnect, GenReply, GenRun, RunResult } from './control';
import { TargetSpec } from './messages';
import { spawnNode, stderrOf, stopProcess } from '../lib/procs';

/** The orchestrator's handle on a generator process. */
export class Generator {
  private readonly waiting: ((r: GenReply) => void)[] = [];
  private exitError = '';

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (r: GenReply) => this.waiting.shift()?.(r));
    child.on('exit', (code, signal) => {
      this.exitError = `generator exited (${code ?? signal}): ${stderrOf(child)}`;
      for (const w of this.waiting.splice(0)) w({ type: 'error', message: this.exitError });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  static async start(cpu: number | null, target: TargetSpec, threads: number): Promise<Generator> {
    const g = new Generator(spawnNode(cpu, [path.join(__dirname, 'main.js')], true));
    await g.ask({ cmd: 'init', target, threads });
    return g;
  }

  private ask(cmd: GenCmd): Promise<GenReply> {
    return new Promise((resolve, reject) => {
      if (this.exitError !== '') {
        reject(new Error(this.exitError));
        return;
      }
      this.waiting.push((r) => (r.type === 'error' ? reject(new Error(r.message)) : resolve(r)));
      this.child.send(cmd);
    });
  }

  async connect(cmd: Omit<GenConnect, 'cmd'>): Promise<ConnectResult> {
    const r = await this.ask({ cmd: 'connect', ...cmd });
    if (r.type !== 'connected') throw new Error(`unexpected reply ${r.type}`);
    return r.result;
  }

  async run(cmd: Omit<GenRun, 'cmd'>): Promise<RunResult> {
    const r = await this.ask({ cmd: 'run', ...cmd });
    if (r.type !== 'ran') throw new Error(`unexpected reply ${r.type}`);
    return r.result;
  }

  /** Asks the generator to close its connections and exit; kills it by PID if it does not. */
  async close(): Promise<void> {
    if (this.exitError === '' && this.child.connected) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.send({ cmd: 'close' });
      await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 3000))]);
    }
    await stopProcess(this.child, 2000);
  }
}
