/**
 * BigQuery's concurrency rules for the tables of the fake, apart from how statements run.
 *
 * Mutating DML (UPDATE, DELETE, MERGE; TRUNCATE TABLE too) runs at most 2 statements per table at
 * once; up to 20 more wait in the table's queue (their job is PENDING) and run as others finish;
 * beyond that BigQuery refuses the statement. INSERT is not a mutating statement: it is limited
 * only after 1,500 a day (10 running, 100 queued), which no test reaches, so INSERT runs at once.
 *
 * Multi-statement transactions read a snapshot taken at BEGIN TRANSACTION. A transaction that
 * mutated a table another writer mutated and committed after that snapshot is aborted at its
 * COMMIT ("conflicting transactions are cancelled"), as BigQuery does; its changes are rolled back.
 */
import { FakeError } from './errors.ts';

/** BigQuery runs this many mutating DML statements per table at once. */
export const RUNNING_DML_PER_TABLE = 2;
/** And queues this many more per table before refusing one. */
export const QUEUED_DML_PER_TABLE = 20;

export const MUTATING_DML = /^(UPDATE|DELETE|MERGE|TRUNCATE)\b/i;

interface TableQueue {
  running: number;
  waiting: Array<() => void>;
}

/** A transaction's view: when it began and the tables it has mutated so far. */
export interface TransactionSnapshot {
  since: number;
  mutated: Set<string>;
}

export class TableLocks {
  readonly #project: string;
  readonly #queues = new Map<string, TableQueue>();
  /** Commits that mutated a table, counted; and the count at each table's last such commit. */
  #commits = 0;
  readonly #lastMutation = new Map<string, number>();

  constructor(project: string) {
    this.#project = project;
  }

  /**
   * Takes one of the table's running slots for a mutating statement, waiting in its queue when
   * both are taken (`onQueued(true)` while it waits); returns the release. A full queue refuses.
   */
  async mutatingSlot(table: string, onQueued: (queued: boolean) => void = () => undefined): Promise<() => void> {
    const queue = this.#queues.get(table) ?? { running: 0, waiting: [] };
    this.#queues.set(table, queue);
    if (queue.running < RUNNING_DML_PER_TABLE) {
      queue.running++;
    } else {
      if (queue.waiting.length >= QUEUED_DML_PER_TABLE) {
        throw new FakeError(
          400,
          'invalidQuery',
          `Too many DML statements outstanding against table ${this.#project}:${table}, limit is ${QUEUED_DML_PER_TABLE}.`,
        );
      }
      onQueued(true);
      // The slot is handed over by the statement that releases it, so none can jump the queue.
      await new Promise<void>((resolve) => queue.waiting.push(resolve));
      onQueued(false);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = queue.waiting.shift();
      if (next) next();
      else queue.running--;
    };
  }

  /** How many mutating statements run and wait on a table now. */
  load(table: string): { running: number; queued: number } {
    const queue = this.#queues.get(table);
    return { running: queue?.running ?? 0, queued: queue?.waiting.length ?? 0 };
  }

  begin(): TransactionSnapshot {
    return { since: this.#commits, mutated: new Set() };
  }

  /** A mutation outside a transaction is committed with its statement. */
  committed(tables: Iterable<string>): void {
    this.#commits++;
    for (const table of tables) this.#lastMutation.set(table, this.#commits);
  }

  /**
   * COMMIT of a transaction: refused when another writer committed a mutation of one of its
   * mutated tables after it began; otherwise recorded at once, before the database commits, so
   * that of two transactions committing together exactly one wins.
   */
  commit(transaction: TransactionSnapshot): void {
    for (const table of transaction.mutated) {
      if ((this.#lastMutation.get(table) ?? 0) > transaction.since) throw this.aborted(table);
    }
    if (transaction.mutated.size > 0) this.committed(transaction.mutated);
  }

  /** BigQuery's error for the transaction that lost a race on `table` (dataset.table). */
  aborted(table: string): FakeError {
    return new FakeError(400, 'invalid', `Transaction is aborted due to concurrent update against table ${this.#project}:${table}.`);
  }

  /** BigQuery's error for a DML statement outside a transaction that kept conflicting. */
  unserializable(table: string): FakeError {
    return new FakeError(400, 'invalidQuery', `Could not serialize access to table ${this.#project}:${table} due to concurrent update`);
  }
}

/**
 * Statements held before they run, for tests that need jobs caught mid-flight (RUNNING, or
 * PENDING behind them) without relying on timing.
 */
interface Hold {
  match: RegExp;
  gate: Promise<void>;
  open: () => void;
  arrivals: number;
  notify: Array<() => void>;
}

export class StatementHolds {
  readonly #holds: Hold[] = [];

  /** Holds every statement matching `match` until `release()`; `arrived(n)` resolves once n wait. */
  hold(match: RegExp): { arrived: (count: number) => Promise<void>; release: () => void } {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const entry: Hold = { match, gate, open, arrivals: 0, notify: [] };
    this.#holds.push(entry);
    return {
      arrived: (count) =>
        new Promise<void>((resolve) => {
          const check = () => {
            if (entry.arrivals >= count) resolve();
          };
          entry.notify.push(check);
          check();
        }),
      release: () => this.#open(entry),
    };
  }

  /** Waits here while a hold matches the statement. */
  async pass(statement: string): Promise<void> {
    const entry = this.#holds.find((h) => h.match.test(statement));
    if (!entry) return;
    entry.arrivals++;
    for (const notify of entry.notify) notify();
    await entry.gate;
  }

  releaseAll(): void {
    for (const entry of [...this.#holds]) this.#open(entry);
  }

  #open(entry: Hold): void {
    const index = this.#holds.indexOf(entry);
    if (index >= 0) this.#holds.splice(index, 1);
    entry.open();
  }
}
