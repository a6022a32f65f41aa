/**
 * Redaction of known secret values. A secret sent to a remote API comes back in forms other than
 * the one that was sent: percent-encoded in an echoed URL, form-encoded in an echoed query,
 * JSON-escaped in an echoed body. A Redactor replaces every such spelling of every value it holds.
 *
 * Two uses: one Redactor per REST source, built from exactly the values that source renders into
 * its requests (precise, applied to every error and log text of that source); and one process-wide
 * registry of every secret this process has resolved, applied where run errors, step logs, job log
 * lines and API error bodies are written, as a last line of defence.
 */

const REDACTED = '[REDACTED]';

/** Shorter values are not redacted: replacing every "abc" would garble messages and hide nothing. */
const MIN_SECRET_LENGTH = 4;

/** How many values the process-wide registry keeps; the oldest are forgotten first. */
const PROCESS_REGISTRY_LIMIT = 10_000;

function tryOr(fallback: string, make: () => string): string {
  try {
    return make();
  } catch {
    return fallback;
  }
}

/** The spellings a value takes in echoed URLs, queries and JSON bodies (itself included). */
export function spellingsOf(value: string): string[] {
  const forms = new Set<string>([
    value,
    tryOr(value, () => encodeURIComponent(value)),
    new URLSearchParams({ v: value }).toString().slice(2),
    tryOr(value, () => new URL(`http://h/${value}`).pathname.slice(1)),
    JSON.stringify(value).slice(1, -1),
  ]);
  // Servers that re-encode may use lower-case hex digits.
  for (const form of [...forms]) if (form.includes('%')) forms.add(form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  return [...forms].filter((form) => form.length >= MIN_SECRET_LENGTH);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Redactor {
  readonly #values = new Set<string>();
  readonly #limit: number;
  #pattern: RegExp | null | undefined;

  constructor(values: Iterable<string> = [], options: { limit?: number } = {}) {
    this.#limit = options.limit ?? Infinity;
    for (const value of values) this.add(value);
  }

  /** Adds a value (and all its spellings); values too short to redact are ignored. */
  add(value: string | undefined | null): void {
    if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH || this.#values.has(value)) return;
    this.#values.add(value);
    if (this.#values.size > this.#limit) this.#values.delete(this.#values.values().next().value!);
    this.#pattern = undefined;
  }

  get size(): number {
    return this.#values.size;
  }

  /** The text with every spelling of every held value replaced by [REDACTED]. */
  redact(text: string): string {
    const pattern = this.#compiled();
    return pattern ? text.replace(pattern, REDACTED) : text;
  }

  /** Strings anywhere inside a JSON-like value (objects, arrays) redacted; other values kept. */
  redactDeep<T>(value: T): T {
    if (this.#compiled() === null) return value;
    return this.#deep(value, new WeakSet()) as T;
  }

  /**
   * Redacts an error in place, with everything it carries: message, stack, its own string fields
   * (a URL, a body excerpt) and its causes, so the error may be rethrown, logged or wrapped safely.
   */
  redactError<E>(error: E): E {
    if (this.#compiled() === null) return error;
    const seen = new WeakSet<object>();
    const visit = (err: unknown): void => {
      if (!err || typeof err !== 'object' || seen.has(err)) return;
      seen.add(err);
      const fields = err as Record<string, unknown>;
      for (const key of ['message', 'stack', ...Object.keys(err)]) {
        const value = fields[key];
        if (typeof value === 'string') {
          const clean = this.redact(value);
          if (clean !== value) Object.defineProperty(err, key, { value: clean, writable: true, configurable: true });
        }
      }
      visit(fields.cause);
      if (Array.isArray(fields.errors)) for (const inner of fields.errors) visit(inner);
    };
    visit(error);
    return error;
  }

  #deep(value: unknown, seen: WeakSet<object>): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (!value || typeof value !== 'object' || value instanceof Date || seen.has(value)) return value;
    seen.add(value);
    if (Array.isArray(value)) return value.map((item) => this.#deep(item, seen));
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.#deep(v, seen)]));
  }

  #compiled(): RegExp | null {
    if (this.#pattern !== undefined) return this.#pattern;
    const spellings = [...new Set([...this.#values].flatMap(spellingsOf))].sort((a, b) => b.length - a.length);
    // Longest first, so a value containing another is replaced whole.
    this.#pattern = spellings.length ? new RegExp(spellings.map(escapeRegExp).join('|'), 'g') : null;
    return this.#pattern;
  }
}

/** The credentials of a URL's userinfo: the password, or the user name when it stands alone (a token). */
export function userinfoSecrets(url: string | URL): string[] {
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return [];
  }
  const decode = (part: string) => tryOr(part, () => decodeURIComponent(part));
  if (parsed.password) return [parsed.password, decode(parsed.password)];
  if (parsed.username) return [parsed.username, decode(parsed.username)];
  return [];
}

/** The Authorization value of HTTP basic auth, whose base64 hides both parts from a plain search. */
export const basicCredentials = (username: string, password: string) => Buffer.from(`${username}:${password}`).toString('base64');

const processSecrets = new Redactor([], { limit: PROCESS_REGISTRY_LIMIT });

/** Remembers a secret this process resolved, so no later message of the process can show it. */
export function rememberSecret(value: string | undefined | null): void {
  processSecrets.add(value);
}

/** Text with every secret this process has resolved replaced. */
export const redactKnownSecrets = (text: string): string => processSecrets.redact(text);

/** A JSON-like value with every secret this process has resolved replaced in its strings. */
export const redactKnownSecretsDeep = <T>(value: T): T => processSecrets.redactDeep(value);

/** What looks like a credential in text that may come from anywhere (a container's own log lines). */
const CREDENTIAL_PATTERNS: Array<[RegExp, string]> = [
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}/gi, '$1 [REDACTED]'],
  [/\b([a-z][a-z0-9_]{2,49}_api_)[0-9A-Za-z]{43}\b/g, '$1[REDACTED]'],
  [/\badmin_[0-9A-Za-z]{43}\b/g, 'admin_[REDACTED]'],
  [
    /\b((?:access_?token|refresh_?token|token|password|passwd|secret|api[_-]?key|client_secret|authorization)["']?\s*[:=]\s*["']?)[^\s"'&,;}]+/gi,
    '$1[REDACTED]',
  ],
  [/(\/\/[^/\s:@]+:)[^@\s/]+@/g, '$1[REDACTED]@'],
];

/**
 * Masks credentials in free text: every secret this process resolved (in any spelling), then
 * whatever looks like one: bearer tokens, API keys, key=value secrets, URL passwords.
 */
export function redactCredentials(text: string): string {
  let out = redactKnownSecrets(text);
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}
