/**
 * One resource's IAM policy in a fake, read and written under its etag as Google does: a write
 * carrying the etag of an older read is refused (the caller's read-modify-write must start
 * again), a write without an etag overwrites. gRPC and REST fakes translate the refusal into
 * their API's own error.
 */
export interface FakeBinding {
  role: string;
  members: string[];
}

export class FakePolicy {
  #bindings: FakeBinding[] = [];
  #revision = 0;

  /** The etag of the current policy (base64, as REST shows it; gRPC sends its bytes). */
  get etag(): string {
    return Buffer.from(`policy-${this.#revision}`).toString('base64');
  }

  get bindings(): FakeBinding[] {
    return this.#bindings.map((binding) => ({ role: binding.role, members: [...binding.members] }));
  }

  /** Members holding `role`. */
  members(role: string): string[] {
    return this.#bindings.find((binding) => binding.role === role)?.members ?? [];
  }

  /** Test setup: a binding someone else made, which changes the etag like any write. */
  add(role: string, member: string): void {
    const next = this.bindings;
    const binding = next.find((candidate) => candidate.role === role);
    if (binding) binding.members = [...new Set([...binding.members, member])];
    else next.push({ role, members: [member] });
    this.#bindings = next;
    this.#revision += 1;
  }

  /** Writes the policy; false (nothing written) when `etag` is from an older read. */
  set(bindings: FakeBinding[], etag: string | undefined): boolean {
    if (etag && etag !== this.etag) return false;
    this.#bindings = bindings
      .filter((binding) => binding.members.length > 0)
      .map((binding) => ({ role: binding.role, members: [...binding.members] }));
    this.#revision += 1;
    return true;
  }
}

/** What Google says when a policy write carries a stale etag. */
export const CONCURRENT_POLICY_CHANGE =
  'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.';
