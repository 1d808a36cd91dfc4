"""The local profile: the whole platform on one machine, one module per port, state under `config.home`."""
