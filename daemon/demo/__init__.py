"""``pssync demo``: the sandbox, the daemon and a month of a firm's business, one command.

- :func:`run_demo` (:mod:`.runner`) runs it all and returns the exit status;
  :class:`DemoOptions` (:mod:`.options`) are its knobs and pace;
- :mod:`.config` is the built-in configuration, :mod:`.calendar` the business dates,
  :mod:`.weeks` the scenario's weekly reports;
- :mod:`.readings` reads the journal and the sandbox, :mod:`.progress` shows them live,
  :mod:`.summary` checks and prints the end result.
"""

from .options import DemoOptions as DemoOptions
from .runner import run_demo as run_demo
