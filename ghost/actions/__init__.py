"""What users can do with ghost: every surface (CLI, MCP, TUI, web) calls these functions.

They take plain arguments (ids, names or prefixes, options, and the actor `via`), return plain
data or raise GhostError, and know nothing of click, MCP, Textual or HTTP.
"""
