"""Every engine child process starts here: it enters its sandbox, then runs its module as ``__main__``.

    python -m optlib.engine.child MODULE ARGS...

:func:`optlib.engine.processes.start` is the one place that starts these, and it
puts the child's sandbox policy in its environment (``OPTLIB_SANDBOX``). The
policy is applied before the module is imported and before anything from a
user is read; a child whose sandbox cannot be applied stops.
"""

import runpy
import sys

if __name__ == "__main__":
    from optlib.engine import sandbox

    try:
        sandbox.enter_from_env()
    except OSError as problem:
        print(f"optlib: the sandbox could not be applied ({problem}); this process stops.", file=sys.stderr)
        sys.exit(70)
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
