"""The Faust worker: intake, the ledger owner, publishing, and its web pages."""
