// SPDX-License-Identifier: GPL-2.0
/*
 * cargoport's scitags marker for ACCEPTED connections (services/marking/ebpf-marker.ts). Linux lets a socket
 * choose its IPv6 flow label only at connect (specs/scitags.md §6.4), so the connections the port accepts (the
 * storage endpoint serving downloads, the TPC passive side, uploads into it) are labelled here instead: a tc
 * egress (clsact) classifier that looks the packet's TCP 5-tuple up in a hash map the port fills at flow start
 * and empties at flow end, and writes the map's 20-bit label into the IPv6 header. TCP checksums do not cover
 * the flow label (RFC 8200 pseudo-header), so nothing else changes. A GSO super-packet is labelled once and its
 * segments inherit the header.
 *
 * It returns TC_ACT_UNSPEC (never OK): the next filter on the hook still runs, so several processes (a gateway
 * and its workers, parallel test runs) can each attach their own copy with their own map.
 *
 * Built by native/build.mjs when clang is present: clang -O2 -g -target bpf (the -g gives the BTF map layout).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Seen from the port: src is the local end, as on every packet this hook sees. Ports in network order. */
struct flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, __u32); /* the 20-bit flow label, host order */
} cargoport_flows SEC(".maps");

SEC("tc")
int cargoport_flowlabel(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	__be16 *ports;
	struct flow_key key;
	__u32 *label, *word;

	if (skb->protocol != bpf_htons(ETH_P_IPV6))
		return TC_ACT_UNSPEC;
	if ((void *)(eth + 1) > end)
		return TC_ACT_UNSPEC;
	ip6 = (void *)(eth + 1);
	/* TCP right after the fixed header: the port's own sockets send no extension headers. */
	if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
		return TC_ACT_UNSPEC;
	ports = (void *)(ip6 + 1);
	if ((void *)(ports + 2) > end)
		return TC_ACT_UNSPEC;
	__builtin_memcpy(key.saddr, &ip6->saddr, 16);
	__builtin_memcpy(key.daddr, &ip6->daddr, 16);
	key.sport = ports[0];
	key.dport = ports[1];
	label = bpf_map_lookup_elem(&cargoport_flows, &key);
	if (!label)
		return TC_ACT_UNSPEC;
	/* version (4) | traffic class (8) | flow label (20): keep the first 12 bits. */
	word = (__u32 *)ip6;
	*word = bpf_htonl((bpf_ntohl(*word) & 0xfff00000) | (*label & 0x000fffff));
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
