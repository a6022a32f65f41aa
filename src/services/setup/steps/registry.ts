import type { ArtifactRegistry, Repository } from '../../../backends/artifact-registry/port.ts';
import { ConvergenceError, ExitCode } from '../../../lib/errors.ts';
import type { PlannedChange, SetupContext, SetupStep } from '../step.ts';

const DESCRIPTION = 'Container images of convergence (the API service and the pipeline job), created by `convergence setup`';

async function withRegistry<T>(setup: SetupContext, use: (registry: ArtifactRegistry) => Promise<T>): Promise<T> {
  const registry = await setup.ctx.backends.artifactRegistry!();
  try {
    return await use(registry);
  } finally {
    await registry.close();
  }
}

/**
 * A repository of another format under the wanted name cannot hold the product's images, and
 * setup will not replace what someone else made: the operator picks another name.
 */
function assertDocker(setup: SetupContext, repository: Repository): void {
  if (repository.format === 'DOCKER') return;
  throw new ConvergenceError(
    'CONFLICT',
    ExitCode.usage,
    `Artifact Registry repository ${repository.name} exists but holds ${repository.format} packages, not Docker images`,
    {
      suggestion: `set environments.${setup.env.name}.image in convergence.yaml to an image in a Docker repository (LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/convergence), or remove that repository`,
      data: { repository: repository.name, format: repository.format },
    },
  );
}

/**
 * The Docker repository deploy pushes images to. Nothing is granted here: Cloud Run pulls images
 * as the project's Serverless Robot service agent, which reads the project's repositories already.
 */
export const registryStep: SetupStep = {
  id: 'registry',
  title: 'Create the Artifact Registry repository',
  plan: (setup) =>
    withRegistry(setup, async (registry): Promise<PlannedChange[]> => {
      const existing = await registry.getRepository(setup.names.registry);
      if (existing) {
        assertDocker(setup, existing);
        return [];
      }
      return [{ action: 'create', resource: setup.names.registry, detail: 'Docker repository for the product images' }];
    }),
  async apply(setup, changes) {
    if (!changes.some((change) => change.action === 'create')) return;
    await withRegistry(setup, async (registry) =>
      assertDocker(setup, await registry.createDockerRepository(setup.names.registry, DESCRIPTION)),
    );
  },
};
