/**
 * Who is calling a fake: the principal behind the call's `authorization` metadata. Calls from
 * the operator's pass-through client carry none (the operator, whose permissions each fake keeps
 * as `granted`); a token the fakes minted for a service account (IAM Credentials
 * generateAccessToken, or Cloud Scheduler dispatching a job) names that account, so a fake can
 * answer per caller as Google does.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const TOKEN_PREFIX = 'ya29.fake.';
const callers = new AsyncLocalStorage<string | undefined>();

/** The access token the fakes hand out for a service account. */
export const accessTokenFor = (email: string) => `${TOKEN_PREFIX}${Buffer.from(email).toString('base64url')}`;

/** Runs a fake's handler as the caller whose `authorization` value is given. */
export function asCaller<T>(authorization: string | undefined, handle: () => T): T {
  return callers.run(authorization, handle);
}

/**
 * The service account calling, undefined for the operator (no token). A bearer token the fakes
 * did not mint belongs to nobody: it gets the empty string, a principal holding nothing.
 */
export function currentCaller(): string | undefined {
  const authorization = callers.getStore();
  if (!authorization) return undefined;
  const token = authorization.replace(/^Bearer\s+/i, '');
  return token.startsWith(TOKEN_PREFIX) ? Buffer.from(token.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8') : '';
}
