import type { iam_v1 } from '@googleapis/iam';
import type { GcpClients } from '../gcp/clients.ts';
import { googleErrorFacts, GrpcCode, toConvergenceError } from '../gcp/errors.ts';
import { retryTransient } from '../gcp/retry.ts';
import type { IamAdmin, NewServiceAccount, ServiceAccount } from './port.ts';

const IAM_API = 'iam.googleapis.com';
/** Creating service accounts needs this permission; roles/iam.serviceAccountAdmin carries it. */
const CREATE = { permission: 'iam.serviceAccounts.create', role: 'roles/iam.serviceAccountAdmin' } as const;
/** Reading one needs this; roles/iam.serviceAccountViewer (and the admin role) carry it. */
const GET = { permission: 'iam.serviceAccounts.get', role: 'roles/iam.serviceAccountViewer' } as const;

/** The JSON error body's status, which tells a REST 409 ALREADY_EXISTS from a 409 ABORTED. */
function restStatus(err: unknown): string | undefined {
  const data = (err as { response?: { data?: { error?: { status?: unknown } } } } | undefined)?.response?.data;
  const status = data?.error?.status;
  return typeof status === 'string' ? status : undefined;
}

/** retryTransient is the one retry policy; the client's own (gaxios) would retry under it again. */
const NO_CLIENT_RETRY = { retry: false };

const isNotFound = (err: unknown) => googleErrorFacts(err).grpcCode === GrpcCode.NOT_FOUND;
const isAlreadyExists = (err: unknown) =>
  restStatus(err) === 'ALREADY_EXISTS' || googleErrorFacts(err).grpcCode === GrpcCode.ALREADY_EXISTS;

function fromApi(account: iam_v1.Schema$ServiceAccount): ServiceAccount {
  return {
    email: account.email ?? '',
    project: account.projectId ?? '',
    displayName: account.displayName ?? '',
    disabled: Boolean(account.disabled),
  };
}

/** Service accounts through the official IAM v1 REST client (@googleapis/iam). */
export class GcpIamAdmin implements IamAdmin {
  readonly #clients: GcpClients;

  constructor(clients: GcpClients) {
    this.#clients = clients;
  }

  get project(): string {
    return this.#clients.target.project;
  }

  async getServiceAccount(email: string): Promise<ServiceAccount | undefined> {
    const iam = await this.#clients.iamAdmin();
    try {
      // projects/- : Google finds the account by its email whatever project it lives in.
      const { data } = await retryTransient(() =>
        iam.projects.serviceAccounts.get({ name: `projects/-/serviceAccounts/${email}` }, NO_CLIENT_RETRY),
      );
      return fromApi(data);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw this.#error(err, `service account ${email}`, GET);
    }
  }

  async createServiceAccount(account: NewServiceAccount): Promise<{ account: ServiceAccount; created: boolean }> {
    const iam = await this.#clients.iamAdmin();
    const email = `${account.accountId}@${this.project}.iam.gserviceaccount.com`;
    try {
      const { data } = await retryTransient(() =>
        iam.projects.serviceAccounts.create(
          {
            name: `projects/${this.project}`,
            requestBody: {
              accountId: account.accountId,
              serviceAccount: { displayName: account.displayName, description: account.description },
            },
          },
          NO_CLIENT_RETRY,
        ),
      );
      return { account: fromApi(data), created: true };
    } catch (err) {
      if (!isAlreadyExists(err)) throw this.#error(err, `service account ${email}`, CREATE);
    }
    // Another writer created it between our read and our create: it is there, which is what was asked.
    const existing = await this.getServiceAccount(email);
    if (!existing) throw this.#error(new Error(`service account ${email} was reported as existing but cannot be read`), email, GET);
    return { account: existing, created: false };
  }

  async close(): Promise<void> {
    await this.#clients.close();
  }

  #error(err: unknown, what: string, needs: { permission: string; role: string }) {
    const { project } = this.#clients.target;
    return toConvergenceError(err, {
      what,
      permission: needs.permission,
      role: needs.role,
      resource: `project ${project}`,
      grantCommand: `gcloud projects add-iam-policy-binding ${project} --member=user:YOU@example.com --role=${needs.role}`,
      api: IAM_API,
      project,
    });
  }
}
