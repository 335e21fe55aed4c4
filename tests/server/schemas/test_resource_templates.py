"""A resource template carries the MIME type of what it reads, where all it matches share one (MCP's rule)."""

from collections.abc import Callable

import anyio
import pytest

from server import Settings
from tests.conftest import connect

pytestmark = pytest.mark.anyio


async def test_inventory_resources_are_json_and_docs_which_may_be_markdown_text_or_json_name_no_type(
    make_settings: Callable[..., Settings], mode: str
) -> None:
    async with connect(make_settings(), mode) as client:
        with anyio.fail_after(10):
            templates = (await client.list_resource_templates()).resource_templates
            read = await client.read_resource("inventory://proxmox")
    types = {t.uri_template: t.mime_type for t in templates}
    assert types == {"docs://{name}": None, "inventory://{name}": "application/json"}
    assert [content.mime_type for content in read.contents] == ["application/json"]
