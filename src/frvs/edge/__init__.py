"""Edge nodes: cameras analysed on the node, their reports delivered to a centre
through a durable outbox."""
