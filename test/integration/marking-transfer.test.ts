/**
 * Scitags marking of real transfers over IPv6 loopback: the engine pulls and pushes a file for a flow tagged
 * ATLAS / Production Output (2/16, flow id 144) against a TLS HTTP/2 server on ::1.
 *  - fireflies arrive on UDP (the peer copy on ::1 and a collector on 127.0.0.1), carry the RFC 5424 header,
 *    validate against the v1 schema, and go start → ongoing → end with usage and end-time;
 *  - the flowd named pipe receives exactly one start and one end line per connection;
 *  - tshark, capturing on lo, sees every data-bearing packet the port sends carry a flow label that decodes to
 *    2/16 (skipped with the reason when tshark is absent or cannot capture; CI installs it), and decodes the
 *    fireflies with its syslog dissector;
 *  - an untagged transfer opens no flow.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { configureMarking, marking } from '../../services/marking/marking-service.js';
import { tagOfFlowLabel } from '../../services/marking/flow-id.js';
import { flowLabelAddonMissing } from '../../services/marking/native-flowlabel.js';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import type { TransferRequest } from '../../services/transfer/types.js';
import { startH2FileServer, type H2FileServer } from '../support/h2-file-server.js';
import { startFireflyCollector, validateFirefly, type FireflyCollector } from '../support/firefly-collector.js';
import { hasTool } from '../support/external-tools.js';
import { sleep } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const FLOW = { experiment: 2, activity: 16 };
let srv: H2FileServer;
let root: string;
let work: string;
let peer: FireflyCollector;
let collector4: FireflyCollector;
let pipeReader: ChildProcess;
let pipeText = '';
let origin: string;

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  for (const t0 = Date.now(); !cond(); await sleep(20)) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
  }
}

function run(r: Partial<TransferRequest> & Pick<TransferRequest, 'source' | 'destination'>) {
  return engine.transfer({ verify: 'none', overwrite: true, ...r }, { signal: new AbortController().signal, gate: new PauseGate() });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'cargoport-mark-srv-'));
  work = await mkdtemp(join(tmpdir(), 'cargoport-mark-dst-'));
  srv = await startH2FileServer({ root, host: '::1' });
  origin = `https://[::1]:${srv.port}`;
  peer = await startFireflyCollector('udp6', '::1');
  collector4 = await startFireflyCollector('udp4', '127.0.0.1');
  const fifo = join(work, 'flowd.np');
  execFileSync('mkfifo', [fifo]);
  // cat's open(O_RDONLY) counts as a reader at once, so marking's non-blocking open for writing succeeds.
  pipeReader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
  pipeReader.stdout!.on('data', (d: Buffer) => { pipeText += d.toString(); });
  await sleep(100);
  await configureMarking({
    application: 'cargoport-test 1.0', firefliesToPeer: true, peerPort: peer.port, collectors: [`127.0.0.1:${collector4.port}`],
    ongoingIntervalMs: 100, flowdPipe: fifo,
  });
  await engine.reconfigure({ ca: testTls().cert, connections: 1, streams: 1 });
});

const liveCaptures = new Set<ChildProcess>();

after(async () => {
  for (const p of liveCaptures) p.kill('SIGKILL');
  await engine.close();
  await configureMarking({});
  pipeReader.kill();
  await srv.close();
  await peer.close();
  await collector4.close();
  await rm(root, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

/** Starts tshark on lo for the server's TCP port and the fireflies' UDP port; undefined (with a reason) if it cannot. */
async function startCapture(file: string, tcpPort = srv.port): Promise<{ stop(): Promise<void> } | string> {
  if (!hasTool('tshark')) return 'tshark is not installed';
  const p = spawn('tshark', ['-i', 'lo', '-q', '-w', file, '-f', `ip6 and (tcp port ${tcpPort} or udp port ${peer.port})`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const ready = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 10_000);
    p.stderr!.on('data', () => { if (err.includes('Capturing on')) { clearTimeout(t); resolve(true); } });
    p.once('exit', () => { clearTimeout(t); resolve(false); });
  });
  if (!ready) {
    p.kill('SIGKILL');
    return `tshark cannot capture on lo: ${err.trim().split('\n').pop()}`;
  }
  await sleep(300); // the capture filter is attached once "Capturing on" is printed; let the first packets through
  // A failed assertion skips stop(): the file's after() kills what is left, or the capture would keep this test
  // file's process (and the whole suite) alive.
  liveCaptures.add(p);
  p.once('exit', () => liveCaptures.delete(p));
  return {
    async stop() {
      await sleep(300);
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGINT');
      await exited;
    },
  };
}

describe('marking: a tagged transfer over IPv6 loopback', () => {
  it('pull and push: fireflies valid against the schema, pipe lines, labels on the wire', async (t) => {
    const data = randomBytes(6 * 1024 * 1024);
    await writeFile(join(root, 'src.bin'), data);
    await writeFile(join(work, 'up.bin'), data);
    const pcap = join(work, 'marking.pcapng');
    const capture = await startCapture(pcap);

    const pulled = await run({ source: `${origin}/src.bin`, destination: pathToFileURL(join(work, 'pulled.bin')).href, flow: FLOW });
    assert.equal(pulled.bytes, data.length);
    await run({ source: pathToFileURL(join(work, 'up.bin')).href, destination: `${origin}/pushed.bin`, flow: FLOW });
    assert.deepEqual(await readFile(join(root, 'pushed.bin')), data);
    await sleep(250); // at least one ongoing firefly
    assert.ok(marking().status().activeFlows >= 1, 'the tagged connections are open flows');
    await engine.close(); // the pooled connections close: their flows end
    await waitFor('end fireflies', () => peer.received.filter((f) => f.body['flow-lifecycle']?.state === 'end').length >= 2);
    // Every started flow ends: wait for as many end lines as start lines (a connection's end can follow the others').
    await waitFor('end pipe lines', () => {
      const ends = (pipeText.match(/^end /gm) ?? []).length;
      return ends >= 2 && ends === (pipeText.match(/^start /gm) ?? []).length;
    });

    // Every datagram: the header, ≤ 1 KiB, schema-valid, ATLAS / Production Output, our application.
    for (const f of [...peer.received, ...collector4.received]) {
      assert.match(f.header, /^<134>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ cargoport-test - firefly-json - $/);
      assert.ok(f.raw.length <= 1024, `datagram of ${f.raw.length} bytes`);
      assert.ok(validateFirefly(f.body), JSON.stringify((validateFirefly as unknown as { errors: unknown }).errors));
      assert.deepEqual(f.body['context'], { 'experiment-id': 2, 'activity-id': 16, application: 'cargoport-test 1.0' });
      assert.equal(f.body['flow-id'].afi, 'ipv6');
    }
    assert.equal(collector4.received.length, peer.received.length, 'the collector gets a copy of every firefly');
    // Per connection (keyed by its 5-tuple): start first, end last with usage and end-time.
    const byFlow = new Map<string, Array<Record<string, any>>>();
    for (const f of peer.received) {
      const id = f.body['flow-id'];
      const key = `${id['src-ip']} ${id['src-port']} ${id['dst-ip']} ${id['dst-port']}`;
      byFlow.set(key, [...(byFlow.get(key) ?? []), f.body]);
    }
    assert.ok(byFlow.size >= 2, `a pull and a push connection (got ${[...byFlow.keys()].join(', ')})`);
    let pullFlows = 0;
    let pushFlows = 0;
    for (const [key, list] of byFlow) {
      const states = list.map((b) => b['flow-lifecycle'].state);
      assert.equal(states[0], 'start', key);
      assert.equal(states.at(-1), 'end', key);
      assert.ok(states.slice(1, -1).every((s) => s === 'ongoing'), states.join(','));
      const end = list.at(-1)!;
      assert.ok(end['flow-lifecycle']['end-time'] >= end['flow-lifecycle']['start-time']);
      // The data supplier is the source: for the pull the server's port is src-port, for the push dst-port.
      const id = end['flow-id'];
      if (id['src-port'] === srv.port) {
        if (end.usage.received >= data.length) pullFlows++;
      } else {
        assert.equal(id['dst-port'], srv.port);
        if (end.usage.sent >= data.length) pushFlows++;
      }
    }
    assert.ok(pullFlows >= 1, 'a pull connection received the file');
    assert.ok(pushFlows >= 1, 'a push connection sent the file');
    if (!flowLabelAddonMissing) {
      const ongoing = peer.received.find((f) => f.body['flow-lifecycle'].state === 'ongoing');
      assert.ok(ongoing, 'ongoing fireflies while the connections lived');
      assert.equal(typeof ongoing.body['netlink']?.rtt, 'number', 'TCP_INFO under netlink');
    }

    // The pipe: exactly one start and one end line per connection, in flowd's format.
    const lines = pipeText.trim().split('\n');
    for (const l of lines) assert.match(l, new RegExp(`^(start|end) tcp ::1 \\d+ ::1 \\d+ 2 16$`));
    const starts = lines.filter((l) => l.startsWith('start ')).map((l) => l.slice(6)).sort();
    const ends = lines.filter((l) => l.startsWith('end ')).map((l) => l.slice(4)).sort();
    assert.deepEqual(ends, starts);
    assert.equal(starts.length, byFlow.size);

    if (typeof capture === 'string') {
      t.diagnostic(`packet capture skipped: ${capture}`);
      return;
    }
    await capture.stop();
    if (flowLabelAddonMissing) {
      t.diagnostic(`flow labels not checked: ${flowLabelAddonMissing}`);
      return;
    }
    // Every data-bearing packet we sent (towards the server's port) carries the flow's label.
    const fields = execFileSync('tshark', ['-r', pcap, '-Y', `tcp.dstport == ${srv.port} && tcp.len > 0`, '-T', 'fields', '-e', 'ipv6.flow', '-e', 'tcp.len'], { encoding: 'utf8' });
    const labels = fields.trim().split('\n').filter(Boolean).map((l) => Number(l.split('\t')[0]));
    assert.ok(labels.length > 10, `data packets captured: ${labels.length}`);
    for (const label of labels) assert.deepEqual(tagOfFlowLabel(label), FLOW, `label 0x${label.toString(16)}`);
    assert.ok(labels.every((l) => (l & 0x80000) === 0), 'the label manager bit stays clear');
    // tshark's syslog dissector reads the fireflies (RFC 5424 header, JSON message).
    // (Wireshark's dissector ends MSGID at the message, so the JSON shows inside its msgid field.)
    const syslog = execFileSync('tshark', ['-r', pcap, '-d', `udp.port==${peer.port},syslog`, '-Y', 'syslog', '-T', 'fields',
      '-e', 'syslog.level', '-e', 'syslog.facility', '-e', 'syslog.version', '-e', 'syslog.appname', '-e', 'syslog.msgid'], { encoding: 'utf8' });
    const msgs = syslog.trim().split('\n').filter(Boolean);
    assert.ok(msgs.length >= 4, `fireflies dissected: ${msgs.length}`);
    for (const m of msgs) {
      const [level, facility, version, app, msgid] = m.split('\t');
      assert.deepEqual([level, facility, version, app], ['6', '16', '1', 'cargoport-test'], m);
      assert.ok(msgid!.startsWith('firefly-json') && msgid!.includes('"experiment-id":2'), m);
    }
  });

  it('HTTP/1.1 server: the uploader and the HTTP/1.x GET connections carry the label too', async (t) => {
    const h1Root = await mkdtemp(join(tmpdir(), 'cargoport-mark-h1-'));
    const h1 = await startH2FileServer({ root: h1Root, host: '::1', http1Only: true });
    try {
      const data = randomBytes(4 * 1024 * 1024);
      await writeFile(join(h1Root, 'src.bin'), data);
      await writeFile(join(work, 'up1.bin'), data);
      const pcap = join(work, 'h1.pcapng');
      const capture = await startCapture(pcap, h1.port);
      const o = `https://[::1]:${h1.port}`;
      await run({ source: `${o}/src.bin`, destination: pathToFileURL(join(work, 'pulled1.bin')).href, flow: FLOW });
      await run({ source: pathToFileURL(join(work, 'up1.bin')).href, destination: `${o}/pushed1.bin`, flow: FLOW });
      assert.deepEqual(await readFile(join(h1Root, 'pushed1.bin')), data);
      await engine.close();
      await waitFor('the HTTP/1.1 flows end', () => peer.received.filter((f) => f.body['flow-lifecycle']?.state === 'end' &&
        (f.body['flow-id']['src-port'] === h1.port || f.body['flow-id']['dst-port'] === h1.port)).length >= 2);
      if (typeof capture === 'string' || flowLabelAddonMissing) {
        t.diagnostic(`labels not checked: ${typeof capture === 'string' ? capture : flowLabelAddonMissing}`);
        if (typeof capture !== 'string') await capture.stop();
        return;
      }
      await capture.stop();
      const fields = execFileSync('tshark', ['-r', pcap, '-Y', `tcp.dstport == ${h1.port} && tcp.len > 0`, '-T', 'fields', '-e', 'ipv6.flow', '-e', 'tcp.srcport'], { encoding: 'utf8' });
      const rows = fields.trim().split('\n').filter(Boolean).map((l) => l.split('\t').map(Number) as [number, number]);
      assert.ok(new Set(rows.map((r) => r[1])).size >= 2, 'a GET and a PUT connection');
      for (const [label] of rows) assert.deepEqual(tagOfFlowLabel(label), FLOW, `label 0x${label.toString(16)}`);
    } finally {
      await h1.close();
      await rm(h1Root, { recursive: true, force: true });
    }
  });

  it('a name whose first (IPv6) address is dead still transfers: the usual connector tries the others', async () => {
    await writeFile(join(root, 'dual.bin'), randomBytes(256 * 1024));
    // 100::/64 is the discard prefix: nothing answers there.
    const lookup = ((_host: string, opts: unknown, cb: (e: Error | null, a: unknown, f?: number) => void) => {
      const all = [{ address: '100::1', family: 6 }, { address: '::1', family: 6 }];
      if ((opts as { all?: boolean })?.all) cb(null, all);
      else cb(null, all[0]!.address, 6);
    }) as unknown as import('node:net').LookupFunction;
    await engine.reconfigure({ lookup, connectTimeoutMs: 15_000 });
    try {
      const res = await run({ source: `https://localhost:${srv.port}/dual.bin`, destination: pathToFileURL(join(work, 'dual.bin')).href, flow: FLOW });
      assert.equal(res.bytes, 256 * 1024);
      assert.equal(res.remoteIp, '::1');
    } finally {
      // undefined would mean "unchanged": the system resolver again.
      await engine.reconfigure({ lookup: dnsLookup as unknown as import('node:net').LookupFunction });
      const ended = () => marking().status().activeFlows === 0;
      await engine.close();
      await waitFor('the flows to end', ended);
    }
  });

  it('an untagged transfer opens no flow and sends no firefly', async () => {
    await writeFile(join(root, 'plain.bin'), randomBytes(64 * 1024));
    await engine.close();
    await sleep(100);
    const before = marking().status().flowsStarted;
    const n = peer.received.length;
    await run({ source: `${origin}/plain.bin`, destination: pathToFileURL(join(work, 'plain.bin')).href });
    await engine.close();
    await sleep(100);
    assert.equal(marking().status().flowsStarted, before);
    assert.equal(peer.received.length, n);
  });
});
