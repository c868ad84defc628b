"""Credentials inside URIs (`s3://KEY:SECRET@bucket/...`, `https://user:pass@mlflow/`,
`?secret_key=...`) kept out of everything bench prints or stores: config.yaml, the resume
command, progress lines, MLflow parameters. The run itself keeps the URI as given."""

from __future__ import annotations

import re

MASK = "***"
# scheme://user:password@  (the user name stays: it says which account, not how to log in)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]+@")
# query parameters that carry a secret (pyarrow's S3 and GCS URIs take them)
_SECRET_PARAMETER = re.compile(
    r"(?P<head>[?&](?:secret_key|secret|session_token|token|password|passwd|access_token)=)"
    r"[^&\s'\"]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every URI's password and secret query values replaced by ***."""
    text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
    return _SECRET_PARAMETER.sub(rf"\g<head>{MASK}", text)


def masked(text: str) -> bool:
    """Whether `text` holds a credential that redact() replaced."""
    return f":{MASK}@" in text or f"={MASK}" in text
