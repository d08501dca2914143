# ``python -m virtbench``. SIGINT gets its default action at once, before ``virtbench._entry``
# is imported (what ``_entry`` does too): a Ctrl-C while it was being read printed a
# traceback from this file (test_hardening's first-moment test, 1 run in 2 under load).
import _signal

if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)

from virtbench._entry import main

raise SystemExit(main())
