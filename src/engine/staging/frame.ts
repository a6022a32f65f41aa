import pl from 'nodejs-polars';
import type { Expr, LazyDataFrame } from 'nodejs-polars';
import type { FieldSpec } from '../../backends/warehouse/port.ts';
import { REASON_COLUMN, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN } from '../../backends/warehouse/staged.ts';
import { asText, directCast, nullOf, parseText, POLARS_TYPE, preparedText, type RawColumn } from './typing.ts';

/**
 * Turns a frame of raw source columns into a staged frame: the destination columns, typed, then
 * `__reason`, `__source_file`, `__source_row`. Three selects, so each intermediate is computed once
 * per chunk: polars' streaming engine does not share a sub-expression used in several places, and
 * the parsed value is used by the output, the invalid test and the message.
 *   1. source:   the raw column, or its prepared (trimmed, blank -> null) text;
 *   2. value:    the typed value, next to its source;
 *   3. output:   values under their names, and the row's reasons.
 */
export interface TypeFrameOptions {
  /** A problem of the whole row found before typing (ragged line, malformed JSON): it replaces the column reasons. */
  rowReason?: Expr;
  /** Incremental cursor: a row without one is quarantined, as it could never be compared with the saved cursor. */
  cursorField?: string;
  sourceFile: Expr;
  sourceRow: Expr;
}

/** One reason; `message` is null wherever `when` is false (polars computes both branches of a when for every row). */
interface Problem {
  when: Expr;
  message: Expr;
}

const nullText = () => nullOf(pl.Utf8);
const fixed = (when: Expr, message: string): Problem => ({ when, message: pl.when(when).then(pl.lit(message)).otherwise(nullText()) });
const SHOWN_CHARS = 80;
const ROW_REASON = '#row_reason';

export function typeFrame(
  frame: LazyDataFrame,
  fields: FieldSpec[],
  rawFor: (field: FieldSpec) => RawColumn | undefined,
  options: TypeFrameOptions,
): LazyDataFrame {
  const sources: Expr[] = [];
  const values: Expr[] = [];
  const outputs: Expr[] = [];
  const problems: Problem[] = [];
  fields.forEach((field, i) => {
    const raw = rawFor(field);
    const required = field.mode === 'REQUIRED';
    if (!raw) {
      outputs.push(nullOf(POLARS_TYPE[field.type]).alias(field.name));
      if (required) problems.push(fixed(pl.lit(true), `${field.name}: required column is missing from the source`));
      else if (field.name === options.cursorField) problems.push(fixed(pl.lit(true), `${field.name}: incremental cursor value is missing`));
      return;
    }
    const source = `#source${i}`;
    const value = `#value${i}`;
    const direct = directCast(pl.col(source), raw.dtype, field.type);
    sources.push((direct ? raw.expr : preparedText(asText(raw.expr, raw.dtype), field.type)).alias(source));
    values.push(pl.col(source), (direct ?? parseText(pl.col(source), field.type)).cast(POLARS_TYPE[field.type]).alias(value));
    outputs.push(pl.col(value).alias(field.name));

    const present = pl.col(source).isNotNull();
    const invalid = present.and(pl.col(value).isNull());
    const text = direct ? asText(pl.col(source), raw.dtype) : pl.col(source);
    const shown = pl.when(invalid).then(text.str.slice(0, SHOWN_CHARS)).otherwise(nullText());
    problems.push({
      when: invalid,
      message: pl.concatString([pl.lit(`${field.name}: '`), shown, pl.lit(`' is not a valid ${field.type}`)], '', false),
    });
    if (required) problems.push(fixed(present.not(), `${field.name}: required value is missing`));
    else if (field.name === options.cursorField) problems.push(fixed(present.not(), `${field.name}: incremental cursor value is missing`));
  });

  const carried = [ROW_REASON, SOURCE_FILE_COLUMN, SOURCE_ROW_COLUMN].map((c) => pl.col(c));
  const columnReasons =
    problems.length === 0
      ? nullText()
      : pl
          .when(pl.anyHorizontal(problems.map((p) => p.when)))
          .then(
            pl.concatString(
              problems.map((p) => p.message),
              '; ',
              true,
            ),
          )
          .otherwise(nullText());
  const reason = pl.when(pl.col(ROW_REASON).isNotNull()).then(pl.col(ROW_REASON)).otherwise(columnReasons);
  return frame
    .select(
      ...sources,
      (options.rowReason ?? nullText()).cast(pl.Utf8).alias(ROW_REASON),
      options.sourceFile.cast(pl.Utf8).alias(SOURCE_FILE_COLUMN),
      options.sourceRow.cast(pl.Int64).alias(SOURCE_ROW_COLUMN),
    )
    .select(...values, ...carried)
    .select(...outputs, reason.alias(REASON_COLUMN), pl.col(SOURCE_FILE_COLUMN), pl.col(SOURCE_ROW_COLUMN));
}
