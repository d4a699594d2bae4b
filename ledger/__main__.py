"""`python -m ledger` runs the `ledger` command."""

from ledger.cli.main import main

main()
