/** Artifact Registry repositories: where `deploy` pushes the product's container images. */
export interface Repository {
  /** projects/P/locations/L/repositories/R */
  name: string;
  /** DOCKER, MAVEN, NPM, PYTHON, ... as Artifact Registry names the format. */
  format: string;
  description: string;
}

export interface ArtifactRegistry {
  /** The repository, or undefined when there is none of that name. */
  getRepository(name: string): Promise<Repository | undefined>;
  /**
   * Creates a Docker repository at `name` and waits for the operation to finish. One that already
   * exists is returned as it is (whatever its format: the caller checks), so a rerun is harmless.
   */
  createDockerRepository(name: string, description: string): Promise<Repository>;
  close(): Promise<void>;
}
