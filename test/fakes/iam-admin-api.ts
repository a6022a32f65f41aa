/**
 * IAM v1 service accounts (iam.googleapis.com projects.serviceAccounts get and create) on
 * 127.0.0.1, as the official @googleapis/iam client calls them, with the rules setup has to cope
 * with: an unknown account is 404 NOT_FOUND only for a caller allowed to read it (anyone else gets
 * Google's 403 "(or it may not exist)"), a second create of the same id is 409 ALREADY_EXISTS,
 * a caller without iam.serviceAccounts.create gets 403 naming it, and account ids are checked as
 * Google checks them. Permissions are per caller, as in the gRPC fakes (grpc/caller.ts): the
 * operator holds `granted`, a service account what `grantedTo` gives it.
 */
import { randomBytes } from 'node:crypto';
import { asCaller, currentCaller } from './grpc/caller.ts';
import { startFakeApi, type FakeApi, type FakeReply, type RecordedRequest } from './http-api.ts';

export const IAM_ADMIN_PERMISSIONS = ['iam.serviceAccounts.get', 'iam.serviceAccounts.create'] as const;

const ACCOUNT_PATH = /^\/v1\/projects\/([^/]+)\/serviceAccounts\/([^/?]+)$/;
const COLLECTION_PATH = /^\/v1\/projects\/([^/]+)\/serviceAccounts$/;
/** RFC 1035, 6-30 characters: what Google accepts as an account id. */
const ACCOUNT_ID = /^[a-z]([-a-z0-9]{4,28}[a-z0-9])$/;
const MAX_DISPLAY_NAME = 100;

export interface FakeServiceAccount {
  name: string;
  projectId: string;
  uniqueId: string;
  email: string;
  displayName: string;
  description: string;
  etag: string;
  oauth2ClientId: string;
  disabled: boolean;
}

const googleError = (code: number, status: string, message: string, extra: Record<string, unknown> = {}): FakeReply => ({
  status: code,
  body: { error: { code, message, status, ...extra } },
});

const permissionDenied = (permission: string): FakeReply =>
  googleError(403, 'PERMISSION_DENIED', `Permission '${permission}' denied on resource (or it may not exist).`, {
    details: [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'IAM_PERMISSION_DENIED',
        domain: 'iam.googleapis.com',
        metadata: { permission },
      },
    ],
  });

const newUniqueId = () =>
  `1${BigInt(`0x${randomBytes(8).toString('hex')}`)
    .toString()
    .padStart(20, '0')
    .slice(0, 20)}`;

export class IamAdminFake {
  /** Permissions of the operator (calls without a token the fakes minted). */
  granted = new Set<string>(IAM_ADMIN_PERMISSIONS);
  /** Permissions of a service account calling with a token the fakes minted for it. */
  readonly grantedTo = new Map<string, Set<string>>();
  readonly #api: FakeApi;
  readonly #projects: Set<string>;
  readonly #accounts = new Map<string, FakeServiceAccount>();
  readonly #beforeCreate: Array<() => void> = [];

  private constructor(api: FakeApi, projects: readonly string[]) {
    this.#api = api;
    this.#projects = new Set(projects);
  }

  static async start(options: { projects: readonly string[] }): Promise<IamAdminFake> {
    // Requests arrive only once the fake below exists.
    const api = await startFakeApi((request) => fake.#answer(request));
    const fake = new IamAdminFake(api, options.projects);
    return fake;
  }

  /** Base URL, the form CONVERGENCE_IAM_ENDPOINT takes. */
  get url(): string {
    return this.#api.base;
  }

  /** Every request so far, oldest first. */
  get requests(): RecordedRequest[] {
    return this.#api.requests;
  }

  /** Whether a project is one the fake serves: accounts under other projects' domains are not its to judge. */
  knowsProject(project: string): boolean {
    return this.#projects.has(project);
  }

  has(email: string): boolean {
    return this.#accounts.has(email);
  }

  accounts(): FakeServiceAccount[] {
    return [...this.#accounts.values()].map((account) => ({ ...account }));
  }

  /** An account made by someone else (the console, another tool). */
  addAccount(project: string, accountId: string, displayName = ''): FakeServiceAccount {
    this.#projects.add(project);
    return this.#store(project, accountId, displayName, '');
  }

  /** Runs `change` once, right before the next create is decided: another writer racing it. */
  beforeNextCreate(change: () => void): void {
    this.#beforeCreate.push(change);
  }

  close(): Promise<void> {
    return this.#api.close();
  }

  #answer(request: RecordedRequest): FakeReply {
    return asCaller(request.headers.authorization, () => {
      const path = request.url.pathname;
      const account = ACCOUNT_PATH.exec(path);
      if (request.method === 'GET' && account) return this.#get(decodeURIComponent(account[1]!), decodeURIComponent(account[2]!));
      const collection = COLLECTION_PATH.exec(path);
      if (request.method === 'POST' && collection) return this.#create(decodeURIComponent(collection[1]!), request.body);
      return googleError(404, 'NOT_FOUND', `The requested URL ${path} was not found on this server.`);
    });
  }

  #held(): ReadonlySet<string> {
    const caller = currentCaller();
    return caller === undefined ? this.granted : (this.grantedTo.get(caller) ?? new Set());
  }

  #get(project: string, id: string): FakeReply {
    const found = this.#accounts.get(id) ?? [...this.#accounts.values()].find((candidate) => candidate.uniqueId === id);
    const inProject = found && (project === '-' || project === found.projectId) ? found : undefined;
    // Google tells "missing" from "not yours to see" only to a caller allowed to read accounts.
    if (!this.#held().has('iam.serviceAccounts.get')) return permissionDenied('iam.serviceAccounts.get');
    if (!inProject)
      return googleError(404, 'NOT_FOUND', 'Unknown service account', {
        errors: [{ domain: 'global', reason: 'notFound', message: 'Unknown service account' }],
      });
    return { status: 200, body: inProject };
  }

  #create(project: string, rawBody: string): FakeReply {
    if (!this.#projects.has(project) || !this.#held().has('iam.serviceAccounts.create'))
      return permissionDenied('iam.serviceAccounts.create');
    let body: { accountId?: unknown; serviceAccount?: { displayName?: unknown; description?: unknown } };
    try {
      body = JSON.parse(rawBody || '{}') as typeof body;
    } catch {
      return googleError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.');
    }
    const accountId = typeof body.accountId === 'string' ? body.accountId : '';
    if (!ACCOUNT_ID.test(accountId)) {
      return googleError(
        400,
        'INVALID_ARGUMENT',
        `Invalid account ID "${accountId}": it must be 6-30 characters long and match the regular expression [a-z]([-a-z0-9]*[a-z0-9]).`,
      );
    }
    const displayName = typeof body.serviceAccount?.displayName === 'string' ? body.serviceAccount.displayName : '';
    if (displayName.length > MAX_DISPLAY_NAME) {
      return googleError(400, 'INVALID_ARGUMENT', `Display name must be at most ${MAX_DISPLAY_NAME} characters.`);
    }
    for (const change of this.#beforeCreate.splice(0)) change();
    const email = `${accountId}@${project}.iam.gserviceaccount.com`;
    if (this.#accounts.has(email)) {
      const message = `Service account ${accountId} already exists within project projects/${project}.`;
      return googleError(409, 'ALREADY_EXISTS', message, {
        errors: [{ domain: 'global', reason: 'alreadyExists', message }],
        details: [{ '@type': 'type.googleapis.com/google.rpc.ResourceInfo', resourceName: `projects/${project}/serviceAccounts/${email}` }],
      });
    }
    const description = typeof body.serviceAccount?.description === 'string' ? body.serviceAccount.description : '';
    return { status: 200, body: this.#store(project, accountId, displayName, description) };
  }

  #store(project: string, accountId: string, displayName: string, description: string): FakeServiceAccount {
    const email = `${accountId}@${project}.iam.gserviceaccount.com`;
    const uniqueId = newUniqueId();
    const account: FakeServiceAccount = {
      name: `projects/${project}/serviceAccounts/${email}`,
      projectId: project,
      uniqueId,
      email,
      displayName,
      description,
      etag: randomBytes(8).toString('base64'),
      oauth2ClientId: uniqueId,
      disabled: false,
    };
    this.#accounts.set(email, account);
    return account;
  }
}
