"""The outside world the suite makes of namespaces: the upstream network and its resolver."""
