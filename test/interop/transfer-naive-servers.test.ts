/**
 * Real HTTP/1.x servers that close their connection after an answer, as sources of jobs through the whole port:
 * `python3 -m http.server` (HTTP/1.0), nginx with `keepalive_timeout 0` (over TLS, HTTP/1.1 only) and with
 * `keepalive_requests 2`, Apache httpd with `KeepAlive Off`, busybox httpd and `php -S`. Each serves 200 small files
 * and three large ones (one large enough to be split into ranges where the server takes ranges); a job rate limit
 * holds the bodies back while the servers close.
 *
 * Before HTTP/1.x GETs moved to Node's http client (services/transfer/http/http1-get.ts), undici's HTTP/1 parser
 * asserted `!this.paused` on such a close and the process died. Every file must now arrive byte for byte, with its
 * adler32 verified, and the port must keep answering.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasTool } from '../support/external-tools.js';
import { freePort } from '../support/free-port.js';
import { waitListening } from '../support/wait-listening.js';
import { makeRandomFiles, sameContent, tempDir, type FixtureFile } from '../support/fixtures.js';
import { startHarness, type Harness } from '../support/port-harness.js';
import { testTls } from '../support/tls.js';

const MiB = 1024 * 1024;
const tls = testTls();

interface NaiveServer {
  tool: string;
  scheme: 'http' | 'https';
  start(root: string, port: number, work: string): ChildProcess;
}

function nginx(extra: string, ssl: boolean): NaiveServer['start'] {
  return (root, port, work) => {
    writeFileSync(join(work, 'nginx.conf'), `worker_processes 1;
pid ${work}/nginx.pid;
error_log ${work}/nginx-error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  ${extra}
  server {
    listen 127.0.0.1:${port}${ssl ? ' ssl' : ''};
    ${ssl ? `ssl_certificate ${tls.certPath}; ssl_certificate_key ${tls.keyPath};` : ''}
    root ${root};
  }
}
`);
    return spawn('nginx', ['-c', join(work, 'nginx.conf'), '-p', work], { stdio: 'ignore' });
  };
}

const SERVERS: Record<string, NaiveServer> = {
  'python3 -m http.server (HTTP/1.0)': {
    tool: 'python3', scheme: 'http',
    start: (root, port) => spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', root], { stdio: 'ignore' }),
  },
  'nginx, keepalive_timeout 0, TLS without h2': { tool: 'nginx', scheme: 'https', start: nginx('keepalive_timeout 0;', true) },
  'nginx, keepalive_requests 2': { tool: 'nginx', scheme: 'http', start: nginx('keepalive_requests 2;', false) },
  'Apache httpd, KeepAlive Off': {
    tool: 'apache2', scheme: 'http',
    start: (root, port, work) => {
      const m = '/usr/lib/apache2/modules';
      writeFileSync(join(work, 'httpd.conf'), [
        `ServerRoot ${work}`, `PidFile ${work}/httpd.pid`, `ErrorLog ${work}/error.log`, 'ServerName localhost',
        `LoadModule mpm_event_module ${m}/mod_mpm_event.so`, `LoadModule authz_core_module ${m}/mod_authz_core.so`,
        `LoadModule mime_module ${m}/mod_mime.so`,
        // Apache refuses to serve as root: its workers run as www-data (the files are world-readable).
        'User www-data', 'Group www-data', 'TypesConfig /etc/mime.types', 'KeepAlive Off',
        `Listen 127.0.0.1:${port}`, `DocumentRoot ${root}`, `<Directory ${root}>`, 'Require all granted', '</Directory>',
      ].join('\n') + '\n');
      return spawn('apache2', ['-f', join(work, 'httpd.conf'), '-DFOREGROUND'], { stdio: 'ignore', env: { ...process.env, APACHE_RUN_DIR: work } });
    },
  },
  'busybox httpd': {
    tool: 'busybox', scheme: 'http',
    start: (root, port) => spawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', root], { stdio: 'ignore' }),
  },
  'php -S': {
    tool: 'php', scheme: 'http',
    start: (root, port) => spawn('php', ['-S', `127.0.0.1:${port}`, '-t', root], { stdio: 'ignore' }),
  },
};

describe('port: jobs from HTTP/1.x servers that close after each answer', () => {
  let h: Harness;
  let root: string;
  let small: FixtureFile[];
  let large: FixtureFile[];
  before(async () => {
    const work = tempDir('naive-servers');
    root = join(work, 'root');
    small = makeRandomFiles(root, 200, 1, 256 * 1024, 's');
    // The 40 MiB one is split into ranges (multi-stream over several closing connections) where ranges are served.
    large = [...makeRandomFiles(root, 2, 6 * MiB, 9 * MiB, 'L'), ...makeRandomFiles(root, 1, 40 * MiB, 40 * MiB, 'X')];
    for (const p of [dirname(work), work, root]) if (p !== '/tmp') chmodSync(p, 0o755);
    for (const f of [...small, ...large]) chmodSync(join(root, f.name), 0o644);
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  for (const [name, spec] of Object.entries(SERVERS)) {
    describe(name, { skip: hasTool(spec.tool) ? false : `${spec.tool} is not installed` }, () => {
      let server: ChildProcess;
      let origin: string;
      before(async () => {
        const port = await freePort();
        server = spec.start(root, port, tempDir('naive-server-work'));
        await waitListening(port, 15_000);
        origin = `${spec.scheme}://127.0.0.1:${port}`;
      });
      after(() => {
        server.kill('SIGTERM');
      });

      const run = async (files: FixtureFile[], params: Record<string, unknown> = {}): Promise<void> => {
        const dst = tempDir('naive-servers-dst');
        const r = await h.api<{ jobId: string }>('POST', '/api/v1/jobs', {
          files: files.map((f) => ({ source: `${origin}/${f.name}`, destination: `file://${dst}/${f.name}`, checksum: `adler32:${f.adler32}` })),
          params: { retries: 0, ...params },
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        const job = await h.waitJob(r.body.jobId, 300_000);
        if (job['state'] !== 'FINISHED') {
          const failed = await h.api('GET', `/api/v1/jobs/${r.body.jobId}/files?state=FAILED&limit=3`);
          assert.fail(`job ${String(job['state'])} ${JSON.stringify(job['counts'])}: ${JSON.stringify(failed.body).slice(0, 1500)}`);
        }
        for (const f of files) assert.ok(sameContent(join(root, f.name), join(dst, f.name)), f.name);
        assert.equal((await h.api('GET', '/healthz')).status, 200);
      };

      test('200 small files, byte for byte', async () => {
        await run(small);
      });
      test('three large files held back by a job rate limit, byte for byte', async () => {
        await run(large, { bandwidthBytesPerSec: 20 * MiB });
      });
    });
  }
});
