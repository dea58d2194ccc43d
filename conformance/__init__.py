"""docker-net-conformance: executable claims about Docker and Linux container networking."""
