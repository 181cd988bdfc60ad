"""tsprov's settings, read from TSPROV_* environment variables (api.md lists them).

``definition`` holds the ``Settings`` class, ``choices`` its enumerations, and
``production`` what production refuses to start with.
"""

from service.settings.choices import IdentityBinding, IdentityHeaders
from service.settings.definition import Settings

__all__ = ["IdentityBinding", "IdentityHeaders", "Settings"]
