/**
 * bench/tpc-xrootd — issue 16's HTTP-TPC targets, in one invocation, alternating, medians:
 *   xx: XRootD → XRootD: `COPY` to XRootD B with `Source:` XRootD A (B pulls with its libcurl TPC client);
 *   px: XRootD → port:   `COPY` to the port's storage endpoint with `Source:` XRootD A (the port's transfer engine);
 *   pp: port → port:     `COPY` to the port with `Source:` a second port's storage endpoint.
 * Each `COPY` is sent by curl and timed from request to the terminal `success:` line (the same moment for every
 * active party: the file is published). Both ports run in their own processes (bench/lib/child-port: gateway +
 * storage endpoint, engine from the configuration, default transfer settings unless PORT_CONNECTIONS /
 * PORT_STREAMS say otherwise); their CPU is read from /proc. XRootD is 5.5 (Debian), HTTPS, XrdHttpTPC, adler32;
 * data on tmpfs. No `RequireChecksumVerification` header (each side's default), no `X-Number-Of-Streams`
 * unless XRD_STREAMS is set (then it is sent to both active parties).
 *
 * Run: npm run build && node dist/bench/tpc-xrootd.js [size_mib=1024] [runs=5]
 */
import { execFile, spawn } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { testTls } from '../test/support/tls.js';
import { startChildPort } from './lib/child-port.js';
import { cpuSecondsOf, childPids } from './lib/proc-cpu.js';
import { timedChild } from './lib/timed-child.js';
import { startXrootd, xrootdAccount } from './lib/xrootd-peer.js';

const SIZE_MIB = Number(process.argv[2] ?? 1024);
const RUNS = Number(process.argv[3] ?? 5);
const BYTES = SIZE_MIB * 1024 * 1024;
const XRD_STREAMS = process.env['XRD_STREAMS'];
const run = promisify(execFile);
/** ONLY=px,pp runs a subset (e.g. to profile one path). */
const KINDS = (process.env['ONLY'] ?? 'xx,px,pp').split(',');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** CPU seconds per thread name of `pid` (minus `since`), to see where a process's CPU goes. */
function threadCpu(pid: number, since: Record<string, number> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(rest[11]) + Number(rest[12])) / 100;
    } catch { /* gone */ }
  }
  for (const k of Object.keys(out)) out[k] = Math.round((out[k]! - (since[k] ?? 0)) * 100) / 100;
  return out;
}

async function main(): Promise<void> {
  const base = `/dev/shm/cargoport-tpcbench-${process.pid}`;
  const tls = testTls();
  const a = await startXrootd(`${base}/xa`);
  const b = await startXrootd(`${base}/xb`);
  mkdirSync(`${base}/port-src`, { recursive: true });
  mkdirSync(`${base}/port-dst`, { recursive: true });
  await run('sh', ['-c', `head -c ${BYTES} /dev/urandom > ${a.dataDir}/f.bin`]);
  const acct = xrootdAccount();
  if (acct) await run('chown', [`${acct.uid}:${acct.gid}`, `${a.dataDir}/f.bin`]);
  linkSync(`${a.dataDir}/f.bin`, `${base}/port-src/f.bin`);
  const transfer: Record<string, unknown> = {};
  if (process.env['PORT_CONNECTIONS']) transfer['connections'] = Number(process.env['PORT_CONNECTIONS']);
  if (process.env['PORT_STREAMS']) transfer['streams'] = Number(process.env['PORT_STREAMS']);
  const profArgs = process.env['PORT_CPU_PROF'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['PORT_CPU_PROF']}`] : [];
  if (process.env['PERF']) profArgs.push('--perf-basic-prof');
  const port = await startChildPort({ storage: { root: `${base}/port-dst`, bufferRoot: `${base}/port-dst-buffer` }, transfer: { caFile: tls.certPath, ...transfer } }, profArgs);
  const srcPort = await startChildPort({ storage: { root: `${base}/port-src`, bufferRoot: `${base}/port-src-buffer` } });
  const portCpu = (): number => cpuSecondsOf([port.child.pid!]);
  const xrdCpu = (): number => cpuSecondsOf([b.pid, ...(b.pid ? childPids(b.pid) : [])]);
  const results: Record<'xx' | 'px' | 'pp', Array<{ rate: number; cpu: number }>> = { xx: [], px: [], pp: [] };
  const streamsHeader = XRD_STREAMS ? ['-H', `X-Number-Of-Streams: ${XRD_STREAMS}`] : [];
  try {
    // Back the tmpfs pages a destination will use once, so no run pays the VM's first-touch cost alone.
    await run('sh', ['-c', `head -c ${BYTES} /dev/zero > ${base}/warm.bin && rm ${base}/warm.bin`]);
    // XRootD computes a file's adler32 on the first `Want-Digest` and keeps it (as storage with checksums on
    // ingest does): ask once before timing, so no run pays for XRootD's first checksum computation.
    await run('curl', ['-sS', '-I', '--cacert', tls.certPath, '-H', 'Want-Digest: adler32', a.url('/f.bin')]);
    const copy = async (kind: 'xx' | 'px' | 'pp'): Promise<void> => {
      const target = kind === 'xx' ? b.url('/out.bin') : `${port.url}/data/out-${kind}.bin`;
      const source = kind === 'pp' ? `${srcPort.url}/data/f.bin` : a.url('/f.bin');
      const dstFile = kind === 'xx' ? `${b.dataDir}/out.bin` : `${base}/port-dst/out-${kind}.bin`;
      const cpu0 = kind === 'xx' ? xrdCpu() : portCpu();
      const t0 = process.env['THREADS'] ? threadCpu(port.child.pid!) : {};
      // PERF=<file prefix>: `perf record -g` of the active port during each of its copies (<prefix>-<kind>-<n>.data).
      const perf = process.env['PERF'] && kind !== 'xx'
        ? spawn('perf', ['record', '-F', '499', '-g', '-p', String(port.child.pid), '-o', `${process.env['PERF']}-${kind}-${results[kind].length}.data`], { stdio: 'ignore' })
        : undefined;
      const r = await timedChild('curl', ['-sS', ...(kind === 'xx' ? [] : ['--http2']), '--cacert', tls.certPath, '-X', 'COPY',
        '-H', `Source: ${source}`, '-H', 'Credential: none', ...streamsHeader, target]);
      const cpu = (kind === 'xx' ? xrdCpu() : portCpu()) - cpu0;
      if (perf) {
        perf.kill('SIGINT');
        await new Promise((r) => perf.once('exit', r));
      }
      if (process.env['THREADS'] && kind !== 'xx') console.log(kind, threadCpu(port.child.pid!, t0));
      if (!/success: Created/.test(r.stdout)) throw new Error(`${kind}: ${r.stdout.slice(-500)}`);
      if (statSync(dstFile).size !== BYTES) throw new Error(`${kind}: short file`);
      results[kind].push({ rate: BYTES / 1e6 / r.secs, cpu: cpu / (BYTES / 1024 ** 3) });
      rmSync(dstFile);
    };
    const orders: Array<Array<'xx' | 'px' | 'pp'>> = [['xx', 'px', 'pp'], ['px', 'xx', 'pp'], ['pp', 'px', 'xx']];
    for (let i = 0; i < RUNS; i++) {
      const order = orders[i % orders.length]!;
      for (const k of order) if (KINDS.includes(k)) await copy(k);
      const fmt = (k: 'xx' | 'px' | 'pp') => results[k].length ? `${k} ${results[k].at(-1)!.rate.toFixed(0)} MB/s ${results[k].at(-1)!.cpu.toFixed(2)} cpu-s/GiB` : `${k} -`;
      console.log(`run ${i + 1} (${order.join(',')}): ${fmt('xx')} | ${fmt('px')} | ${fmt('pp')}`);
    }
    const m = (k: 'xx' | 'px' | 'pp') => (results[k].length ? median(results[k].map((x) => x.rate)) : NaN);
    const c = (k: 'xx' | 'px' | 'pp') => (results[k].length ? median(results[k].map((x) => x.cpu)) : NaN);
    const paired = results.px.length && results.xx.length ? median(results.px.map((p, i) => p.rate / results.xx[i]!.rate)) : NaN;
    console.log(`${SIZE_MIB} MiB, tmpfs → tmpfs, HTTP-TPC pull (COPY + Source), XRootD 5.5 HTTPS${XRD_STREAMS ? `, X-Number-Of-Streams ${XRD_STREAMS}` : ''}; port transfer ${JSON.stringify(transfer)}`);
    console.log(`XRootD → XRootD: median ${m('xx').toFixed(0)} MB/s (active XRootD ${c('xx').toFixed(2)} cpu-s/GiB)`);
    console.log(`XRootD → port:   median ${m('px').toFixed(0)} MB/s (port ${c('px').toFixed(2)} cpu-s/GiB)`);
    console.log(`port → port:     median ${m('pp').toFixed(0)} MB/s (active port ${c('pp').toFixed(2)} cpu-s/GiB)`);
    console.log(`RATIO XRootD→port / XRootD→XRootD: ${(m('px') / m('xx')).toFixed(2)} (median of paired ${paired.toFixed(2)}) [target ≥ 1.5]`);
  } finally {
    await port.close();
    await srcPort.close();
    a.stop();
    b.stop();
    await new Promise((r) => setTimeout(r, 300));
    rmSync(base, { recursive: true, force: true });
  }
}

await main();
