/**
 * lighttpd with mod_webdav as a plain WebDAV destination for tests: writable, over plain HTTP or TLS (the test
 * certificate), on 127.0.0.1:`port`, serving `root`. Like most plain WebDAV servers it does not create missing
 * parent collections: a PUT below one answers 409 Conflict, MKCOL of a collection whose parent is missing 409, of one
 * that exists 405. Every request is logged (method, path, status) for the tests to read back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { waitListening } from './wait-listening.js';
import { tempDir } from './fixtures.js';
import { testTls } from './tls.js';

export interface LoggedRequest {
  method: string;
  path: string;
  status: number;
}

export interface LighttpdWebdav {
  origin: string;
  root: string;
  /** Requests answered so far, in order (lighttpd buffers its access log: SIGHUP makes it write it out). */
  requests(): Promise<LoggedRequest[]>;
  close(): Promise<void>;
}

/** Whether lighttpd and its mod_webdav (Debian: lighttpd-mod-webdav) are installed. */
export function hasLighttpdWebdav(): boolean {
  return existsSync('/usr/sbin/lighttpd') && existsSync('/usr/lib/lighttpd/mod_webdav.so') &&
    existsSync('/usr/lib/lighttpd/mod_openssl.so');
}

export async function startLighttpdWebdav(o: { tls?: boolean } = {}): Promise<LighttpdWebdav> {
  const work = tempDir('lighttpd');
  const root = join(work, 'root');
  const log = join(work, 'access.log');
  const port = await freePort();
  const tls = testTls();
  const pem = join(work, 'server.pem');
  writeFileSync(pem, `${readFileSync(tls.keyPath, 'utf8')}\n${readFileSync(tls.certPath, 'utf8')}`);
  writeFileSync(join(work, 'lighttpd.conf'), [
    'server.modules = ("mod_webdav", "mod_accesslog"' + (o.tls ? ', "mod_openssl")' : ')'),
    `server.document-root = "${root}"`,
    `server.bind = "127.0.0.1"`,
    `server.port = ${port}`,
    `server.errorlog = "${join(work, 'error.log')}"`,
    `server.upload-dirs = ("${work}")`,
    `accesslog.filename = "${log}"`,
    'accesslog.format = "%m %U %>s"',
    'webdav.activate = "enable"',
    'webdav.is-readonly = "disable"',
    ...(o.tls ? ['ssl.engine = "enable"', `ssl.pemfile = "${pem}"`] : []),
  ].join('\n') + '\n');
  mkdirSync(root, { recursive: true });
  const child: ChildProcess = spawn('lighttpd', ['-D', '-f', join(work, 'lighttpd.conf')], { stdio: 'ignore' });
  const exited = new Promise<never>((_r, reject) => child.once('exit', (code) => reject(new Error(`lighttpd exited (${code}); see ${work}/error.log`))));
  exited.catch(() => undefined);
  await Promise.race([waitListening(port), exited]);
  return {
    origin: `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    root,
    async requests() {
      child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 200));
      return (existsSync(log) ? readFileSync(log, 'utf8') : '').split('\n').filter(Boolean).map((line) => {
        const [method = '', path = '', status = '0'] = line.split(' ');
        return { method, path, status: Number(status) };
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
