"""Runtime helpers with no model or HTTP in them: child processes that never outlive their command,
the reaper sidecar, the event-loop portal and the one atomic write."""
