/**
 * Helpers for interop tests that drive real WLCG clients: locating binaries, a hashed CA directory that
 * davix (--capath) and gfal2 (X509_CERT_DIR) accept for the self-signed test certificate, and running a tool
 * with a timeout and captured output.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { testTls } from './tls.js';

export function hasTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

let caDir: string | undefined;

/** A directory holding the test certificate plus its `openssl rehash` link (<hash>.0). */
export function testCaDir(): string {
  if (caDir) return caDir;
  const tls = testTls();
  const dir = join(tls.dir, 'ca-dir');
  mkdirSync(dir, { recursive: true });
  copyFileSync(tls.certPath, join(dir, 'cargoport-test.pem'));
  execFileSync('openssl', ['rehash', dir], { stdio: 'ignore' });
  caDir = dir;
  return dir;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      {
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, X509_CERT_DIR: testCaDir(), ...opts.env },
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}
