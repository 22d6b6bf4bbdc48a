# shellcheck shell=bash
# What the takeover VM test expects to read on the serial console, in one
# place: ferry's side (`ferry takeover run`/`status`, stage 2) may word its
# lines differently; adjust them here. Patterns are grep -E regexes.

# Stage 2's progress lines start with this.
STAGE2_PREFIX='ferry-takeover stage2: '
# Stage 2 says this when --inject-fault stage2-delay makes it wait before the
# flash; the `reset` case sends system_reset when it reads it.
STAGE2_WAITING='ferry-takeover stage2: waiting before flash'
# `ferry takeover status --json` in the new OS after a takeover that completed.
STATUS_COMPLETED='"verdict": ?"completed"'
# `ferry takeover status` in the old OS when no takeover happened
# (never started, or refused by the pre-flight).
STATUS_NO_TAKEOVER='no takeover on record|failed before anything was written'
# `ferry takeover status` in the old OS after stage 2 was stopped (watchdog,
# reset) before it wrote to the disk.
STATUS_STAGE2_UNFINISHED='stage 2 started and did not report back.*nothing was written'

# The old OS's identity and network, as the new OS must show them.
HOSTNAME=field-unit-7
# Static, as carried over: not an address or route from DHCP.
ADDRESS='ens3 +inet 10\.0\.2\.15/24'
ADDRESS_DYNAMIC='inet 10\.0\.2\.15/24 .*dynamic'
DEFAULT_ROUTE='^default via 10\.0\.2\.2 dev ens3 proto static'
# The backed-up paths (the old OS's, relative to /), checked by sha256 under
# the data partition's ferry-takeover/ tree.
BACKED_UP=(srv/app/data/blob.bin "srv/app/data/we ird -name's [1].txt" srv/app/VERSION etc/app.conf)
# What app-dump writes into the backup directory.
DUMP_NAME=app.dump

# Strategy flasher. `ferry takeover confirm` on the new OS, the first time
# and after that.
CONFIRMED='confirmed: this OS boots by default'
CONFIRMED_BEFORE='was confirmed before'
# `ferry takeover status --json` in the old OS after the one-shot boot of
# the new OS fell back.
STATUS_FELL_BACK='"verdict": ?"fell-back"'
# `ferry takeover status --json` in the new OS of a flasher takeover not
# confirmed yet.
STATUS_UNCONFIRMED='"verdict": ?"unconfirmed"'
# The report-in deadline unit in the new OS (strategy flasher): armed on the
# one-shot boot, and when it gives up.
DEADLINE_ARMED='ferry-takeover deadline: this OS reboots into the old one unless'
DEADLINE_PASSED='ferry-takeover deadline: not confirmed within [0-9]+ s: rebooting into the old OS'
