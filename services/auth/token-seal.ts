/**
 * Sealing of tokens the port must keep between processes (the grant a token exchange gave at submission, which the
 * workers use): AES-256-GCM with a key from `auth.tokenSealKeyFile` (default `<dataDir>/token-seal/key`, 32 random
 * bytes made on first use, mode 0600). Every process of one port (gateway, `serve`'s workers, `cargoport worker` on
 * another host) must read the same key; Redis only ever sees the sealed form. The job id and entry name are the
 * additional authenticated data, so a sealed grant moved to another job does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CargoError } from '../../errors/cargo-error.js';

const sealError = (msg: string) => new CargoError('CARGO_ERR_OUTBOUND_TOKEN', msg);

export class TokenSealer {
  private constructor(private readonly key: Buffer) {}

  /** The key of `file` (or `<dataDir>/token-seal/key`), made on first use when it is the default one. */
  static fromConfig(auth: { tokenSealKeyFile: string }, dataDir: string): TokenSealer {
    const file = auth.tokenSealKeyFile || join(dataDir, 'token-seal', 'key');
    let raw: Buffer;
    try {
      raw = readFileSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || auth.tokenSealKeyFile) {
        throw new CargoError('CARGO_ERR_CONFIG', `auth.tokenSealKeyFile: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, { httpStatus: 500, field: 'auth.tokenSealKeyFile' });
      }
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      try {
        writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
        chmodSync(file, 0o600);
      } catch (w) {
        if ((w as NodeJS.ErrnoException).code !== 'EEXIST') throw w;
      }
      raw = readFileSync(file);
    }
    const text = raw.toString('utf8').trim();
    const key = raw.length === 32 ? raw : Buffer.from(text, 'base64');
    if (key.length !== 32) throw new CargoError('CARGO_ERR_CONFIG', `auth.tokenSealKeyFile: ${file} must hold 32 bytes (raw, or base64)`, { httpStatus: 500, field: 'auth.tokenSealKeyFile' });
    return new TokenSealer(key);
  }

  seal(plain: string, aad: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64url')}.${body.toString('base64url')}.${c.getAuthTag().toString('base64url')}`;
  }

  open(sealed: string, aad: string): string {
    const [v, iv, body, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || body === undefined || !tag) throw sealError('a sealed token grant is malformed');
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
      d.setAAD(Buffer.from(aad));
      d.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
    } catch {
      throw sealError('a sealed token grant does not open with this port\'s key (auth.tokenSealKeyFile differs between processes?)');
    }
  }
}
