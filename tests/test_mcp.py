"""The page as an MCP server (gradio[mcp]), on loopback with tiny models: off by default; Gradio's own
GRADIO_MCP_SERVER=True turns it on through app.launch; its tools are the two data endpoints, described by
their docstrings, and a tool call runs a generation. The `mcp` package's own client speaks to it over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from page_server import serve


def test_the_mcp_server_is_off_by_default(monkeypatch):
    monkeypatch.delenv("GRADIO_MCP_SERVER", raising=False)
    demo, _ = serve()
    try:
        assert demo.mcp_server is False
    finally:
        demo.close()


async def _list_and_call(url: str):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(f"{url}gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            result = await session.call_tool("generate_data", {"prompt": "Name three colours.", "gen_length": 16,
                                                               "steps": 8, "block_length": 8})
            return tools, result


def test_gradio_mcp_server_env_lists_the_data_tools_and_a_call_generates(monkeypatch):
    monkeypatch.setenv("GRADIO_MCP_SERVER", "True")
    demo, url = serve()
    try:
        assert demo.mcp_server is True
        tools, result = asyncio.run(asyncio.wait_for(_list_and_call(url), timeout=240))
    finally:
        demo.close()
    by_name = {tool.name: tool for tool in tools}
    assert sorted(by_name) == ["generate_data", "sweep_data"]  # the page's own handlers are no tools
    assert by_name["generate_data"].description.startswith("Answer one prompt with a diffusion LM")
    assert by_name["sweep_data"].description.startswith("Quality against steps")
    assert "steps" in by_name["generate_data"].inputSchema["properties"]
    assert not result.isError
    text = result.content[0].text
    assert "'status': 'done'" in text and "'answer':" in text and "'history':" in text


@pytest.mark.parametrize("argv, expected", [([], {}), (["--mcp"], {"mcp_server": True})])
def test_the_mcp_flag_asks_launch_for_the_server_and_no_flag_leaves_it_to_the_env(argv, expected):
    import app

    assert app.launch_options(argv) == expected
