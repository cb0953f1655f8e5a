"""One module per ``valuecube`` subcommand; :mod:`valuecube.cli` assembles them."""
