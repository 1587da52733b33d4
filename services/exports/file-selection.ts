/**
 * What one run of an export selects: the regular files below a local directory (a namespace path mapped through
 * auth.localAreas, or a host directory), optionally in a dated sub-directory, matching a glob, modified since the
 * last successful run; or the entries of a manifest. Paths are relative to the selection's root and keep their
 * sub-directories, so destinations can reproduce the tree.
 */
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { minimatch } from 'minimatch';
import { renderTemplate } from './date-template.js';
import type { ExportSelection } from './export-definition.js';
import { ExportRunError, InvalidExportError } from './export-errors.js';

export interface SelectedFile {
  /** Relative path (with `/`), the ledger's key and the destination's {path}. */
  path: string;
  source: string;
  size?: number;
  mtimeMs?: number;
  /** ALG:VALUE given by a manifest. */
  checksum?: string;
}

export interface LocalAreaMap {
  dir: string;
  path: string;
}

export interface SelectionContext {
  name: string;
  /** The run's scheduled time (virtual ms). */
  at: number;
  timeZone: string;
  /** Only files modified at or after this time (ms), when the window asks for it. */
  since?: number;
  localAreas: readonly LocalAreaMap[];
  /** Fetches a manifest (the caller applies the outbound address policy). */
  fetchText(url: string): Promise<string>;
}

export interface Selection {
  files: SelectedFile[];
  /** Why nothing was selected, when that has a reason worth telling (a dated directory not there yet). */
  note?: string;
}

const covers = (prefix: string, p: string) => prefix === '/' || p === prefix || p.startsWith(prefix + '/');

/** The host directory a selection's `path` or `dir` stands for; throws InvalidExportError when no local area holds it. */
export function selectionRoot(sel: ExportSelection, areas: readonly LocalAreaMap[], anyDir: boolean): string | undefined {
  if (sel.path !== undefined) {
    let best: LocalAreaMap | undefined;
    for (const a of areas) if (covers(a.path, sel.path) && (!best || a.path.length > best.path.length)) best = a;
    if (!best) throw new InvalidExportError(`selection.path ${sel.path} is in no local area (auth.localAreas)`, 'selection.path');
    const rest = best.path === '/' ? sel.path : sel.path.slice(best.path.length);
    return (best.dir + rest).replace(/\/+$/, '') || '/';
  }
  if (sel.dir !== undefined) {
    if (!anyDir && !areas.some((a) => covers(a.dir, sel.dir!))) throw new InvalidExportError(`selection.dir ${sel.dir} is in no local area (auth.localAreas)`, 'selection.dir');
    return sel.dir.replace(/\/+$/, '') || '/';
  }
  return undefined;
}

async function walk(dir: string, rel: string, out: Array<{ rel: string; abs: string }>): Promise<void> {
  const d = await opendir(dir);
  for await (const e of d) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(join(dir, e.name), r, out);
    else if (e.isFile()) out.push({ rel: r, abs: join(dir, e.name) });
    // Symbolic links, sockets and devices are not exported.
  }
}

export async function selectFiles(sel: ExportSelection, root: string | undefined, ctx: SelectionContext): Promise<Selection> {
  if (sel.manifestUrl !== undefined) return { files: await fromManifest(renderTemplate(sel.manifestUrl, ctx), ctx) };
  if (root === undefined) throw new ExportRunError('selection has no root');
  try {
    const st = await stat(root);
    if (!st.isDirectory()) throw new ExportRunError(`selection root ${root} is not a directory`);
  } catch (e) {
    if (e instanceof ExportRunError) throw e;
    throw new ExportRunError(`selection root ${root} cannot be read: ${(e as Error).message}`, e);
  }
  let base = root;
  let prefix = '';
  if (sel.subdir !== undefined) {
    prefix = renderTemplate(sel.subdir, ctx).replace(/\/+$/, '');
    base = join(root, prefix);
    const st = await stat(base).catch(() => undefined);
    if (!st?.isDirectory()) return { files: [], note: `${prefix} does not exist (yet) below ${root}` };
  }
  const found: Array<{ rel: string; abs: string }> = [];
  await walk(base, prefix, found);
  const glob = sel.glob ?? '**';
  const since = (sel.window ?? 'since-last-success') === 'since-last-success' ? ctx.since : undefined;
  const files: SelectedFile[] = [];
  for (const f of found) {
    // The glob is relative to the dated sub-directory when there is one (its name changes every night).
    if (!minimatch(prefix ? f.rel.slice(prefix.length + 1) : f.rel, glob, { dot: false })) continue;
    const st = await stat(f.abs).catch(() => undefined);
    if (!st?.isFile()) continue;
    if (since !== undefined && st.mtimeMs < since) continue;
    files.push({ path: f.rel, source: pathToFileURL(f.abs).href, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
  }
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files };
}

function cleanRelative(p: string, where: string): string {
  const rel = p.split('/').filter((s) => s !== '' && s !== '.');
  if (rel.length === 0 || rel.includes('..')) throw new ExportRunError(`${where}: relative path ${JSON.stringify(p.slice(0, 200))} is empty or contains ".."`);
  return rel.join('/');
}

async function fromManifest(url: string, ctx: SelectionContext): Promise<SelectedFile[]> {
  let text: string;
  try {
    text = await ctx.fetchText(url);
  } catch (e) {
    throw new ExportRunError(`manifest ${url} cannot be fetched: ${(e as Error).message}`, e);
  }
  const files: SelectedFile[] = [];
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new ExportRunError(`manifest ${url} is not valid JSON: ${(e as Error).message}`, e);
    }
    const list = Array.isArray(doc) ? doc : (doc as { files?: unknown }).files;
    if (!Array.isArray(list)) throw new ExportRunError(`manifest ${url}: expected {"files": [...]}`);
    list.forEach((raw, i) => {
      const f = raw as Record<string, unknown>;
      if (typeof f?.['source'] !== 'string') throw new ExportRunError(`manifest ${url}: files[${i}].source must be a string`);
      const source = f['source'];
      const path = cleanRelative(typeof f['path'] === 'string' ? f['path'] : new URL(source).pathname.split('/').pop() ?? '', `manifest files[${i}]`);
      const out: SelectedFile = { path, source };
      if (typeof f['size'] === 'number') out.size = f['size'];
      if (typeof f['checksum'] === 'string') out.checksum = f['checksum'];
      files.push(out);
    });
  } else {
    text.split('\n').forEach((line, i) => {
      const l = line.trim();
      if (!l || l.startsWith('#')) return;
      const [source, path] = l.split(/\s+/) as [string, string | undefined];
      files.push({ source, path: cleanRelative(path ?? new URL(source).pathname.split('/').pop() ?? '', `manifest line ${i + 1}`) });
    });
  }
  return files;
}
