"""The checks: one module per catalog topic, each function bound to its claims with @claims."""
