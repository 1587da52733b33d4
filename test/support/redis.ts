/** Test Redis: the local server at 127.0.0.1:6379 (CI starts one), with a unique {prefix} per test. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const TEST_REDIS_URL = process.env['CARGOPORT_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

export function uniquePrefix(): string {
  return `{cptest-${randomBytes(6).toString('hex')}}`;
}

/** Deletes every key of a test prefix. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}
