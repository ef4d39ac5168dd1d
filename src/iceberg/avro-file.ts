import { Schema, Type, createFileDecoder, types } from 'avsc';

/**
 * Reads the Avro object container files Iceberg keeps its manifest lists and manifests in (Iceberg spec v2,
 * "Manifests" and "Manifest Lists"), with avsc. The writer's schema comes from the file's header
 * (`avro.schema`), so no schema is assumed here: fields are found by their Iceberg `field-id`, as the spec
 * reads columns (by id, not by name), through `FieldIds`.
 *
 * Longs are read as BigInt: snapshot ids are random 64-bit numbers, which avsc's default long refuses to
 * round ("potential precision loss").
 */

/** Avro longs as BigInt (avsc's custom long type: the 8 bytes little-endian, two's complement). */
export const BIGINT_LONG = types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(0),
  toBuffer: (n: bigint) => {
    const buf = Buffer.alloc(8);
    buf.writeBigInt64LE(BigInt(n));
    return buf;
  },
  fromJSON: (value: number | string) => BigInt(value),
  toJSON: (n: bigint) => n.toString(),
  isValid: (n: unknown) => typeof n === 'bigint',
  compare: (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0),
});

/** An Avro type of a schema, with BigInt longs (also what a test writes Iceberg-shaped files with). */
export function avroType(schema: Schema): Type {
  return Type.forSchema(schema, { registry: { long: BIGINT_LONG } });
}

export interface AvroFile {
  /** The header's key-value metadata as text (Iceberg's `format-version`, `content`, `partition-spec`...). */
  meta: Record<string, string>;
  /** The writer's schema (the header's `avro.schema`), with its `field-id` attributes. */
  schema: AvroRecordSchema;
  records: Record<string, unknown>[];
}

export interface AvroRecordSchema {
  type: 'record';
  name: string;
  fields: { name: string; type: unknown; 'field-id'?: number }[];
}

/** Reads a whole Avro object container file (deflate or uncompressed, as Iceberg's writers use). */
export function readAvroFile(file: string): Promise<AvroFile> {
  return new Promise((resolve, reject) => {
    let meta: Record<string, string> = {};
    let schema: AvroRecordSchema | undefined;
    const records: Record<string, unknown>[] = [];
    createFileDecoder(file, {
      parseHook: (raw) => {
        schema = raw as AvroRecordSchema;
        return avroType(raw);
      },
    })
      .on('metadata', (_type: Type, _codec: string, header: { meta: Record<string, Buffer> }) => {
        meta = Object.fromEntries(Object.entries(header.meta).map(([k, v]) => [k, v.toString('utf8')]));
      })
      .on('data', (record: Record<string, unknown>) => records.push(record))
      .on('error', (error: Error) => reject(new Error(`${file}: not a readable Avro file: ${error.message}`)))
      .on('end', () => {
        if (schema?.type !== 'record') reject(new Error(`${file}: its Avro schema is not a record`));
        else resolve({ meta, schema, records });
      });
  });
}

/** The fields of an Avro record schema by their Iceberg field id. */
export class FieldIds {
  private readonly byId = new Map<number, { name: string; type: unknown }>();

  constructor(
    readonly schema: AvroRecordSchema,
    private readonly where: string,
  ) {
    for (const field of schema.fields)
      if (typeof field['field-id'] === 'number') this.byId.set(field['field-id'], field);
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** The field's value in a record of this schema; throws naming the file and the field when absent. */
  value(record: Record<string, unknown>, id: number, what: string): unknown {
    const field = this.byId.get(id);
    if (!field) throw new Error(`${this.where}: no field ${id} (${what}) in its ${this.schema.name} schema`);
    return record[field.name];
  }

  /** The nested record schema of a field (a struct field, maybe optional: ["null", record]). */
  nested(id: number, what: string): FieldIds {
    const type = this.byId.get(id)?.type;
    const record = (Array.isArray(type) ? type : [type]).find(
      (t): t is AvroRecordSchema => typeof t === 'object' && t !== null && (t as AvroRecordSchema).type === 'record',
    );
    if (!record) throw new Error(`${this.where}: field ${id} (${what}) is not a record in its schema`);
    return new FieldIds(record, this.where);
  }
}
