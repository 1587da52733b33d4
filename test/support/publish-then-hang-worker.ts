/**
 * A worker process that dies at the worst moment for recovery: each transfer publishes its file, then the process
 * prints `published <destination>` and never records the end (the test SIGKILLs it). Configured like `cargoport
 * worker`, from CARGOPORT_* variables; the real engine moves and publishes the bytes.
 */
import { loadConfig } from '../../config/load.js';
import { createTransferEngine, engineSettingsFromConfig } from '../../services/transfer/engine.js';
import type { TransferFn } from '../../services/transfer/types.js';
import { TransferPool } from '../../workers/transfer-pool.js';

// `node --test dist/test` runs every file under test/ as a test: only a spawn with `run` starts the worker.
if (process.argv[2] === 'run') {
  const cfg = loadConfig({ env: process.env });
  const engine = createTransferEngine(engineSettingsFromConfig(cfg));
  const publishThenHang: TransferFn = async (req, ctl) => {
    await engine.transfer(req, ctl);
    process.stdout.write(`published ${req.destination}\n`);
    return new Promise(() => undefined);
  };
  const pool = new TransferPool(cfg, {
    redisUrl: cfg.redis.url, transfer: publishThenHang,
    inspectDestination: (q, signal) => engine.inspectDestination(q, signal),
  });
  await pool.start();
  process.stdout.write('ready\n');
}
