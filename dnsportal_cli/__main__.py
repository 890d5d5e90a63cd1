import sys

from dnsportal_cli.main import main

sys.exit(main())
