/**
 * The engine's HTTP/2 receive path (our own framing, h2-bulk) and multi-stream ranges against real HTTP/2 servers
 * other than nginx and node:http2: Apache httpd (mod_http2; also without ETags, when every If-Range is a date), h2o, Caddy (Go's net/http2) and nghttpd (nghttp2), the last one once with padded frames and once
 * with small windows, two concurrent streams and no Range support. Each serves a small file and a large odd-sized
 * one; pulls with one stream and with 1 connection × 4 streams must arrive byte for byte, verified against the
 * file's adler32, over h2, split into ranges where the server allows it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { createHash } from 'node:crypto';
import { PauseGate } from '../../services/throttle/pause-gate.js';
import { createTransferEngine } from '../../services/transfer/engine.js';
import { hasTool } from '../support/external-tools.js';
import { freePort } from '../support/free-port.js';
import { waitListening } from '../support/wait-listening.js';
import { makeRandomFiles, tempDir, type FixtureFile } from '../support/fixtures.js';
import { testTls } from '../support/tls.js';

/** This process's transfer engine (one object, as the shells build it). */
const engine = createTransferEngine();

const MiB = 1024 * 1024;
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

interface ServerSpec {
  tool: string;
  /** Serves byte ranges (multi-stream pulls split the file). */
  ranges: boolean;
  /** Sends a weak ETag for a file modified within the last second (Apache). */
  weakWhenFresh?: boolean;
  start(root: string, port: number, work: string): ChildProcess;
}

/** Apache httpd with mod_http2 serving `root`; `etags: false` leaves only Last-Modified as a validator. */
function startApache(root: string, port: number, work: string, etags: boolean): ChildProcess {
  const m = '/usr/lib/apache2/modules';
  writeFileSync(join(work, 'httpd.conf'), [
    `ServerRoot ${work}`, `PidFile ${work}/httpd.pid`, `ErrorLog ${work}/error.log`, 'ServerName localhost',
    `LoadModule mpm_event_module ${m}/mod_mpm_event.so`, `LoadModule authz_core_module ${m}/mod_authz_core.so`,
    `LoadModule mime_module ${m}/mod_mime.so`, `LoadModule ssl_module ${m}/mod_ssl.so`, `LoadModule http2_module ${m}/mod_http2.so`,
    // Apache refuses to serve as root: its workers run as www-data, so the files must be world-readable.
    'User www-data', 'Group www-data', 'TypesConfig /etc/mime.types', ...(etags ? [] : ['FileETag None']),
    `Listen 127.0.0.1:${port} https`, 'Protocols h2 http/1.1', `DocumentRoot ${root}`,
    `<VirtualHost *:${port}>`, 'SSLEngine on', `SSLCertificateFile ${tls.certPath}`, `SSLCertificateKeyFile ${tls.keyPath}`, '</VirtualHost>',
    `<Directory ${root}>`, 'Require all granted', '</Directory>',
  ].join('\n') + '\n');
  return spawn('apache2', ['-f', join(work, 'httpd.conf'), '-DFOREGROUND'], { stdio: 'ignore', env: { ...process.env, APACHE_RUN_DIR: work } });
}

const tls = testTls();
const SERVERS: Record<string, ServerSpec> = {
  'Apache httpd (mod_http2)': {
    tool: 'apache2', ranges: true, weakWhenFresh: true,
    start: (root, port, work) => startApache(root, port, work, true),
  },
  'Apache httpd without ETags (If-Range by date)': {
    tool: 'apache2', ranges: true,
    start: (root, port, work) => startApache(root, port, work, false),
  },
  h2o: {
    tool: 'h2o', ranges: true,
    start: (root, port, work) => {
      writeFileSync(join(work, 'h2o.conf'), `listen:\n  port: ${port}\n  host: 127.0.0.1\n  ssl:\n    certificate-file: ${tls.certPath}\n    key-file: ${tls.keyPath}\nhosts:\n  default:\n    paths:\n      /:\n        file.dir: ${root}\n`);
      return spawn('h2o', ['-c', join(work, 'h2o.conf')], { stdio: 'ignore' });
    },
  },
  'Caddy (Go net/http2)': {
    tool: 'caddy', ranges: true,
    start: (root, port, work) => {
      writeFileSync(join(work, 'Caddyfile'), `{\n admin off\n auto_https off\n}\nhttps://127.0.0.1:${port} {\n tls ${tls.certPath} ${tls.keyPath}\n root * ${root}\n file_server\n}\n`);
      return spawn('caddy', ['run', '--config', join(work, 'Caddyfile'), '--adapter', 'caddyfile'], {
        stdio: 'ignore', env: { ...process.env, HOME: work, XDG_DATA_HOME: work, XDG_CONFIG_HOME: work },
      });
    },
  },
  'nghttpd, every frame padded': {
    tool: 'nghttpd', ranges: false,
    start: (root, port) => spawn('nghttpd', ['--htdocs', root, '--padding=255', String(port), tls.keyPath, tls.certPath], { stdio: 'ignore' }),
  },
  'nghttpd, 16 KiB stream window, 64 KiB connection window, 2 concurrent streams': {
    tool: 'nghttpd', ranges: false,
    start: (root, port) => spawn('nghttpd', ['--htdocs', root, '--max-concurrent-streams=2', '-w', '14', '-W', '16', String(port), tls.keyPath, tls.certPath], { stdio: 'ignore' }),
  },
};

for (const [name, spec] of Object.entries(SERVERS)) {
  describe(`pulls from ${name}`, { skip: hasTool(spec.tool) ? false : `${spec.tool} is not installed` }, () => {
    let server: ChildProcess;
    let port: number;
    let files: FixtureFile[];
    let root: string;
    before(async () => {
      const work = tempDir('h2-interop');
      root = join(work, 'root');
      files = [...makeRandomFiles(root, 1, 70_000, 70_000, 'small'), ...makeRandomFiles(root, 1, 24 * MiB + 12_345, 24 * MiB + 12_345, 'big')];
      for (const p of [dirname(work), work, root, ...files.map((f) => join(root, f.name))]) if (p !== '/tmp') chmodSync(p, 0o755);
      // Written an hour ago: a file modified within the last second is not split (see the test below).
      const hourAgo = new Date(Date.now() - 3600_000);
      for (const f of files) utimesSync(join(root, f.name), hourAgo, hourAgo);
      port = await freePort();
      server = spec.start(root, port, work);
      await waitListening(port);
      await engine.reconfigure({ ca: tls.cert, multiStream: { enabled: true, minFileBytes: 8 * MiB, rangeBytes: 4 * MiB } });
    });
    after(async () => {
      await engine.close();
      server.kill('SIGTERM');
    });

    if (spec.weakWhenFresh) {
      test('a file written within the last second (weak ETag) is pulled as one stream, byte for byte', async () => {
        const [f] = makeRandomFiles(root, 1, 24 * MiB, 24 * MiB, 'fresh');
        chmodSync(join(root, f!.name), 0o644);
        const out = join(tempDir('h2-interop-fresh'), f!.name);
        const r = await engine.transfer({
          source: `https://127.0.0.1:${port}/${f!.name}`, destination: pathToFileURL(out).href, overwrite: false,
          verify: 'none', checksum: { alg: 'adler32', value: f!.adler32 }, connections: 1, streams: 4,
        }, { signal: new AbortController().signal, gate: new PauseGate() });
        assert.equal(r.streams * r.connections, 1, 'not split: its ranges could not be tied together');
        assert.equal(sha(out), sha(join(root, f!.name)));
      });
    }

    for (const [connections, streams] of [[1, 1], [1, 4]] as const) {
      test(`${connections} × ${streams}: both files byte for byte, adler32 verified, over h2`, async () => {
        const dst = tempDir('h2-interop-dst');
        for (const f of files) {
          const out = join(dst, f.name);
          const r = await engine.transfer({
            source: `https://127.0.0.1:${port}/${f.name}`, destination: pathToFileURL(out).href, overwrite: false,
            verify: 'none', checksum: { alg: 'adler32', value: f.adler32 }, connections, streams,
          }, { signal: new AbortController().signal, gate: new PauseGate() });
          assert.equal(r.protocol, 'h2', f.name);
          assert.equal(r.checksum?.value, f.adler32, f.name);
          assert.equal(sha(out), sha(join(root, f.name)), f.name);
          const split = f.size > 8 * MiB && streams > 1 && spec.ranges;
          assert.equal(r.streams * r.connections, split ? 4 : 1, `${f.name}: streams used`);
        }
      });
    }
  });
}
