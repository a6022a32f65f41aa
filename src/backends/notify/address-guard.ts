import { isInternalLiteral, publicOnlyLookup as guardedLookup } from '../../lib/net/address-guard.ts';
import { SendFailure } from './port.ts';

const refusedAddress = (host: string) =>
  new SendFailure(`${host} resolves to a loopback, private or link-local address, which a tenant's notification may not reach`, {
    retryable: false,
    refused: true,
  });

/** Refuses a URL whose host is an IP literal outside the public internet (the connection does no lookup for those). */
export function assertPublicLiteral(url: URL): void {
  if (isInternalLiteral(url)) throw refusedAddress(url.host);
}

/** The connection's own lookup for a tenant's target: a host with any internal address is refused as a SendFailure. */
export const publicOnlyLookup = guardedLookup(refusedAddress);
