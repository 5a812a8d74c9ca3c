"""Imported by the forkserver as it starts, and by nothing else.

The forkserver is the parent of every worker; it dies with the server (which starts
it from its main thread, the thread PR_SET_PDEATHSIG watches), and each worker dies
with it, so a `kill -9` of the server leaves no worker behind, stuck ones included.
"""

from isr.runtime import worker  # noqa: F401  (loaded once here, inherited by every worker)
from isr.runtime.limits import die_with_parent

die_with_parent()
