#compdef etcdlock

autoload -U is-at-least

_etcdlock() {
    typeset -A opt_args
    typeset -a _arguments_options
    local ret=1

    if is-at-least 5.2; then
        _arguments_options=(-s -S -C)
    else
        _arguments_options=(-s -C)
    fi

    local context curcontext="$curcontext" state line
    _arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
":: :_etcdlock_commands" \
"*::: :->etcdlock" \
&& ret=0
    case $state in
    (etcdlock)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:etcdlock-command-$line[1]:"
        case $line[1] in
            (run)
_arguments "${_arguments_options[@]}" : \
'--limit=[Semaphore\: up to N holders at once (the N oldest keys hold); every holder must use the same N]:N:_default' \
'--once-per=[At most one successful run of NAME per DUR, cluster-wide\: holding the lock, skip (exit 0, silently) if a run succeeded less than DUR ago, by etcd'\''s clock; a failed run does not count, so the next firing on any host retries (DUR\: whole seconds, at least 2s)]:DUR:_default' \
'(-n --no-wait -w --timeout --limit -s --shared --once-per --meta --ttl)--handle=[Run inside a lock taken earlier with \`etcdlock acquire\` (NAME comes from the handle)\: keep-alive while the command runs, kill before expiry; the lock stays held afterwards. Steps sharing one handle share the lock\: they may run at the same time (the lock keeps other holders out, not the pipeline'\''s own steps)]:HANDLE:_default' \
'--ttl=[Lease TTL\: how long the lock outlives a crashed etcdlock (whole seconds, at least 2s)]:DUR:_default' \
'*--meta=[Extra holder metadata shown by \`status\`, e.g. --meta job=\$CI_JOB_URL (repeatable)]:KEY=VALUE:_default' \
'--min-hold=[Keep the lock at least DUR after acquiring it, even if the command ends sooner (stops cron jobs on hosts with skewed clocks from running twice in one period; --once-per does it exactly)]:DUR:_default' \
'--record-command=[What of the command line to store in the lock key and the run record, where anyone who can read the lock'\''s prefix sees it and every waiter prints it\: only the program name (the default\: arguments may carry secrets, mysql -pSECRET, curl -H '\''Authorization\: ...'\''), the whole command line, or nothing]:WHAT:((full\:"Every argument (up to 16 KiB)"
program\:"argv\[0\] only (the default)"
none\:"Nothing\: \`status\` shows "-""))' \
'--record-retention=[How long NAME'\''s run records stay after its last run; etcd deletes them then, by itself \[env\: ETCDLOCK_RECORD_RETENTION\] \[default\: 35days\: a monthly job'\''s last run is always there\]]:DUR:_default' \
'-w+[Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)]:DUR:_default' \
'--timeout=[Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)]:DUR:_default' \
'-E+[Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)]:N:_default' \
'--conflict-exit-code=[Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)]:N:_default' \
'--progress-interval=[While waiting and stderr is not a terminal, print a progress line this often]:DUR:_default' \
'()-c+[Run STRING with /bin/sh -c instead of COMMAND]:STRING:_default' \
'()--shell=[Run STRING with /bin/sh -c instead of COMMAND]:STRING:_default' \
'--max-runtime=[Stop the command after DUR (kill signal, grace, SIGKILL) and exit 124, as timeout(1) does; 0 means no limit, as in timeout(1)]:DUR:_default' \
'--kill-signal=[Signal sent to the command'\''s process group when the lease is about to be lost or --max-runtime is reached]:SIG:_default' \
'--kill-after=[Grace between --kill-signal and SIGKILL when the lease is lost, --max-runtime is reached or etcdlock gets SIGTERM \[default\: 2s, or TTL/4 if that is shorter\]; must be less than TTL/2]:DUR:_default' \
'--metrics-file=[Write a Prometheus textfile (node_exporter textfile collector) with this run'\''s timings, exit code and lost-lock count, updated when the command starts and ends]:PATH:_files' \
'--on-success=[After a run whose command exited 0, run CMD with /bin/sh -c, once the lock is released (environment\: ETCDLOCK_NAME, ETCDLOCK_OUTCOME, ETCDLOCK_EXIT_CODE, ETCDLOCK_DURATION_S, ETCDLOCK_FENCING_TOKEN); it never changes etcdlock'\''s exit code]:CMD:_default' \
'--on-failure=[After a run whose command failed (non-zero exit, signal, lost lock, --max-runtime), run CMD with /bin/sh -c, once the lock is released (same environment; ETCDLOCK_OUTCOME is failure, lock_lost or timeout); a skip or a give-up runs no hook]:CMD:_default' \
'--hook-timeout=[How long a hook may run; then its process group gets SIGTERM, and SIGKILL 2s later]:DUR:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'-s[Shared (reader) lock, as flock -s\: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go'\''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it]' \
'--shared[Shared (reader) lock, as flock -s\: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go'\''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it]' \
'--no-record[Leave no run record in etcd (last run, last success\: what \`status\` and \`list\` show) \[env\: ETCDLOCK_NO_RECORD=1\]; --once-per cannot do without its marker and refuses this]' \
'(-w --timeout)-n[If the lock is held, give up at once (exit 75, or --conflict-exit-code)]' \
'(-w --timeout)--no-wait[If the lock is held, give up at once (exit 75, or --conflict-exit-code)]' \
'--kill-leftovers[When the command exits while processes it started still run (\`cmd &\`, nohup, setsid, daemons), stop them (kill signal, grace, SIGKILL) and release at once, instead of holding the lock until they exit; the exit code stays the command'\''s own]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
'::name_arg -- Lock name; the lock'\''s keys are NAME/<lease id in hex> (with --handle\: from the handle):_default' \
'*::command -- The command and its arguments, run directly (no shell):_default' \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'--json[Machine-readable output (schema in the README; has a schema_version field)]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Lock name:_default' \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'--json[Machine-readable output (same field names as \`status --json\`); it also asks each holder'\''s lease for its remaining TTL (ttl_remaining_s), which the table does not show]' \
'--watch[Keep watching\: on a terminal, redraw the table whenever a lock or record under PREFIX changes; otherwise print one JSON line per lock that changed (with --json or not)]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'::prefix -- Only keys under this prefix \[default\: all keys\]:_default' \
&& ret=0
;;
(break)
_arguments "${_arguments_options[@]}" : \
'--lease=[Break only the holder (or waiter) with this lease id (hex, as \`status\` shows it), e.g. one holder of a --limit semaphore \[default\: every holder\]]:ID:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'-y[Do not ask for confirmation]' \
'--yes[Do not ask for confirmation]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Lock name:_default' \
&& ret=0
;;
(acquire)
_arguments "${_arguments_options[@]}" : \
'--limit=[Semaphore\: up to N holders at once; every holder must use the same N]:N:_default' \
'--ttl=[The lock frees itself this long after the last acquire, renew or run --handle (whole seconds; plain numbers are seconds)]:DUR:_default' \
'*--meta=[Extra holder metadata shown by status, e.g. --meta job=\$CI_JOB_URL (repeatable)]:KEY=VALUE:_default' \
'-w+[Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)]:DUR:_default' \
'--timeout=[Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)]:DUR:_default' \
'-E+[Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)]:N:_default' \
'--conflict-exit-code=[Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)]:N:_default' \
'--progress-interval=[While waiting and stderr is not a terminal, print a progress line this often]:DUR:_default' \
'--env-file=[Also append ETCDLOCK_HANDLE=... and ETCDLOCK_FENCING_TOKEN=... lines to FILE (e.g. \$GITHUB_ENV, a GitLab dotenv artifact)]:FILE:_files' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'-s[Shared (reader) lock\: holds together with other shared holders, never with an exclusive one]' \
'--shared[Shared (reader) lock\: holds together with other shared holders, never with an exclusive one]' \
'(-w --timeout)-n[If the lock is held, give up at once (exit 75, or --conflict-exit-code)]' \
'(-w --timeout)--no-wait[If the lock is held, give up at once (exit 75, or --conflict-exit-code)]' \
'--json[Print the handle with its key, lease, fencing token and expiry as JSON]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Lock name:_default' \
&& ret=0
;;
(renew)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':handle -- The handle etcdlock acquire printed:_default' \
&& ret=0
;;
(release)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':handle -- The handle etcdlock acquire printed:_default' \
&& ret=0
;;
(forget)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Lock name:_default' \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
'--max-age=[How long ago the last success may have ended \[default\: twice the --once-per period recorded with the last run\]]:DUR:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'--json[Machine-readable output (schema in the README); same exit codes]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::names -- Lock names:_default' \
&& ret=0
;;
(exporter)
_arguments "${_arguments_options[@]}" : \
'--listen=[Address to serve GET /metrics on, e.g. 127.0.0.1\:9479 or \[\:\:\]\:9479]:ADDR:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
'*::prefixes -- Only locks under these prefixes (and their names'\'' run records) \[default\: every lock\]:_default' \
&& ret=0
;;
(elect)
_arguments "${_arguments_options[@]}" : \
'--proposal=[The candidate'\''s value (what etcdctl elect -l prints) \[default\: etcdlock'\''s holder metadata, the JSON status shows\]]:VALUE:_default' \
'--on-exit=[What to do when COMMAND exits while leader]:WHAT:((resign\:"Step down (a standby takes over) and exit with COMMAND'\''s code"
restart\:"Restart COMMAND while keeping leadership (backoff 1s doubling to 30s), until --max-restarts in --restart-window; then resign"))' \
'--max-restarts=[With --on-exit restart\: resign after N restarts within --restart-window]:N:_default' \
'--restart-window=[The window --max-restarts counts in]:DUR:_default' \
'--active-file=[A file that exists exactly while COMMAND runs as leader (removed before the key goes; with --on-lost-signal, before the signal); it holds etcdlock'\''s pid and the leader'\''s ETCDLOCK_KEY, ETCDLOCK_LEASE_ID and ETCDLOCK_FENCING_TOKEN lines]:PATH:_files' \
'--on-won-signal=[Keep COMMAND up across role changes\: start it at once, as a standby (NOT the only active one\: it must not act as leader until told), and send SIG to its main process when this candidate becomes leader (after --active-file is written); needs --on-lost-signal]:SIG:_default' \
'(--on-exit)--on-lost-signal=[Keep COMMAND up across role changes (see --on-won-signal)\: send SIG to its main process when leadership ends (lease lost or revoked, key deleted, resign), at the latest --kill-after plus 0.5s before the lease can expire, so it has the grace to stop acting as leader; if it cannot be told in time (etcdlock frozen), its tree is killed instead]:SIG:_default' \
'--metrics-file=[Write a Prometheus textfile (node_exporter textfile collector) with etcdlock_leader (1 while leader) and etcdlock_leader_transitions_total, updated on every change]:PATH:_files' \
'--ttl=[Lease TTL\: how long leadership outlives a crashed etcdlock, so the longest a standby waits after a crash (whole seconds, at least 2s)]:DUR:_default' \
'*--meta=[Extra holder metadata shown by \`status\`, e.g. --meta role=scheduler (repeatable)]:KEY=VALUE:_default' \
'()-c+[Run STRING with /bin/sh -c instead of COMMAND]:STRING:_default' \
'()--shell=[Run STRING with /bin/sh -c instead of COMMAND]:STRING:_default' \
'--kill-signal=[Signal sent to the command'\''s process group when the lease is about to be lost]:SIG:_default' \
'--kill-after=[Grace between the kill signal (or a forwarded SIGTERM) and SIGKILL \[default\: 2s, or TTL/4 if that is shorter\]; must be less than TTL/2]:DUR:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'(-c --shell)--observe[Print the leader of NAME on every change, "no leader" when there is none; run nothing]' \
'--json[With --observe\: JSON lines (leader, key, proposal, host, pid, lease, since)]' \
'--wait-leader[With --observe\: exit 0 as soon as NAME has a leader]' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help (see more with '\''--help'\'')]' \
'--help[Print help (see more with '\''--help'\'')]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Election name; the candidates'\'' keys are NAME/<lease id in hex>:_default' \
'*::command -- The command and its arguments, run directly (no shell):_default' \
&& ret=0
;;
(resign)
_arguments "${_arguments_options[@]}" : \
'--wait=[How long to wait for the leader to step down]:DUR:_default' \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':name -- Election name:_default' \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':shell -- The shell to complete for:(bash elvish fish powershell zsh)' \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
'*--endpoints=[etcd endpoints of one cluster, comma-separated \[env\: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS\] \[default\: http\://127.0.0.1\:2379\]]:URL[,URL...]:_default' \
'--dial-timeout=[How long to keep trying to reach etcd at start-up \[env\: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT\] \[default\: 5s\]]:DUR:_default' \
'--cacert=[CA bundle to verify https endpoints \[env\: ETCDLOCK_CACERT, ETCDCTL_CACERT\] \[default\: the system'\''s roots\]]:FILE:_files' \
'--cert=[Client certificate for https endpoints \[env\: ETCDLOCK_CERT, ETCDCTL_CERT\]]:FILE:_files' \
'--key=[Client certificate'\''s private key \[env\: ETCDLOCK_KEY, ETCDCTL_KEY\]]:FILE:_files' \
'--user=[etcd user, optionally with its password \[env\: ETCDLOCK_USER, ETCDCTL_USER\]]:NAME[:PASSWORD]:_default' \
'--password-file=[Read the password from FILE (first line) so it never shows in the process list \[password also from env\: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD\]]:FILE:_files' \
'--records-prefix=[Where etcdlock keeps run records and --once-per markers\: a prefix reserved for it, outside every lock'\''s tree (no lock name may cover it) \[env\: ETCDLOCK_RECORDS_PREFIX\] \[default\: .etcdlock/\]]:PREFIX:_default' \
'--log-format=[Format of -v diagnostics on stderr]:FORMAT:(text json)' \
'*-v[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'*--verbose[More diagnostics on stderr (-v\: info, -vv\: debug, -vvv\: trace)]' \
'(-v --verbose)-q[Only errors on stderr (no waiting progress)]' \
'(-v --verbose)--quiet[Only errors on stderr (no waiting progress)]' \
'-h[Print help]' \
'--help[Print help]' \
'-V[Print version]' \
'--version[Print version]' \
':dir -- Directory to write the pages into (created if missing):_files' \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
":: :_etcdlock__subcmd__help_commands" \
"*::: :->help" \
&& ret=0

    case $state in
    (help)
        words=($line[1] "${words[@]}")
        (( CURRENT += 1 ))
        curcontext="${curcontext%:*:*}:etcdlock-help-command-$line[1]:"
        case $line[1] in
            (run)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(status)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(list)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(break)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(acquire)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(renew)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(release)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(forget)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(check)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(exporter)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(elect)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(resign)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(completions)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(man)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
(help)
_arguments "${_arguments_options[@]}" : \
&& ret=0
;;
        esac
    ;;
esac
;;
        esac
    ;;
esac
}

(( $+functions[_etcdlock_commands] )) ||
_etcdlock_commands() {
    local commands; commands=(
'run:Run COMMAND while holding the lock NAME' \
'status:Show who holds NAME, since when, who waits, and its last run' \
'list:List the locks under PREFIX with their holders and waiters' \
'break:Break NAME\: revoke its holder'\''s lease, so that holder'\''s etcdlock stops its command (exit 70)' \
'acquire:Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)' \
'renew:Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)' \
'release:Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)' \
'forget:Forget NAME'\''s run records and its --once-per marker (the next run may go at once)' \
'check:Check that each NAME succeeded recently, from its run records (a monitoring plugin\: OK/CRITICAL lines, exit 0 or 1)' \
'exporter:Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch' \
'elect:Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)' \
'resign:Ask the leader of the election NAME to step down\: it stops its command and resigns, and the next candidate takes over' \
'completions:Print shell completions to stdout' \
'man:Write man pages (etcdlock.1 and one per subcommand) into DIR' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'etcdlock commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__acquire_commands] )) ||
_etcdlock__subcmd__acquire_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock acquire commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__break_commands] )) ||
_etcdlock__subcmd__break_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock break commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__check_commands] )) ||
_etcdlock__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock check commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__completions_commands] )) ||
_etcdlock__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock completions commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__elect_commands] )) ||
_etcdlock__subcmd__elect_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock elect commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__exporter_commands] )) ||
_etcdlock__subcmd__exporter_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock exporter commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__forget_commands] )) ||
_etcdlock__subcmd__forget_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock forget commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help_commands] )) ||
_etcdlock__subcmd__help_commands() {
    local commands; commands=(
'run:Run COMMAND while holding the lock NAME' \
'status:Show who holds NAME, since when, who waits, and its last run' \
'list:List the locks under PREFIX with their holders and waiters' \
'break:Break NAME\: revoke its holder'\''s lease, so that holder'\''s etcdlock stops its command (exit 70)' \
'acquire:Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)' \
'renew:Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)' \
'release:Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)' \
'forget:Forget NAME'\''s run records and its --once-per marker (the next run may go at once)' \
'check:Check that each NAME succeeded recently, from its run records (a monitoring plugin\: OK/CRITICAL lines, exit 0 or 1)' \
'exporter:Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch' \
'elect:Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)' \
'resign:Ask the leader of the election NAME to step down\: it stops its command and resigns, and the next candidate takes over' \
'completions:Print shell completions to stdout' \
'man:Write man pages (etcdlock.1 and one per subcommand) into DIR' \
'help:Print this message or the help of the given subcommand(s)' \
    )
    _describe -t commands 'etcdlock help commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__acquire_commands] )) ||
_etcdlock__subcmd__help__subcmd__acquire_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help acquire commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__break_commands] )) ||
_etcdlock__subcmd__help__subcmd__break_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help break commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__check_commands] )) ||
_etcdlock__subcmd__help__subcmd__check_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help check commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__completions_commands] )) ||
_etcdlock__subcmd__help__subcmd__completions_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help completions commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__elect_commands] )) ||
_etcdlock__subcmd__help__subcmd__elect_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help elect commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__exporter_commands] )) ||
_etcdlock__subcmd__help__subcmd__exporter_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help exporter commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__forget_commands] )) ||
_etcdlock__subcmd__help__subcmd__forget_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help forget commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__help_commands] )) ||
_etcdlock__subcmd__help__subcmd__help_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help help commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__list_commands] )) ||
_etcdlock__subcmd__help__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help list commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__man_commands] )) ||
_etcdlock__subcmd__help__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help man commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__release_commands] )) ||
_etcdlock__subcmd__help__subcmd__release_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help release commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__renew_commands] )) ||
_etcdlock__subcmd__help__subcmd__renew_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help renew commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__resign_commands] )) ||
_etcdlock__subcmd__help__subcmd__resign_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help resign commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__run_commands] )) ||
_etcdlock__subcmd__help__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help run commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__help__subcmd__status_commands] )) ||
_etcdlock__subcmd__help__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock help status commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__list_commands] )) ||
_etcdlock__subcmd__list_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock list commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__man_commands] )) ||
_etcdlock__subcmd__man_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock man commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__release_commands] )) ||
_etcdlock__subcmd__release_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock release commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__renew_commands] )) ||
_etcdlock__subcmd__renew_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock renew commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__resign_commands] )) ||
_etcdlock__subcmd__resign_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock resign commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__run_commands] )) ||
_etcdlock__subcmd__run_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock run commands' commands "$@"
}
(( $+functions[_etcdlock__subcmd__status_commands] )) ||
_etcdlock__subcmd__status_commands() {
    local commands; commands=()
    _describe -t commands 'etcdlock status commands' commands "$@"
}

if [ "$funcstack[1]" = "_etcdlock" ]; then
    _etcdlock "$@"
else
    compdef _etcdlock etcdlock
fi
