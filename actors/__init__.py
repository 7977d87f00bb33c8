"""The actor runtime and the canonical messages.

This package's top level holds only the runtime (actors, mailboxes, supervisor) and the
error hierarchy, so that ``store`` and ``adapters`` may import ``actors.errors`` and
``actors.messages`` without a cycle. System and workflow actors, which use adapters and the
store, live in the subpackages ``actors.systems`` and ``actors.workflows``.
"""

from .errors import (
    ActorError as ActorError,
)
from .errors import (
    ActorFailed as ActorFailed,
)
from .errors import (
    AskTimeout as AskTimeout,
)
from .errors import (
    MailboxClosed as MailboxClosed,
)
from .errors import (
    PssyncError as PssyncError,
)
