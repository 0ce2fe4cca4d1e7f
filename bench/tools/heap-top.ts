/**
 * `node dist/bench/tools/heap-top.js <file.heapprofile> [frames=2] [rows=30] [divisor=1]`: the sampled
 * bytes of a heap profile by allocating function (with `frames - 1` callers), largest first; `divisor`
 * (e.g. the publishes or connections of the window) turns totals into bytes per operation.
 */
import { readFileSync } from 'node:fs';

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const [file, framesArg = '2', rowsArg = '30', divisorArg = '1'] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: heap-top <file.heapprofile> [frames] [rows] [divisor]');
const head = (JSON.parse(readFileSync(file, 'utf8')) as { head: Node }).head;
const frames = Number(framesArg);
const divisor = Number(divisorArg);
const bytes = new Map<string, number>();
let total = 0;
const walk = (n: Node, stack: string[]): void => {
  const f = n.callFrame;
  const here = [...stack, `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`];
  if (n.selfSize > 0) {
    const key = here.slice(-frames).join(' > ');
    bytes.set(key, (bytes.get(key) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c, here);
};
walk(head, []);
console.log(`sampled ${total} B${divisor !== 1 ? `, ${Math.round(total / divisor)} B per operation` : ''}`);
for (const [k, v] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, Number(rowsArg))) {
  console.log(`${String(Math.round(v / divisor)).padStart(10)} ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
}
