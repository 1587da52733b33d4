/**
 * The shape every `cargoport` subcommand has, and the context the dispatcher hands it. Options are declared
 * for node:util parseArgs (all as strings or booleans; commands convert and check values themselves so the
 * messages can name the option).
 */
import type { ParseArgsConfig } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createApiClient, type ApiClient } from './api-client.js';
import { discoverBearerToken } from './bearer-token.js';
import { generatedCertPath } from './self-signed-cert.js';
import { UsageError } from './usage-error.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
export type OptionValues = Record<string, string | boolean | undefined>;

export interface CommandContext {
  values: OptionValues;
  positionals: string[];
  /** --config FILE, if given */
  configFile?: string;
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export interface Command {
  name: string;
  /** e.g. `SRC DST [SRC DST …] | --manifest FILE` */
  args: string;
  summary: string;
  options: OptionSpecs;
  /** Lines describing the options, for `cargoport help CMD`. */
  optionHelp: string[];
  run(ctx: CommandContext): Promise<number>;
}

/** Options shared by every command that talks to the REST API. */
export const clientOptions: OptionSpecs = {
  url: { type: 'string' },
  insecure: { type: 'boolean' },
  token: { type: 'string' },
  json: { type: 'boolean' },
};
export const clientOptionHelp = [
  '--url URL        gateway base URL (default https://localhost:<gateway.port>)',
  '--insecure       do not verify the gateway\'s TLS certificate',
  '--token TOKEN    bearer token (default: WLCG discovery: $BEARER_TOKEN, $BEARER_TOKEN_FILE, bt_u<uid>)',
  '--json           print the API\'s JSON instead of text',
];

export function loadConfigFor(ctx: CommandContext): Config {
  return loadConfig({ file: ctx.configFile });
}

/** An API client set up from the config (port, trusted certificate) and the client options. */
export function apiClientFor(ctx: CommandContext): ApiClient {
  const cfg = loadConfigFor(ctx);
  let url = ctx.values.url as string | undefined;
  if (!url) {
    if (cfg.gateway.port === 0) throw new UsageError('gateway.port is 0 (a free port chosen at start): pass --url with the URL `cargoport serve` printed', 'url');
    url = `https://localhost:${cfg.gateway.port}`;
  }
  return createApiClient({
    url,
    caFile: cfg.gateway.tlsCert || generatedCertPath(cfg.dataDir),
    insecure: ctx.values.insecure === true,
    token: discoverBearerToken(ctx.values.token as string | undefined),
  });
}

/** Runs `fn` with an API client and always closes it (an open keep-alive socket would hold the process). */
export async function withApi<T>(ctx: CommandContext, fn: (api: ApiClient) => Promise<T>): Promise<T> {
  const api = apiClientFor(ctx);
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.out.write(JSON.stringify(value, null, 2) + '\n');
}

export function expectPositionals(ctx: CommandContext, min: number, max: number, what: string): void {
  const n = ctx.positionals.length;
  if (n < min) throw new UsageError(`missing ${what}`);
  if (n > max) throw new UsageError(`unexpected argument "${ctx.positionals[max]}"`);
}
