import sys

from admf.cli import main

sys.exit(main())
