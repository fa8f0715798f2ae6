"""`ghost mcp`: ghost's actions served to AI assistants over the Model Context Protocol."""
