"""``agentproc serve``: one bridge process hosting the dispatcher, the HTTP app
and the channel workers, set up from a ``bridge.yaml`` config.

- :mod:`~bridge.server.config`: reading and checking the config file
  (:func:`~bridge.server.config.load_config`), with the shape of its entries in
  :mod:`~bridge.server.config_models`;
- :mod:`~bridge.server.errors`: this package's error tree.

Importing the package imports nothing else, so naming it costs nothing.
"""
