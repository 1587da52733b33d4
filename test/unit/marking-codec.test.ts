/** Scitags flow ids, flow labels (specs/scitags.md §2, §3.3 worked examples), registry lookups, flow resolution, firefly datagrams. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ENTROPY_MASK, flowIdOf, flowLabelOf, parseIncomingFlowId, tagOfFlowId, tagOfFlowLabel } from '../../services/marking/flow-id.js';
import { bundledRegistry, parseRegistry } from '../../services/marking/registry.js';
import { parsePathDefaults, resolveFlow } from '../../services/marking/flow-resolution.js';
import { FIREFLY_MAX_BYTES, fireflyDatagram } from '../../services/marking/firefly.js';
import { parseCollector } from '../../services/marking/firefly-sender.js';
import { validateFirefly } from '../support/firefly-collector.js';

describe('flow ids and labels', () => {
  it('encodes experiment << 6 | activity', () => {
    assert.equal(flowIdOf({ experiment: 2, activity: 16 }), 144);
    assert.deepEqual(tagOfFlowId(206), { experiment: 3, activity: 14 });
  });

  it('matches the worked examples of the draft layout (entropy 0)', () => {
    const cases: Array<[number, number, number]> = [[1, 1, 0x20004], [2, 3, 0x1000c], [2, 16, 0x10040], [3, 14, 0x30038], [3, 23, 0x3005c], [511, 63, 0x3fefc]];
    for (const [e, a, label] of cases) {
      assert.equal(flowLabelOf({ experiment: e, activity: a }), label, `${e}/${a}`);
      assert.deepEqual(tagOfFlowLabel(label), { experiment: e, activity: a });
    }
  });

  it('entropy lands only in its 4 usable bits and never sets 0x80000', () => {
    const all = flowLabelOf({ experiment: 2, activity: 3 }, 0xfffff);
    assert.equal(all, 0x1000c | 0x40103);
    assert.equal(all & 0x80000, 0);
    assert.deepEqual(tagOfFlowLabel(all), { experiment: 2, activity: 3 });
    assert.equal(ENTROPY_MASK & 0x3fefc, 0, 'entropy never touches the semantic bits');
  });

  it('reads incoming values: valid in [65, 65535], anything else is 0/0', () => {
    assert.deepEqual(parseIncomingFlowId(' 144 '), { experiment: 2, activity: 16 });
    for (const bad of ['64', '65536', '196664', '-65', '65abc', '', 'x']) assert.deepEqual(parseIncomingFlowId(bad), { experiment: 0, activity: 0 }, bad);
    assert.equal(parseIncomingFlowId(undefined), undefined);
  });
});

describe('registry', () => {
  it('maps names to ids both ways, case-insensitively', () => {
    assert.equal(bundledRegistry.experimentId('ATLAS'), 2);
    assert.equal(bundledRegistry.activityId(2, 'production output'), 16);
    assert.equal(bundledRegistry.activityId(3, 'Analysis Input'), 14);
    assert.equal(bundledRegistry.activityId(2, 'Cache'), undefined, 'ATLAS has no Cache activity');
    assert.deepEqual(bundledRegistry.names(9, 1), { experiment: 'lsst', activity: 'default' });
    assert.equal(bundledRegistry.experiments().length, 14);
  });

  it('refuses a document that is not a version-1 registry', () => {
    assert.throws(() => parseRegistry({ version: 2, experiments: [] }, 'x'), { code: 'CARGO_ERR_SCITAGS_REGISTRY' });
    assert.throws(() => parseRegistry({ version: 1, experiments: [{ expName: 'a' }] }, 'x'), { code: 'CARGO_ERR_SCITAGS_REGISTRY' });
  });
});

describe('flow resolution', () => {
  const defaults = parsePathDefaults(['/atlas/=atlas:default', '/atlas/prod/=atlas:Production Output', '/cms/=3:14'], bundledRegistry);

  it('follows SciTag > TransferHeaderSciTag > scitag.flow > job > names > path', () => {
    const r = (s: Parameters<typeof resolveFlow>[0]) => resolveFlow(s, bundledRegistry, defaults);
    assert.deepEqual(r({ sciTagHeader: '206', transferHeaderSciTag: '144', queryFlow: '65', jobScitag: 129 }), { experiment: 3, activity: 14, from: 'SciTag' });
    assert.deepEqual(r({ transferHeaderSciTag: '144', queryFlow: '65' }), { experiment: 2, activity: 16, from: 'TransferHeaderSciTag' });
    assert.deepEqual(r({ queryFlow: '65', jobScitag: 129 }), { experiment: 1, activity: 1, from: 'scitag.flow' });
    assert.deepEqual(r({ jobScitag: 129, paths: ['/cms/x'] }), { experiment: 2, activity: 1, from: 'job' });
    assert.deepEqual(r({ experiment: 'cms', activity: 'Production Output', paths: ['/atlas/x'] }), { experiment: 3, activity: 13, from: 'names' });
    assert.deepEqual(r({ paths: ['/data/x', '/atlas/prod/run1/f'] }), { experiment: 2, activity: 16, from: 'path' });
    assert.deepEqual(r({ paths: ['/atlas/other'] }), { experiment: 2, activity: 1, from: 'path' });
    assert.equal(r({ paths: ['/lhcb/x'] }), undefined);
    assert.deepEqual(r({ sciTagHeader: '12' }), { experiment: 0, activity: 0, from: 'SciTag' }, 'an invalid header marks 0/0');
  });

  it('rejects unknown names and malformed path defaults', () => {
    assert.throws(() => resolveFlow({ experiment: 'nosuch' }, bundledRegistry, []), { code: 'CARGO_ERR_BAD_SCITAG' });
    assert.throws(() => resolveFlow({ experiment: 'atlas', activity: 'Cache' }, bundledRegistry, []), { code: 'CARGO_ERR_BAD_SCITAG' });
    assert.throws(() => parsePathDefaults(['atlas=atlas:default'], bundledRegistry), { code: 'CARGO_ERR_CONFIG' });
    assert.throws(() => parsePathDefaults(['/x=atlas:Nope'], bundledRegistry), { code: 'CARGO_ERR_CONFIG' });
  });
});

describe('firefly datagrams', () => {
  const flow = { srcIp: '::ffff:10.1.2.3', srcPort: 443, dstIp: '::ffff:10.4.5.6', dstPort: 50000, experiment: 2, activity: 16, startTime: new Date('2026-01-01T00:00:00Z') };

  it('writes the RFC 5424 header and schema-valid JSON; IPv4-mapped addresses are IPv4', () => {
    const now = new Date('2026-01-01T00:00:05Z');
    const d = fireflyDatagram(flow, { state: 'end', now, usage: { received: 1, sent: 2 } }, 'host.example', 'cargoport 0.1');
    const text = d.toString();
    assert.ok(text.startsWith('<134>1 2026-01-01T00:00:05.000Z host.example cargoport - firefly-json - {'), text);
    const body = JSON.parse(text.slice(text.indexOf('{')));
    assert.ok(validateFirefly(body));
    assert.equal(body['flow-id'].afi, 'ipv4');
    assert.equal(body['flow-id']['src-ip'], '10.1.2.3');
    assert.equal(body['flow-lifecycle']['end-time'], now.toISOString());
    assert.deepEqual(body.usage, { received: 1, sent: 2 });
  });

  it('stays within 1 KiB: a large netlink block is dropped, then a long application', () => {
    const netlink = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`field_${i}`, 123456789]));
    const d = fireflyDatagram(flow, { state: 'ongoing', now: new Date(), netlink }, 'h', 'cargoport');
    assert.ok(d.length <= FIREFLY_MAX_BYTES);
    assert.ok(validateFirefly(JSON.parse(d.toString().slice(d.toString().indexOf('{')))));
    const long = fireflyDatagram(flow, { state: 'start', now: new Date() }, 'h', 'x'.repeat(2000));
    assert.ok(long.length <= FIREFLY_MAX_BYTES);
  });

  it('parses collectors', () => {
    assert.deepEqual(parseCollector('collector.scitags.org'), { host: 'collector.scitags.org', port: 10514 });
    assert.deepEqual(parseCollector('[2001:db8::1]:9999'), { host: '2001:db8::1', port: 9999 });
    assert.deepEqual(parseCollector('2001:db8::1'), { host: '2001:db8::1', port: 10514 });
    assert.deepEqual(parseCollector('10.0.0.1:7'), { host: '10.0.0.1', port: 7 });
    assert.throws(() => parseCollector('h:99999'));
  });
});
