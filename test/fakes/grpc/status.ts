/**
 * gRPC errors as Google services send them: a status code, a message, and optionally a
 * google.rpc.ErrorInfo in `grpc-status-details-bin`, which gax decodes into `err.reason`,
 * `err.domain` and `err.errorInfoMetadata` (how SERVICE_DISABLED reaches a client).
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { protosJsonOf } from './protos.ts';

export type GrpcCode = (typeof status)[keyof typeof status];

export interface ErrorInfo {
  reason: string;
  domain?: string;
  metadata?: Record<string, string>;
}

/** Thrown by fake handlers; the server turns it into the status the client receives. */
export class FakeStatus extends Error {
  readonly code: GrpcCode;
  readonly errorInfo: ErrorInfo | undefined;

  constructor(code: GrpcCode, message: string, errorInfo?: ErrorInfo) {
    super(message);
    this.code = code;
    this.errorInfo = errorInfo;
  }
}

let rpcTypes: { status: protobuf.Type; errorInfo: protobuf.Type } | undefined;

function types() {
  if (!rpcTypes) {
    const root = protobuf.Root.fromJSON(JSON.parse(readFileSync(protosJsonOf('google-gax', 'build/protos/status.json'), 'utf8')));
    rpcTypes = { status: root.lookupType('google.rpc.Status'), errorInfo: root.lookupType('google.rpc.ErrorInfo') };
  }
  return rpcTypes;
}

export function toServiceError(code: GrpcCode, message: string, errorInfo?: ErrorInfo): Partial<ServiceError> {
  const metadata = new Metadata();
  if (errorInfo) {
    const { status: statusType, errorInfo: errorInfoType } = types();
    const info = errorInfoType.encode(
      errorInfoType.fromObject({
        reason: errorInfo.reason,
        domain: errorInfo.domain ?? 'googleapis.com',
        metadata: errorInfo.metadata ?? {},
      }),
    );
    const details = statusType.encode(
      statusType.fromObject({
        code,
        message,
        details: [{ type_url: 'type.googleapis.com/google.rpc.ErrorInfo', value: info.finish() }],
      }),
    );
    metadata.set('grpc-status-details-bin', Buffer.from(details.finish()));
  }
  return { code, details: message, message, metadata };
}

export { status };
