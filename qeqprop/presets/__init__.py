"""Presets of ``qeqprop train --preset NAME``: one TOML config per file (qeqprop.cli_config says
what a config holds); ``qeqprop presets`` lists them with their descriptions."""
