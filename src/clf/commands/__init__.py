"""One module per ``clf`` subcommand, each with ``main(argv) -> exit status``."""
