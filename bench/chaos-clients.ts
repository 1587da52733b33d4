/**
 * Hostile and many clients against one gateway (issue 11, item 5): the gateway runs in a child process (its RSS is
 * read from /proc), on the shared Redis under a fresh prefix, with no workers; this process plays the clients.
 * Each scenario runs against the gateway with its per-client bounds (defaults) and, as the peer in the same run,
 * against the same gateway with the bounds switched off (handshake timeout back to Node's 120 s, no caps, no upload
 * idle timeout), and prints gateway RSS before/after and whether other clients were served.
 *
 *   node dist/bench/chaos-clients.js [halfOpen=10000] [clients=1000] [only=halfOpen|stalled|many]
 *
 * Scenarios: (1) `halfOpen` TCP connections that send 3 bytes of a TLS ClientHello and stop, while another address
 * polls /healthz; (2) one PUT declaring the whole buffer that sends 3 bytes, then 2 MiB uploads from others;
 * (3) `clients` simultaneous clients (distinct 127.0.x.y addresses), one HTTP/1.1 GET /api/v1/jobs each.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const MiB = 1024 * 1024;

if (process.argv[2] === 'child') {
  const { loadConfig } = await import('../config/load.js');
  const { startGateway } = await import('../gateway/start.js');
  const { testTls } = await import('../test/support/tls.js');
  const overrides = JSON.parse(process.argv[3]!) as Record<string, Record<string, unknown>>;
  const dataDir = mkdtempSync(join(tmpdir(), 'cargoport-chaos-'));
  const tls = testTls();
  const cfg = loadConfig({
    env: {}, overrides: {
      ...overrides, logLevel: 'silent', dataDir,
      gateway: { host: '0.0.0.0', port: 0, ...overrides['gateway'] },
      redis: { url: 'redis://127.0.0.1:6379', prefix: `{chaos${process.pid}}` },
      storage: { bufferQuotaBytes: 64 * MiB, ...overrides['storage'] },
    },
  });
  const gw = await startGateway(cfg, { redisUrl: 'redis://127.0.0.1:6379', tls });
  process.on('message', async (m: string) => {
    if (m === 'close') {
      await gw.close();
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    }
  });
  process.send!({ port: gw.port, ca: tls.cert.toString() });
} else {
  const halfOpen = Number(process.argv[2] ?? 10000);
  const clients = Number(process.argv[3] ?? 1000);
  const self = fileURLToPath(import.meta.url);

  const rssMiB = (pid: number) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function startChild(overrides: object): Promise<{ child: ChildProcess; port: number; ca: string }> {
    const child = fork(self, ['child', JSON.stringify(overrides)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const { port, ca } = await new Promise<{ port: number; ca: string }>((r) => child.once('message', (m) => r(m as { port: number; ca: string })));
    return { child, port, ca };
  }

  function probe(port: number, ca: string, localAddress: string): Promise<number> {
    return new Promise((resolve) => {
      const s = h2connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost', localAddress } as never);
      s.on('error', () => resolve(0));
      const t = setTimeout(() => { s.destroy(); resolve(0); }, 5000);
      const req = s.request({ ':path': '/healthz' });
      req.on('response', (h) => { clearTimeout(t); resolve(Number(h[':status'])); s.close(); });
      req.on('error', () => resolve(0));
      req.end();
    });
  }

  async function halfOpenScenario(port: number, ca: string, pid: number): Promise<string> {
    const before = rssMiB(pid);
    const sockets: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < halfOpen; i++) {
      const s = netConnect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.once('connect', () => s.write(Buffer.from([0x16, 0x03, 0x01])));
      s.once('close', () => closedByServer++);
      sockets.push(s);
      if (i % 500 === 499) await sleep(10);
    }
    await sleep(1000);
    const peak = rssMiB(pid);
    let served = 0;
    for (let i = 0; i < 10; i++) if ((await probe(port, ca, '127.0.0.2')) === 200) served++;
    // Wait up to 30 s for the server to close them.
    const t0 = Date.now();
    while (closedByServer < halfOpen && Date.now() - t0 < 30_000) await sleep(200);
    const byServer = closedByServer;
    const waited = ((Date.now() - t0) / 1000).toFixed(1);
    for (const s of sockets) s.destroy();
    await sleep(2000);
    const after = rssMiB(pid);
    return `half-open: RSS ${before} → peak ${peak} → after all closed ${after} MiB; other client served ${served}/10; closed by the server after ${waited} s more: ${byServer}/${halfOpen} (the rest closed by us)`;
  }

  async function stalledUploadScenario(port: number, ca: string, pid: number): Promise<string> {
    const before = rssMiB(pid);
    const liar = h2connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost' });
    liar.on('error', () => undefined);
    const lreq = liar.request({ ':method': 'PUT', ':path': '/data/liar.bin', 'content-length': String(64 * MiB - 1) }, { endStream: false });
    lreq.on('error', () => undefined);
    lreq.write(Buffer.from('abc'));
    await sleep(500);
    const s = h2connect(`https://127.0.0.1:${port}`, { ca, servername: 'localhost', localAddress: '127.0.0.2' } as never);
    s.on('error', () => undefined);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const body = randomBytes(2 * MiB);
      codes.push(await new Promise<number>((resolve) => {
        const r = s.request({ ':method': 'PUT', ':path': `/data/honest-${i}.bin`, 'content-length': String(body.length) });
        let st = 0;
        r.on('response', (h) => (st = Number(h[':status'])));
        r.on('error', () => resolve(st));
        r.on('close', () => resolve(st));
        setTimeout(() => resolve(st || -1), 15_000).unref(); // -1: no answer in 15 s
        r.resume();
        r.end(body);
      }));
    }
    const liarOpen = !lreq.closed;
    s.close();
    liar.destroy();
    await sleep(500);
    return `stalled giant upload (declared 64 MiB = the buffer, sent 3 bytes): others' 2 MiB PUTs ${codes.join(',')} (${codes.filter((c) => c === 201).length}/5 stored) with the liar still open: ${liarOpen}; RSS ${before} → ${rssMiB(pid)} MiB`;
  }

  async function manyClientsScenario(port: number, ca: string, pid: number): Promise<string> {
    const before = rssMiB(pid);
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: clients }, (_, i) => new Promise<number>((resolve) => {
      const localAddress = `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`;
      const sock = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['http/1.1'], localAddress } as never, () => {
        sock.write('GET /api/v1/jobs?limit=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let out = '';
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => (out += d));
      sock.on('error', () => resolve(0));
      sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)));
      setTimeout(() => sock.destroy(), 60_000).unref();
    })));
    const ms = Date.now() - t0;
    const ok = results.filter((c) => c === 200).length;
    await sleep(1000);
    return `${clients} simultaneous clients (distinct addresses): ${ok}/${clients} answered 200 in ${ms} ms; RSS ${before} → ${rssMiB(pid)} MiB`;
  }

  const modes: Array<[string, object]> = [
    ['bounds on (defaults)', {}],
    ['bounds off (peer: Node defaults, no caps)', { gateway: { tlsHandshakeTimeoutMs: 120000, maxConnectionsPerClient: 0, maxRequestsPerClient: 0 }, storage: { uploadIdleTimeoutSec: 0 } }],
  ];
  const only = process.argv[4];
  for (const [name, overrides] of modes) {
    for (const scenario of [halfOpenScenario, stalledUploadScenario, manyClientsScenario].filter((f) => !only || f.name.startsWith(only))) {
      const { child, port, ca } = await startChild(overrides);
      try {
        console.log(`[${name}] ${await scenario(port, ca, child.pid!)}`);
      } finally {
        child.send('close');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await new Promise((r) => child.once('exit', r));
        clearTimeout(killer);
      }
    }
  }
}
