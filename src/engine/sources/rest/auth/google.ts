/**
 * `auth: { type: google }`: an access token for a Google identity, through google-auth-library.
 *
 * With a service-account key (the tenant's secret `key_secret`) the token is a JWT the key signs
 * itself with the scopes in it (the JWT client's `useJWTAccessWithScope`), which Google APIs
 * accept directly as a bearer token: no token endpoint is asked, so nothing leaves the process to
 * make it. Without a key, the environment's application default credentials are used, only when
 * the operator allows it (`rest_sources.google_adc`): that identity is shared by every tenant.
 *
 * Either token is sent only to Google API hosts (https, `*.googleapis.com`) or to a host the
 * operator lists as private (a local fake or proxy).
 */
import { createPrivateKey } from 'node:crypto';
import type { AuthClient, GoogleAuth, JWT } from 'google-auth-library';

import { authError, validationError } from '../../../../lib/errors.ts';
import { Redactor } from '../../../../lib/redaction.ts';
import type { AccessTokenProvider } from '../types.ts';
import { isListedHost } from '../../../../lib/net/private-hosts.ts';

export interface GoogleTokenSettings {
  scopes: string[];
  /** The service-account key JSON and the name of the secret holding it; absent: ADC. */
  key?: { json: string; secretName: string };
  /** The source's URL, where the token will be sent. */
  url: string;
}

export interface GoogleTokenOptions {
  privateHosts: readonly string[];
  /** Whether the operator lets a source without key_secret use the environment's credentials. */
  googleAdc: boolean;
  /** Receives the private key and every token, so the process redacts them wherever it reports. */
  onSecret: (value: string) => void;
}

interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
}

const GOOGLE_API_HOST = /(^|\.)googleapis\.com$/;

/** Why a Google token may not be sent to `url`; undefined when it may. */
export function googleDestinationProblem(url: URL, privateHosts: readonly string[]): string | undefined {
  const googleApi = url.protocol === 'https:' && GOOGLE_API_HOST.test(url.hostname.toLowerCase());
  const listed = (url.protocol === 'https:' || url.protocol === 'http:') && isListedHost(url, privateHosts);
  if (googleApi || listed) return undefined;
  return `auth type google sends a Google access token, which only goes to https Google API hosts (*.googleapis.com), not to ${url.protocol}//${url.host}`;
}

/** Refuses a source URL a Google token must not go to. */
export function checkGoogleDestination(url: string, privateHosts: readonly string[]): void {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (!parsed) throw validationError('the url of a source with google auth is not a valid absolute URL');
  const problem = googleDestinationProblem(parsed, privateHosts);
  if (problem) throw validationError(problem, { suggestion: 'point the source at a Google API, or use another auth type for this API' });
}

/** Why a source may not use google auth without key_secret in an environment that does not allow ADC. */
export const ADC_NOT_ALLOWED =
  'auth type google without key_secret would use the environment’s own Google credentials, which this environment does not allow for tenant sources';

/** The key of a `key_secret`, checked: a service-account key file's JSON. Messages never quote it. */
function parseServiceAccountKey(json: string, secretName: string): ServiceAccountKey {
  const fail = (why: string) =>
    authError(`secret "${secretName}" is not a Google service-account key: ${why}`, {
      suggestion: `store the JSON key file of the service account as it was downloaded: convergence tenant credentials set <tenant> ${secretName} < key.json`,
    });
  let key: unknown;
  try {
    key = JSON.parse(json);
  } catch {
    // The parser's message quotes the text: never shown.
    throw fail('it is not JSON');
  }
  if (!key || typeof key !== 'object' || Array.isArray(key)) throw fail('it is not a JSON object');
  const fields = key as Record<string, unknown>;
  if (fields.type !== 'service_account') {
    throw fail(typeof fields.type === 'string' ? `its type is ${fields.type}, not service_account` : 'it has no type service_account');
  }
  if (typeof fields.client_email !== 'string' || !fields.client_email.includes('@')) throw fail('it has no client_email');
  if (typeof fields.private_key !== 'string' || !fields.private_key.includes('PRIVATE KEY')) throw fail('it has no private_key');
  try {
    createPrivateKey(fields.private_key);
  } catch {
    throw fail('its private_key is not a valid PEM private key');
  }
  return {
    client_email: fields.client_email,
    private_key: fields.private_key,
    ...(typeof fields.private_key_id === 'string' ? { private_key_id: fields.private_key_id } : {}),
  };
}

/** Where the token comes from: a fresh client each time the API refuses the current token. */
type ClientFactory = () => Promise<AuthClient>;

/** The token provider of a google auth; checks destination, key and ADC permission first. */
export function googleTokens(settings: GoogleTokenSettings, options: GoogleTokenOptions): AccessTokenProvider {
  checkGoogleDestination(settings.url, options.privateHosts);
  const redactor = new Redactor();
  const remember = (value: string) => {
    redactor.add(value);
    options.onSecret(value);
  };
  let makeClient: ClientFactory;
  let identity: string;
  if (settings.key) {
    const key = parseServiceAccountKey(settings.key.json, settings.key.secretName);
    remember(key.private_key);
    makeClient = () => selfSignedJwtClient(key, settings.scopes);
    identity = `service account ${key.client_email}`;
  } else {
    if (!options.googleAdc) {
      throw validationError(ADC_NOT_ALLOWED, {
        suggestion:
          'store the service-account key of the tenant as a secret and name it in auth.key_secret, or (operator) set rest_sources.google_adc: true for this environment in convergence.yaml',
      });
    }
    makeClient = () => applicationDefaultClient(settings.scopes);
    identity = 'the application default credentials';
  }
  return new GoogleTokens(makeClient, settings.url, identity, redactor, remember);
}

class GoogleTokens implements AccessTokenProvider {
  readonly #makeClient: ClientFactory;
  readonly #url: string;
  readonly #identity: string;
  readonly #redactor: Redactor;
  readonly #remember: (value: string) => void;
  #client: Promise<AuthClient> | undefined;

  constructor(makeClient: ClientFactory, url: string, identity: string, redactor: Redactor, remember: (value: string) => void) {
    this.#makeClient = makeClient;
    this.#url = url;
    this.#identity = identity;
    this.#redactor = redactor;
    this.#remember = remember;
  }

  /** google-auth-library keeps the token and makes a new one five minutes before it expires. */
  async token(signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    this.#client ??= this.#makeClient();
    let authorization: string | null;
    try {
      const client = await this.#client;
      authorization = (await client.getRequestHeaders(this.#url)).get('authorization');
    } catch (error) {
      this.#client = undefined;
      const detail = this.#redactor.redact(error instanceof Error ? error.message : String(error));
      throw authError(`${this.#identity} could not make a Google access token: ${detail}`, {
        suggestion: 'check the service-account key of the source (or the environment’s credentials) and the auth scopes',
      });
    }
    const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw authError(`${this.#identity} made no bearer token for the source`);
    this.#remember(token);
    return token;
  }

  /** The API refused the token: the next one comes from a new client, with an empty cache. */
  invalidate(): void {
    this.#client = undefined;
  }
}

/** A JWT client that signs its own tokens with the scopes (no token endpoint asked). */
async function selfSignedJwtClient(key: ServiceAccountKey, scopes: string[]): Promise<JWT> {
  const { JWT } = await import('google-auth-library');
  const client = new JWT({
    email: key.client_email,
    key: key.private_key,
    ...(key.private_key_id ? { keyId: key.private_key_id } : {}),
    scopes,
  });
  // Not a constructor option: with it, getRequestHeaders signs a scoped JWT instead of asking oauth2.googleapis.com.
  client.useJWTAccessWithScope = true;
  return client;
}

/** ADC; a service-account key among them signs its own tokens too, like a key_secret. */
async function applicationDefaultClient(scopes: string[]): Promise<AuthClient> {
  const { GoogleAuth } = await import('google-auth-library');
  const auth: GoogleAuth = new GoogleAuth({ scopes });
  auth.useJWTAccessWithScope = true;
  return auth.getClient();
}
