import sys

from wsol.cli import main

sys.exit(main())
