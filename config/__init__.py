"""Samizdat configuration: the typed settings loader and process configuration files."""

from config.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
