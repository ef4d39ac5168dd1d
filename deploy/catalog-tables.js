'use strict';
/** Pieces of CloudFormation that deploy/glue-resources.js and deploy/operate-resources.js share. */

/** snake_case to PascalCase, for logical ids: customer_landing -> CustomerLanding. */
const pascal = (name) =>
  name
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/**
 * An AWS::Glue::Table over JSON-lines objects under `location` (a Fn::Sub string), read by Athena with
 * the OpenX JSON SerDe. `columns` are { name, type, comment } as src/sql/ddl.ts and src/support-tables.ts
 * give them.
 */
function jsonLinesTableResource({ name, description, columns, location, serdeParameters }) {
  return {
    Type: 'AWS::Glue::Table',
    Properties: {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseName: { Ref: 'GlueDatabase' },
      TableInput: {
        Name: name,
        Description: description,
        TableType: 'EXTERNAL_TABLE',
        Parameters: { classification: 'json', EXTERNAL: 'TRUE' },
        StorageDescriptor: {
          Columns: columns.map((c) => ({ Name: c.name, Type: c.type, Comment: c.comment })),
          Location: { 'Fn::Sub': location },
          InputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          OutputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          SerdeInfo: {
            SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            ...(serdeParameters ? { Parameters: serdeParameters } : {}),
          },
        },
      },
    },
  };
}

/**
 * An AWS::Glue::Table over Parquet files under `location` (a Fn::Sub string), as the Glue jobs write them
 * (the glueparquet sink); `columns` and `partitionKeys` are { name, type } (src/derived-tables.ts).
 */
function parquetTableResource({ name, description, columns, partitionKeys, location }) {
  return {
    Type: 'AWS::Glue::Table',
    Properties: {
      CatalogId: { Ref: 'AWS::AccountId' },
      DatabaseName: { Ref: 'GlueDatabase' },
      TableInput: {
        Name: name,
        Description: description,
        TableType: 'EXTERNAL_TABLE',
        Parameters: { classification: 'parquet', EXTERNAL: 'TRUE' },
        PartitionKeys: partitionKeys.map((c) => ({ Name: c.name, Type: c.type })),
        StorageDescriptor: {
          Columns: columns.map((c) => ({ Name: c.name, Type: c.type })),
          Location: { 'Fn::Sub': location },
          InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          OutputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
          SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        },
      },
    },
  };
}

module.exports = { pascal, jsonLinesTableResource, parquetTableResource };
