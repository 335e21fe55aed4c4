"""Where a call is judged and recorded: the gate, what it admits, the envelope every answer goes out in, the
LLM limits, the decision rules and the policy they come from."""
