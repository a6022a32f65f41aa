/**
 * IAM Credentials generateAccessToken on 127.0.0.1, as google-auth-library's Impersonated client
 * calls it: a token for the service account, which the gRPC fakes read back as that account
 * calling (grpc/caller.ts). `denyTokenCreator(email)` makes the operator lack
 * iam.serviceAccounts.getAccessToken on an account, answered with Google's 403.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accessTokenFor } from './grpc/caller.ts';

const GENERATE = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/;

export class IamCredentialsFake {
  readonly url: string;
  /** Accounts a token was minted for, oldest first. */
  readonly minted: string[] = [];
  readonly #server: Server;
  readonly #denied = new Set<string>();

  private constructor(server: Server) {
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<IamCredentialsFake> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new IamCredentialsFake(server);
    server.on('request', (req, res) => {
      req.resume();
      const match = GENERATE.exec(req.url ?? '');
      const send = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method !== 'POST' || !match) return send(404, { error: { code: 404, message: 'Not found', status: 'NOT_FOUND' } });
      const account = decodeURIComponent(match[1]!);
      if (fake.#denied.has(account)) {
        return send(403, {
          error: {
            code: 403,
            message: `Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).`,
            status: 'PERMISSION_DENIED',
          },
        });
      }
      fake.minted.push(account);
      send(200, { accessToken: accessTokenFor(account), expireTime: new Date(Date.now() + 3600_000).toISOString() });
    });
    return fake;
  }

  /** The caller lacks roles/iam.serviceAccountTokenCreator on this account. */
  denyTokenCreator(email: string): void {
    this.#denied.add(email);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
