"""The profile's `ca_file` (env DLPTUI_CA_FILE): a PEM bundle of the private CA that signed the cluster's
TLS certificates (the Helm values' TLS secrets), trusted beyond the system roots by the pachd, Determined
and Seldon gateway clients. It is read here, and only here: a missing file, one that cannot be read or
one that holds no PEM certificate is one sentence, never a traceback.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path

from dlptui.errors import InvalidInput, NotFound

PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)
WHERE = "ca_file (or DLPTUI_CA_FILE) of the cluster profile"


def read_ca_file(path: str | None) -> str | None:
    """The certificates of the file at `path` as PEM text (only the certificate blocks, each checked by
    OpenSSL), or None when no CA file is set."""
    if not path:
        return None
    file = Path(path).expanduser()
    try:
        text = file.read_bytes().decode("latin-1")  # comments may be in any encoding; the PEM blocks are ASCII
    except FileNotFoundError:
        raise NotFound(f"The CA file {file} named by {WHERE} does not exist; point it at the PEM file of the CA "
                       "that signed the cluster's certificates, or unset it.") from None
    except OSError as e:
        raise InvalidInput(f"The CA file {file} named by {WHERE} cannot be read ({e.strerror or e}); "
                           "make it a readable PEM file.") from None
    blocks = PEM_BLOCK.findall(text)
    pem = "\n".join(blocks) + "\n"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        blocks = []
    if not blocks:
        raise InvalidInput(f"The CA file {file} named by {WHERE} holds no readable PEM certificate; it takes the CA's "
                           "certificate as text between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----.")
    return pem
