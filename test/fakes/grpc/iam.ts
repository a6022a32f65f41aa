/**
 * google.iam.v1.IAMPolicy, which every Google API serves beside its own service (clients reach it
 * through gax's IamClient). One server can register a service name once, so this binding routes
 * each call to the module that owns the resource.
 */
import type { FakeService, ServiceBinding } from './server.ts';
import { protosJsonOf } from './protos.ts';
import { FakeStatus, status } from './status.ts';

export function iamBinding(modules: FakeService[]): ServiceBinding[] {
  const owners = modules.filter((module) => module.iamPermissions);
  if (owners.length === 0) return [];
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
      },
    },
  ];
}
