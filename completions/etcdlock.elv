
use builtin;
use str;

set edit:completion:arg-completer[etcdlock] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'etcdlock'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'etcdlock'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Run COMMAND while holding the lock NAME'
            cand status 'Show who holds NAME, since when, who waits, and its last run'
            cand list 'List the locks under PREFIX with their holders and waiters'
            cand break 'Break NAME: revoke its holder''s lease, so that holder''s etcdlock stops its command (exit 70)'
            cand acquire 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)'
            cand renew 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)'
            cand release 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)'
            cand forget 'Forget NAME''s run records and its --once-per marker (the next run may go at once)'
            cand check 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)'
            cand exporter 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch'
            cand completions 'Print shell completions to stdout'
            cand man 'Write man pages (etcdlock.1 and one per subcommand) into DIR'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'etcdlock;run'= {
            cand --limit 'Semaphore: up to N holders at once (the N oldest keys hold); every holder must use the same N'
            cand --once-per 'At most one successful run of NAME per DUR, cluster-wide: holding the lock, skip (exit 0, silently) if a run succeeded less than DUR ago, by etcd''s clock; a failed run does not count, so the next firing on any host retries (DUR: whole seconds, at least 2s)'
            cand --handle 'Run inside a lock taken earlier with `etcdlock acquire` (NAME comes from the handle): keep-alive while the command runs, kill before expiry; the lock stays held afterwards. Steps sharing one handle share the lock: they may run at the same time (the lock keeps other holders out, not the pipeline''s own steps)'
            cand --ttl 'Lease TTL: how long the lock outlives a crashed etcdlock (whole seconds, at least 2s)'
            cand --meta 'Extra holder metadata shown by `status`, e.g. --meta job=$CI_JOB_URL (repeatable)'
            cand --min-hold 'Keep the lock at least DUR after acquiring it, even if the command ends sooner (stops cron jobs on hosts with skewed clocks from running twice in one period; --once-per does it exactly)'
            cand --record-command 'What of the command line to store in the lock key and the run record, where anyone who can read the lock''s prefix sees it and every waiter prints it: only the program name (the default: arguments may carry secrets, mysql -pSECRET, curl -H ''Authorization: ...''), the whole command line, or nothing'
            cand --record-retention 'How long NAME''s run records stay after its last run; etcd deletes them then, by itself [env: ETCDLOCK_RECORD_RETENTION] [default: 35days: a monthly job''s last run is always there]'
            cand -w 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)'
            cand --timeout 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)'
            cand -E 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)'
            cand --conflict-exit-code 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)'
            cand --progress-interval 'While waiting and stderr is not a terminal, print a progress line this often'
            cand -c 'Run STRING with /bin/sh -c instead of COMMAND'
            cand --shell 'Run STRING with /bin/sh -c instead of COMMAND'
            cand --max-runtime 'Stop the command after DUR (kill signal, grace, SIGKILL) and exit 124, as timeout(1) does; 0 means no limit, as in timeout(1)'
            cand --kill-signal 'Signal sent to the command''s process group when the lease is about to be lost or --max-runtime is reached'
            cand --kill-after 'Grace between --kill-signal and SIGKILL when the lease is lost, --max-runtime is reached or etcdlock gets SIGTERM [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2'
            cand --metrics-file 'Write a Prometheus textfile (node_exporter textfile collector) with this run''s timings, exit code and lost-lock count, updated when the command starts and ends'
            cand --on-success 'After a run whose command exited 0, run CMD with /bin/sh -c, once the lock is released (environment: ETCDLOCK_NAME, ETCDLOCK_OUTCOME, ETCDLOCK_EXIT_CODE, ETCDLOCK_DURATION_S, ETCDLOCK_FENCING_TOKEN); it never changes etcdlock''s exit code'
            cand --on-failure 'After a run whose command failed (non-zero exit, signal, lost lock, --max-runtime), run CMD with /bin/sh -c, once the lock is released (same environment; ETCDLOCK_OUTCOME is failure, lock_lost or timeout); a skip or a give-up runs no hook'
            cand --hook-timeout 'How long a hook may run; then its process group gets SIGTERM, and SIGKILL 2s later'
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -s 'Shared (reader) lock, as flock -s: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it'
            cand --shared 'Shared (reader) lock, as flock -s: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it'
            cand --no-record 'Leave no run record in etcd (last run, last success: what `status` and `list` show) [env: ETCDLOCK_NO_RECORD=1]; --once-per cannot do without its marker and refuses this'
            cand -n 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
            cand --no-wait 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
            cand --kill-leftovers 'When the command exits while processes it started still run (`cmd &`, nohup, setsid, daemons), stop them (kill signal, grace, SIGKILL) and release at once, instead of holding the lock until they exit; the exit code stays the command''s own'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;status'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand --json 'Machine-readable output (schema in the README; has a schema_version field)'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;list'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand --json 'Machine-readable output (same field names as `status --json`); it also asks each holder''s lease for its remaining TTL (ttl_remaining_s), which the table does not show'
            cand --watch 'Keep watching: on a terminal, redraw the table whenever a lock or record under PREFIX changes; otherwise print one JSON line per lock that changed (with --json or not)'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;break'= {
            cand --lease 'Break only the holder (or waiter) with this lease id (hex, as `status` shows it), e.g. one holder of a --limit semaphore [default: every holder]'
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;acquire'= {
            cand --limit 'Semaphore: up to N holders at once; every holder must use the same N'
            cand --ttl 'The lock frees itself this long after the last acquire, renew or run --handle (whole seconds; plain numbers are seconds)'
            cand --meta 'Extra holder metadata shown by status, e.g. --meta job=$CI_JOB_URL (repeatable)'
            cand -w 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)'
            cand --timeout 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)'
            cand -E 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)'
            cand --conflict-exit-code 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)'
            cand --progress-interval 'While waiting and stderr is not a terminal, print a progress line this often'
            cand --env-file 'Also append ETCDLOCK_HANDLE=... and ETCDLOCK_FENCING_TOKEN=... lines to FILE (e.g. $GITHUB_ENV, a GitLab dotenv artifact)'
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -s 'Shared (reader) lock: holds together with other shared holders, never with an exclusive one'
            cand --shared 'Shared (reader) lock: holds together with other shared holders, never with an exclusive one'
            cand -n 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
            cand --no-wait 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)'
            cand --json 'Print the handle with its key, lease, fencing token and expiry as JSON'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;renew'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;release'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;forget'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;check'= {
            cand --max-age 'How long ago the last success may have ended [default: twice the --once-per period recorded with the last run]'
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand --json 'Machine-readable output (schema in the README); same exit codes'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;exporter'= {
            cand --listen 'Address to serve GET /metrics on, e.g. 127.0.0.1:9479 or [::]:9479'
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;completions'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;man'= {
            cand --endpoints 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]'
            cand --dial-timeout 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]'
            cand --cacert 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]'
            cand --cert 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]'
            cand --key 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]'
            cand --user 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]'
            cand --password-file 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]'
            cand --records-prefix 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]'
            cand --log-format 'Format of -v diagnostics on stderr'
            cand -v 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand --verbose 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)'
            cand -q 'Only errors on stderr (no waiting progress)'
            cand --quiet 'Only errors on stderr (no waiting progress)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'etcdlock;help'= {
            cand run 'Run COMMAND while holding the lock NAME'
            cand status 'Show who holds NAME, since when, who waits, and its last run'
            cand list 'List the locks under PREFIX with their holders and waiters'
            cand break 'Break NAME: revoke its holder''s lease, so that holder''s etcdlock stops its command (exit 70)'
            cand acquire 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)'
            cand renew 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)'
            cand release 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)'
            cand forget 'Forget NAME''s run records and its --once-per marker (the next run may go at once)'
            cand check 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)'
            cand exporter 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch'
            cand completions 'Print shell completions to stdout'
            cand man 'Write man pages (etcdlock.1 and one per subcommand) into DIR'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'etcdlock;help;run'= {
        }
        &'etcdlock;help;status'= {
        }
        &'etcdlock;help;list'= {
        }
        &'etcdlock;help;break'= {
        }
        &'etcdlock;help;acquire'= {
        }
        &'etcdlock;help;renew'= {
        }
        &'etcdlock;help;release'= {
        }
        &'etcdlock;help;forget'= {
        }
        &'etcdlock;help;check'= {
        }
        &'etcdlock;help;exporter'= {
        }
        &'etcdlock;help;completions'= {
        }
        &'etcdlock;help;man'= {
        }
        &'etcdlock;help;help'= {
        }
    ]
    $completions[$command]
}
