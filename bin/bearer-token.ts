/**
 * Finds the bearer token to send, following the WLCG Bearer Token Discovery order: `--token`, then
 * $BEARER_TOKEN, $BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u<uid>, /tmp/bt_u<uid>. No token is fine: the port
 * then decides what an anonymous caller may do.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

function readToken(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function discoverBearerToken(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit.trim();
  if (env.BEARER_TOKEN?.trim()) return env.BEARER_TOKEN.trim();
  if (env.BEARER_TOKEN_FILE) return readToken(env.BEARER_TOKEN_FILE);
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  if (env.XDG_RUNTIME_DIR) {
    const t = readToken(join(env.XDG_RUNTIME_DIR, `bt_u${uid}`));
    if (t) return t;
  }
  return readToken(`/tmp/bt_u${uid}`);
}
