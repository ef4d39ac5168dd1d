'use strict';
/** Pieces of CloudFormation that deploy/glue-resources.js and deploy/operate-resources.js share. */

/** snake_case to PascalCase, for logical ids: customer_landing -> CustomerLanding. */
const pascal = (name) =>
  name
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/** A column as the Catalog takes it; the comment only where there is one. */
const catalogColumn = (c) => ({
  Name: c.name,
  Type: c.type,
  ...(c.comment === undefined ? {} : { Comment: c.comment }),
});

/** An external AWS::Glue::Table of this stack's database: what every table here has in common. */
function externalTable({ name, description, classification, partitionKeys, storage }) {
  return {
    Type: 'AWS::Glue::Table',
    Properties: {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseName: { Ref: 'GlueDatabase' },
      TableInput: {
        Name: name,
        Description: description,
        TableType: 'EXTERNAL_TABLE',
        Parameters: { classification, EXTERNAL: 'TRUE' },
        ...(partitionKeys ? { PartitionKeys: partitionKeys.map(catalogColumn) } : {}),
        StorageDescriptor: storage,
      },
    },
  };
}

/**
 * An AWS::Glue::Table over JSON-lines objects under `location` (a Fn::Sub string), read by Athena with
 * the OpenX JSON SerDe. `columns` are { name, type, comment } as src/sql/ddl.ts and src/definition/support-tables.ts
 * give them.
 */
function jsonLinesTableResource({ name, description, columns, location, serdeParameters }) {
  return externalTable({
    name,
    description,
    classification: 'json',
    storage: {
      Columns: columns.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })),
      Location: { 'Fn::Sub': location },
      InputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
      OutputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
      SerdeInfo: {
        SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
        ...(serdeParameters ? { Parameters: serdeParameters } : {}),
      },
    },
  });
}

/**
 * An AWS::Glue::Table over Parquet files under `location` (a Fn::Sub string), as the Glue jobs write them
 * (the glueparquet sink); `columns` and `partitionKeys` are { name, type, comment? }
 * (src/definition/derived-tables.ts).
 */
function parquetTableResource({ name, description, columns, partitionKeys, location }) {
  return externalTable({
    name,
    description,
    classification: 'parquet',
    partitionKeys,
    storage: {
      Columns: columns.map(catalogColumn),
      Location: { 'Fn::Sub': location },
      InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
      OutputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
      SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
    },
  });
}

/** The Iceberg type of a Hive column type the derived tables use (Iceberg spec, "Primitive Types"). */
const ICEBERG_TYPES = { string: 'string', bigint: 'long', int: 'int', double: 'double' };

/**
 * An Apache Iceberg table (format version 2) of this stack's database: Glue writes its first metadata file
 * at `location` when the stack creates it (AWS::Glue::Table OpenTableFormatInput: IcebergInput with
 * MetadataOperation CREATE, and IcebergTableInput's Schema and PartitionSpec, which CloudFormation takes
 * since Iceberg partitions are hidden: a Hive PartitionKeys list is refused for an Iceberg table). Each
 * partition key is an identity partition of its column, as the Parquet tables were partitioned by folder.
 */
function icebergTableResource({ name, description, columns, partitionKeys, location }) {
  const all = [...columns, ...partitionKeys];
  const icebergType = (c) => {
    const type = ICEBERG_TYPES[c.type];
    if (!type) throw new Error(`${name}.${c.name}: no Iceberg type for ${c.type}`);
    return type;
  };
  return {
    Type: 'AWS::Glue::Table',
    Properties: {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseName: { Ref: 'GlueDatabase' },
      TableInput: {
        Name: name,
        Description: description,
        TableType: 'EXTERNAL_TABLE',
        StorageDescriptor: { Columns: all.map(catalogColumn), Location: { 'Fn::Sub': location } },
      },
      OpenTableFormatInput: {
        IcebergInput: {
          MetadataOperation: 'CREATE',
          Version: '2',
          IcebergTableInput: {
            Location: { 'Fn::Sub': location },
            Schema: {
              Type: 'struct',
              Fields: all.map((c, i) => ({ Id: i + 1, Name: c.name, Type: icebergType(c), Required: false })),
            },
            PartitionSpec: {
              SpecId: 0,
              Fields: partitionKeys.map((k, i) => ({
                SourceId: all.indexOf(k) + 1,
                FieldId: 1000 + i,
                Name: k.name,
                Transform: 'identity',
              })),
            },
            Properties: { 'format-version': '2' },
          },
        },
      },
    },
  };
}

module.exports = { pascal, jsonLinesTableResource, parquetTableResource, icebergTableResource };
