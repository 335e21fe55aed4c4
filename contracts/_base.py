"""The base every contract shares: strict about unknown fields, so a typo is an error, not a silent default."""

from pydantic import BaseModel, ConfigDict


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")
