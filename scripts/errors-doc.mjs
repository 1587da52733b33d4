#!/usr/bin/env node
// `npm run errors:doc`: writes the error catalogue (errors/catalogue.ts, built into dist/) into README.md between
// its errors markers. test/unit/error-catalogue.test.ts fails until this has been run after a catalogue change.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { withErrorTable } = await import(join(root, 'dist', 'errors', 'catalogue-markdown.js'));
const file = join(root, 'README.md');
const before = readFileSync(file, 'utf8');
const after = withErrorTable(before);
if (after !== before) writeFileSync(file, after);
console.log(after === before ? 'README.md error table already current' : 'README.md error table updated');
