/**
 * One engine transfer from the command line, for benchmarks: prints a JSON line with bytes, seconds, rate,
 * protocol, connections × streams and this process's CPU seconds (user + system).
 *
 *   node dist/bench/pull-once.js <source-url> <destination-url> [--ca cert.pem] [--connections N] [--streams M]
 *        [--window-mib W] [--conn-window-mib C] [--checksum ALG[:VALUE]|none] [--range-mib R] [--http1] [--ciphers openssl-list]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createTransferEngine } from '../services/transfer/engine.js';
import { PauseGate } from '../services/throttle/pause-gate.js';
import type { ChecksumAlg } from '../services/transfer/types.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    ca: { type: 'string' },
    connections: { type: 'string', default: '1' },
    streams: { type: 'string', default: '4' },
    'window-mib': { type: 'string', default: '32' },
    'conn-window-mib': { type: 'string', default: '128' },
    'range-mib': { type: 'string', default: '64' },
    checksum: { type: 'string', default: 'none' },
    http1: { type: 'boolean', default: false },
    ciphers: { type: 'string' },
  },
});
const [source, destination] = positionals;
if (!source || !destination) {
  console.error('usage: pull-once <source-url> <destination-url> [options]');
  process.exit(2);
}
const MiB = 1024 * 1024;
await engine.reconfigure({
  ...(values.ca ? { ca: readFileSync(values.ca) } : {}),
  connections: Number(values.connections),
  streams: Number(values.streams),
  initialWindowSize: Number(values['window-mib']) * MiB,
  connectionWindowSize: Number(values['conn-window-mib']) * MiB,
  http1Only: values.http1,
  ...(values.ciphers ? { ciphers: values.ciphers } : {}),
  multiStream: { enabled: true, minFileBytes: 2 * Number(values['range-mib']) * MiB, rangeBytes: Number(values['range-mib']) * MiB },
});
// `--checksum ALG` verifies against the source's Digest; `--checksum ALG:VALUE` verifies the given value (any source).
const [algName, expected] = values.checksum.split(':') as [string, string | undefined];
const alg = algName === 'none' ? undefined : (algName as ChecksumAlg);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const res = await engine.transfer({
  source, destination, overwrite: true,
  verify: alg && expected === undefined ? 'source' : 'none',
  ...(alg ? { checksum: expected === undefined ? { alg } : { alg, value: expected } } : {}),
}, { signal: new AbortController().signal, gate: new PauseGate() });
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
await engine.close();
console.log(JSON.stringify({
  bytes: res.bytes, seconds, mbPerSec: res.bytes / seconds / 1e6, protocol: res.protocol,
  connections: res.connections, streams: res.streams, checksum: res.checksum?.value,
  transferCpuSeconds: (cpu.user + cpu.system) / 1e6,
}));
