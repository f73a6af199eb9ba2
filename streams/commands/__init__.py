"""One module per ``revpulse`` subcommand; each has ``add_parser(commands)``.

A command's handler is ``handler(settings, args) -> exit code``; it is set with
``parser.set_defaults(handler=...)``.
"""
