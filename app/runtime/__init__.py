"""Runtime helpers with no model or service in them: child processes that never outlive their
command, the reaper sidecar, the event-loop portal, the one atomic write, the one HTTP retry
policy (a client's: Retry-After honoured) and the opt-in on-disk vector cache."""
