import type { AnyFastifyInstance, TapeRestOptions } from './storage-options.js';
export async function registerTapeRest(_app: AnyFastifyInstance, _opts: TapeRestOptions): Promise<void> {}
