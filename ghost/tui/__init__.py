"""`ghost ui`: a terminal UI over ghost.actions (Textual, installed with the `tui` extra)."""
