/** Options for an official gRPC client (Run, Scheduler, KMS, Secret Manager) talking to a fake on 127.0.0.1: no TLS, no credentials. */
import * as grpc from '@grpc/grpc-js';
import { PassThroughClient } from 'google-auth-library';

export const fakeClientOptions = (port: number) => ({
  apiEndpoint: '127.0.0.1',
  port,
  sslCreds: grpc.credentials.createInsecure(),
  authClient: new PassThroughClient(),
});
