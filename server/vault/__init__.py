"""HashiCorp Vault: configuration, authentication, the paths we may touch, and errors named by intent."""

from server.config.vault import VaultConfig
from server.vault.errors import VaultFailure
from server.vault.paths import entry_path, policy_hcl
from server.vault.session import VaultSession

__all__ = ["VaultConfig", "VaultFailure", "VaultSession", "entry_path", "policy_hcl"]
