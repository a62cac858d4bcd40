"""One validated configuration schema for deployments, scenarios and node parameters."""
from voice_robot.config.errors import ConfigError

__all__ = ['ConfigError']
