/** Column types and the values that cross the Warehouse port; shared by the port, its dialects and parameter collectors. */
export type FieldType = 'STRING' | 'INT64' | 'FLOAT64' | 'NUMERIC' | 'BOOL' | 'TIMESTAMP' | 'DATE' | 'JSON' | 'BYTES';

export interface FieldSpec {
  name: string;
  type: FieldType;
  mode?: 'NULLABLE' | 'REQUIRED';
  description?: string;
}

export type Scalar = string | number | bigint | boolean | Date | null;
export type Row = Record<string, Scalar>;
