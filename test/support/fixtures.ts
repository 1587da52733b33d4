/** Test data: directories of random files with their adler32, and helpers to compare trees. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adler32 } from '../../services/checksum/adler32.js';

export interface FixtureFile {
  name: string;
  size: number;
  adler32: string;
}

export function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `cargoport-${tag}-`));
}

/** Writes `count` files of random content with sizes in [minSize, maxSize] into `dir`. */
export function makeRandomFiles(dir: string, count: number, minSize: number, maxSize: number, prefix = 'f'): FixtureFile[] {
  mkdirSync(dir, { recursive: true });
  const out: FixtureFile[] = [];
  for (let i = 0; i < count; i++) {
    const size = minSize + Math.floor(Math.random() * (maxSize - minSize + 1));
    const data = randomBytes(size);
    const name = `${prefix}${String(i).padStart(5, '0')}`;
    writeFileSync(join(dir, name), data);
    out.push({ name, size, adler32: adler32(data).toString(16).padStart(8, '0') });
  }
  return out;
}

/** Total bytes of every file below `dir` (temp files included): what has landed on disk so far. */
export function bytesOnDisk(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += bytesOnDisk(p);
    else if (e.isFile()) total += statSync(p).size;
  }
  return total;
}

export function sameContent(a: string, b: string): boolean {
  return readFileSync(a).equals(readFileSync(b));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
