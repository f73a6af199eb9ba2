"""The Faust app, the embedded stack and the command line."""
