from pyfiledrop.cli import main

raise SystemExit(main())
