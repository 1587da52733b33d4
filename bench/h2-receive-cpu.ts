/**
 * bench/h2-receive-cpu — does the port's own HTTP/2 receive path (services/transfer/h2-bulk) still earn its keep
 * once hardened against hostile servers? Issue 11: "if hardening it costs more than its CPU advantage over
 * node:http2 is worth, move the bulk path onto node:http2". The same file (tmpfs) from the same nginx (HTTP/2, TLS,
 * 2 workers, sendfile off) is downloaded, tmpfs → tmpfs, by:
 *   curl     `curl --http2` (libcurl + nghttp2): the peer of every pull benchmark
 *   bulk     the port's receive path, hardened (bench/lib/h2-receive-pull.ts bulk)
 *   node-h2  node:http2 (nghttp2 under Node) into the same FilePump, checksum and windows (… node-h2)
 *   base     optional: the bulk path of another build (BASE_DIST=/abs/path/to/dist of a worktree before the change)
 * Each round runs every client once, in an order rotated per round (whoever writes into freshly freed tmpfs pages
 * pays for them on this VM); the destination's worth of pages is touched once before round 1. Reported: MB/s and
 * CPU seconds per GiB of each client (user + system under /usr/bin/time; for the Node clients also the transfer's
 * own CPU, module loading excluded), medians over the rounds, ratios against curl and node:http2, and `uptime`.
 *
 *   npm run build && node dist/bench/h2-receive-cpu.js [size_mib=2048] [rounds=3]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { createChecksummer } from '../services/checksum/checksummer.js';
import { testTls } from '../test/support/tls.js';
import { startNginx } from './lib/nginx.js';
import { timedChild } from './lib/timed-child.js';

const SIZE_MIB = Number(process.argv[2] ?? 2048);
const ROUNDS = Number(process.argv[3] ?? 3);
const BYTES = SIZE_MIB * 1024 * 1024;
const GIB = 1024 ** 3;
const PORT = 19_300 + (process.pid % 500);
const BASE_DIST = process.env['BASE_DIST'];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

interface Sample { rate: number; cpuPerGiB: number; transferCpuPerGiB?: number }

const base = `/dev/shm/cargoport-h2cpu-${process.pid}`;
mkdirSync(`${base}/root`, { recursive: true });
mkdirSync(`${base}/dst`, { recursive: true });
execFileSync('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${base}/root/file.bin`]);
const sum = createChecksummer('adler32');
for await (const c of createReadStream(`${base}/root/file.bin`, { highWaterMark: 1 << 20 })) sum.update(c as Buffer);
const expected = sum.digestHex();
const tls = testTls();
const nginx = await startNginx({ dir: base, root: `${base}/root`, port: PORT, sendfile: false });
const origin = `https://127.0.0.1:${PORT}`;
const child = new URL('./lib/h2-receive-pull.js', import.meta.url).pathname;

const clients: Record<string, () => Promise<Sample>> = {
  curl: async () => {
    const out = `${base}/dst/curl.bin`;
    const t = await timedChild('curl', ['--http2', '-s', '--cacert', tls.certPath, '-o', out, `${origin}/file.bin`]);
    if (statSync(out).size !== BYTES) throw new Error('curl: short file');
    rmSync(out);
    return { rate: BYTES / 1e6 / t.secs, cpuPerGiB: t.cpu / (BYTES / GIB) };
  },
  ...Object.fromEntries(([['bulk', 'bulk', undefined], ['node-h2', 'node-h2', undefined], ...(BASE_DIST ? [['base', 'bulk', `${BASE_DIST}/services/transfer/h2-bulk/bulk-session.js`]] : [])] as Array<[string, string, string | undefined]>)
    .map(([name, mode, module]) => [name, async (): Promise<Sample> => {
      const out = `${base}/dst/${name}.bin`;
      const env = module ? ['env', `BULK_SESSION_MODULE=${module}`] : ['env'];
      const t = await timedChild(env[0]!, [...env.slice(1), process.execPath, child, mode, origin, tls.certPath, '/file.bin', out]);
      const r = JSON.parse(t.stdout) as { bytes: number; adler32: string; transferCpuSecs: number };
      if (r.bytes !== BYTES || statSync(out).size !== BYTES) throw new Error(`${name}: ${r.bytes} bytes`);
      if (r.adler32 !== expected) throw new Error(`${name}: adler32 ${r.adler32}, the file's is ${expected}`);
      rmSync(out);
      return { rate: BYTES / 1e6 / t.secs, cpuPerGiB: t.cpu / (BYTES / GIB), transferCpuPerGiB: r.transferCpuSecs / (BYTES / GIB) };
    }])),
};

const names = Object.keys(clients);
const samples: Record<string, Sample[]> = Object.fromEntries(names.map((n) => [n, []]));
console.log(`start: ${uptime()}`);
try {
  execFileSync('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/dst/warm.bin && rm ${base}/dst/warm.bin`]);
  for (let r = 0; r < ROUNDS; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]!);
    const line: string[] = [];
    for (const name of order) {
      const s = await clients[name]!();
      samples[name]!.push(s);
      line.push(`${name} ${s.rate.toFixed(0)} MB/s ${s.cpuPerGiB.toFixed(2)}${s.transferCpuPerGiB !== undefined ? ` (transfer ${s.transferCpuPerGiB.toFixed(2)})` : ''} cpu-s/GiB`);
    }
    console.log(`round ${r + 1}: ${line.join(' | ')}`);
  }
  console.log(`end: ${uptime()}`);
  console.log(`${SIZE_MIB} MiB tmpfs → tmpfs from nginx (h2, TLS, 2 workers, sendfile off); medians of ${ROUNDS} rounds:`);
  const med: Record<string, { rate: number; cpu: number; transfer?: number }> = {};
  for (const n of names) {
    const xs = samples[n]!;
    med[n] = { rate: median(xs.map((x) => x.rate)), cpu: median(xs.map((x) => x.cpuPerGiB)), transfer: xs[0]!.transferCpuPerGiB !== undefined ? median(xs.map((x) => x.transferCpuPerGiB!)) : undefined };
    console.log(`  ${n.padEnd(8)} ${med[n]!.rate.toFixed(0)} MB/s, ${med[n]!.cpu.toFixed(2)} cpu-s/GiB${med[n]!.transfer !== undefined ? ` (transfer only ${med[n]!.transfer!.toFixed(2)})` : ''}`);
  }
  const c = med['curl']!;
  const nh = med['node-h2']!;
  for (const n of names.filter((x) => x !== 'curl')) {
    const m = med[n]!;
    console.log(`RATIO ${n}: cpu/curl ${(m.cpu / c.cpu).toFixed(2)}, cpu/node-h2 ${(m.cpu / nh.cpu).toFixed(2)} (transfer only ${(m.transfer! / nh.transfer!).toFixed(2)}), rate/curl ${(m.rate / c.rate).toFixed(2)}`);
  }
} finally {
  await nginx.stop();
  rmSync(base, { recursive: true, force: true });
}
