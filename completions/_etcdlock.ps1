
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'etcdlock' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'etcdlock'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'etcdlock' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run COMMAND while holding the lock NAME')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show who holds NAME, since when, who waits, and its last run')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the locks under PREFIX with their holders and waiters')
            [CompletionResult]::new('break', 'break', [CompletionResultType]::ParameterValue, 'Break NAME: revoke its holder''s lease, so that holder''s etcdlock stops its command (exit 70)')
            [CompletionResult]::new('acquire', 'acquire', [CompletionResultType]::ParameterValue, 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)')
            [CompletionResult]::new('renew', 'renew', [CompletionResultType]::ParameterValue, 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Forget NAME''s run records and its --once-per marker (the next run may go at once)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)')
            [CompletionResult]::new('exporter', 'exporter', [CompletionResultType]::ParameterValue, 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch')
            [CompletionResult]::new('elect', 'elect', [CompletionResultType]::ParameterValue, 'Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)')
            [CompletionResult]::new('resign', 'resign', [CompletionResultType]::ParameterValue, 'Ask the leader of the election NAME to step down: it stops its command and resigns, and the next candidate takes over')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (etcdlock.1 and one per subcommand) into DIR')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'etcdlock;run' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Semaphore: up to N holders at once (the N oldest keys hold); every holder must use the same N')
            [CompletionResult]::new('--once-per', '--once-per', [CompletionResultType]::ParameterName, 'At most one successful run of NAME per DUR, cluster-wide: holding the lock, skip (exit 0, silently) if a run succeeded less than DUR ago, by etcd''s clock; a failed run does not count, so the next firing on any host retries (DUR: whole seconds, at least 2s)')
            [CompletionResult]::new('--handle', '--handle', [CompletionResultType]::ParameterName, 'Run inside a lock taken earlier with `etcdlock acquire` (NAME comes from the handle): keep-alive while the command runs, kill before expiry; the lock stays held afterwards. Steps sharing one handle share the lock: they may run at the same time (the lock keeps other holders out, not the pipeline''s own steps)')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease TTL: how long the lock outlives a crashed etcdlock (whole seconds, at least 2s)')
            [CompletionResult]::new('--meta', '--meta', [CompletionResultType]::ParameterName, 'Extra holder metadata shown by `status`, e.g. --meta job=$CI_JOB_URL (repeatable)')
            [CompletionResult]::new('--min-hold', '--min-hold', [CompletionResultType]::ParameterName, 'Keep the lock at least DUR after acquiring it, even if the command ends sooner (stops cron jobs on hosts with skewed clocks from running twice in one period; --once-per does it exactly)')
            [CompletionResult]::new('--record-command', '--record-command', [CompletionResultType]::ParameterName, 'What of the command line to store in the lock key and the run record, where anyone who can read the lock''s prefix sees it and every waiter prints it: only the program name (the default: arguments may carry secrets, mysql -pSECRET, curl -H ''Authorization: ...''), the whole command line, or nothing')
            [CompletionResult]::new('--record-retention', '--record-retention', [CompletionResultType]::ParameterName, 'How long NAME''s run records stay after its last run; etcd deletes them then, by itself [env: ETCDLOCK_RECORD_RETENTION] [default: 35days: a monthly job''s last run is always there]')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)')
            [CompletionResult]::new('--conflict-exit-code', '--conflict-exit-code', [CompletionResultType]::ParameterName, 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)')
            [CompletionResult]::new('--progress-interval', '--progress-interval', [CompletionResultType]::ParameterName, 'While waiting and stderr is not a terminal, print a progress line this often')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run STRING with /bin/sh -c instead of COMMAND')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run STRING with /bin/sh -c instead of COMMAND')
            [CompletionResult]::new('--max-runtime', '--max-runtime', [CompletionResultType]::ParameterName, 'Stop the command after DUR (kill signal, grace, SIGKILL) and exit 124, as timeout(1) does; 0 means no limit, as in timeout(1)')
            [CompletionResult]::new('--kill-signal', '--kill-signal', [CompletionResultType]::ParameterName, 'Signal sent to the command''s process group when the lease is about to be lost or --max-runtime is reached')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between --kill-signal and SIGKILL when the lease is lost, --max-runtime is reached or etcdlock gets SIGTERM [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write a Prometheus textfile (node_exporter textfile collector) with this run''s timings, exit code and lost-lock count, updated when the command starts and ends')
            [CompletionResult]::new('--on-success', '--on-success', [CompletionResultType]::ParameterName, 'After a run whose command exited 0, run CMD with /bin/sh -c, once the lock is released (environment: ETCDLOCK_NAME, ETCDLOCK_OUTCOME, ETCDLOCK_EXIT_CODE, ETCDLOCK_DURATION_S, ETCDLOCK_FENCING_TOKEN); it never changes etcdlock''s exit code')
            [CompletionResult]::new('--on-failure', '--on-failure', [CompletionResultType]::ParameterName, 'After a run whose command failed (non-zero exit, signal, lost lock, --max-runtime), run CMD with /bin/sh -c, once the lock is released (same environment; ETCDLOCK_OUTCOME is failure, lock_lost or timeout); a skip or a give-up runs no hook')
            [CompletionResult]::new('--hook-timeout', '--hook-timeout', [CompletionResultType]::ParameterName, 'How long a hook may run; then its process group gets SIGTERM, and SIGKILL 2s later')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Shared (reader) lock, as flock -s: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it')
            [CompletionResult]::new('--shared', '--shared', [CompletionResultType]::ParameterName, 'Shared (reader) lock, as flock -s: any number of shared holders hold together, an exclusive one (plain run, etcdctl lock, Go''s Mutex) alone; FIFO, so a shared request behind a waiting exclusive one waits for it')
            [CompletionResult]::new('--no-record', '--no-record', [CompletionResultType]::ParameterName, 'Leave no run record in etcd (last run, last success: what `status` and `list` show) [env: ETCDLOCK_NO_RECORD=1]; --once-per cannot do without its marker and refuses this')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--kill-leftovers', '--kill-leftovers', [CompletionResultType]::ParameterName, 'When the command exits while processes it started still run (`cmd &`, nohup, setsid, daemons), stop them (kill signal, grace, SIGKILL) and release at once, instead of holding the lock until they exit; the exit code stays the command''s own')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;status' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable output (schema in the README; has a schema_version field)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;list' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable output (same field names as `status --json`); it also asks each holder''s lease for its remaining TTL (ttl_remaining_s), which the table does not show')
            [CompletionResult]::new('--watch', '--watch', [CompletionResultType]::ParameterName, 'Keep watching: on a terminal, redraw the table whenever a lock or record under PREFIX changes; otherwise print one JSON line per lock that changed (with --json or not)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;break' {
            [CompletionResult]::new('--lease', '--lease', [CompletionResultType]::ParameterName, 'Break only the holder (or waiter) with this lease id (hex, as `status` shows it), e.g. one holder of a --limit semaphore [default: every holder]')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;acquire' {
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'Semaphore: up to N holders at once; every holder must use the same N')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'The lock frees itself this long after the last acquire, renew or run --handle (whole seconds; plain numbers are seconds)')
            [CompletionResult]::new('--meta', '--meta', [CompletionResultType]::ParameterName, 'Extra holder metadata shown by status, e.g. --meta job=$CI_JOB_URL (repeatable)')
            [CompletionResult]::new('-w', '-w', [CompletionResultType]::ParameterName, 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Give up after waiting DUR for the lock (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('-E', '-E ', [CompletionResultType]::ParameterName, 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)')
            [CompletionResult]::new('--conflict-exit-code', '--conflict-exit-code', [CompletionResultType]::ParameterName, 'Exit code when giving up because of --no-wait or --timeout; -E 0 = "skip silently if already running" (no message either)')
            [CompletionResult]::new('--progress-interval', '--progress-interval', [CompletionResultType]::ParameterName, 'While waiting and stderr is not a terminal, print a progress line this often')
            [CompletionResult]::new('--env-file', '--env-file', [CompletionResultType]::ParameterName, 'Also append ETCDLOCK_HANDLE=... and ETCDLOCK_FENCING_TOKEN=... lines to FILE (e.g. $GITHUB_ENV, a GitLab dotenv artifact)')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Shared (reader) lock: holds together with other shared holders, never with an exclusive one')
            [CompletionResult]::new('--shared', '--shared', [CompletionResultType]::ParameterName, 'Shared (reader) lock: holds together with other shared holders, never with an exclusive one')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'If the lock is held, give up at once (exit 75, or --conflict-exit-code)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the handle with its key, lease, fencing token and expiry as JSON')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;renew' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;release' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;forget' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;check' {
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'How long ago the last success may have ended [default: twice the --once-per period recorded with the last run]')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine-readable output (schema in the README); same exit codes')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;exporter' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to serve GET /metrics on, e.g. 127.0.0.1:9479 or [::]:9479')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;elect' {
            [CompletionResult]::new('--proposal', '--proposal', [CompletionResultType]::ParameterName, 'The candidate''s value (what etcdctl elect -l prints) [default: etcdlock''s holder metadata, the JSON status shows]')
            [CompletionResult]::new('--on-exit', '--on-exit', [CompletionResultType]::ParameterName, 'What to do when COMMAND exits while leader')
            [CompletionResult]::new('--max-restarts', '--max-restarts', [CompletionResultType]::ParameterName, 'With --on-exit restart: resign after N restarts within --restart-window')
            [CompletionResult]::new('--restart-window', '--restart-window', [CompletionResultType]::ParameterName, 'The window --max-restarts counts in')
            [CompletionResult]::new('--active-file', '--active-file', [CompletionResultType]::ParameterName, 'A file that exists exactly while COMMAND runs as leader (removed before the key goes; with --on-lost-signal, before the signal); it holds etcdlock''s pid and the leader''s ETCDLOCK_KEY, ETCDLOCK_LEASE_ID and ETCDLOCK_FENCING_TOKEN lines')
            [CompletionResult]::new('--on-won-signal', '--on-won-signal', [CompletionResultType]::ParameterName, 'Keep COMMAND up across role changes: start it at once, as a standby (NOT the only active one: it must not act as leader until told), and send SIG to its main process when this candidate becomes leader (after --active-file is written); needs --on-lost-signal')
            [CompletionResult]::new('--on-lost-signal', '--on-lost-signal', [CompletionResultType]::ParameterName, 'Keep COMMAND up across role changes (see --on-won-signal): send SIG to its main process when leadership ends (lease lost or revoked, key deleted, resign), at the latest --kill-after plus 0.5s before the lease can expire, so it has the grace to stop acting as leader; if it cannot be told in time (etcdlock frozen), its tree is killed instead')
            [CompletionResult]::new('--metrics-file', '--metrics-file', [CompletionResultType]::ParameterName, 'Write a Prometheus textfile (node_exporter textfile collector) with etcdlock_leader (1 while leader) and etcdlock_leader_transitions_total, updated on every change')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lease TTL: how long leadership outlives a crashed etcdlock, so the longest a standby waits after a crash (whole seconds, at least 2s)')
            [CompletionResult]::new('--meta', '--meta', [CompletionResultType]::ParameterName, 'Extra holder metadata shown by `status`, e.g. --meta role=scheduler (repeatable)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Run STRING with /bin/sh -c instead of COMMAND')
            [CompletionResult]::new('--shell', '--shell', [CompletionResultType]::ParameterName, 'Run STRING with /bin/sh -c instead of COMMAND')
            [CompletionResult]::new('--kill-signal', '--kill-signal', [CompletionResultType]::ParameterName, 'Signal sent to the command''s process group when the lease is about to be lost')
            [CompletionResult]::new('--kill-after', '--kill-after', [CompletionResultType]::ParameterName, 'Grace between the kill signal (or a forwarded SIGTERM) and SIGKILL [default: 2s, or TTL/4 if that is shorter]; must be less than TTL/2')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('--observe', '--observe', [CompletionResultType]::ParameterName, 'Print the leader of NAME on every change, "no leader" when there is none; run nothing')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'With --observe: JSON lines (leader, key, proposal, host, pid, lease, since)')
            [CompletionResult]::new('--wait-leader', '--wait-leader', [CompletionResultType]::ParameterName, 'With --observe: exit 0 as soon as NAME has a leader')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;resign' {
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'How long to wait for the leader to step down')
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;completions' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;man' {
            [CompletionResult]::new('--endpoints', '--endpoints', [CompletionResultType]::ParameterName, 'etcd endpoints of one cluster, comma-separated [env: ETCDLOCK_ENDPOINTS, ETCDCTL_ENDPOINTS] [default: http://127.0.0.1:2379]')
            [CompletionResult]::new('--dial-timeout', '--dial-timeout', [CompletionResultType]::ParameterName, 'How long to keep trying to reach etcd at start-up [env: ETCDLOCK_DIAL_TIMEOUT, ETCDCTL_DIAL_TIMEOUT] [default: 5s]')
            [CompletionResult]::new('--cacert', '--cacert', [CompletionResultType]::ParameterName, 'CA bundle to verify https endpoints [env: ETCDLOCK_CACERT, ETCDCTL_CACERT] [default: the system''s roots]')
            [CompletionResult]::new('--cert', '--cert', [CompletionResultType]::ParameterName, 'Client certificate for https endpoints [env: ETCDLOCK_CERT, ETCDCTL_CERT]')
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Client certificate''s private key [env: ETCDLOCK_KEY, ETCDCTL_KEY]')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'etcd user, optionally with its password [env: ETCDLOCK_USER, ETCDCTL_USER]')
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Read the password from FILE (first line) so it never shows in the process list [password also from env: ETCDLOCK_PASSWORD, ETCDCTL_PASSWORD]')
            [CompletionResult]::new('--records-prefix', '--records-prefix', [CompletionResultType]::ParameterName, 'Where etcdlock keeps run records and --once-per markers: a prefix reserved for it, outside every lock''s tree (no lock name may cover it) [env: ETCDLOCK_RECORDS_PREFIX] [default: .etcdlock/]')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Format of -v diagnostics on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More diagnostics on stderr (-v: info, -vv: debug, -vvv: trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr (no waiting progress)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'etcdlock;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Run COMMAND while holding the lock NAME')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show who holds NAME, since when, who waits, and its last run')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List the locks under PREFIX with their holders and waiters')
            [CompletionResult]::new('break', 'break', [CompletionResultType]::ParameterValue, 'Break NAME: revoke its holder''s lease, so that holder''s etcdlock stops its command (exit 70)')
            [CompletionResult]::new('acquire', 'acquire', [CompletionResultType]::ParameterValue, 'Take the lock NAME and leave it held (by a lease that frees it after --ttl); print a handle for renew, release and run --handle in later steps (CI jobs, ExecStartPre)')
            [CompletionResult]::new('renew', 'renew', [CompletionResultType]::ParameterValue, 'Reset the lease of a lock taken with acquire to its TTL (exit 70 if it was lost)')
            [CompletionResult]::new('release', 'release', [CompletionResultType]::ParameterValue, 'Release a lock taken with acquire now (exit 70 if it had been lost meanwhile)')
            [CompletionResult]::new('forget', 'forget', [CompletionResultType]::ParameterValue, 'Forget NAME''s run records and its --once-per marker (the next run may go at once)')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Check that each NAME succeeded recently, from its run records (a monitoring plugin: OK/CRITICAL lines, exit 0 or 1)')
            [CompletionResult]::new('exporter', 'exporter', [CompletionResultType]::ParameterValue, 'Serve Prometheus metrics for every lock under the PREFIXes, cluster-wide, from etcd (holders, waiters, last run and last success), kept current by one etcd watch')
            [CompletionResult]::new('elect', 'elect', [CompletionResultType]::ParameterValue, 'Run COMMAND on the one host elected leader of NAME (the others stand by and take over when it goes); or observe the leader (--observe)')
            [CompletionResult]::new('resign', 'resign', [CompletionResultType]::ParameterValue, 'Ask the leader of the election NAME to step down: it stops its command and resigns, and the next candidate takes over')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions to stdout')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages (etcdlock.1 and one per subcommand) into DIR')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'etcdlock;help;run' {
            break
        }
        'etcdlock;help;status' {
            break
        }
        'etcdlock;help;list' {
            break
        }
        'etcdlock;help;break' {
            break
        }
        'etcdlock;help;acquire' {
            break
        }
        'etcdlock;help;renew' {
            break
        }
        'etcdlock;help;release' {
            break
        }
        'etcdlock;help;forget' {
            break
        }
        'etcdlock;help;check' {
            break
        }
        'etcdlock;help;exporter' {
            break
        }
        'etcdlock;help;elect' {
            break
        }
        'etcdlock;help;resign' {
            break
        }
        'etcdlock;help;completions' {
            break
        }
        'etcdlock;help;man' {
            break
        }
        'etcdlock;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
