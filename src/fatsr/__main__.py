from fatsr.cli import main

raise SystemExit(main())
