"""What keeps a run safe on a real host: its labels, reservations, the sweep and the egress guard."""
