/**
 * A firefly collector for tests: a UDP socket that keeps every datagram, splits the RFC 5424 header from the
 * JSON and validates the JSON against the scitags v1 schema (test/support/firefly.schema.json, the file
 * published at scitags.org/schemas/v1.0.0 cleaned of its trailing commas) with ajv's draft 2020-12 validator.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv and ajv-formats are CommonJS with a default export (fastify's own validator dependencies).
type AjvLike = { compile(schema: object): ((data: unknown) => boolean) & { errors?: unknown } };
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as new (o: object) => AjvLike;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: AjvLike) => void;

const here = dirname(fileURLToPath(import.meta.url));
/** From dist/test/support or test/support: the schema file in the source tree. */
const schemaPath = [join(here, 'firefly.schema.json'), join(here, '..', '..', '..', 'test', 'support', 'firefly.schema.json')]
  .find((p) => { try { readFileSync(p); return true; } catch { return false; } })!;

const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
export const validateFirefly = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')) as object);

export interface ReceivedFirefly {
  raw: Buffer;
  header: string;
  body: Record<string, any>;
  from: string;
}

export interface FireflyCollector {
  port: number;
  received: ReceivedFirefly[];
  close(): Promise<void>;
}

const HEADER = /^<134>1 (\S+) (\S+) (\S+) - firefly-json - /;

export async function startFireflyCollector(type: 'udp4' | 'udp6', address: string): Promise<FireflyCollector> {
  const sock: Socket = createSocket({ type });
  const received: ReceivedFirefly[] = [];
  sock.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    const m = HEADER.exec(text);
    const header = m ? m[0] : '';
    let body: Record<string, any> = {};
    try {
      body = JSON.parse(text.slice(header.length)) as Record<string, any>;
    } catch { /* kept with an empty body: the test's header / schema checks fail on it */ }
    received.push({ raw: msg, header, body, from: rinfo.address });
  });
  await new Promise<void>((resolve) => sock.bind(0, address, resolve));
  return {
    port: sock.address().port,
    received,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}
