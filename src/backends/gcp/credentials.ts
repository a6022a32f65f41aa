import { readFileSync } from 'node:fs';
import type { GoogleAuth, GoogleAuthOptions } from 'google-auth-library';

/**
 * Application Default Credentials for the clients that talk to Google itself. One thing is added
 * to google-auth-library: a service-account key file's `token_uri` is honoured. The library signs
 * and posts every JWT-bearer grant to Google's own token URL whatever the key says, which breaks
 * keys issued for another token endpoint (a private-service-connect or sovereign-cloud URL, or a
 * local OAuth server standing in for Google).
 */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

type Vars = Record<string, string | undefined>;

/** The `token_uri` of the key file GOOGLE_APPLICATION_CREDENTIALS names, when it is not Google's. */
function keyFileTokenUri(vars: Vars): string | undefined {
  const path = vars.GOOGLE_APPLICATION_CREDENTIALS;
  if (!path) return undefined;
  let key: { type?: unknown; token_uri?: unknown };
  try {
    key = JSON.parse(readFileSync(path, 'utf8')) as typeof key;
  } catch {
    // google-auth-library reports an unreadable key file itself, with the path in its message.
    return undefined;
  }
  if (key.type !== 'service_account' || typeof key.token_uri !== 'string' || key.token_uri === GOOGLE_TOKEN_URL) return undefined;
  return key.token_uri;
}

/**
 * GoogleAuth options that send token requests to the key file's own token endpoint when it names
 * one; empty otherwise. Spread into a client's options so the library keeps its own scopes.
 */
export async function applicationDefaultAuthOptions(vars: Vars = process.env): Promise<Pick<GoogleAuthOptions, 'clientOptions'>> {
  const tokenUri = keyFileTokenUri(vars);
  if (!tokenUri) return {};
  const { gaxios } = await import('google-auth-library');
  const transporter = new gaxios.Gaxios();
  transporter.interceptors.request.add({
    resolved: async (options) => {
      // gaxios has already parsed the URL here, and its error redactor expects a URL object.
      if (String(options.url) === GOOGLE_TOKEN_URL) options.url = new URL(tokenUri);
      return options;
    },
  });
  return { clientOptions: { transporter } };
}

/** ADC with the given scopes, token requests routed as applicationDefaultAuthOptions says. */
export async function applicationDefaultAuth(scopes: string[], vars: Vars = process.env): Promise<GoogleAuth> {
  const { GoogleAuth } = await import('google-auth-library');
  return new GoogleAuth({ scopes, ...(await applicationDefaultAuthOptions(vars)) });
}
