"""Config schema, composition from ``conf/`` with Hydra overrides, and validation."""

from clf.config.compose import compose, config_dir, to_yaml, to_container
from clf.config.schema import Config

__all__ = ["Config", "compose", "config_dir", "to_yaml", "to_container"]
