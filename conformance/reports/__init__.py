"""Reports built from the results of one run; they read results and never touch the machine."""
