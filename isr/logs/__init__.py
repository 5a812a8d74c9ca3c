"""Function logs: one record per invocation, kept on disk, streamed live, counted."""
