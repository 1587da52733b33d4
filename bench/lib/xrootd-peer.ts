/**
 * An XRootD 5.x HTTPS endpoint with HTTP-TPC (XrdHttp + XrdHttpTPC) for benchmarks, configured as the interop test
 * (test/interop/storage-xrootd.test.ts) does: the test certificate, a hashed CA dir for its TPC client, adler32.
 * As root it runs as the `xrootd` account (XRootD refuses root). `dataDir` is its exported namespace root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/support/free-port.js';
import { testTls } from '../../test/support/tls.js';
import { xrootdHttpTpcConfig } from '../../test/support/xrootd-config.js';

export interface XrootdPeer {
  port: number;
  dataDir: string;
  /** https://localhost:<port><path> */
  url(path: string): string;
  pid: number;
  stop(): void;
}

export function xrootdAccount(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'xrootd']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'xrootd']).toString().trim());
  return { uid, gid };
}

export async function startXrootd(dir: string): Promise<XrootdPeer> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  for (const d of ['data', 'ca', 'run']) mkdirSync(join(dir, d), { recursive: true });
  const tls = testTls();
  copyFileSync(tls.certPath, join(dir, 'cert.pem'));
  copyFileSync(tls.keyPath, join(dir, 'key.pem'));
  copyFileSync(tls.certPath, join(dir, 'ca', 'cargoport-test.pem'));
  execFileSync('openssl', ['rehash', join(dir, 'ca')], { stdio: 'ignore' });
  chmodSync(join(dir, 'key.pem'), 0o600);
  const port = await freePort();
  const rootPort = await freePort();
  writeFileSync(join(dir, 'xrd.cfg'), xrootdHttpTpcConfig(dir, rootPort, port));
  const account = xrootdAccount();
  if (account) execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, dir]);
  const cmd = `exec xrootd -c ${dir}/xrd.cfg -l ${dir}/xrd.log`;
  const child = account
    ? spawn('su', ['-s', '/bin/sh', 'xrootd', '-c', cmd], { stdio: 'ignore', detached: true })
    : spawn('sh', ['-c', cmd], { stdio: 'ignore', detached: true });
  child.unref();
  const log = (): string => (existsSync(join(dir, 'xrd.log')) ? readFileSync(join(dir, 'xrd.log'), 'utf8') : '');
  for (let i = 0; i < 400 && !new RegExp(`:${port} initialization (completed|failed)`).test(log()); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!new RegExp(`:${port} initialization completed`).test(log())) throw new Error(`xrootd did not start: ${log().slice(-500)}`);
  const pidFile = [join(dir, 'run', 'xrootd.pid'), join(dir, 'run', 'anon', 'xrootd.pid')].find(existsSync);
  const pid = pidFile ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
  return {
    port, dataDir: join(dir, 'data'), pid,
    url: (p) => `https://localhost:${port}${p}`,
    stop: () => { try { if (pid) process.kill(pid, 'SIGTERM'); } catch { /* gone */ } },
  };
}
