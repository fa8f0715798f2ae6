"""ghost: run commands in the background, see them, follow them, stop them, know how they ended.

Kept empty of imports: every `ghost` call and every task monitor is a fresh interpreter.
"""

__version__ = "0.1.0"
