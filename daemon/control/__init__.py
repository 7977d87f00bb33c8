"""The operator control socket: newline-delimited JSON over a Unix stream socket.

- :mod:`.protocol`: the requests (a tagged union on ``op``), responses and error codes;
- :mod:`.lines`: a bounded line reader for trio streams;
- :mod:`.peer`: peer credentials and who may mutate;
- :mod:`.listener`: binding the socket (mode 0660, stale-socket handling);
- :mod:`.server`: the connection handler;
- :mod:`.operations`: what each operation does, against the running daemon;
- :mod:`.registry`: what system and workflow components register to be steered;
- :mod:`.reload`: configuration reload (socket and SIGHUP);
- :mod:`.client`: the blocking client the CLI uses.
"""

from .client import ControlClient as ControlClient
from .listener import ControlSocket as ControlSocket
from .listener import open_control_socket as open_control_socket
from .operations import DaemonControl as DaemonControl
from .peer import CredentialPolicy as CredentialPolicy
from .peer import Peer as Peer
from .protocol import MAX_LINE_BYTES as MAX_LINE_BYTES
from .protocol import PROTOCOL_VERSION as PROTOCOL_VERSION
from .registry import ControlRegistry as ControlRegistry
from .registry import GovernorView as GovernorView
from .registry import Pausable as Pausable
from .registry import ReloadHook as ReloadHook
from .reload import Reloader as Reloader
from .reload import Settings as Settings
from .reload import config_diff as config_diff
from .server import ControlServer as ControlServer
