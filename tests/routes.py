"""Every route path the tests call, each written once; the versioned ones start from the app's
own prefix, so that a new version moves them all."""

from app.api.v1.prefix import API_V1

ROOT = "/"
HEALTH = "/health"
METRICS = "/metrics"
DOCS = "/docs"
OPENAPI = "/openapi.json"

AUTH = f"{API_V1}/auth/"
REGISTER = f"{AUTH}register"
LOGIN = f"{AUTH}login"
LOGIN_FORM = f"{AUTH}login-form"
REFRESH = f"{AUTH}refresh"
LOGOUT = f"{AUTH}logout"
REQUEST_VERIFY_TOKEN = f"{AUTH}request-verify-token"
VERIFY = f"{AUTH}verify"
FORGOT_PASSWORD = f"{AUTH}forgot-password"
RESET_PASSWORD = f"{AUTH}reset-password"
CONFIRM_EMAIL_CHANGE = f"{AUTH}confirm-email-change"
UNDO_EMAIL_CHANGE = f"{AUTH}undo-email-change"

USERS = f"{API_V1}/users/"
ME = f"{USERS}me"
MY_DATA = f"{ME}/export"
# The templates, as OpenAPI and the metrics name them; a path is f"{USERS}{user_id}".
USER = f"{USERS}{{user_id}}"
USER_VERIFICATION = f"{USER}/request-verify-token"

SESSIONS = f"{API_V1}/sessions/"
SESSION = f"{SESSIONS}{{session_id}}"
