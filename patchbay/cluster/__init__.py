"""Ray workers and batch jobs (a later issue): an ExecutionBackend that places tools by their Resources."""
