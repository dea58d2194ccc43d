"""docker-net-conformance: executable claims about Docker and Linux container networking."""

from pathlib import Path

# The project's data beside the package: the articles, the probe image, fault profiles, expectations files.
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
