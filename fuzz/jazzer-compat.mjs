#!/usr/bin/env node
// Makes the Jazzer.js native addon (the libFuzzer engine, @jazzer.js/fuzzer) load on Debian 12's glibc 2.36.
//
// Why: @jazzer.js/fuzzer 4.0.0 ships its addon prebuilt inside the npm package (nothing is downloaded), but it
// was linked on a newer system and asks for two symbol versions that Debian 12 does not have:
//   __isoc23_strtol, __isoc23_strtoul @ GLIBC_2.38   - C23 strtol/strtoul (they also accept "0b" prefixes)
//   std::ios_base_library_init @ GLIBCXX_3.4.32      - a link-order anchor GCC 13 emits for <iostream>; no
//                                                      relocation uses it, so nothing ever looks it up
// and building the addon from source needs Code Intelligence's libFuzzer fork, which only GitHub serves.
//
// So this script edits the addon's dynamic-linking tables in place (ELF64 little endian, gABI "Symbol
// Versioning"):
//   1. every version need that the running libc/libstdc++ lacks is marked VER_FLG_WEAK, so the loader no
//      longer refuses the file;
//   2. the __isoc23_ symbols are renamed to the C17 functions (the name in .dynstr is overwritten with the
//      shorter name and a NUL) and made unversioned, so they bind to the system's strtol/strtoul. libFuzzer
//      parses its -flag=number options with them: decimal numbers, for which both behave the same.
// Any other symbol bound to a missing version is refused with a message (a later Jazzer.js would need a
// second look, not a silent patch). Where the addon already loads, nothing is changed.
//
// Idempotent: run it before every fuzzing run (test/fuzz/fuzz-smoke.test.ts and the npm scripts do).
// Prints the addon's path and what it did.

import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const VER_FLG_WEAK = 0x2;
const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;

/** C23 entry points and the C17 function with the same behaviour for the inputs libFuzzer gives them. */
const RENAMES = new Map([
  ['__isoc23_strtol', 'strtol'],
  ['__isoc23_strtoul', 'strtoul'],
  ['__isoc23_strtoll', 'strtoll'],
  ['__isoc23_strtoull', 'strtoull'],
]);
/** Referenced only to pull in libstdc++'s iostream initialisation; no relocation binds it. */
const UNUSED = new Set(['_ZSt21ios_base_library_initv']);

const require = createRequire(import.meta.url);
const fuzzerDir = dirname(require.resolve('@jazzer.js/fuzzer/package.json'));
const addonPath = join(fuzzerDir, 'prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);

function loads() {
  try {
    // In a child: a failed dlopen cannot be retried in the same process after patching.
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(addonPath)})`], { stdio: 'pipe' });
    return { ok: true, error: '' };
  } catch (e) {
    return { ok: false, error: String(e.stderr ?? e.message) };
  }
}

const cstr = (buf, at) => buf.toString('latin1', at, buf.indexOf(0, at));

function patch(file) {
  const elf = readFileSync(file);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error(`${file}: not an ELF64 little-endian file`);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const at = shoff + i * shentsize;
    sections.push({
      type: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
      link: elf.readUInt32LE(at + 0x28),
      info: elf.readUInt32LE(at + 0x2c),
    });
  }
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM);
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM);
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED);
  if (!dynsym || !versym || !verneed) throw new Error(`${file}: no .dynsym, .gnu.version or .gnu.version_r`);
  const dynstr = sections[dynsym.link];

  // Every version need the running system's library does not define is made weak and remembered.
  const missing = new Map(); // version index -> name
  for (let vn = verneed.offset, n = 0; n < verneed.info; n++) {
    const file = cstr(elf, dynstr.offset + elf.readUInt32LE(vn + 4));
    let aux = vn + elf.readUInt32LE(vn + 8);
    for (let k = 0; k < elf.readUInt16LE(vn + 2); k++) {
      const name = cstr(elf, dynstr.offset + elf.readUInt32LE(aux + 8));
      if (!systemHas(file, name)) {
        elf.writeUInt16LE(elf.readUInt16LE(aux + 4) | VER_FLG_WEAK, aux + 4);
        missing.set(elf.readUInt16LE(aux + 6), `${name} (${file})`);
      }
      aux += elf.readUInt32LE(aux + 12);
    }
    vn += elf.readUInt32LE(vn + 12);
  }

  const done = [];
  for (let i = 0; i < dynsym.size / 24; i++) {
    const index = elf.readUInt16LE(versym.offset + 2 * i) & 0x7fff;
    if (!missing.has(index)) continue;
    const nameAt = dynstr.offset + elf.readUInt32LE(dynsym.offset + 24 * i);
    const name = cstr(elf, nameAt);
    const target = RENAMES.get(name);
    if (target !== undefined) {
      elf.write(`${target}\0`, nameAt, 'latin1');
      elf.writeUInt16LE(1, versym.offset + 2 * i); // VER_NDX_GLOBAL: bind to the default version
      done.push(`${name}@${missing.get(index)} -> ${target}`);
    } else if (UNUSED.has(name)) {
      done.push(`${name}@${missing.get(index)} left unbound (no relocation uses it)`);
    } else {
      throw new Error(`${name} needs ${missing.get(index)}, which this system lacks: no known substitute`);
    }
  }
  const tmp = `${file}.patching`;
  writeFileSync(tmp, elf);
  renameSync(tmp, file);
  return done;
}

/** Whether a system library defines a version (its version-definition names, read from the file). */
const definitions = new Map();
function systemHas(library, version) {
  if (!definitions.has(library)) definitions.set(library, versionsDefinedBy(library));
  return definitions.get(library).has(version);
}

function versionsDefinedBy(library) {
  // The library the loader would pick for this process: the path from /proc/self/maps of a node that has it.
  const script = `try { process.dlopen({ exports: {} }, ${JSON.stringify(library)}); } catch {}
    const fs = require('fs');
    const line = fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').find((l) => l.includes('/${library}'));
    process.stdout.write(line ? line.slice(line.indexOf('/')) : '');`;
  const path = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim();
  if (!path) return new Set();
  // Version names appear as NUL-terminated strings in .dynstr; a cheap superset test is enough here because
  // only names the addon asks for are looked up.
  const bytes = readFileSync(path);
  const names = new Set();
  for (const m of bytes.toString('latin1').matchAll(/(?:GLIBC|GLIBCXX|CXXABI|GCC)_[0-9.]+(?=\0)/g)) names.add(m[0]);
  return names;
}

const before = loads();
if (before.ok) {
  console.log(`jazzer-compat: ${addonPath} loads (as shipped, or patched by an earlier run)`);
} else {
  if (!/version `[^']+' not found/.test(before.error)) throw new Error(`the Jazzer.js addon does not load:\n${before.error}`);
  const done = patch(addonPath);
  const after = loads();
  if (!after.ok) throw new Error(`the Jazzer.js addon still does not load after patching:\n${after.error}`);
  console.log(`jazzer-compat: patched ${addonPath}\n  ${done.join('\n  ')}`);
}
