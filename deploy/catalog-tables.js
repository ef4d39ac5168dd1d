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
 * the OpenX JSON SerDe. `columns` are { name, type, comment } as src/sql/ddl.ts and src/support-tables.ts
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
 * (the glueparquet sink); `columns` and `partitionKeys` are { name, type, comment? } (src/derived-tables.ts).
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

module.exports = { pascal, jsonLinesTableResource, parquetTableResource };
