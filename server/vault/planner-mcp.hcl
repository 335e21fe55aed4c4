# planner-mcp: read-only access to runbooks and inventory in the KV v2 mount "secret".
# Apply it with: planner-mcp vault-policy | vault policy write planner-mcp -
# '+' matches exactly one path segment: a name never reaches a sub-folder.

# read_docs: one entry, any version
path "secret/data/docs/+" {
  capabilities = ["read"]
}

# the names in docs/
path "secret/metadata/docs/" {
  capabilities = ["list"]
}

# read_inventory: one entry, any version
path "secret/data/inventory/+" {
  capabilities = ["read"]
}

# the names in inventory/
path "secret/metadata/inventory/" {
  capabilities = ["list"]
}

# the LLM key, read only when OPENAI_API_KEY is not set; remove this block otherwise
path "secret/data/api-keys/openrouter" {
  capabilities = ["read"]
}

# token TTL and policies (also in Vault's default policy)
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# renew the token before it expires
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# `planner-mcp doctor`: which paths the token can use
path "sys/capabilities-self" {
  capabilities = ["update"]
}
