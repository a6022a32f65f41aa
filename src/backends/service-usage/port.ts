/**
 * Service Usage: which Google APIs a project has enabled, and enabling more. `setup` enables the
 * APIs the product calls before it creates anything that needs them.
 */
export interface ServiceUsage {
  /** The project the services are enabled in. */
  readonly project: string;
  /** Those of `services` (e.g. run.googleapis.com) not enabled in the project, in the order given. */
  disabled(services: readonly string[]): Promise<string[]>;
  /** Enables `services`; enabling an enabled one is a no-op. Waits until Google reports them enabled. */
  enable(services: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
