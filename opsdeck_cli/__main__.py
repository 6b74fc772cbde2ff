import sys

from opsdeck_cli.main import main

sys.exit(main())
