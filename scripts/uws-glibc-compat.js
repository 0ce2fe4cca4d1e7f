#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * Makes the uWebSockets.js native binary load on glibc < 2.38 (e.g. Debian 12, glibc 2.36).
 *
 * Why: upstream v20.57.0 Linux binaries are built against glibc 2.38 and import exactly three
 * symbols that older glibc lacks: __isoc23_sscanf, __isoc23_strtol, __isoc23_strtoul (the C23
 * variants, which differ from the classic ones only in also accepting "0b" binary prefixes;
 * uWS parses decimal/hex header values and never relies on that). Everything else it imports
 * exists in glibc 2.36.
 *
 * What: only when loading the binary fails with "GLIBC_2.38 not found", rewrite in place:
 *   1. each of the three undefined dynamic symbols' st_name to point 9 bytes further into the
 *      same .dynstr string ("__isoc23_strtol" + 9 = "strtol"), so no string table grows;
 *   2. the GLIBC_2.38 version-needed entry of libc.so.6 to the architecture's baseline version
 *      (GLIBC_2.2.5 on x86_64, GLIBC_2.17 on aarch64), which is where the classic functions live.
 * The original file is kept beside it as *.orig, a JSON record of the patch is written next to the
 * package, and the load is verified in a child process afterwards. On glibc >= 2.38 the binary
 * loads as shipped and nothing is touched. If patching cannot make it load, install fails loudly:
 * there is no pure-JS fallback to drop into.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const RENAMES = new Map([
  ['__isoc23_sscanf', 'sscanf'],
  ['__isoc23_strtol', 'strtol'],
  ['__isoc23_strtoul', 'strtoul'],
]);
const MISSING_VERSION = 'GLIBC_2.38';
const BASELINE_BY_MACHINE = new Map([
  [62, 'GLIBC_2.2.5'], // EM_X86_64
  [183, 'GLIBC_2.17'], // EM_AARCH64
]);
const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;

/** @param {Buffer} buf @param {number} off */
function cstr(buf, off) {
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end);
}

/**
 * Reads the dynamic symbol and version-needed tables of an ELF64 little-endian shared object.
 * @param {Buffer} buf
 */
function readElf(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) {
    throw new Error('not an ELF64 little-endian file');
  }
  const machine = buf.readUInt16LE(0x12);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({
      type: buf.readUInt32LE(o + 4),
      offset: Number(buf.readBigUInt64LE(o + 0x18)),
      size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28),
      entsize: Number(buf.readBigUInt64LE(o + 0x38)),
    });
  }
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED);
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM);
  if (!dynsym || !verneed || !versym) throw new Error('missing .dynsym/.gnu.version/.gnu.version_r');
  const dynstr = sections[dynsym.link];

  const symbols = [];
  for (let i = 0; i < dynsym.size / dynsym.entsize; i++) {
    const o = dynsym.offset + i * dynsym.entsize;
    const nameOff = buf.readUInt32LE(o);
    symbols.push({
      entry: o,
      nameOff,
      name: cstr(buf, dynstr.offset + nameOff),
      undefined: buf.readUInt16LE(o + 6) === 0,
      version: buf.readUInt16LE(versym.offset + i * 2) & 0x7fff,
    });
  }

  const needs = [];
  let vn = verneed.offset;
  for (;;) {
    const file = cstr(buf, dynstr.offset + buf.readUInt32LE(vn + 4));
    let aux = vn + buf.readUInt32LE(vn + 8);
    for (let k = buf.readUInt16LE(vn + 2); k > 0; k--) {
      const nameOff = buf.readUInt32LE(aux + 8);
      needs.push({
        file,
        entry: aux,
        hash: buf.readUInt32LE(aux),
        index: buf.readUInt16LE(aux + 6),
        nameOff,
        name: cstr(buf, dynstr.offset + nameOff),
      });
      const next = buf.readUInt32LE(aux + 12);
      if (next === 0) break;
      aux += next;
    }
    const next = buf.readUInt32LE(vn + 12);
    if (next === 0) break;
    vn += next;
  }
  return { machine, dynstrOffset: dynstr.offset, symbols, needs };
}

/**
 * Patches a copy of the binary's bytes; returns the new bytes and what changed.
 * @param {Buffer} original
 */
function patchBuffer(original) {
  const buf = Buffer.from(original);
  const elf = readElf(buf);
  const baseline = BASELINE_BY_MACHINE.get(elf.machine);
  if (!baseline) throw new Error(`unsupported ELF machine ${elf.machine}`);
  const missing = elf.needs.find((n) => n.file === 'libc.so.6' && n.name === MISSING_VERSION);
  const base = elf.needs.find((n) => n.file === 'libc.so.6' && n.name === baseline);
  if (!missing) return { buf, changes: [] };
  if (!base) throw new Error(`binary has no ${baseline} dependency on libc.so.6 to map onto`);

  const changes = [];
  for (const sym of elf.symbols) {
    if (sym.version !== missing.index) continue;
    const classic = RENAMES.get(sym.name);
    if (!classic || !sym.undefined) {
      throw new Error(`${sym.name}@${MISSING_VERSION} has no known glibc 2.36 equivalent`);
    }
    const shift = sym.name.length - classic.length;
    if (cstr(buf, elf.dynstrOffset + sym.nameOff + shift) !== classic) throw new Error('unexpected .dynstr layout');
    buf.writeUInt32LE(sym.nameOff + shift, sym.entry);
    changes.push(`${sym.name}@${MISSING_VERSION} -> ${classic}@${baseline}`);
  }
  buf.writeUInt32LE(base.hash, missing.entry);
  buf.writeUInt32LE(base.nameOff, missing.entry + 8);
  changes.push(`libc.so.6 version need ${MISSING_VERSION} -> ${baseline}`);
  return { buf, changes };
}

/** @param {string} file @returns {string} empty when it loads */
function loadError(file) {
  const r = spawnSync(process.execPath, ['-e', 'process.dlopen({ exports: {} }, process.argv[1])', file], { encoding: 'utf8' });
  return r.status === 0 ? '' : (r.stderr || `exit ${r.status}`);
}

function main() {
  if (process.platform !== 'linux') return;
  const dir = path.dirname(require.resolve('uWebSockets.js'));
  const current = path.join(dir, `uws_linux_${process.arch}_${process.versions.modules}.node`);
  if (!fs.existsSync(current)) {
    console.error(`[uws-glibc-compat] no uWebSockets.js binary for this platform: ${current}`);
    process.exit(1);
  }
  const err = loadError(current);
  if (err === '') {
    const patched = fs.existsSync(path.join(dir, 'glibc-compat.json'));
    console.log(`[uws-glibc-compat] uWebSockets.js native binary loads${patched ? ' (patched earlier, see glibc-compat.json)' : ' as shipped; nothing patched'}`);
    return;
  }
  if (!err.includes(`${MISSING_VERSION}' not found`)) {
    console.error(`[uws-glibc-compat] uWebSockets.js native binary fails to load for another reason:\n${err}`);
    process.exit(1);
  }
  const record = { reason: `host glibc lacks ${MISSING_VERSION}`, patched: /** @type {Record<string,string[]>} */ ({}) };
  const prefix = `uws_linux_${process.arch}_`;
  for (const name of fs.readdirSync(dir).filter((n) => n.startsWith(prefix) && n.endsWith('.node'))) {
    const file = path.join(dir, name);
    const { buf, changes } = patchBuffer(fs.readFileSync(file));
    if (changes.length === 0) continue;
    if (!fs.existsSync(`${file}.orig`)) fs.copyFileSync(file, `${file}.orig`);
    fs.writeFileSync(file, buf);
    record.patched[name] = changes;
  }
  fs.writeFileSync(path.join(dir, 'glibc-compat.json'), `${JSON.stringify(record, null, 2)}\n`);
  const after = loadError(current);
  if (after !== '') {
    console.error(`[uws-glibc-compat] patched binary still fails to load:\n${after}`);
    process.exit(1);
  }
  console.log(`[uws-glibc-compat] patched ${Object.keys(record.patched).join(', ')} for glibc < 2.38 (originals kept as *.orig)`);
}

module.exports = { readElf, patchBuffer, loadError };
if (require.main === module) main();
