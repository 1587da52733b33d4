/**
 * Single-core checksum throughput on 256 KiB chunks: our adler32 / crc32c (native/sums when built — AVX2 /
 * SSE4.2 — else pure JS; CARGOPORT_JS_SUMS=1 forces JS) and node:crypto
 * md5 / sha256, each against a peer measured in the same run over the same bytes.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/checksum.js [sizeMiB=256] [--pool]
 *
 * Peers: in-memory Python (zlib.adler32, hashlib md5/sha256 — C/OpenSSL) with the same chunking, and
 * command-line tools over the same file (page-cached, so their figure includes process start and
 * read()): xrdadler32 (fed on stdin, see below), xrdcrc32c (XRootD), gcloud-crc32c (Go, SSE4.2), openssl dgst, md5sum, sha256sum.
 * Each figure is the best of several passes (the machine is shared). Values are cross-checked.
 * With --pool, also measures checksum-worker-pool.ts (adler32/crc32c split across worker threads).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createChecksummer, Sum32Checksummer } from '../services/checksum/checksummer.js';
import { nativeSumsStatus } from '../services/checksum/native-sums.js';
import type { ChecksumAlg } from '../services/transfer/types.js';

const CHUNK = 256 * 1024;
const PASSES = 5;
const sizeMiB = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 256);
const withPool = process.argv.includes('--pool');
const size = sizeMiB * 1024 * 1024;

const data = randomBytes(size);
const dir = mkdtempSync(join(tmpdir(), 'cargoport-bench-checksum-'));
const file = join(dir, 'data.bin');
writeFileSync(file, data);

const mbps = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

interface Row {
  what: string;
  mbps: number;
  value: string;
}

function jsPass(alg: ChecksumAlg): Row {
  let best = 0;
  let value = '';
  for (let pass = 0; pass < PASSES; pass++) {
    const c = createChecksummer(alg);
    const t0 = performance.now();
    if (c instanceof Sum32Checksummer) {
      for (let pos = 0; pos < size; pos += CHUNK) c.update(data, pos, Math.min(size, pos + CHUNK));
    } else {
      for (let pos = 0; pos < size; pos += CHUNK) c.update(data.subarray(pos, pos + CHUNK));
    }
    value = c.digestHex();
    best = Math.max(best, mbps(size, performance.now() - t0));
  }
  return { what: `ours ${alg}`, mbps: best, value };
}

/** Python's zlib / hashlib over the same file, in memory, same chunking; one process, best of PASSES. */
function pythonPeers(): Map<string, Row> {
  const script = `
import sys, time, zlib, hashlib, json
data = open(sys.argv[1], 'rb').read(); mv = memoryview(data); n = len(data); C = ${CHUNK}; out = {}
def run(name, fn):
    best = 0
    for _ in range(${PASSES}):
        t = time.perf_counter(); v = fn(); dt = time.perf_counter() - t
        best = max(best, n / 1e6 / dt)
    out[name] = [best, v]
def adler():
    s = 1
    for p in range(0, n, C): s = zlib.adler32(mv[p:p+C], s)
    return '%08x' % s
def crc32():
    s = 0
    for p in range(0, n, C): s = zlib.crc32(mv[p:p+C], s)
    return '%08x' % s
def h(alg):
    def f():
        x = hashlib.new(alg)
        for p in range(0, n, C): x.update(mv[p:p+C])
        return x.hexdigest()
    return f
run('adler32', adler); run('crc32-ieee', crc32); run('md5', h('md5')); run('sha256', h('sha256'))
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const rows = new Map<string, Row>();
  if (r.status !== 0) {
    console.log(`python3 peer unavailable: ${r.error?.message ?? r.stderr.trim().split('\n').pop()}`);
    return rows;
  }
  const parsed = JSON.parse(r.stdout) as Record<string, [number, string]>;
  for (const [name, [speed, value]] of Object.entries(parsed)) {
    rows.set(name, { what: `python ${name === 'adler32' ? 'zlib.adler32' : name === 'crc32-ieee' ? 'zlib.crc32 (IEEE, not 32C)' : `hashlib.${name}`}`, mbps: speed, value });
  }
  return rows;
}

/** A command-line peer over the page-cached file: best wall time of 3 runs; value parsed from stdout. */
function cliPeer(cmd: string, args: string[], parse: (stdout: string) => string, viaStdin = false): Row | string {
  let best = 0;
  let value = '';
  for (let pass = 0; pass < 3; pass++) {
    const fd = viaStdin ? openSync(file, 'r') : undefined;
    const t0 = performance.now();
    const r = spawnSync(cmd, viaStdin ? args : [...args, file], {
      encoding: 'utf8',
      stdio: [fd ?? 'ignore', 'pipe', 'pipe'],
    });
    if (fd !== undefined) closeSync(fd);
    const ms = performance.now() - t0;
    if (r.error || r.status !== 0) return `${cmd} not usable (${r.error?.message ?? `exit ${r.status}`})`;
    value = parse(r.stdout);
    best = Math.max(best, mbps(size, ms));
  }
  return { what: `${cmd} ${args.join(' ')} (${viaStdin ? 'file on stdin' : 'file'})`.replace(/\s+\(/, ' ('), mbps: best, value };
}

const firstWord = (s: string): string => s.trim().split(/\s+/)[0]!.toLowerCase();
const lastWord = (s: string): string => s.trim().split(/\s+/).pop()!.toLowerCase();

const cliPeers: Record<ChecksumAlg, Array<() => Row | string>> = {
  // On stdin: given a path, xrdadler32 caches its result in the user.XrdCks.adler32 xattr and
  // later runs just read it back.
  adler32: [() => cliPeer('xrdadler32', [], firstWord, true)],
  crc32c: [
    () => cliPeer('xrdcrc32c', [], firstWord),
    () => cliPeer('gcloud-crc32c', [], (s) => Number(s.trim()).toString(16).padStart(8, '0')),
  ],
  md5: [() => cliPeer('openssl', ['dgst', '-md5'], lastWord), () => cliPeer('md5sum', [], firstWord)],
  sha256: [() => cliPeer('openssl', ['dgst', '-sha256'], lastWord), () => cliPeer('sha256sum', [], firstWord)],
};

const fmt = (n: number): string => n.toFixed(0).padStart(7);

async function main(): Promise<void> {
  console.log(`checksum bench: ${sizeMiB} MiB random data, ${CHUNK / 1024} KiB chunks, best of ${PASSES} (CLI: best of 3)`);
  console.log(`node ${process.version}, ${availableParallelism()} CPUs, adler32/crc32c: ${nativeSumsStatus().adler32 ? 'native' : 'JS'} (${nativeSumsStatus().detail})`);
  const py = pythonPeers();
  console.log(`${'measurement'.padEnd(44)}   MB/s  ours/peer  value`);
  for (const alg of ['adler32', 'crc32c', 'md5', 'sha256'] as ChecksumAlg[]) {
    const js = jsPass(alg);
    console.log(`${js.what.padEnd(44)} ${fmt(js.mbps)}            ${js.value}`);
    const peers: Array<Row | string> = [];
    const pyRow = py.get(alg) ?? (alg === 'crc32c' ? py.get('crc32-ieee') : undefined);
    if (pyRow) peers.push(pyRow);
    for (const p of cliPeers[alg]) peers.push(p());
    for (const p of peers) {
      if (typeof p === 'string') {
        console.log(`  ${p}`);
        continue;
      }
      const comparable = !p.what.includes('IEEE');
      const agree = !comparable || p.value === js.value ? '' : `  VALUE MISMATCH (${p.value})`;
      console.log(`  ${p.what.padEnd(42)} ${fmt(p.mbps)}   ${(js.mbps / p.mbps).toFixed(2).padStart(6)}  ${comparable ? p.value : '(different CRC)'}${agree}`);
    }
  }
  if (withPool) await poolBench();
}

async function poolBench(): Promise<void> {
  const { ChecksumWorkerPool } = await import('../services/checksum/checksum-worker-pool.js');
  console.log(`${'worker pool (1 MiB batches)'.padEnd(44)}   MB/s  pool/js`);
  const threads = Math.max(1, availableParallelism() - 1);
  for (const t of [...new Set([1, threads, availableParallelism()])]) {
    const pool = new ChecksumWorkerPool({ threads: t });
    try {
      for (const alg of ['adler32', 'crc32c', 'sha256'] as ChecksumAlg[]) {
        const inline = jsPass(alg);
        const reference = inline.value;
        let best = 0;
        let utilisation = 0;
        for (let pass = 0; pass < 3; pass++) {
          const c = pool.createChecksummer(alg);
          const elu0 = performance.eventLoopUtilization();
          const t0 = performance.now();
          for (let pos = 0; pos < size; pos += CHUNK) await c.update(data.subarray(pos, pos + CHUNK));
          const value = await c.digestHex();
          const ms = performance.now() - t0;
          const elu = performance.eventLoopUtilization(elu0).utilization;
          if (value !== reference) console.log(`  POOL VALUE MISMATCH ${alg}: ${value} != ${reference}`);
          if (mbps(size, ms) > best) {
            best = mbps(size, ms);
            utilisation = elu;
          }
        }
        // Event-loop utilisation: share of wall time the main thread was busy (hashing inline = 100%).
        // Ratio against inline hashing on the main thread, measured just before (event loop 100% busy).
        console.log(
          `pool ${alg} threads=${t} vs inline ${fmt(inline.mbps).trim()} MB/s`.padEnd(44) +
            ` ${fmt(best)}   ${(best / inline.mbps).toFixed(2).padStart(6)}  event loop busy ${(utilisation * 100).toFixed(0)}%`,
        );
      }
    } finally {
      await pool.close();
    }
  }
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
