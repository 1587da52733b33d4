/**
 * `cargoport token --scope 'storage.read:/ storage.modify:/' [--admin] [--sub NAME] [--lifetime 1h] [--groups /g,…]`:
 * prints a WLCG token signed by the port's built-in development issuer (services/auth/dev-issuer.ts), for
 * newcomers and tests on one machine. It reads the issuer's key from <dataDir>/dev-issuer (making it on first use),
 * so it works only where that directory is readable, and only when the configuration enables the dev issuer
 * (auth.devIssuer, loopback only). Use it as `export BEARER_TOKEN=$(cargoport token --scope …)`.
 */
import { userInfo } from 'node:os';
import { DEV_AUDIENCE, devIssuerEnabled } from '../../gateway/auth.js';
import { DEV_ADMIN_SCOPE, devIssuerKey, mintDevToken } from '../../services/auth/dev-issuer.js';
import { expectPositionals, loadConfigFor, type Command } from '../command.js';
import { UsageError } from '../usage-error.js';

function seconds(v: string): number {
  const m = /^([0-9]+)\s*([smhd]?)$/.exec(v.trim());
  if (!m) throw new UsageError(`--lifetime ${JSON.stringify(v)} is not a duration such as 3600, 90m, 1h`, 'lifetime');
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!;
}

export const tokenCommand: Command = {
  name: 'token',
  args: '--scope SCOPES',
  summary: 'print a token from the built-in development issuer (auth.devIssuer; loopback only)',
  options: {
    scope: { type: 'string' },
    admin: { type: 'boolean' },
    sub: { type: 'string' },
    lifetime: { type: 'string' },
    groups: { type: 'string' },
  },
  optionHelp: [
    '--scope SCOPES     space-separated WLCG scopes, e.g. \'storage.read:/ storage.create:/incoming\' (default storage.read:/)',
    `--admin            add the ${DEV_ADMIN_SCOPE} scope (admin operations, limits, every job)`,
    '--sub NAME         subject (default: your user name); job owner is dev:<sub>',
    '--lifetime T       validity: seconds or 90m, 1h, 1d (default 1h; auth.maxTokenLifetimeSec still applies)',
    '--groups /a,/a/b   wlcg.groups to include (used when no storage scope is given)',
  ],
  async run(ctx) {
    expectPositionals(ctx, 0, 0, '');
    const cfg = loadConfigFor(ctx);
    if (!devIssuerEnabled(cfg)) throw new UsageError('the development issuer is off (auth.devIssuer; it runs only with gateway.host on loopback)', 'auth.devIssuer');
    devIssuerKey(cfg.dataDir);
    const scopes = ((ctx.values.scope as string | undefined) ?? 'storage.read:/').split(/\s+/).filter(Boolean);
    if (ctx.values.admin) scopes.push(DEV_ADMIN_SCOPE);
    const groups = ((ctx.values.groups as string | undefined) ?? '').split(',').map((g) => g.trim()).filter(Boolean);
    const token = mintDevToken(cfg.dataDir, {
      scope: scopes.join(' '),
      subject: (ctx.values.sub as string | undefined) ?? userInfo().username,
      audience: DEV_AUDIENCE,
      lifetimeSec: seconds((ctx.values.lifetime as string | undefined) ?? '3600'),
      groups,
    });
    ctx.out.write(token + '\n');
    return 0;
  },
};
