/**
 * OpenAPI 3 document built from the JSON schemas the routes already validate with (so the docs cannot drift
 * from what the server enforces), at `/docs/openapi.json`, and a plain HTML index at `/docs`.
 */
import type { FastifyInstance, RouteOptions } from 'fastify';

interface Op {
  summary?: string;
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
}

export function collectOpenApi(app: FastifyInstance): () => Record<string, unknown> {
  const paths: Record<string, Record<string, Op>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as Record<string, unknown> | undefined;
    if (!schema || !route.url.startsWith('/')) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    for (const m of methods) {
      if (m === 'HEAD') continue;
      const params: unknown[] = [];
      for (const [where, key] of [['path', 'params'], ['query', 'querystring']] as const) {
        const s = schema[key] as { properties?: Record<string, unknown>; required?: string[] } | undefined;
        for (const [name, sch] of Object.entries(s?.properties ?? {})) {
          params.push({ name, in: where, required: where === 'path' || (s?.required ?? []).includes(name), schema: sch });
        }
      }
      const op: Op = { summary: schema['summary'] as string | undefined, responses: { default: { description: 'RFC 7807 problem+json on error' } } };
      if (params.length) op.parameters = params;
      if (schema['body']) op.requestBody = { required: true, content: { 'application/json': { schema: schema['body'] } } };
      const resp = schema['response'] as Record<string, unknown> | undefined;
      for (const [code, sch] of Object.entries(resp ?? {})) op.responses[code] = { description: code, content: { 'application/json': { schema: sch } } };
      if (!resp) op.responses['200'] = { description: 'OK' };
      (paths[path] ??= {})[m.toLowerCase()] = op;
    }
  });
  return () => ({
    openapi: '3.0.3',
    info: { title: 'cargoport', version: '0.1.0', description: 'Bulk data import/export port: jobs, files, admin operations, status.' },
    paths,
  });
}

export async function docsRoute(app: FastifyInstance, { doc }: { doc: () => Record<string, unknown> }): Promise<void> {
  app.get('/docs/openapi.json', async () => doc());
  app.get('/docs', async (_req, reply) => {
    const d = doc() as { paths: Record<string, Record<string, Op>> };
    const rows = Object.entries(d.paths)
      .flatMap(([p, ops]) => Object.entries(ops).map(([m, o]) => `<tr><td>${m.toUpperCase()}</td><td><code>${p}</code></td><td>${o.summary ?? ''}</td></tr>`))
      .join('\n');
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><html><head><meta charset="utf-8"><title>cargoport API</title></head>
<body><h1>cargoport API</h1><p>Machine-readable: <a href="/docs/openapi.json">/docs/openapi.json</a> (OpenAPI 3). Errors are RFC 7807 <code>application/problem+json</code>.</p>
<table border="1" cellpadding="4"><tr><th>Method</th><th>Path</th><th>What</th></tr>${rows}</table></body></html>`);
  });
}
