/**
 * IAM service accounts (iam.googleapis.com v1 projects.serviceAccounts): what `setup` reads and
 * creates for the API service, the pipeline job and the scheduler. Only gcp has an adapter: a
 * local environment runs as the operator.
 */

export interface ServiceAccount {
  /** e.g. convergence-job-staging@my-project.iam.gserviceaccount.com */
  email: string;
  /** The project the account lives in. */
  project: string;
  displayName: string;
  disabled: boolean;
}

export interface NewServiceAccount {
  /** The part before the @: 6-30 characters, a lowercase letter first. */
  accountId: string;
  displayName: string;
  description: string;
}

export interface IamAdmin {
  /** The project accounts are created in. */
  readonly project: string;
  /** The account, or undefined when there is none with that email. */
  getServiceAccount(email: string): Promise<ServiceAccount | undefined>;
  /**
   * Creates the account in the project. An account created by someone else in the meantime
   * (ALREADY_EXISTS) counts as done: `created` is then false.
   */
  createServiceAccount(account: NewServiceAccount): Promise<{ account: ServiceAccount; created: boolean }>;
  close(): Promise<void>;
}
