#!/usr/bin/env node
// The `cargoport` command: a thin shim over the compiled CLI, so the package's bin needs no loader.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// File transfers, part-file fsyncs and renames all go through libuv's thread pool, which Node sizes at 4;
// a worker running dozens of transfers needs more. Must be set before the pool's first use.
process.env.UV_THREADPOOL_SIZE ??= '32';

const cli = new URL('../dist/bin/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  console.error('cargoport: not built yet; run `npm run build` in ' + fileURLToPath(new URL('..', import.meta.url)));
  process.exit(1);
}
const { main } = await import(cli.href);
const code = await main(process.argv.slice(2));
// Exit now: a finished command may leave library handles (keep-alive sockets, timers) open. Writes to pipes,
// files and terminals are synchronous on Linux, so no output is lost.
process.exit(code);
