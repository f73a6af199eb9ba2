"""The ``revpulse`` command line: ``main.py`` runs one of the commands, one module each."""
