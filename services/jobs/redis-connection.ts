/**
 * Redis connections from one URL form: redis://, rediss:// or unix:///path/to/redis.sock (the embedded Redis).
 * BullMQ workers need `maxRetriesPerRequest: null`; request/response users (gateway) fail fast instead.
 */
import { Redis, type RedisOptions } from 'ioredis';

export function redisOptionsFromUrl(url: string, role: 'worker' | 'client'): RedisOptions {
  const base: RedisOptions = role === 'worker'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true }
    : { maxRetriesPerRequest: 3, enableReadyCheck: true };
  if (url.startsWith('unix://')) return { ...base, path: decodeURIComponent(url.slice('unix://'.length)) };
  const u = new URL(url);
  return {
    ...base,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

export function connectRedis(url: string, role: 'worker' | 'client'): Redis {
  return new Redis(redisOptionsFromUrl(url, role));
}
