/**
 * The floor of Node itself for many small files: a bare `node:http2` client (no undici, no checksum, no fsync,
 * no temp name, no queue) fetching `files` from `origin` over `connections` sessions with `inflight` requests
 * in flight, each body written with one fs.writeFile (or discarded with `discard`). Run as a child process by
 * bench/queue-small-files so its CPU is its own; prints one JSON line {files, secs, cpuSecs, retries}.
 * A stream refused by a server's graceful GOAWAY (nginx: every 1,000 requests) is asked again on a new session.
 *
 *   node dist/bench/lib/node-h2-floor.js <origin> <ca.pem> <dst|discard> <connections> <inflight> <name>...
 *   (names are read from stdin, one per line, when none are given)
 */
import http2 from 'node:http2';
import { readFileSync, writeFile } from 'node:fs';

const [origin, caPath, dst, conns, inflight] = process.argv.slice(2) as [string, string, string, string, string];
const names = readFileSync(0, 'utf8').split('\n').filter(Boolean);
const ca = readFileSync(caPath);
const C = Number(conns);
const sessions: http2.ClientHttp2Session[] = [];
const connect = (k: number): http2.ClientHttp2Session => {
  const s = http2.connect(origin, { ca });
  s.on('error', () => undefined);
  s.on('goaway', () => { if (sessions[k] === s) sessions[k] = connect(k); });
  return s;
};
for (let k = 0; k < C; k++) sessions[k] = connect(k);

let next = 0;
let done = 0;
let retries = 0;
const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
await new Promise<void>((resolve, reject) => {
  const finish = (): void => {
    if (++done === names.length) resolve();
    else if (next < names.length) fetchOne(next++);
  };
  const fetchOne = (i: number): void => {
    const k = i % C;
    let s = sessions[k]!;
    if (s.closed || s.destroyed) s = sessions[k] = connect(k);
    let req: http2.ClientHttp2Stream;
    try {
      req = s.request({ ':path': `/${names[i]}` });
    } catch {
      retries++;
      sessions[k] = connect(k);
      setImmediate(() => fetchOne(i));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => { if (dst !== 'discard') chunks.push(c); });
    req.on('end', () => {
      if (dst === 'discard') return finish();
      writeFile(`${dst}/${names[i]}`, Buffer.concat(chunks), (e) => (e ? reject(e) : finish()));
    });
    req.on('error', () => {
      retries++;
      setImmediate(() => fetchOne(i));
    });
  };
  for (let k = 0; k < Number(inflight) && next < names.length; k++) fetchOne(next++);
});
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(c0);
console.log(JSON.stringify({ files: names.length, secs, cpuSecs: (cpu.user + cpu.system) / 1e6, retries }));
for (const s of sessions) s.close();
