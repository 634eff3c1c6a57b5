import sys

from optlib.cli import main

sys.exit(main())
