/**
 * The xrd.cfg of an XRootD 5.5 HTTP(S) peer with HTTP-TPC, as the interop tests and bench/lib/xrootd-peer.ts run it:
 * `dir` holds data/, run/, cert.pem, key.pem and the CA directory ca/; `extra` directives follow (order does not
 * matter to XRootD).
 */
export function xrootdHttpTpcConfig(dir: string, rootPort: number, httpPort: number, extra: readonly string[] = []): string {
  return [
    'all.export /',
    `oss.localroot ${dir}/data`,
    `all.adminpath ${dir}/run`,
    `all.pidpath ${dir}/run`,
    `xrd.port ${rootPort}`,
    `xrd.protocol XrdHttp:${httpPort} libXrdHttp.so`,
    `xrd.tls ${dir}/cert.pem ${dir}/key.pem`,
    `xrd.tlsca certdir ${dir}/ca`,
    'http.exthandler xrdtpc libXrdHttpTPC.so',
    `tpc.cadir ${dir}/ca`,
    'xrootd.chksum adler32',
    ...extra,
    '',
  ].join('\n');
}
