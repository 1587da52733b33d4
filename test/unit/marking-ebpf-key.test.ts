/**
 * The eBPF marker's map key must match struct flow_key in native/ebpf/flowlabel-tc.bpf.c byte for byte (local
 * address, remote address, local port, remote port; ports in network order), or no packet is ever found.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flowKey, ipv6Bytes } from '../../services/marking/ebpf-marker.js';

test('IPv6 addresses as the 16 bytes the packet carries', () => {
  assert.equal(ipv6Bytes('::1')!.toString('hex'), '00000000000000000000000000000001');
  assert.equal(ipv6Bytes('2001:db8::a:b')!.toString('hex'), '20010db80000000000000000000a000b');
  assert.equal(ipv6Bytes('fe80::1%lo')!.toString('hex'), 'fe800000000000000000000000000001');
  assert.equal(ipv6Bytes('::ffff:192.0.2.1')!.toString('hex'), '00000000000000000000ffffc0000201');
  assert.equal(ipv6Bytes('1:2:3:4:5:6:7:8')!.toString('hex'), '00010002000300040005000600070008');
  assert.equal(ipv6Bytes('192.0.2.1'), undefined);
});

test('flow key: local address, remote address, local port, remote port (big-endian)', () => {
  const k = flowKey('2001:db8::1', 8443, '2001:db8::2', 50000)!;
  assert.equal(k.length, 36);
  assert.equal(k.subarray(0, 16).toString('hex'), '20010db8000000000000000000000001');
  assert.equal(k.subarray(16, 32).toString('hex'), '20010db8000000000000000000000002');
  assert.equal(k.readUInt16BE(32), 8443);
  assert.equal(k.readUInt16BE(34), 50000);
  assert.equal(flowKey('127.0.0.1', 1, '::1', 2), undefined);
});
