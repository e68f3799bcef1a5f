"""The pages people use: the account pages (/account/), the admin console (/admin/) and the
API docs (/docs, /redoc), server-rendered with Jinja2 and served with their assets, under the
same cookie session, CSRF rules and strict content-security policy as the API."""
