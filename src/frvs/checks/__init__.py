"""Identity checks at a counter: a customer's live face, with a head-movement challenge,
against the portrait on their identity document (1:1, audited, keeping only digests)."""
