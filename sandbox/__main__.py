"""`python -m sandbox [--host H] [--port P]`: run the Tailscale sandbox alone."""

import argparse

from sandbox.server import run_sandbox


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    arguments = parser.parse_args()
    run_sandbox(arguments.host, arguments.port)


if __name__ == "__main__":
    main()
