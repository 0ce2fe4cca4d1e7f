import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

interface Elf {
  symbols: { name: string; undefined: boolean; version: number }[];
  needs: { file: string; name: string; index: number }[];
}
// The patcher is plain JS run by postinstall before anything is compiled.
const compat = require('../../scripts/uws-glibc-compat.js') as {
  readElf(buf: Buffer): Elf;
  patchBuffer(buf: Buffer): { buf: Buffer; changes: string[] };
  loadError(file: string): string;
};

const dir = path.dirname(require.resolve('uWebSockets.js'));
const binary = path.join(dir, `uws_linux_${process.arch}_${process.versions.modules}.node`);
const record = path.join(dir, 'glibc-compat.json');
const patchedHere = existsSync(record);

describe('uWebSockets.js glibc compatibility', () => {
  it('the native binary loads in this process (no JS fallback exists to hide a failure)', () => {
    assert.equal(compat.loadError(binary), '');
    assert.equal(typeof (require('uWebSockets.js') as { App: unknown }).App, 'function');
  });

  const skip = !patchedHere && 'host glibc >= 2.38: the binary loads as shipped and nothing was patched';

  it('the patched binary needs no GLIBC_2.38 and imports the classic functions', { skip }, () => {
    const elf = compat.readElf(readFileSync(binary));
    assert.ok(!elf.needs.some((n) => n.name === 'GLIBC_2.38'));
    assert.ok(!elf.symbols.some((s) => s.name.startsWith('__isoc23_')));
    for (const name of ['sscanf', 'strtol', 'strtoul']) assert.ok(elf.symbols.some((s) => s.name === name && s.undefined), name);
  });

  it('patching the shipped original reproduces the installed file byte for byte, and the original fails to load here', { skip }, () => {
    const originals = readdirSync(dir).filter((f) => f.endsWith('.node.orig'));
    assert.ok(originals.length > 0);
    for (const orig of originals) {
      const { buf, changes } = compat.patchBuffer(readFileSync(path.join(dir, orig)));
      assert.equal(changes.length, 4, `${orig}: three symbols and one version need`);
      assert.ok(buf.equals(readFileSync(path.join(dir, orig.replace(/\.orig$/, '')))), orig);
    }
    assert.match(compat.loadError(`${binary}.orig`), /GLIBC_2\.38' not found/);
    const elf = compat.readElf(readFileSync(`${binary}.orig`));
    const isoc = elf.symbols.filter((s) => s.name.startsWith('__isoc23_')).map((s) => s.name).sort();
    assert.deepEqual(isoc, ['__isoc23_sscanf', '__isoc23_strtol', '__isoc23_strtoul']);
  });

  it('patching is idempotent: the installed binary needs no further change', { skip }, () => {
    assert.deepEqual(compat.patchBuffer(readFileSync(binary)).changes, []);
  });
});
