import type { SourceConfig } from '../../../../domain/pipeline.ts';
import type { RestAuth } from '../types.ts';
import { googleTokens } from './google.ts';
import { ClientCredentialsTokens } from './oauth2-client-credentials.ts';

type SourceAuth = NonNullable<Extract<SourceConfig, { type: 'rest_api' }>['auth']>;

/** What resolving a source's auth may use. */
export interface AuthDeps {
  /** The tenant's secret by name (remembered for redaction by the caller). */
  secret(name: string): Promise<string>;
  /** The rendered URL of the source (token-based auth checks where its token may go). */
  url: string;
  /** The environment's rest_sources settings. */
  access: RestSourceAccess;
  signal?: AbortSignal;
  /**
   * Receives every credential value token-based auth derives or obtains later (each access token,
   * the base64 of client id and secret, a key's private key), so the caller redacts it too.
   */
  onSecret?: (value: string) => void;
  /** Clock in ms for token expiry (tests); defaults to Date.now. */
  now?: () => number;
}

/** What the operator lets tenant REST sources do (convergence.yaml environment `rest_sources`). */
export interface RestSourceAccess {
  /** Hosts (`host` or `host:port`) a source may reach on loopback or private addresses. */
  privateHosts: string[];
  /** `auth: { type: google }` without key_secret may use the environment's own credentials. */
  googleAdc: boolean;
}

export const NO_SPECIAL_ACCESS: RestSourceAccess = { privateHosts: [], googleAdc: false };

/** The request auth of a source config, its secrets resolved. */
export async function resolveRestAuth(auth: SourceAuth, deps: AuthDeps): Promise<RestAuth> {
  switch (auth.type) {
    case 'bearer':
      return { type: 'bearer', token: await deps.secret(auth.secret) };
    case 'header':
      return { type: 'header', name: auth.name, value: await deps.secret(auth.secret) };
    case 'basic':
      return {
        type: 'basic',
        username: auth.username_secret ? await deps.secret(auth.username_secret) : auth.username!,
        password: auth.secret ? await deps.secret(auth.secret) : '',
      };
    case 'oauth2_client_credentials':
      return {
        type: 'access_token',
        provider: new ClientCredentialsTokens(
          {
            tokenUrl: auth.token_url,
            clientId: auth.client_id,
            clientSecret: await deps.secret(auth.client_secret),
            clientSecretName: auth.client_secret,
            ...(auth.scope ? { scope: auth.scope } : {}),
            ...(auth.audience ? { audience: auth.audience } : {}),
            ...(auth.client_auth ? { clientAuth: auth.client_auth } : {}),
          },
          { privateHosts: deps.access.privateHosts, onSecret: deps.onSecret ?? ignore, ...(deps.now ? { now: deps.now } : {}) },
        ),
      };
    case 'google':
      return {
        type: 'access_token',
        provider: googleTokens(
          {
            scopes: auth.scopes,
            url: deps.url,
            ...(auth.key_secret ? { key: { json: await deps.secret(auth.key_secret), secretName: auth.key_secret } } : {}),
          },
          { privateHosts: deps.access.privateHosts, googleAdc: deps.access.googleAdc, onSecret: deps.onSecret ?? ignore },
        ),
      };
  }
}

const ignore = () => {};
