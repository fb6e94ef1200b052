"""What the engines accept as an image's name, tag and full reference (Docker's grammar).

`init` checks a new project's name and version with these, and `build` its tags, so that a
project never gets a name that its image cannot have.
"""

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?"

IMAGE_NAME = re.compile(rf"^{_COMPONENT}$")
IMAGE_TAG = re.compile(rf"^{_TAG}$")
IMAGE_REFERENCE = re.compile(rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*:{_TAG}$")
