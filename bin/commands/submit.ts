/** `cargoport submit SRC DST [SRC DST …] | --manifest FILE`: POST /api/v1/jobs, prints the job id. */
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { applyOptions, filesFromPairs, intOption, parseManifest, parseVerify, parseCopyMode, parseExisting } from '../manifest.js';
import { clientOptionHelp, clientOptions, printJson, withApi, type Command } from '../command.js';
import { UsageError } from '../usage-error.js';
import { processingFromOptions, processingOptionHelp, processingOptions } from '../processing-options.js';

interface Created {
  jobId: string;
  files: number;
  state: string;
}

function readManifest(file: string): string {
  try {
    // `-` reads the manifest from standard input, for pipelines.
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read manifest ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'manifest');
  }
}

export const submitCommand: Command = {
  name: 'submit',
  args: 'SRC DST [SRC DST …] | --manifest FILE',
  summary: 'submit a transfer job; prints its id',
  options: {
    ...clientOptions,
    manifest: { type: 'string', short: 'm' },
    priority: { type: 'string' },
    retries: { type: 'string' },
    verify: { type: 'string' },
    overwrite: { type: 'boolean' },
    existing: { type: 'string' },
    streams: { type: 'string' },
    'copy-mode': { type: 'string' },
    checksum: { type: 'string' },
    ...processingOptions,
    pack: { type: 'boolean' },
    'pack-members': { type: 'string' },
    'pack-bytes': { type: 'string' },
    'pack-zstd': { type: 'string' },
  },
  optionHelp: [
    '--manifest FILE  JSON {files:[…], params:{…}} or text lines "SRC DST [ALG:VALUE]" (- = stdin)',
    '--priority N     1 (lowest) … 5 (highest)',
    '--retries N      retries per file',
    '--verify MODE    none | source | destination | both',
    '--overwrite      replace existing destinations (= --existing overwrite)',
    '--existing P     a destination that exists: skip-identical (default: same size and checksum finishes the file',
    '                 without moving it, else it fails) | fail | overwrite',
    '--streams N      HTTP/2 streams per connection',
    '--copy-mode M    remote → remote: streamed (default) | pull | push | auto (HTTP third-party copy, gfal2-style fallback)',
    '--checksum A:V   expected checksum of a single-file job, e.g. adler32:0a1b2c3d',
    ...processingOptionHelp,
    '--pack           ship small files as tar archives (to a cargoport endpoint or a local directory)',
    '--pack-members N most files per archive (default 1000)',
    '--pack-bytes B   most bytes per archive (default 268435456); larger files travel alone',
    '--pack-zstd L    zstd level of the archives (0: plain tar, the only level packed transfers run)',
    ...clientOptionHelp,
  ],
  async run(ctx) {
    const v = ctx.values;
    let sub;
    if (typeof v.manifest === 'string') {
      if (ctx.positionals.length) throw new UsageError('give either SRC DST pairs or --manifest, not both');
      sub = parseManifest(readManifest(v.manifest), v.manifest === '-' ? 'stdin' : v.manifest);
    } else {
      sub = { files: filesFromPairs(ctx.positionals) };
    }
    const body = applyOptions(sub, {
      priority: intOption(v.priority as string | undefined, '--priority', 1, 5),
      retries: intOption(v.retries as string | undefined, '--retries', 0, 100),
      verify: parseVerify(v.verify as string | undefined),
      overwrite: v.overwrite === true,
      existing: parseExisting(v.existing as string | undefined),
      streams: intOption(v.streams as string | undefined, '--streams', 1, 256),
      copyMode: parseCopyMode(v['copy-mode'] as string | undefined),
      checksum: v.checksum as string | undefined,
    });
    const processing = processingFromOptions(v, body.params?.processing);
    if (processing) body.params = { ...body.params, processing };
    const packOpts = {
      maxMembers: intOption(v['pack-members'] as string | undefined, '--pack-members', 1, 100_000),
      maxBytes: intOption(v['pack-bytes'] as string | undefined, '--pack-bytes', 1, Number.MAX_SAFE_INTEGER),
      zstdLevel: intOption(v['pack-zstd'] as string | undefined, '--pack-zstd', 0, 22),
    };
    if (v.pack === true) withPack(body as PackableBody, packOpts);
    else if (Object.values(packOpts).some((x) => x !== undefined)) throw new UsageError('--pack-members, --pack-bytes and --pack-zstd go with --pack');
    const created = await withApi(ctx, (api) => api.post<Created>('/jobs', body));
    if (v.json) printJson(ctx, created);
    else ctx.out.write(`${created.jobId}\n`);
    return 0;
  },
};

interface PackableBody {
  files: Array<{ source: string; size?: number }>;
  params?: Record<string, unknown>;
}

/**
 * `--pack`: params.processing.pack, and the size of every local source that has none declared (the scheduler bundles
 * only files whose size it knows; a packed job's bundles become its archives).
 */
function withPack(body: PackableBody, o: { maxMembers?: number; maxBytes?: number; zstdLevel?: number }): void {
  const pack: Record<string, number> = {};
  for (const [k, val] of Object.entries(o)) if (val !== undefined) pack[k] = val;
  body.params = { ...body.params, processing: { ...(body.params?.['processing'] as object | undefined), pack } };
  for (const f of body.files) {
    if (f.size !== undefined || !f.source.startsWith('file:')) continue;
    try {
      f.size = statSync(fileURLToPath(f.source)).size;
    } catch {
      /* a missing source fails its file at the port, with the port's error */
    }
  }
}
