"""The actor runtime and the canonical messages.

This package's top level holds only the runtime (actors, mailboxes, supervisor) and the
error hierarchy, so that ``store`` and ``adapters`` may import ``actors.errors`` and
``actors.messages`` without a cycle. System and workflow actors, which use adapters and the
store, live in the subpackages ``actors.systems`` and ``actors.workflows``.
"""

from .actor import (
    Actor as Actor,
)
from .ask import (
    Reply as Reply,
)
from .ask import (
    ask as ask,
)
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
from .health import (
    ActorHealth as ActorHealth,
)
from .health import (
    HealthView as HealthView,
)
from .interval import (
    Interval as Interval,
)
from .keyed import (
    KeyedExecutor as KeyedExecutor,
)
from .keyed import (
    open_keyed_executor as open_keyed_executor,
)
from .mailbox import (
    Mailbox as Mailbox,
)
from .supervisor import (
    ChildSpec as ChildSpec,
)
from .supervisor import (
    ChildState as ChildState,
)
from .supervisor import (
    ChildStatus as ChildStatus,
)
from .supervisor import (
    GetStatus as GetStatus,
)
from .supervisor import (
    Restart as Restart,
)
from .supervisor import (
    RestartPolicy as RestartPolicy,
)
from .supervisor import (
    Strategy as Strategy,
)
from .supervisor import (
    Supervisor as Supervisor,
)
