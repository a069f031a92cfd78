from cellbench.cli import main

raise SystemExit(main())
