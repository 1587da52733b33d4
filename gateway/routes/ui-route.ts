/**
 * The operator's dashboard at `/ui`: static files from the repository (gateway/ui: one HTML page, one ES module,
 * one stylesheet; no build step), read once at start-up and served with a Content-Security-Policy that allows
 * no other host. The page works through the REST API and /events with the same rights as the CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { CargoError } from '../../errors/cargo-error.js';
import { POLLING_LOG_LEVEL } from '../context.js';

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/** gateway/ui in the repository: beside this file in the sources, three levels up from dist/gateway/routes. */
function uiDir(): string {
  for (const rel of ['../ui/', '../../../gateway/ui/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir + 'index.html')) return dir;
  }
  // An installation without the repository's gateway/ui folder: the gateway must not start half-built.
  throw new CargoError('CARGO_ERR_INTERNAL', 'gateway/ui/index.html not found beside the gateway (the dashboard\'s files are part of the installation)');
}

const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

export async function uiRoute(app: FastifyInstance): Promise<void> {
  const dir = uiDir();
  const files = new Map(Object.entries(ASSETS).map(([name, type]) => [name, { type, body: readFileSync(dir + name) }]));
  const send = (name: string) => {
    const f = files.get(name)!;
    return (_req: unknown, reply: import('fastify').FastifyReply) =>
      reply.type(f.type).header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache').send(f.body);
  };
  app.get('/ui', { logLevel: POLLING_LOG_LEVEL, schema: { summary: 'Operator dashboard (HTML)' } }, send('index.html'));
  app.get('/ui/', { logLevel: POLLING_LOG_LEVEL }, send('index.html'));
  for (const name of files.keys()) if (name !== 'index.html') app.get(`/ui/${name}`, { logLevel: POLLING_LOG_LEVEL }, send(name));
  // `/` leads to the dashboard unless the storage namespace is mounted at the root (storage.urlPrefix '').
  if (!app.hasRoute({ method: 'GET', url: '/' })) app.get('/', { logLevel: POLLING_LOG_LEVEL }, (_req, reply) => reply.redirect('/ui', 302));
}
