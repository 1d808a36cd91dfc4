import sys

from dlptui.cli import main

sys.exit(main())
