"""Process: CLI, configuration, wiring, control socket, metrics, systemd notify, signals,
logging.

``pssync`` is :func:`daemon.cli.main`; ``pssync run`` is :func:`daemon.service.run_service`.
"""

from .config import Config as Config
from .config_load import load_config as load_config
from .config_load import parse_config as parse_config
from .errors import ConfigErrors as ConfigErrors
from .logging import configure_logging as configure_logging
from .redaction import REDACTOR as REDACTOR
from .redaction import Redactor as Redactor
from .secrets import Secret as Secret
from .secrets import SecretRef as SecretRef
from .secrets import SecretResolver as SecretResolver
from .secrets import resolve_all as resolve_all
from .systemd import Notifier as Notifier
