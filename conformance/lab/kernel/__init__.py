"""The kernel side of the lab: namespaces, captures, pings, subnets, processes, this machine's facts."""
