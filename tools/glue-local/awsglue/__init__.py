"""A stand-in for the awsglue package of AWS Glue 5.1, for running Glue jobs on local Spark (tools/glue-local).

Only what AWS Glue adds to Spark, written from AWS's documentation (each module cites it) and read against
the public awslabs/aws-glue-libs (branch glue-5.1) for the Python API's names and signatures. Never deployed:
AWS Glue provides the real package. Importing this package does not import pyspark (awsglue.utils runs without it).
"""
