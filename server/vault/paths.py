"""The only Vault paths this server asks for, and the Vault policy that grants exactly those.

Least privilege is enforced here, in code, before any request: an entry path is a known folder plus a
valid name, so no argument can reach `metadata/`, `data/`, another mount or `api-keys/`. The policy is
the same rule said to Vault, so a mistake on one side is still stopped by the other.
"""

from contracts import ErrorKind
from contracts.names import name_problem
from server.vault.errors import VaultFailure

__all__ = ["API_KEYS", "FOLDERS", "entry_path", "llm_key_path", "policy_hcl"]

FOLDERS = ("docs", "inventory")
API_KEYS = "api-keys"


def entry_path(folder: str, name: str) -> str:
    """The mount-relative KV path of one entry, or INVALID_NAME before anything is sent."""
    if folder not in FOLDERS:
        raise ValueError(f"{folder!r} is not a folder this server reads")
    if (problem := name_problem(name)) is not None:
        raise VaultFailure(
            ErrorKind.INVALID_NAME,
            f"{name[:80]!r} is not a valid {folder} name: it {problem}.",
            recommended_action="Use a name as list_docs shows it: letters, digits and single '.', '_' or '-'.",
        )
    return f"{folder}/{name}"


def llm_key_path(key_name: str) -> str:
    if name_problem(key_name) is not None:
        raise ValueError(f"{key_name!r} is not a valid key name")
    return f"{API_KEYS}/{key_name}"


def policy_hcl(mount: str, *, llm_key_name: str | None = "openrouter") -> str:
    """The Vault policy for this server's token: read and list on docs/ and inventory/, nothing more."""
    blocks = [
        "# planner-mcp: read-only access to runbooks and inventory in the KV v2 mount "
        f'"{mount}".\n'
        "# Apply it with: planner-mcp vault-policy | vault policy write planner-mcp -\n"
        "# '+' matches exactly one path segment: a name never reaches a sub-folder.\n",
    ]
    for folder in FOLDERS:
        blocks.append(_block(f"{mount}/data/{folder}/+", "read", f"read_{folder}: one entry, any version"))
        blocks.append(_block(f"{mount}/metadata/{folder}/", "list", f"the names in {folder}/"))
    if llm_key_name is not None:
        blocks.append(
            _block(
                f"{mount}/data/{llm_key_path(llm_key_name)}",
                "read",
                "the LLM key, read only when OPENAI_API_KEY is not set; remove this block otherwise",
            )
        )
    blocks.append(_block("auth/token/lookup-self", "read", "token TTL and policies (also in Vault's default policy)"))
    blocks.append(_block("auth/token/renew-self", "update", "renew the token before it expires"))
    blocks.append(_block("sys/capabilities-self", "update", "`planner-mcp doctor`: which paths the token can use"))
    return "\n".join(blocks)


def _block(path: str, capability: str, why: str) -> str:
    return f'# {why}\npath "{path}" {{\n  capabilities = ["{capability}"]\n}}\n'
