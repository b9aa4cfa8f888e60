# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_etcdlock_global_optspecs
    string join \n endpoints= dial-timeout= cacert= cert= key= user= password-file= records-prefix= v/verbose q/quiet log-format= h/help V/version
end

function __fish_etcdlock_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_etcdlock_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_etcdlock_using_subcommand
    set -l cmd (__fish_etcdlock_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c etcdlock -n "__fish_etcdlock_needs_command" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_needs_command" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_needs_command" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "run" -d 'Run COMMAND while holding the lock NAME'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "status" -d 'Show who holds NAME, since when, who waits, and its last run'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "list" -d 'List the locks under PREFIX with their holders and waiters'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "break" -d 'Break NAME: revoke its holder\'s lease, so that holder\'s etcdlock stops its command (exit 70)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "acquire" -d 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "renew" -d 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "release" -d 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "forget" -d 'Forget NAME\'s run records and its --once-per marker (the next run may go at once)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "check" -d 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "exporter" -d 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "elect" -d 'Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "resign" -d 'Ask the leader of the election NAME to step down: it stops its command and resigns, and the next candidate takes over'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "completions" -d 'Print shell completions to stdout'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "man" -d 'Write man pages (etcdlock.1 and one per subcommand) into DIR'
complete -c etcdlock -n "__fish_etcdlock_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l limit -d 'Semaphore: up to N holders at once (the N oldest keys hold); every holder must use the same N' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l once-per -d 'At most one successful run of NAME per DUR, cluster-wide: holding the lock, skip (exit 0, silently) if a run succeeded less than DUR ago, by etcd\'s clock; a failed run does not count, so the next firing on any host retries (DUR: whole seconds, at least 2s)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l handle -d 'Run inside a lock taken earlier with `etcdlock acquire` (NAME comes from the handle): keep-alive while the command runs, kill before expiry; the lock stays held afterwards. Steps sharing one handle share the lock: they may run at the same time (the lock keeps other holders out, not the pipeline\'s own steps)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l ttl -d 'Lease TTL: how long the lock outlives a crashed etcdlock (whole seconds, at least 2s)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l meta -d 'Extra holder metadata shown by `status`, e.g. --meta job=$CI_JOB_URL (repeatable)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l min-hold -d 'Keep the lock at least DUR after acquiring it, even if the command ends sooner (stops cron jobs on hosts with skewed clocks from running twice in one period; --once-per does it exactly)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l record-command -d 'What of the command line to store in the lock key and the run record, where anyone who can read the lock\'s prefix sees it and every waiter prints it: only the program name (the default: arguments may carry secrets, mysql -pSECRET, curl -H \'Authorization: ...\'), the whole command line, or nothing' -r -f -a "full\t'Every argument (up to 16 KiB)'
program\t'argv[0] only (the default)'
none\t'Nothing: `status` shows "-"'"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l record-retention -d 'How long NAME\'s run records stay after its last run; etcd deletes them then, by itself [env: ETCDLOCK_RECORD_RETENTION] [default: 35days: a monthly job\'s last run is always there]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s w -l timeout -d 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s E -l conflict-exit-code -d 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l progress-interval -d 'While waiting and stderr is not a terminal, print a progress line this often' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s c -l shell -d 'Run STRING with /bin/sh -c instead of COMMAND' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l max-runtime -d 'Stop the command after DUR (kill signal, grace, SIGKILL) and exit 124, as timeout(1) does; 0 means no limit, as in timeout(1)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l kill-signal -d 'Signal sent to the command\'s process group when the lease is about to be lost or --max-runtime is reached' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l kill-after -d 'Grace between --kill-signal and SIGKILL when the lease is lost, --max-runtime is reached or etcdlock gets SIGTERM [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l metrics-file -d 'Write a Prometheus textfile (node_exporter textfile collector) with this run\'s timings, exit code and lost-lock count, updated when the command starts and ends' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l on-success -d 'After a run whose command exited 0, run CMD with /bin/sh -c, once the lock is released (environment: ETCDLOCK_NAME, ETCDLOCK_OUTCOME, ETCDLOCK_EXIT_CODE, ETCDLOCK_DURATION_S, ETCDLOCK_FENCING_TOKEN); it never changes etcdlock\'s exit code' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l on-failure -d 'After a run whose command failed (non-zero exit, signal, lost lock, --max-runtime), run CMD with /bin/sh -c, once the lock is released (same environment; ETCDLOCK_OUTCOME is failure, lock_lost or timeout); a skip or a give-up runs no hook' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l hook-timeout -d 'How long a hook may run; then its process group gets SIGTERM, and SIGKILL 2s later' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s s -l shared -d 'Shared (reader) lock, as flock -s: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go\'s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l no-record -d 'Leave no run record in etcd (last run, last success: what `status` and `list` show) [env: ETCDLOCK_NO_RECORD=1]; --once-per cannot do without its marker and refuses this'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s n -l no-wait -d 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -l kill-leftovers -d 'When the command exits while processes it started still run (`cmd &`, nohup, setsid, daemons), stop them (kill signal, grace, SIGKILL) and release at once, instead of holding the lock until they exit; the exit code stays the command\'s own'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand run" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -l json -d 'Machine-readable output (schema in the README; has a schema_version field)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand status" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l json -d 'Machine-readable output (same field names as `status --json`); it also asks each holder\'s lease for its remaining TTL (ttl_remaining_s), which the table does not show'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -l watch -d 'Keep watching: on a terminal, redraw the table whenever a lock or record under PREFIX changes; otherwise print one JSON line per lock that changed (with --json or not)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand list" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l lease -d 'Break only the holder (or waiter) with this lease id (hex, as `status` shows it), e.g. one holder of a --limit semaphore [default: every holder]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -s y -l yes -d 'Do not ask for confirmation'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand break" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l limit -d 'Semaphore: up to N holders at once; every holder must use the same N' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l ttl -d 'The lock frees itself this long after the last acquire, renew or run --handle (whole seconds; plain numbers are seconds)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l meta -d 'Extra holder metadata shown by status, e.g. --meta job=$CI_JOB_URL (repeatable)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s w -l timeout -d 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s E -l conflict-exit-code -d 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l progress-interval -d 'While waiting and stderr is not a terminal, print a progress line this often' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l env-file -d 'Also append ETCDLOCK_HANDLE=... and ETCDLOCK_FENCING_TOKEN=... lines to FILE (e.g. $GITHUB_ENV, a GitLab dotenv artifact)' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s s -l shared -d 'Shared (reader) lock: holds together with other shared holders, never with an exclusive one'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s n -l no-wait -d 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -l json -d 'Print the handle with its key, lease, fencing token and expiry as JSON'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand acquire" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand renew" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand release" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand forget" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l max-age -d 'How long ago the last success may have ended [default: twice the --once-per period recorded with the last run]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -l json -d 'Machine-readable output (schema in the README); same exit codes'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand check" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l listen -d 'Address to serve GET /metrics on, e.g. 127.0.0.1:9479 or [::]:9479' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand exporter" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l proposal -d 'The candidate\'s value (what etcdctl elect -l prints) [default: etcdlock\'s holder metadata, the JSON status shows]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l on-exit -d 'What to do when COMMAND exits while leader' -r -f -a "resign\t'Step down (a standby takes over) and exit with COMMAND\'s code'
restart\t'Restart COMMAND while keeping leadership (backoff 1s doubling to 30s), until --max-restarts in --restart-window; then resign'"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l max-restarts -d 'With --on-exit restart: resign after N restarts within --restart-window' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l restart-window -d 'The window --max-restarts counts in' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l active-file -d 'A file that exists exactly while COMMAND runs as leader (removed before the key goes; with --on-lost-signal, before the signal); it holds etcdlock\'s pid and the leader\'s ETCDLOCK_KEY, ETCDLOCK_LEASE_ID and ETCDLOCK_FENCING_TOKEN lines' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l on-won-signal -d 'Keep COMMAND up across role changes: start it at once, as a standby (NOT the only active one: it must not act as leader until told), and send SIG to its main process when this candidate becomes leader (after --active-file is written); needs --on-lost-signal' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l on-lost-signal -d 'Keep COMMAND up across role changes (see --on-won-signal): send SIG to its main process when leadership ends (lease lost or revoked, key deleted, resign), at the latest --kill-after plus 0.5s before the lease can expire, so it has the grace to stop acting as leader; if it cannot be told in time (etcdlock frozen), its tree is killed instead' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l metrics-file -d 'Write a Prometheus textfile (node_exporter textfile collector) with etcdlock_leader (1 while leader) and etcdlock_leader_transitions_total, updated on every change' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l ttl -d 'Lease TTL: how long leadership outlives a crashed etcdlock, so the longest a standby waits after a crash (whole seconds, at least 2s)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l meta -d 'Extra holder metadata shown by `status`, e.g. --meta role=scheduler (repeatable)' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -s c -l shell -d 'Run STRING with /bin/sh -c instead of COMMAND' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l kill-signal -d 'Signal sent to the command\'s process group when the lease is about to be lost' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l kill-after -d 'Grace between the kill signal (or a forwarded SIGTERM) and SIGKILL [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l observe -d 'Print the leader of NAME on every change, "no leader" when there is none; run nothing'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l json -d 'With --observe: JSON lines (leader, key, proposal, host, pid, lease, since)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -l wait-leader -d 'With --observe: exit 0 as soon as NAME has a leader'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand elect" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l wait -d 'How long to wait for the leader to step down' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand resign" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand completions" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l endpoints -d 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l dial-timeout -d 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l cacert -d 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system\'s roots]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l cert -d 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l key -d 'Client certificate\'s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l user -d 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l password-file -d 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]' -r -F
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l records-prefix -d 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock\'s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]' -r
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -l log-format -d 'Format of -v diagnostics on stderr' -r -f -a "text\t''
json\t''"
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -s v -l verbose -d 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -s q -l quiet -d 'Only errors on stderr (no waiting progress)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -s h -l help -d 'Print help'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand man" -s V -l version -d 'Print version'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "run" -d 'Run COMMAND while holding the lock NAME'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "status" -d 'Show who holds NAME, since when, who waits, and its last run'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "list" -d 'List the locks under PREFIX with their holders and waiters'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "break" -d 'Break NAME: revoke its holder\'s lease, so that holder\'s etcdlock stops its command (exit 70)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "acquire" -d 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "renew" -d 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "release" -d 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "forget" -d 'Forget NAME\'s run records and its --once-per marker (the next run may go at once)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "check" -d 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "exporter" -d 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "elect" -d 'Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "resign" -d 'Ask the leader of the election NAME to step down: it stops its command and resigns, and the next candidate takes over'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "completions" -d 'Print shell completions to stdout'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "man" -d 'Write man pages (etcdlock.1 and one per subcommand) into DIR'
complete -c etcdlock -n "__fish_etcdlock_using_subcommand help; and not __fish_seen_subcommand_from run status list break acquire renew release forget check exporter elect resign completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
