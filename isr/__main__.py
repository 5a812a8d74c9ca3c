from isr.cli import main

raise SystemExit(main())
