"""awsglue.dynamicframe.DynamicFrame: only the conversion from and to a Spark DataFrame.

AWS Glue guide, "DynamicFrame class" (https://docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-dynamic-frame.html):
fromDF(dataframe, glue_ctx, name) "converts a DataFrame to a DynamicFrame by converting DataFrame fields to
DynamicRecord fields" and toDF() converts back. The stand-in keeps the DataFrame itself: the jobs hand a
DataFrame to a sink and never use DynamicFrame transforms, so the records' fields and types are the
DataFrame's (a DynamicFrame converted from a DataFrame has its schema).
"""

from __future__ import annotations

from typing import Any


class DynamicFrame:
    def __init__(self, dataframe: Any, glue_ctx: Any, name: str = "") -> None:
        self._df = dataframe
        self.glue_ctx = glue_ctx
        self.name = name

    @classmethod
    def fromDF(cls, dataframe: Any, glue_ctx: Any, name: str = "") -> "DynamicFrame":  # noqa: N802 - awsglue's name
        return cls(dataframe, glue_ctx, name)

    def toDF(self) -> Any:  # noqa: N802 - awsglue's name
        return self._df

    def count(self) -> int:
        return self._df.count()

    def schema(self) -> Any:
        return self._df.schema
