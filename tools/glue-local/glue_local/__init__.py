"""The harness that runs the stack's Glue jobs on local Spark against a local AWS (the moto server)."""
