import sys

from whyrec.cli import main

sys.exit(main())
