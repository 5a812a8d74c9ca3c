"""The invocation runtime: runs user code under its function's limits."""
