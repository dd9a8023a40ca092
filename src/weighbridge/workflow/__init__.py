"""Review workflow: states and role table (`states`), the 30-day clock (`clock`), and the service that
records each action in the store and the signed ledger (`service`)."""
