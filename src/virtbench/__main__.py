from virtbench.cli import main

raise SystemExit(main())
