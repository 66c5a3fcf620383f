"""The event log, and what carries news of it: the brokers and the per-stream queues."""
