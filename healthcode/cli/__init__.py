"""The one `healthcode` command line; each module here registers one group of subcommands."""
