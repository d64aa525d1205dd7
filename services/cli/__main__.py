"""``python -m services.cli``: the same as the ``citystream`` command."""

from services.cli import main

main()
