/**
 * Service definitions for the gRPC fake, read from the protos.json that each Google client
 * package ships. Loading the client's own copy means the fake speaks exactly the wire format the
 * installed client encodes, so a field renamed in a client upgrade breaks a test, not production.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { fromJSON, type Options } from '@grpc/proto-loader';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The options gax decodes with, so handlers see what a client sees: camelCase, enum names, int64 as strings. */
export const DECODE_OPTIONS: Options = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };

const cache = new Map<string, ReturnType<typeof fromJSON>>();

/** Path of protos.json inside an installed package, found through the package's main entry. */
export function protosJsonOf(pkg: string, relative = 'build/protos/protos.json'): string {
  const main = require.resolve(pkg);
  let dir = path.dirname(main);
  while (path.basename(dir) !== 'node_modules' && dir !== path.dirname(dir)) {
    const candidate = path.join(dir, relative);
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error(`no ${relative} found above ${main}`);
}

export function serviceDefinition(protosJson: string, service: string): ServiceDefinition {
  let definition = cache.get(protosJson);
  if (!definition) {
    definition = fromJSON(JSON.parse(readFileSync(protosJson, 'utf8')), DECODE_OPTIONS);
    cache.set(protosJson, definition);
  }
  const found = definition[service];
  const isService = found && Object.values(found).every((method) => typeof method === 'object' && method !== null && 'path' in method);
  if (!isService) {
    throw new Error(`service ${service} is not in ${protosJson}`);
  }
  return found as ServiceDefinition;
}
