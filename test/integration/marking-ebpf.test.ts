/**
 * The eBPF backend (services/marking/ebpf-marker.ts): with marking.ebpfDevices = [lo] the storage endpoint on ::1
 * serves a tagged GET (SciTag: 144, ATLAS / Production Output) on a connection it ACCEPTED, and tshark on lo sees
 * the response's data packets — the port's side of the connection — carry a flow label decoding to 2/16, while an
 * untagged download on another connection gets none of ours; closing marking detaches the tc filter and removes
 * its pins. Needs root (or CAP_BPF + CAP_NET_ADMIN), the object built by native/build.mjs with clang, bpftool, tc
 * and tshark: without them it is skipped with the reason, and the status test checks that reason is shown.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { configureMarking, marking } from '../../services/marking/marking-service.js';
import { ebpfUnavailable } from '../../services/marking/ebpf-marker.js';
import { tagOfFlowLabel } from '../../services/marking/flow-id.js';
import { startStorageServer, type TestStorageServer } from '../support/storage-server.js';
import { h2Connect, h2Request } from '../support/h2-request.js';
import { startFireflyCollector, type FireflyCollector } from '../support/firefly-collector.js';
import { hasTool } from '../support/external-tools.js';
import { sleep } from '../support/fixtures.js';

let srv: TestStorageServer;
let peer: FireflyCollector;
let work: string;
const auth = { authorization: 'Bearer ok' };
const captures = new Set<ChildProcess>();

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'cargoport-ebpf-'));
  peer = await startFireflyCollector('udp6', '::1');
  await configureMarking({ peerPort: peer.port, ongoingIntervalMs: 0, ebpfDevices: ['lo'] });
  srv = await startStorageServer({ host: '::1', authorize: (req) => req.headers['authorization'] === 'Bearer ok' });
});

after(async () => {
  for (const p of captures) p.kill('SIGKILL');
  await srv.close();
  await configureMarking({});
  await peer.close();
  await rm(work, { recursive: true, force: true });
});

/** Why this machine cannot run the marker, or undefined. */
function cannotRun(): string | undefined {
  const ebpf = marking().status().backends.find((b) => b.name === 'ebpf')!;
  if (ebpf.on) return hasTool('tshark') ? undefined : 'tshark is not installed';
  // CI installs clang and libbpf-dev (.ci/run): there the object must have been built at npm ci.
  if (process.env['CI'] === 'true' && ebpfUnavailable()?.startsWith('ebpf: not built')) assert.fail(ebpfUnavailable()!);
  // Root with the object built must attach: anything else there is a failure, not a skip.
  if (process.getuid?.() === 0 && !ebpfUnavailable()) assert.fail(`the eBPF marker did not attach as root: ${ebpf.reason}`);
  return ebpf.reason;
}

async function capture(file: string): Promise<() => Promise<void>> {
  const p = spawn('tshark', ['-i', 'lo', '-q', '-w', file, '-f', `ip6 and tcp port ${srv.port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  captures.add(p);
  let err = '';
  const ready = await new Promise<boolean>((resolve) => {
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) resolve(true);
    });
    p.once('exit', () => resolve(false));
  });
  assert.ok(ready, `tshark: ${err}`);
  await sleep(300); // the capture filter is attached once "Capturing on" is printed
  return async () => {
    await sleep(300);
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    await exited;
    captures.delete(p);
  };
}

async function download(path: string, headers: Record<string, string>): Promise<number> {
  const s = h2Connect(srv.origin);
  try {
    const r = await h2Request(s, 'GET', path, headers);
    assert.equal(r.status, 200);
    return s.socket.localPort!;
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
}

test('a tagged download on an accepted connection: its data packets carry the label; detach removes the filter', async (t) => {
  const why = cannotRun();
  if (why) {
    t.skip(why);
    return;
  }
  const body = randomBytes(4 * 1024 * 1024);
  const s = h2Connect(srv.origin);
  await h2Request(s, 'PUT', '/data/ebpf/f.bin', auth, body).then((r) => assert.equal(r.status, 201)).finally(() => new Promise<void>((r) => s.close(() => r())));
  const pcap = join(work, 'ebpf.pcapng');
  const stop = await capture(pcap);
  const taggedPort = await download('/data/ebpf/f.bin', { ...auth, scitag: '144' });
  const untaggedPort = await download('/data/ebpf/f.bin', auth);
  for (let i = 0; i < 200 && marking().status().activeFlows > 0; i++) await sleep(20);
  await stop();
  const st = marking().status();
  assert.equal(st.activeFlows, 0, 'the flow ended (its map entry is gone)');
  assert.ok(st.flowsLabelled >= 1, 'the accepted connection was labelled');

  // The packets the port sent (source port = the endpoint's) with data, per client port: label and length.
  const rows = execFileSync('tshark', ['-r', pcap, '-Y', `tcp.srcport == ${srv.port} && tcp.len > 0`, '-T', 'fields', '-e', 'tcp.dstport', '-e', 'ipv6.flow', '-e', 'tcp.len'], { encoding: 'utf8' })
    .trim().split('\n').filter(Boolean).map((l) => l.split('\t').map(Number) as [number, number, number]);
  const tagged = rows.filter(([port]) => port === taggedPort);
  // The TLS handshake leaves before the request names the flow; from the first labelled packet on, all are.
  const first = tagged.findIndex(([, label]) => tagOfFlowLabel(label).experiment === 2 && tagOfFlowLabel(label).activity === 16);
  assert.ok(first >= 0, `no packet of the tagged connection carries 2/16: ${tagged.slice(0, 5).map(([, l]) => `0x${l.toString(16)}`).join(' ')}`);
  const labelled = tagged.slice(first);
  for (const [, label] of labelled) {
    assert.deepEqual(tagOfFlowLabel(label), { experiment: 2, activity: 16 }, `label 0x${label.toString(16)}`);
    assert.equal(label & 0x80000, 0, 'the label manager bit stays clear');
  }
  assert.equal(new Set(labelled.map(([, l]) => l)).size, 1, 'one label (one entropy draw) per flow');
  const bytes = labelled.reduce((n, [, , len]) => n + len, 0);
  assert.ok(bytes >= body.length, `labelled bytes ${bytes} < the ${body.length} served`);
  // The untagged download's connection is not in the map: its packets keep the kernel's own (hashed) labels.
  const untagged = rows.filter(([port]) => port === untaggedPort);
  assert.ok(untagged.length > 10);
  assert.ok(!untagged.every(([, l]) => l === labelled[0]![1]), 'the untagged connection does not carry the flow\'s label');

  // Detach: our filter and pins go.
  const handle = marking().ebpfMarker!.filterHandle;
  const dirs = execFileSync('ls', ['/sys/fs/bpf'], { encoding: 'utf8' }).split('\n').filter((d) => d === `cargoport-${process.pid}-${handle.toString(16)}`);
  assert.equal(dirs.length, 1, 'pinned while attached');
  assert.match(execFileSync('tc', ['filter', 'show', 'dev', 'lo', 'egress'], { encoding: 'utf8' }), new RegExp(`handle 0x${handle.toString(16)} `));
  await configureMarking({ peerPort: peer.port, ongoingIntervalMs: 0 });
  assert.doesNotMatch(execFileSync('tc', ['filter', 'show', 'dev', 'lo', 'egress'], { encoding: 'utf8' }), new RegExp(`handle 0x${handle.toString(16)} `));
  assert.equal(existsSync(`/sys/fs/bpf/cargoport-${process.pid}-${handle.toString(16)}`), false);
  assert.match(marking().status().backends.find((b) => b.name === 'ebpf')!.reason!, /^ebpf: marking.ebpfDevices is empty/);
});
