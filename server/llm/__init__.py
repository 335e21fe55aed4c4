"""The LLM side: the client, the prompts it sends and the parsing of what comes back."""

from server.llm.client import LLMClient, LLMReply
from server.llm.parse import ParseFailure, parse_reply, truncate
from server.llm.prompts import DataBlock, analysis_messages, plan_messages, prompt_digest

__all__ = [
    "DataBlock",
    "LLMClient",
    "LLMReply",
    "ParseFailure",
    "analysis_messages",
    "parse_reply",
    "plan_messages",
    "prompt_digest",
    "truncate",
]
