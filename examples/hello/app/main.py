"""A tiny app: prints a greeting and proves its own module imports from /root."""
import os
import sys

from greet import greeting

if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "world"
    print(greeting(os.environ.get("GREETING", "Hello"), name))
