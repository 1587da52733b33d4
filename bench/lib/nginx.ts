/**
 * nginx as the peer server of the TypeScript benchmarks: 2 workers, HTTP/2 + TLS (the test certificate; HTTP/1.1 only
 * with `http2: false`), serving `root` on 127.0.0.1:`port` (and over plain HTTP on `plainPort`), configured and run
 * from `dir` (pid, logs). `stop()` ends it.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { testTls } from '../../test/support/tls.js';

const run = promisify(execFile);

export interface BenchNginx {
  stop(): Promise<void>;
}

export async function startNginx(o: {
  dir: string; root: string; port: number;
  /** Directory listings (rclone's http backend lists through them). */
  autoindex?: boolean;
  /** sendfile off: the TLS path then copies through user space, as for every TLS client. */
  sendfile?: boolean;
  workerConnections?: number;
  /** Also serve `root` over plain HTTP/1.1 on this port (no TLS). */
  plainPort?: number;
  /** Also listen on [::1]:`port` (IPv6 loopback: flow labels, bench/marking-cost.ts). */
  ipv6?: boolean;
  /** false: the TLS listener offers HTTP/1.1 only. */
  http2?: boolean;
  /** nginx `limit_rate` per response (e.g. `4m` = 4 MiB/s): a source of a steady, known pace. */
  limitRate?: string;
}): Promise<BenchNginx> {
  const tls = testTls();
  writeFileSync(`${o.dir}/nginx.conf`, `worker_processes 2;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/nginx-error.log warn;
daemon on;
events { worker_connections ${o.workerConnections ?? 4096}; }
http {
  access_log off;
  ${o.sendfile === false ? 'sendfile off;' : ''}
  server {
    listen 127.0.0.1:${o.port} ssl${o.http2 === false ? '' : ' http2'};
    ${o.plainPort ? `listen 127.0.0.1:${o.plainPort};` : ''}
    ${o.ipv6 ? `listen [::1]:${o.port} ssl${o.http2 === false ? '' : ' http2'};` : ''}
    ssl_certificate ${tls.certPath};
    ssl_certificate_key ${tls.keyPath};
    root ${o.root};
    location / { ${o.autoindex ? 'autoindex on;' : ''} ${o.limitRate ? `limit_rate ${o.limitRate};` : ''} }
  }
}
`);
  await run('nginx', ['-c', `${o.dir}/nginx.conf`, '-p', o.dir]);
  return {
    async stop() {
      await run('sh', ['-c', `kill $(cat ${o.dir}/nginx.pid)`]).catch(() => undefined);
    },
  };
}
