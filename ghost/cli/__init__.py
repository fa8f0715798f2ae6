"""The `ghost` command line: click commands that parse, call one action and render."""
