"""Getting replies to Twilio: the outbox, the sender, the one Conversations client, error meanings."""
