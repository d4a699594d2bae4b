"""The pure domain core: money, accounts, commands, events, wallet decisions.

Nothing here does I/O, reads a clock or draws randomness; time and ids are passed in.
Only the standard library, msgspec and immutables are imported (a test enforces this).
"""
