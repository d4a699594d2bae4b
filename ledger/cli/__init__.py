"""Entry points: the `ledger` command and its subcommands."""
