"""MCP: ghost_run's name/group/restart/after/key, names wherever ids go, and ghost_restart."""

from __future__ import annotations

from mcp_support import Client, error, ok, serve


def test_names_keys_restart_and_after_over_mcp(env):
    async def body(client: Client) -> None:
        web = await ok(client, "ghost_run", command="sleep", args=["300"], name="web",
                       group="api", key="deploy-1")
        assert (web["name"], web["group"], web["status"]) == ("web", "api", "running")
        again = await ok(client, "ghost_run", command="sleep", args=["300"], key="deploy-1")
        assert again["id"] == web["id"] and again["existing"] is True
        taken = await error(client, "ghost_run", command="sleep", args=["300"], name="web")
        assert f"the name web is in use by running task {web['id']}" in taken
        shown = await ok(client, "ghost_status", id="web")
        assert (shown["id"], shown["attempt"], shown["restarts"]) == (web["id"], 1, 0)
        restarted = await ok(client, "ghost_restart", id="web", timeout=5)
        assert restarted["id"] == web["id"] and restarted["pid"] != web["pid"]
        assert (await ok(client, "ghost_status", id="web"))["attempt"] == 2
        queued = await ok(client, "ghost_run", command="echo", args=["after"], after=["web"])
        assert queued["status"] == "queued" and queued["pid"] == 0
        await ok(client, "ghost_stop", id="web", timeout=5)
        policy = await ok(client, "ghost_run", command="sh", args=["-c", "exit 1"],
                          restart="on-failure", max_restarts=1)
        waited = await ok(client, "ghost_wait", id=policy["id"], timeout=30)
        assert waited["task"]["attempt"] == 2 and waited["task"]["gave_up_after"] == 1
        bad = await error(client, "ghost_run", command="true", name="no spaces")
        assert "invalid --name 'no spaces'" in bad

    serve(env, body)
