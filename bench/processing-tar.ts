/**
 * tar pack + unpack of N small files (default 10,000 × 64 KiB), ours next to GNU tar in the same run:
 * `tar -cf - -C SRC . | tar -xf - -C DST` versus createTarPack → TarUnpacker (with adler32 per member carried and
 * verified), both on the same disk, best of 3, output directories removed between runs. Ours runs twice: with
 * durable publishing (fsync per member and per directory, the default) and without (what GNU tar does).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/processing-tar.js [files=10000] [sizeKiB=64] [dir=/tmp]
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createTarPack, membersOfDirectory } from '../services/processing/tar-pack.js';
import { TarUnpacker } from '../services/processing/tar-unpack.js';

const files = Number(process.argv[2] ?? 10_000);
const sizeKiB = Number(process.argv[3] ?? 64);
const base = mkdtempSync(join(process.argv[4] ?? '/tmp', 'cargoport-tar-bench-'));
const src = join(base, 'src');
try {
  mkdirSync(src);
  const blob = randomBytes(sizeKiB * 1024 + files);
  for (let i = 0; i < files; i++) {
    const d = join(src, `d${Math.floor(i / 1000)}`);
    if (i % 1000 === 0) mkdirSync(d);
    writeFileSync(join(d, `f${i}`), blob.subarray(i, i + sizeKiB * 1024));
  }
  execSync('sync');
  const run = async (what: string, f: (dst: string) => Promise<void>) => {
    let bestS = Infinity;
    for (let i = 0; i < 3; i++) {
      const dst = join(base, `dst-${what}-${i}`);
      mkdirSync(dst);
      const t0 = performance.now();
      await f(dst);
      bestS = Math.min(bestS, (performance.now() - t0) / 1000);
      rmSync(dst, { recursive: true, force: true });
    }
    return bestS;
  };
  const gnu = await run('gnu', async (dst) => {
    execSync(`tar -cf - -C ${src} . | tar -xf - -C ${dst}`);
  });
  const ours = (durable: boolean) => run(`ours-${durable}`, async (dst) => {
    await pipeline(createTarPack(await membersOfDirectory(src), { checksums: ['adler32'] }),
      new TarUnpacker({ target: dst, maxMemberBytes: 1 << 30, maxNameBytes: 4096, maxMembers: 1e6, durable, requireChecksums: true }),
      new Writable({ write: (_c, _e, cb) => cb() }));
  });
  const fast = await ours(false);
  const durable = await ours(true);
  const fps = (s: number) => (files / s).toFixed(0);
  console.log(`tar pack+unpack of ${files} × ${sizeKiB} KiB in ${base}, best of 3:`);
  console.log(`  GNU tar | tar:                 ${gnu.toFixed(2)} s  ${fps(gnu)} files/s`);
  console.log(`  ours, not durable (as GNU tar): ${fast.toFixed(2)} s  ${fps(fast)} files/s  = ${(gnu / fast).toFixed(2)}x GNU tar's rate`);
  console.log(`  ours, durable (fsync each):     ${durable.toFixed(2)} s  ${fps(durable)} files/s  = ${(gnu / durable).toFixed(2)}x GNU tar's rate`);
} finally {
  rmSync(base, { recursive: true, force: true });
}
