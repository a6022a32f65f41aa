import type { Scalar } from './columns.ts';

export interface ParamsOptions {
  /**
   * How a placeholder starts: `@name` is what Warehouse.query takes on every adapter (and
   * BigQuery's own form), `$name` is DuckDB's own.
   */
  placeholder?: '@' | '$';
  /** The most values one statement may bind, and the error to throw past it. */
  limit?: { max: number; error: () => Error };
}

/**
 * Collects the values one statement binds, named p0, p1, ... in order; the SQL text only ever
 * holds the placeholders `add` returns, never a value. `Value` is the form the adapter sends:
 * the port's Scalars for Warehouse.query, DuckDB values, or BigQuery's typed parameters.
 */
export class Params<Value = Scalar> {
  readonly values: Record<string, Value> = {};
  readonly #placeholder: '@' | '$';
  readonly #limit: ParamsOptions['limit'];
  #count = 0;

  constructor(options: ParamsOptions = {}) {
    this.#placeholder = options.placeholder ?? '@';
    this.#limit = options.limit;
  }

  /** Binds a value; returns its placeholder. */
  add(value: Value): string {
    return this.addNamed(() => value);
  }

  /** Binds the value `make` builds from the parameter's name (BigQuery's parameters carry it); returns its placeholder. */
  addNamed(make: (name: string) => Value): string {
    const name = `p${this.#count++}`;
    this.values[name] = make(name);
    if (this.#limit && this.#count > this.#limit.max) throw this.#limit.error();
    return `${this.#placeholder}${name}`;
  }
}
