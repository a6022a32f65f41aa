/**
 * Google's ZetaSQL analyzer (the GoogleSQL front end BigQuery uses) as a local gRPC server, from
 * the @fivetrandevelopers/zetasql package. One analyzer process per test process, started on first
 * use and killed when the process exits. The package's own client is not used: it prints to stdout
 * and leaves its server running.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const PACKAGE_DIR = path.dirname(fileURLToPath(import.meta.resolve('@fivetrandevelopers/zetasql/package.json')));
const SERVER_DIR = path.join(PACKAGE_DIR, 'lib', 'zetasql');

/** The server binary the package ships for each platform. */
const BINARIES: Record<string, string> = {
  'linux-x64': 'remote_server.so',
  'linux-arm64': 'remote_server_arm.so',
  'darwin-x64': 'remote_server',
  'darwin-arm64': 'remote_server_arm',
};

/** Linux x86-64 is CI's platform: there the referee is never skipped. */
const REQUIRED_PLATFORM = 'linux-x64';

const START_TIMEOUT_MS = 30_000;

type Callback<T> = (err: grpc.ServiceError | null, response: T) => void;
type Rpc = (request: unknown, callback: Callback<unknown>) => void;

type Proto = Record<string, unknown>;

export class ZetaSqlAnalyzer {
  readonly #client: grpc.Client & Record<string, Rpc>;

  private constructor(client: grpc.Client & Record<string, Rpc>) {
    this.#client = client;
  }

  call<T = Proto>(method: string, request: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client[method]!.call(this.#client, request, (err, response) => (err ? reject(err) : resolve(response as T)));
    });
  }

  static async start(binary: string): Promise<ZetaSqlAnalyzer> {
    const port = await freePort();
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'zetasql-'));
    const logFile = path.join(logDir, 'server.log');
    // Output goes to a file so no pipe keeps the test process alive; the process is unref'd too.
    const log = openSync(logFile, 'w');
    const server = spawn(binary, ['127.0.0.1', String(port)], { stdio: ['ignore', log, log] });
    closeSync(log);
    server.unref();
    process.once('exit', () => {
      server.kill('SIGKILL');
      rmSync(logDir, { recursive: true, force: true });
    });

    const definition = protoLoader.loadSync('local_service.proto', {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [path.join(SERVER_DIR, 'protos')],
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      zetasql: { local_service: { ZetaSqlLocalService: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client } };
    };
    const client = new loaded.zetasql.local_service.ZetaSqlLocalService(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + START_TIMEOUT_MS, (err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      server.kill('SIGKILL');
      const output = readFileSync(logFile, 'utf8').trim();
      throw new Error(`The ZetaSQL analyzer (${binary}) did not start: ${(err as Error).message}${output ? `\n${output}` : ''}`, {
        cause: err,
      });
    }
    return new ZetaSqlAnalyzer(client as grpc.Client & Record<string, Rpc>);
  }
}

let shared: Promise<ZetaSqlAnalyzer | undefined> | undefined;

/** The process's analyzer, started on first use; undefined (said once, loudly) where no binary exists. */
export function sharedAnalyzer(): Promise<ZetaSqlAnalyzer | undefined> {
  shared ??= startShared();
  return shared;
}

async function startShared(): Promise<ZetaSqlAnalyzer | undefined> {
  const platform = `${process.platform}-${process.arch}`;
  const binary = BINARIES[platform] ? path.join(SERVER_DIR, BINARIES[platform]) : undefined;
  if (binary && existsSync(binary)) return ZetaSqlAnalyzer.start(binary);
  const missing = binary ? `has no ${binary}` : `ships no analyzer for ${platform}`;
  if (platform === REQUIRED_PLATFORM) {
    throw new Error(
      `The ZetaSQL referee cannot run: @fivetrandevelopers/zetasql ${missing}; run npm ci (it is never skipped on ${platform})`,
    );
  }
  process.stderr.write(
    `\n# ZETASQL REFEREE OFF: @fivetrandevelopers/zetasql ${missing}; ` +
      'the BigQuery fake runs SQL WITHOUT checking it against GoogleSQL. CI (linux-x64) checks it.\n\n',
  );
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
