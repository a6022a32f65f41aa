/**
 * google.iam.v1.IAMPolicy, which every Google API serves beside its own service (clients reach it
 * through gax's IamClient). One server can register a service name once, so this binding routes
 * each call to the module that owns the resource.
 */
import type { FakeService, ServiceBinding } from './server.ts';
import { protosJsonOf } from './protos.ts';
import { FakeStatus, status } from './status.ts';
import { CONCURRENT_POLICY_CHANGE, type FakeBinding, type FakePolicy } from './iam-policy.ts';

export function iamBinding(modules: FakeService[]): ServiceBinding[] {
  const owners = modules.filter((module) => module.iamPermissions);
  const policyOwners = modules.filter((module) => module.iamPolicy);
  if (owners.length === 0 && policyOwners.length === 0) return [];
  const policyOf = (resource: string, access: 'get' | 'set'): FakePolicy => {
    for (const module of policyOwners) {
      const policy = module.iamPolicy!(resource, access);
      if (policy) return policy;
    }
    throw new FakeStatus(status.NOT_FOUND, `Resource ${resource} not found.`);
  };
  const described = (policy: FakePolicy) => ({ version: 1, bindings: policy.bindings, etag: Buffer.from(policy.etag, 'base64') });
  const granted = (resource: string): ReadonlySet<string> => {
    for (const module of owners) {
      const permissions = module.iamPermissions!(resource);
      if (permissions) return permissions;
    }
    throw new FakeStatus(status.NOT_FOUND, `Resource ${resource} not found.`);
  };
  return [
    {
      protos: protosJsonOf('google-gax', 'build/protos/iam_service.json'),
      service: 'google.iam.v1.IAMPolicy',
      handlers: {
        TestIamPermissions: (request) => {
          const held = granted(String(request.resource));
          return { permissions: (request.permissions as string[]).filter((permission) => held.has(permission)) };
        },
        GetIamPolicy: (request) => described(policyOf(String(request.resource), 'get')),
        SetIamPolicy: (request) => {
          const policy = policyOf(String(request.resource), 'set');
          const wanted = (request.policy ?? {}) as { bindings?: FakeBinding[]; etag?: Buffer };
          const etag = wanted.etag && wanted.etag.length > 0 ? Buffer.from(wanted.etag).toString('base64') : undefined;
          if (!policy.set(wanted.bindings ?? [], etag)) throw new FakeStatus(status.ABORTED, CONCURRENT_POLICY_CHANGE);
          return described(policy);
        },
      },
    },
  ];
}
