"""Auth strategies for the shared HTTP layer: static bearer keys, OAuth 2.0 client
credentials (with token caching and single-flight refresh), Salesforce JWT bearer,
NetSuite client credentials (M2M, certificate-signed JWT) and NetSuite Token-Based
Authentication (OAuth 1.0a, HMAC-SHA256)."""

from .base import AuthStrategy as AuthStrategy
from .bearer import BearerToken as BearerToken
from .jwt_bearer import SalesforceJwtBearer as SalesforceJwtBearer
from .jwt_bearer import rs256_jwt as rs256_jwt
from .netsuite_m2m import NetSuiteM2M as NetSuiteM2M
from .netsuite_m2m import netsuite_token_url as netsuite_token_url
from .netsuite_tba import NetSuiteTba as NetSuiteTba
from .oauth2 import OAuth2ClientCredentials as OAuth2ClientCredentials
from .oauth2 import salesforce_client_credentials as salesforce_client_credentials
from .token import AccessToken as AccessToken
from .token import CachedTokenAuth as CachedTokenAuth
