/**
 * Directory bookkeeping for atomic publish with many small files:
 *  - `ensureDirectory` remembers directories it created or found, so a stream of files into one directory
 *    costs one mkdir, not one per file (a removed directory is recreated: callers retry on ENOENT);
 *  - `syncDirectory` group-commits directory fsyncs: files renamed while a sync of their directory is running
 *    share the next one, so 32 concurrent publishes into one directory cost ~2 fsyncs, not 32 — and each caller
 *    still returns only after a sync that started after its rename.
 */
import { constants as fsc } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';

const knownDirectories = new Set<string>();
const KNOWN_DIRECTORIES_MAX = 10_000;

export async function ensureDirectory(dir: string, force = false): Promise<void> {
  if (!force && knownDirectories.has(dir)) return;
  await mkdir(dir, { recursive: true });
  if (knownDirectories.size >= KNOWN_DIRECTORIES_MAX) knownDirectories.clear();
  knownDirectories.add(dir);
}

export function forgetDirectory(dir: string): void {
  knownDirectories.delete(dir);
}

interface DirSyncState {
  running: Promise<void> | null;
  next: Promise<void> | null;
}

const syncs = new Map<string, DirSyncState>();

async function fsyncDirectory(dir: string): Promise<void> {
  // Not every file system supports directory fsync: best effort.
  const h = await open(dir, fsc.O_RDONLY).catch(() => undefined);
  if (!h) return;
  try {
    await h.sync();
  } catch { /* best effort */ } finally {
    await h.close().catch(() => undefined);
  }
}

export function syncDirectory(dir: string): Promise<void> {
  let s = syncs.get(dir);
  if (!s) {
    s = { running: null, next: null };
    syncs.set(dir, s);
  }
  const state = s;
  const start = (): Promise<void> => {
    const p = fsyncDirectory(dir).finally(() => {
      state.running = null;
      if (state.next) return;
      syncs.delete(dir);
    });
    state.running = p;
    return p;
  };
  if (!state.running) return start();
  // A sync is running but may have started before our rename: join (or create) the one after it.
  state.next ??= state.running.then(() => {
    state.next = null;
    return start();
  });
  return state.next;
}
