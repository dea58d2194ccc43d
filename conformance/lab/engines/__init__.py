"""The engine side of the lab: finding, starting and reading engines, and the labs built on them."""
