import { authError } from '../../lib/errors.ts';

/** Headers a probe sends; resolved per probe so a long canary gets its ID token refreshed. */
export type ProbeHeaders = () => Promise<Record<string, string>>;

interface IdTokenSource {
  getRequestHeaders(): Promise<unknown>;
}

const noHeaders: ProbeHeaders = async () => ({});

/**
 * Who the deploy's health probes call the service as. Cloud Run services are private unless
 * `public: true` (invokerIamDisabled): then every probe carries an ID token whose audience is the
 * service URL, minted from Application Default Credentials. The token client is made once, on
 * the first probe that needs it, and google-auth-library refreshes the token before it expires.
 */
export class ProbeIdentity {
  readonly #public: boolean;
  readonly #clients = new Map<string, Promise<IdTokenSource>>();

  constructor(publicService: boolean) {
    this.#public = publicService;
  }

  /** The headers of a probe of the service at `audience` (its URL). */
  headersFor(audience: string): ProbeHeaders {
    if (this.#public) return noHeaders;
    return async () => {
      const client = await this.#client(audience);
      try {
        return bearerOf(await client.getRequestHeaders());
      } catch (err) {
        throw noIdToken(audience, err);
      }
    };
  }

  /** Mints a token now, so missing credentials stop a deploy before it changes anything. */
  async check(audience: string): Promise<void> {
    await this.headersFor(audience)();
  }

  #client(audience: string): Promise<IdTokenSource> {
    let client = this.#clients.get(audience);
    if (!client) {
      client = (async () => {
        const { applicationDefaultAuthOptions } = await import('../../backends/gcp/credentials.ts');
        const { GoogleAuth } = await import('google-auth-library');
        try {
          return await new GoogleAuth(await applicationDefaultAuthOptions()).getIdTokenClient(audience);
        } catch (err) {
          throw noIdToken(audience, err);
        }
      })();
      client.catch(() => this.#clients.delete(audience));
      this.#clients.set(audience, client);
    }
    return client;
  }
}

/** The Authorization header, whichever shape (Headers or a plain object) the library answers in. */
function bearerOf(headers: unknown): Record<string, string> {
  const value =
    headers instanceof Headers
      ? headers.get('authorization')
      : ((headers as Record<string, string>).Authorization ?? (headers as Record<string, string>).authorization);
  return value ? { authorization: value } : {};
}

function noIdToken(audience: string, err: unknown) {
  const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return authError(`cannot mint an ID token for ${audience} to health-check the private service: ${reason}`, {
    suggestion:
      'use credentials that can mint ID tokens (a service account: GOOGLE_APPLICATION_CREDENTIALS=<key file>, or `gcloud auth application-default login --impersonate-service-account=<account>`), or set `public: true` for the environment when the service is meant to be public',
  });
}
