from virtbench._entry import main

raise SystemExit(main())
