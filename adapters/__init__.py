"""Vendor adapters, the shared HTTP layer, the rate governor and the sandbox."""

from .auth import AuthStrategy as AuthStrategy
from .auth import BearerToken as BearerToken
from .auth import NetSuiteM2M as NetSuiteM2M
from .auth import NetSuiteTba as NetSuiteTba
from .auth import OAuth2ClientCredentials as OAuth2ClientCredentials
from .auth import SalesforceJwtBearer as SalesforceJwtBearer
from .auth import salesforce_client_credentials as salesforce_client_credentials
from .backoff import RetryPolicy as RetryPolicy
from .classify import ErrorSignals as ErrorSignals
from .classify import Outcome as Outcome
from .classify import Verdict as Verdict
from .governor import Governor as Governor
from .governor import GovernorConfig as GovernorConfig
from .governor import GovernorSnapshot as GovernorSnapshot
from .governor import Lane as Lane
from .http import HttpConfig as HttpConfig
from .http import SystemClient as SystemClient
from .http import make_http_client as make_http_client
from .redaction import Redactor as Redactor
from .redaction import Secret as Secret
from .redaction import SecretValue as SecretValue
from .signals import KantataSignals as KantataSignals
from .signals import NetSuiteSignals as NetSuiteSignals
from .signals import SalesforceSignals as SalesforceSignals
from .signals import StripeSignals as StripeSignals
