"""The settings: each declared once, read from the environment and the config file, shown by `config show`;
the ledger and files they name."""
